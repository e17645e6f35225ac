"""Monitoring benchmark: a monitor run with nothing new vs re-running every screen, same run.

    .venv/bin/python bench/monitor.py [--people 10000] [--runs 3] [--seed 0]

On the workspace ``bench/screens.py`` builds (synthetic data from `custodiet synth`, the six
screens' agreement approved, its projection built), one long-lived runtime, the reviewer's
signed requests:
  * first monitor run: every screen, every finding opened as a case (once);
  * monitor, nothing new: the basis (agreement version, source digests, screens) is the last
    run's, so no screen runs; the run is still checked and on the ledger;
  * monitor, full scope: the same run forced to run every screen and diff against the open
    cases (what a run costs when a dataset changed, until runs narrow to the new rows);
  * screen run: all six screens, as `custodiet screen run` does.
Alternating, median of --runs; ratios are of medians from the same run.

    .venv/bin/python bench/monitor.py --months 3 [--people 10000] [--seed 0]

Month by month instead: `custodiet synth --months N` (cached under bench/out/), the initial load
registered, two agreements granting the same and following payments, deaths and tax refunds, a
first monitor run of each; then for each month the three files added by `dataset update` (both
projections extended), and, same state, same run:
  * monitor, new rows: the first agreement's run, narrowed to the month's rows (cases/scope.py);
  * monitor, full scope: the second agreement's run with every screen on the whole history;
  * screen run: every screen on the whole history, as `custodiet screen run` does.
Both monitor runs open the same cases (checked). Medians over the months; ratios of medians.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from custodiet.cases import monitor as monitoring
from custodiet.principals import Role
from custodiet.runtime import Runtime, opened
from custodiet.screens import SCREENS
from custodiet.screens.grants import agreement_document
from custodiet.workspace import Workspace

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the test kit signs as principals
from tests.kit import Kit  # noqa: E402

_spec = importlib.util.spec_from_file_location("screens_bench", HERE / "screens.py")
assert _spec is not None and _spec.loader is not None
screens_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(screens_bench)
AGREEMENT = screens_bench.AGREEMENT
NARROWED, FULL = "monthly", "monthly-full"
FOLLOWED = ("deaths", "payments", "tax_refunds")


def monitor_once(rt: Runtime) -> monitoring.MonitorRun:
    request = Kit().sign(rt, "reviewer", "monitor", {"agreement": AGREEMENT})
    return monitoring.monitor(rt, request)


def forced_full(rt: Runtime) -> monitoring.MonitorRun:
    """A monitor run whose scope is full, as when a source changed (nothing new is found)."""
    saved = monitoring.changed
    monitoring.changed = lambda *_: None  # type: ignore[assignment]
    try:
        return monitor_once(rt)
    finally:
        monitoring.changed = saved


def months_workspace(people: int, seed: int, months: int) -> tuple[Path, Workspace]:
    """The initial load of ``synth --months`` registered, both agreements approved and built."""
    from custodiet.synth import generate
    from custodiet.synth.months import split_months

    data = screens_bench.OUT / f"monitor-months-{people}-{seed}-{months}"
    if not (data / "truth.parquet").exists():
        shutil.rmtree(data, ignore_errors=True)
        generate(data, people=people, seed=seed)
        split_months(data, months)
    root = screens_bench.OUT / f"monitor-months-ws-{people}"
    shutil.rmtree(root, ignore_errors=True)
    kit = Kit(screens_bench.OUT)
    ws = kit.init(root, custodians=("cust-a", "cust-b"), k=2)
    kit.add_principal(ws, "reviewer", Role.REVIEWER, by=("cust-a",))
    datasets = {
        n: kit.add_dataset(ws, n, data / f"{n}.parquet", {}, by=("cust-a",)).dataset
        for n in screens_bench.DATASETS
    }
    for agreement in (NARROWED, FULL):
        document = agreement_document(
            agreement_id=agreement, reviewer="reviewer", screens=SCREENS.values(),
            expires=dt.date.today() + dt.timedelta(days=30), datasets=datasets,
        )  # fmt: skip
        for name in FOLLOWED:
            document["datasets"][name]["follow"] = True
        path = root / f"{agreement}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        kit.apply(ws, path, by="reviewer")
        kit.approve_all(ws, agreement, by=("cust-a", "cust-b"))
    return data, ws


def monitor_of(rt: Runtime, agreement: str, full: bool) -> monitoring.MonitorRun:
    request = Kit().sign(rt, "reviewer", "monitor", {"agreement": agreement})
    saved = monitoring.narrowing
    if full:
        monitoring.narrowing = lambda *_: None  # type: ignore[assignment]
    try:
        return monitoring.monitor(rt, request)
    finally:
        monitoring.narrowing = saved


def found(run: monitoring.MonitorRun) -> set[tuple[str, str, str]]:
    return {(c.screen, c.record_table, c.record_id) for c in run.cases}


def months_bench(people: int, seed: int, months: int) -> int:
    from custodiet.gateway.growth import update_and_extend
    from custodiet.screens.run import run_screens
    from custodiet.synth.months import month_labels

    data, ws = months_workspace(people, seed, months)
    times: dict[str, list[float]] = {"new rows": [], "full scope": [], "screen run": []}
    with opened(ws) as rt:
        assert found(monitor_of(rt, NARROWED, False)) == found(monitor_of(rt, FULL, True))
        for month in month_labels(months):
            started = time.perf_counter()
            for name in FOLLOWED:
                file = (data / f"month={month}" / f"{name}.parquet").resolve()
                request = Kit().sign(rt, "cust-a", "dataset.update",
                                     {"name": name, "path": str(file)})  # fmt: skip
                update_and_extend(rt, request)
            updated = time.perf_counter() - started
            started = time.perf_counter()
            narrowed = monitor_of(rt, NARROWED, False)
            times["new rows"].append(time.perf_counter() - started)
            started = time.perf_counter()
            full = monitor_of(rt, FULL, True)
            times["full scope"].append(time.perf_counter() - started)
            rerun = Kit().sign(rt, "reviewer", "screen.run",
                               {"agreement": NARROWED, "screens": []})  # fmt: skip
            started = time.perf_counter()
            run_screens(rt, rerun)
            times["screen run"].append(time.perf_counter() - started)
            assert found(narrowed) == found(full), month
            print(f"  {month}: update + 2 extensions {updated:.2f} s, {len(narrowed.cases)} new "
                  f"cases; new rows {times['new rows'][-1]:.3f} s, full scope "
                  f"{times['full scope'][-1]:.3f} s")  # fmt: skip
    medians = {k: statistics.median(v) for k, v in times.items()}
    print(f"people {people:,}, months {months} (medians over the months)")
    for name, seconds in medians.items():
        print(f"  {name:<12} {seconds:8.3f} s   {seconds / medians['full scope']:6.3f}x full scope")
    return 0


def timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--months", type=int, default=0, help="month by month (see above)")
    args = parser.parse_args()
    screens_bench.OUT.mkdir(exist_ok=True)
    if args.months:
        return months_bench(args.people, args.seed, args.months)
    data = screens_bench.data_for(args.people, args.seed)
    ws = screens_bench.workspace_for(data, args.people)
    with opened(ws) as rt:
        started = time.perf_counter()
        first = monitor_once(rt)
        print(f"  first monitor run: {len(first.cases):,} cases opened in "
              f"{time.perf_counter() - started:.2f} s")  # fmt: skip
        times: dict[str, list[float]] = {"nothing new": [], "full scope": [], "screen run": []}
        for _ in range(args.runs):
            times["nothing new"].append(timed(lambda: monitor_once(rt)))
            times["full scope"].append(timed(lambda: forced_full(rt)))
            times["screen run"].append(timed(lambda: screens_bench.screens_of(rt)))
        assert monitor_once(rt).unchanged_since is not None
        assert forced_full(rt).cases == ()
    medians = {k: statistics.median(v) for k, v in times.items()}
    rerun = medians["screen run"]
    print(f"people {args.people:,}, runs {args.runs} (medians)")
    for name, seconds in medians.items():
        print(f"  {name:<12} {seconds:8.3f} s   {seconds / rerun:6.3f}x screen run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
