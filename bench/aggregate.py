"""Aggregate-mode benchmark: contribution-based suppression vs raw DuckDB on the same queries.

    .venv/bin/python bench/aggregate.py [--payments 10000000] [--deaths 500000] [--runs 5]

Data and workspace as ``bench/gateway.py`` (the same generator), under an aggregate-mode
agreement. Each of the gateway benchmark's aggregate queries, and two conditional aggregates,
runs through ``run_query`` (check, the rewrite that adds a hidden distinct-person count per value
and per joined table, execute on the projection, suppression, ledger append) and as the same SQL
on raw DuckDB over the raw Parquet, alternating, after one warm-up each; the figure is
median(gateway) / median(raw). Target: <= 1.3x.
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

TARGET = 1.3
MISSED_TARGETS = 3
QUERIES = {
    "a_by_program": "SELECT program, count(*) AS n, sum(amount) AS total FROM payments "
    "GROUP BY program ORDER BY program",
    "b_paid_after_death": "SELECT count(*) AS n, sum(p.amount) AS total FROM payments p "
    "JOIN deaths d ON p.payee_tin = d.ssn "
    "WHERE p.payment_date > d.date_of_death "
    "AND date_trunc('month', p.payment_date) = DATE '2024-06-01'",
    "d_distinct_payees": "SELECT program, count(DISTINCT payee_tin) AS payees FROM payments "
    "GROUP BY program ORDER BY program",
    "e_conditional": "SELECT program, count(*) AS n, "
    "sum(CASE WHEN amount > 900 THEN amount ELSE 0 END) AS big "
    "FROM payments GROUP BY program ORDER BY program",
}


def workspace(root: Path, data: dict[str, Path]) -> Workspace:
    kit = Kit(root)
    ws = kit.init(root / "ws", custodians=("c1", "c2"), k=2)
    kit.add_principal(ws, "rev", Role.REVIEWER, by=("c1",))
    for name, path in data.items():
        kit.add_dataset(ws, name, path, {}, by=("c1",))
    agreement = root / "bench-agg.yaml"
    agreement.write_text(yaml.safe_dump({**AGREEMENT, "id": "bench-agg", "mode": "aggregate"}))
    kit.apply(ws, agreement, by="rev")
    kit.approve_all(ws, "bench-agg", by=("c1", "c2"))
    return ws


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data_arguments(parser)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="custodiet-bench-agg-"))
    missed = False
    try:
        data = generated(scratch, args.payments, args.deaths)
        ws = workspace(scratch, data)
        rt = Runtime(ws)  # one long-lived runtime, as the server holds
        raw = raw_engine(data)
        for name, sql in QUERIES.items():
            released = signed_query(rt, "bench-agg", sql)  # warm-up (and projection build)
            assert len(released.rows) <= len(raw.execute(sql).fetchall()), name
            ours, theirs = [], []
            for _ in range(args.runs):
                ours.append(timed(lambda sql=sql: signed_query(rt, "bench-agg", sql)))
                theirs.append(timed(lambda sql=sql: raw.execute(sql).fetchall()))
            missed |= report(f"aggregate {name}", ours, theirs, TARGET)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return MISSED_TARGETS if missed else 0


if __name__ == "__main__":
    sys.exit(main())
