"""dp-mode benchmark: person-level noisy count and sum vs raw DuckDB, same run.

    .venv/bin/python bench/dp.py [--payments 10000000] [--deaths 500000] [--runs 5]

Data as ``bench/gateway.py``. A dp agreement (program's key set declared, amount bounded to
[0, 2000], at most 10 rows a person) answers ``count(*)`` and ``sum(amount)`` by program through
``run_query``: check, bound each person's rows, clamp, OpenDP discrete Gaussian noise, budget read
from the ledger, ledger append. Each run changes a literal so the answer cache cannot serve it.
The raw baseline is the same exact query on DuckDB over the raw Parquet. Target: <= 3x.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.kit import Kit

from custodiet.principals import Role
from custodiet.runtime import Runtime
from custodiet.workspace import Workspace
from gateway import AGREEMENT, data_arguments, generated, raw_engine, report, signed_query, timed

TARGET = 3.0
MISSED_TARGETS = 3
SQL = (
    "SELECT program, count(*) AS n, sum(amount) AS total FROM payments "
    "WHERE amount > {floor} GROUP BY program"
)


def workspace(root: Path, data: dict[str, Path], contributions: int = 10) -> Workspace:
    kit = Kit(root)
    ws = kit.init(root / "ws", custodians=("c1", "c2"), k=2)
    kit.add_principal(ws, "rev", Role.REVIEWER, by=("c1",))
    for name, path in data.items():
        kit.add_dataset(ws, name, path, {}, by=("c1",))
    datasets = {k: dict(v) for k, v in AGREEMENT["datasets"].items()}  # type: ignore[attr-defined]
    datasets["payments"].update(
        max_contributions=contributions,
        bounds={"amount": [0, 2000]},
        keys={"program": ["RSI", "SSDI", "SSI"]},
    )
    document = {
        **AGREEMENT,
        "id": "bench-dp",
        "mode": "dp",
        "datasets": datasets,
        "limits": {"max_rows": 10000, "rho": 100.0, "queries": 1000, "timeout_seconds": 600},
    }
    manifest = ws.manifest()
    manifest["dp_dataset_rho_cap"] = 1000.0
    import json

    ws.manifest_path.write_text(json.dumps(manifest))
    (root / "bench-dp.yaml").write_text(yaml.safe_dump(document))
    kit.apply(ws, root / "bench-dp.yaml", by="rev")
    kit.approve_all(ws, "bench-dp", by=("c1", "c2"))
    return ws


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data_arguments(parser)
    parser.add_argument(
        "--max-contributions",
        type=int,
        default=10,
        help="rows kept per person (at or above the data's largest, the cut is skipped)",
    )
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="custodiet-bench-dp-"))
    try:
        data = generated(scratch, args.payments, args.deaths)
        ws = workspace(scratch, data, args.max_contributions)
        rt = Runtime(ws)  # one long-lived runtime, as the server holds
        raw = raw_engine(data)
        signed_query(rt, "bench-dp", SQL.format(floor=-1))  # warm-up (and projection build)
        raw.execute(SQL.format(floor=-1)).fetchall()
        ours, theirs = [], []
        for run in range(args.runs):
            sql = SQL.format(floor=-2 - run)  # a new canonical query: no cached answer
            ours.append(timed(lambda sql=sql: signed_query(rt, "bench-dp", sql)))
            theirs.append(timed(lambda sql=sql: raw.execute(sql).fetchall()))
        missed = report(
            f"dp count+sum by program (C={args.max_contributions})", ours, theirs, TARGET
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return MISSED_TARGETS if missed else 0


if __name__ == "__main__":
    sys.exit(main())
