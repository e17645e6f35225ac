"""SmartNoise SQL beside custodiet's dp mode and raw DuckDB: one person-level query, same run.

    .venv/bin/python bench/smartnoise/compare.py [--payments 1000000] [--runs 5]
        [--reader duckdb|pandas] [--venv ~/.cache/custodiet-bench/smartnoise-venv]

The query is ``bench/dp.py``'s: ``count(*)`` and ``sum(amount)`` by program, the person
(``payee_tin``) the privacy unit, at most 10 rows a person, amount in [0, 2000]; each run changes
a literal so that no answer is served from a cache. Per run, in turn: custodiet (``run_query`` on a
dp agreement, workspace as ``bench/dp.py`` builds it), raw DuckDB over the raw Parquet, and
SmartNoise SQL (``worker.py``, in its own virtual environment, on the same Parquet file). The
figures are medians and the ratios are to raw DuckDB's median of the same run.

SmartNoise SQL is not a dependency of custodiet: it is installed from ``requirements.txt``
beside this file into a virtual environment outside the repository (``python3 -m venv``, then
pip), created on first use and again whenever ``requirements.txt`` changes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: data, the dp workspace
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/kit.py signs as principals

from custodiet.runtime import Runtime
from dp import SQL, workspace  # bench/dp.py, read-only
from gateway import generate, signed_query, timed

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"
DEFAULT_VENV = Path.home() / ".cache" / "custodiet-bench" / "smartnoise-venv"


def smartnoise_python(venv: Path, python: str) -> Path:
    """The venv's interpreter, the venv (re)made if ``requirements.txt`` changed since."""
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    stamp = venv / "requirements.sha256"
    interpreter = venv / "bin" / "python"
    if stamp.is_file() and stamp.read_text().strip() == wanted and interpreter.is_file():
        return interpreter
    print(f"smartnoise: creating {venv} ({python} -m venv, pip install -r {REQUIREMENTS.name})")
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(interpreter), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)], check=True
    )
    stamp.write_text(wanted)
    return interpreter


class Worker:
    """``worker.py`` in SmartNoise's venv: one query per line written, one JSON answer read."""

    def __init__(self, interpreter: Path, payments: Path, reader: str) -> None:
        self.process = subprocess.Popen(
            [str(interpreter), str(HERE / "worker.py"), str(payments), "--reader", reader],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.load_seconds = float(self._answer()["load_seconds"])

    def _answer(self) -> dict[str, Any]:
        stdout: IO[str] | None = self.process.stdout
        line = stdout.readline() if stdout is not None else ""
        if not line:
            raise SystemExit(f"smartnoise worker ended (exit {self.process.wait()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def run(self, floor: int) -> float:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{floor}\n")
        self.process.stdin.flush()
        answer = self._answer()
        assert answer["rows"] >= 1, answer
        return float(answer["seconds"])

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument("--deaths", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reader", choices=("duckdb", "pandas"), default="duckdb")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--python", default="python3", help="interpreter that makes the venv")
    args = parser.parse_args()
    interpreter = smartnoise_python(args.venv, args.python)
    scratch = Path(tempfile.mkdtemp(prefix="custodiet-bench-smartnoise-"))
    try:
        started = time.perf_counter()
        data = generate(scratch, args.payments, args.deaths)
        print(
            f"data: {args.payments:,} payments ({time.perf_counter() - started:.1f} s); "
            f"{os.cpu_count()} cores; smartnoise reader {args.reader}",
            flush=True,
        )
        rt = Runtime(workspace(scratch, data))
        raw = duckdb.connect()
        for name, path in data.items():
            raw.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}')")
        worker = Worker(interpreter, data["payments"], args.reader)
        print(f"smartnoise load (once, before the runs): {worker.load_seconds:.2f} s")
        signed_query(rt, "bench-dp", SQL.format(floor=-1))  # warm-up (and projection build)
        raw.execute(SQL.format(floor=-1)).fetchall()
        worker.run(-1)
        ours, theirs, smartnoise = [], [], []
        for run in range(args.runs):
            sql = SQL.format(floor=-2 - run)  # a new canonical query: no cached answer
            ours.append(timed(lambda sql=sql: signed_query(rt, "bench-dp", sql)))
            theirs.append(timed(lambda sql=sql: raw.execute(sql).fetchall()))
            smartnoise.append(worker.run(-2 - run))
        worker.close()
        base = statistics.median(theirs)
        for name, times in (
            ("raw DuckDB", theirs),
            ("custodiet dp", ours),
            (f"SmartNoise SQL ({args.reader})", smartnoise),
        ):
            median = statistics.median(times)
            print(f"{name:28s} {median:8.3f} s  ratio to raw {median / base:7.1f}x", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
