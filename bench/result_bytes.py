"""Peak memory of fetching a wide result: every row at once vs the byte-capped fetch.

    .venv/bin/python bench/result_bytes.py [--rows 250000] [--columns 30]

A DuckDB file (in a temp dir) holds ``--rows`` rows of an id and ``--columns`` 31-character
strings, opened as the reviewer's engine is (``open_engine``). Each way of fetching runs in its
own child process, which reports its peak RSS (getrusage) and wall time:

    all       what the engine did before: one ``fetchmany`` of every row (the baseline)
    uncapped  ``execute`` with a byte cap larger than the result: chunks, counted, all kept
    capped    ``execute`` with the default cap (64 MiB): refused (CUST376) once past it

The RSS includes DuckDB's own materialized result, the same in every mode. Target: capped
peak RSS below the baseline's; exit 3 if not.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from custodiet.errors import CustodietError
from custodiet.gateway.execute import EngineLimits, execute, open_engine
from custodiet.workspace import DEFAULT_MAX_RESULT_BYTES

MODES = ("all", "uncapped", "capped")


def _make(path: Path, rows: int, columns: int) -> None:
    import duckdb

    values = ", ".join(
        f"'value-' || lpad(CAST(i * {k} AS VARCHAR), 25, '0') AS c{k}" for k in range(columns)
    )
    con = duckdb.connect(str(path))
    con.execute(f"CREATE TABLE wide AS SELECT i, {values} FROM range({rows}) r(i)")
    con.close()


def _child(path: Path, mode: str, rows: int) -> None:
    engine = open_engine(path, EngineLimits(threads=1))
    sql = f"SELECT * FROM wide LIMIT {rows + 1}"
    cursor = engine.cursor()
    start = time.perf_counter()
    try:
        if mode == "all":
            outcome = f"{len(cursor.execute(sql).fetchmany(rows + 1))} rows"
        else:
            cap = DEFAULT_MAX_RESULT_BYTES if mode == "capped" else 1 << 62
            done = execute(cursor, sql, row_limit=rows + 1, timeout_seconds=600, max_bytes=cap)
            outcome = f"{len(done.rows)} rows"
    except CustodietError as exc:
        outcome = exc.code
    finally:
        cursor.close()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{peak:.0f} {seconds:.2f} {outcome}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=250_000)
    parser.add_argument("--columns", type=int, default=30)
    parser.add_argument("--child", nargs=2, metavar=("PATH", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(Path(args.child[0]), args.child[1], args.rows)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "wide.duckdb"
        _make(path, args.rows, args.columns)
        peaks = {}
        for mode in MODES:
            command = [sys.executable, __file__, "--rows", str(args.rows), "--child", str(path)]
            done = subprocess.run([*command, mode], capture_output=True, text=True, check=True)
            peak, seconds, outcome = done.stdout.split(maxsplit=2)
            peaks[mode] = float(peak)
            print(f"{mode:9} peak RSS {peak:>6} MiB  {seconds:>6} s  {outcome.strip()}")
    ratio = peaks["capped"] / peaks["all"]
    print(f"capped / all peak RSS: {ratio:.2f}")
    return 0 if ratio < 1 else 3


if __name__ == "__main__":
    sys.exit(main())
