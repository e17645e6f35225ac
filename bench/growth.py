"""Growth benchmark: extending a projection by one month vs building that month alone, and vs
rebuilding the whole history, in the same run.

    .venv/bin/python bench/growth.py [--people 1000000] [--seed 0]

The payments of `custodiet synth` (cached under bench/out/) are split by month of
``payment_date``: January to November are the history, December the new month. Three timings,
each through the services the CLI calls, on an agreement granting ``payments`` (identifiers
pseudonymized, the rest allowed):
  * month alone: a workspace where December alone is registered; the activating approval builds
    its projection (``build_for``): the cost of tokenizing one month from scratch;
  * extension: a workspace where the history is registered (a glob of monthly files) and the
    agreement follows it, projection built; then ``dataset update`` with December
    (``update_and_extend``: the new file hashed and inspected, the update committed, the
    projection copied, December appended, the extension committed) — and the extension step
    alone (``extend``);
  * full rebuild: ``agreement build`` of the same agreement afterwards (every month read);
then the month alone is rebuilt once more, and its two builds are averaged.
Target: extension <= 1.2x month alone. One run each (the machine may be shared: read ratios).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import time
from pathlib import Path

import duckdb
import yaml

from custodiet.gateway import growth
from custodiet.principals import Role
from custodiet.runtime import opened
from custodiet.synth import generate
from custodiet.workspace import Workspace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test kit signs as principals
from tests.kit import Kit

OUT = Path(__file__).resolve().parent / "out"
AGREEMENT = "growth-bench"
TARGET_RATIO = 1.2
NEW_MONTH = "2024-12"


def split_months(people: int, seed: int) -> Path:
    """Payments of the synthetic data, one file per month under DIR/month=YYYY-MM/."""
    OUT.mkdir(exist_ok=True)
    data = OUT / f"screens-data-{people}-{seed}"
    if not (data / "truth.parquet").exists():
        shutil.rmtree(data, ignore_errors=True)
        generate(data, people=people, seed=seed)
    months = OUT / f"growth-months-{people}-{seed}"
    if not (months / f"month={NEW_MONTH}" / "payments.parquet").exists():
        shutil.rmtree(months, ignore_errors=True)
        months.mkdir(parents=True)
        con = duckdb.connect()
        source = f"read_parquet('{data / 'payments.parquet'}')"
        found = con.execute(
            f"SELECT DISTINCT strftime(payment_date, '%Y-%m') FROM {source} ORDER BY 1"
        ).fetchall()
        for (month,) in found:
            folder = months / f"month={month}"
            folder.mkdir()
            con.execute(
                f"COPY (SELECT * FROM {source} WHERE strftime(payment_date, '%Y-%m') = '{month}' "
                f"ORDER BY payment_id) TO '{folder / 'payments.parquet'}' (FORMAT parquet)"
            )
        con.close()
    return months


def workspace(name: str, kit: Kit, location: str, follow: bool) -> Workspace:
    root = OUT / f"growth-ws-{name}"
    shutil.rmtree(root, ignore_errors=True)
    ws = kit.init(root, custodians=("cust-a", "cust-b"), k=2)
    kit.add_principal(ws, "reviewer", Role.REVIEWER, by=("cust-a",))
    with opened(ws) as rt:
        from custodiet.catalog.registry import add_dataset

        args = {"name": "payments", "path": location, "classify": {}}
        dataset = add_dataset(rt, kit.sign(rt, "cust-a", "dataset.add", args)).dataset
    columns = {
        c.name: "pseudonymize" if c.column_class.value in ("identifier", "key") else "allow"
        for c in dataset.columns.values()
    }
    columns["payee_name"] = "deny"
    document = {
        "id": AGREEMENT,
        "purpose": "Benchmark of a growing payments dataset",
        "reviewer": "reviewer",
        "expires": (dt.date.today() + dt.timedelta(days=30)).isoformat(),
        "datasets": {"payments": {"follow": follow, "columns": columns}},
    }
    path = root / "agreement.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    kit.apply(ws, path, by="reviewer")
    kit.approve(ws, AGREEMENT, "cust-a")
    return ws


def timed_build(kit: Kit, ws: Workspace) -> float:
    started = time.perf_counter()
    kit.approve(ws, AGREEMENT, "cust-b")  # the activating approval builds the projection
    return time.perf_counter() - started


def timed_rebuild(kit: Kit, ws: Workspace) -> float:
    from custodiet.gateway.activation import rebuild

    started = time.perf_counter()
    with opened(ws) as rt:
        rebuild(rt, kit.sign(rt, "cust-a", "agreement.build", {"agreement": AGREEMENT}))
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    months = split_months(args.people, args.seed)
    new = months / f"month={NEW_MONTH}" / "payments.parquet"
    history = sorted(str(p) for p in months.glob("month=*/payments.parquet") if p != new)
    kit = Kit(OUT)
    rows = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{new}')").fetchone()
    print(f"{args.people:,} people; new month {NEW_MONTH}: {rows[0] if rows else 0:,} payments; "
          f"history: {len(history)} monthly files")  # fmt: skip

    alone_ws = workspace("alone", kit, str(new), follow=False)
    alone = timed_build(kit, alone_ws)
    print(f"  month alone: projection built in {alone:.2f} s")

    # history as a directory of monthly files: December moved aside until the update
    held = months.parent / f".growth-held-{NEW_MONTH}.parquet"
    shutil.move(new, held)
    try:
        grown_ws = workspace("grown", kit, str(months / "month=*" / "payments.parquet"), True)
        history_build = timed_build(kit, grown_ws)
    finally:
        shutil.move(held, new)
    print(f"  history ({len(history)} months): projection built in {history_build:.2f} s")

    extend_seconds: list[float] = []
    original = growth.extend

    def measured(*a, **k):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            extend_seconds.append(time.perf_counter() - started)

    growth.extend = measured  # type: ignore[assignment]
    started = time.perf_counter()
    with opened(grown_ws) as rt:
        update = {"name": "payments", "path": str(new.parent)}  # the new month's directory
        done = growth.update_and_extend(rt, kit.sign(rt, "cust-a", "dataset.update", update))
    whole = time.perf_counter() - started
    growth.extend = original
    assert done.extended == (AGREEMENT,), done.extended
    print(f"  update + extension: {whole:.2f} s (extension step {extend_seconds[0]:.2f} s)")

    full = timed_rebuild(kit, grown_ws)
    print(f"  full rebuild (12 months): {full:.2f} s")
    again = timed_rebuild(kit, alone_ws)  # the month alone once more, after the others
    print(f"  month alone, rebuilt: {again:.2f} s")
    alone = (alone + again) / 2

    ratio, whole_ratio = extend_seconds[0] / alone, whole / alone
    print(f"extension / month alone (mean of two builds): {ratio:.2f}x "
          f"(target <= {TARGET_RATIO}x); "
          f"update + extension / month alone: {whole_ratio:.2f}x; "
          f"extension / full rebuild: {extend_seconds[0] / full:.2f}x")  # fmt: skip
    return 0 if ratio <= TARGET_RATIO else 3


if __name__ == "__main__":
    sys.exit(main())
