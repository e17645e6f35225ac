"""Run every benchmark in turn at the sizes the issues name; each prints its own same-run ratios.

    .venv/bin/python bench/run_all.py [--quick]

--quick runs each at a small size, to check that the benchmarks themselves still work: the
targets are set for the full sizes, and at small sizes fixed per-query costs (a ledger append
per query) dominate, so a quick run reports MISSED targets without failing on them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MISSED_TARGETS = 3  # the exit status a benchmark uses for "ran, but missed a target"

FULL: tuple[tuple[str, ...], ...] = (
    ("synth.py", "--people", "1000000"),
    ("ledger.py", "--big", "1000000"),
    ("gateway.py", "--runs", "5"),
    ("aggregate.py", "--runs", "5"),
    ("dp.py", "--runs", "5"),
    ("cold_start.py",),
    ("screens.py", "--people", "100000", "1000000"),
    ("console.py", "--runs", "3"),
    ("check_bounds.py", "--runs", "3"),
    ("result_bytes.py", "--rows", "250000"),
)
QUICK: tuple[tuple[str, ...], ...] = (
    ("synth.py", "--people", "20000"),
    ("ledger.py", "--big", "20000"),
    ("gateway.py", "--payments", "200000", "--deaths", "10000", "--runs", "2"),
    ("aggregate.py", "--payments", "200000", "--deaths", "10000", "--runs", "2"),
    ("dp.py", "--payments", "200000", "--deaths", "10000", "--runs", "2"),
    ("cold_start.py",),
    ("screens.py", "--people", "10000", "--runs", "1"),
    ("console.py", "--runs", "1"),
    ("check_bounds.py", "--runs", "1"),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to smoke-test")
    quick = parser.parse_args().quick
    plan = QUICK if quick else FULL
    failed = []
    for script, *args in plan:
        if not (HERE / script).exists():
            continue
        print(f"\n=== {script} {' '.join(args)}", flush=True)
        started = time.perf_counter()
        status = subprocess.call([sys.executable, str(HERE / script), *args])
        print(f"=== {script}: exit {status} in {time.perf_counter() - started:.0f} s", flush=True)
        if status and not (quick and status == MISSED_TARGETS):
            failed.append(script)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
