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
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from custodiet.cases import monitor as monitoring
from custodiet.runtime import Runtime, opened

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the test kit signs as principals
from tests.kit import Kit  # noqa: E402

_spec = importlib.util.spec_from_file_location("screens_bench", HERE / "screens.py")
assert _spec is not None and _spec.loader is not None
screens_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(screens_bench)
AGREEMENT = screens_bench.AGREEMENT


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


def timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    screens_bench.OUT.mkdir(exist_ok=True)
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
