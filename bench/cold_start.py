"""Cold start: a trivial `custodiet query` (and `--help`) in a fresh process, vs bare interpreters.

    .venv/bin/python bench/cold_start.py [--runs 7]

Sets up a tiny workspace (the gateway benchmark's payments and deaths at a few thousand rows,
three principals, both datasets, the agreement approved by two custodians, which builds the
projection), runs one untimed query as rev (signed with rev's --key), then times fresh
processes, interleaved so load on the machine hits all alike:
`custodiet query ... "SELECT count(*) FROM payments"`, `custodiet --help`,
`custodiet query --help`, and the same-run floors `python -c "import duckdb, sqlglot"` and
`python -c pass`. Target: the query's median <= 1 s.

Two passes: with the interpreter's bytecode settings as inherited (if PYTHONDONTWRITEBYTECODE is
set and nothing was precompiled, every run compiles typer, rich, pydantic and custodiet from
source), and with a bytecode cache (PYTHONPYCACHEPREFIX in the scratch directory, filled by one
untimed run), which is what an installed CLI has from its second run on.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gateway import Kit, generate, workspace

TARGET_SECONDS = 1.0


def commands(ws_root: Path, as_rev: list[str]) -> dict[str, list[str]]:
    custodiet = str(Path(sys.executable).with_name("custodiet"))
    query = [custodiet, "query", "--workspace", str(ws_root), "--agreement", "bench"]
    return {
        "custodiet query (trivial)": [*query, *as_rev, "SELECT count(*) FROM payments"],
        "custodiet --help": [custodiet, "--help"],
        "custodiet query --help": [custodiet, "query", "--help"],
        'python -c "import duckdb, sqlglot"': [sys.executable, "-c", "import duckdb, sqlglot"],
        "python -c pass": [sys.executable, "-c", "pass"],
    }


def wall_seconds(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, check=False, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{command[1:3]}: exit {done.returncode}: {done.stderr.strip()}")
    return elapsed


def timings(cases: dict[str, list[str]], env: dict[str, str], runs: int) -> dict[str, list[float]]:
    for command in cases.values():  # warm the page cache (and the bytecode cache, if any)
        wall_seconds(command, env)
    seconds: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, command in cases.items():
            seconds[name].append(wall_seconds(command, env))
    return seconds


def report(title: str, seconds: dict[str, list[float]]) -> None:
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    floor = medians['python -c "import duckdb, sqlglot"']
    print(f"\n{title}", flush=True)
    for name, values in seconds.items():
        print(
            f"  {name:36s} median {medians[name]:6.3f} s  min {min(values):6.3f} s"
            f"  {medians[name] / floor:5.2f}x the duckdb+sqlglot import",
            flush=True,
        )
    query = medians["custodiet query (trivial)"]
    verdict = "OK" if query <= TARGET_SECONDS else "MISSED"
    print(f"  query median {query:.3f} s, target <= {TARGET_SECONDS:g} s: {verdict}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each command (>= 5)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="custodiet-cold-"))
    try:
        ws = workspace(scratch, generate(scratch, payments=3_000, deaths=300))
        cases = commands(ws.root, Kit(scratch).as_("rev"))  # rev signs with --key FILE
        inherited = dict(os.environ)
        wall_seconds(cases["custodiet query (trivial)"], inherited)  # untimed: warms the files
        print(f"{os.cpu_count()} cores; {args.runs} interleaved runs each", flush=True)
        no_bytecode = "PYTHONDONTWRITEBYTECODE" in inherited
        report(
            "bytecode as inherited" + (" (PYTHONDONTWRITEBYTECODE set)" if no_bytecode else ""),
            timings(cases, inherited, args.runs),
        )
        cached = {k: v for k, v in inherited.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")
        report("bytecode cached (PYTHONPYCACHEPREFIX)", timings(cases, cached, args.runs))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
