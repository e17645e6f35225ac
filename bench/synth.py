"""Benchmark `custodiet synth`: people per second and peak RSS, against raw pyarrow writing.

    .venv/bin/python bench/synth.py [--people 1000000 ...]

For each size, two child processes run one after the other:
  * synth:    custodiet.synth.generate(people) into a temp directory;
  * baseline: the same number of rows per table, random values of the same Arrow types,
              written with the same ParquetWriter settings (no identifiers, no rules).
Each child reports its wall time and its own peak RSS; the ratio synth/baseline is printed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from custodiet.synth import SCHEMAS, generate
from custodiet.synth.records import money
from custodiet.synth.writer import PARQUET_SETTINGS

BATCH = 2_500_000


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_synth(people: int, out: Path) -> dict[str, object]:
    start = time.perf_counter()
    summary = generate(out, people, seed=0, profile="stress")
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rss_mib": _peak_rss_mib(), "rows": summary.rows}


def _random_column(rng: np.random.Generator, kind: pa.DataType, rows: int) -> pa.Array:
    values = rng.integers(0, 10**9, rows)
    if pa.types.is_string(kind):
        return pc.cast(pa.array(values), pa.string())
    if pa.types.is_date32(kind):
        return pa.array((values % 40_000).astype(np.int32)).cast(pa.date32())
    if pa.types.is_decimal(kind):
        return money(values % 10**8)
    return pa.array(values.astype(np.int32))


def run_baseline(rows: dict[str, int], out: Path) -> dict[str, object]:
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for table, schema in SCHEMAS.items():
        with pq.ParquetWriter(out / f"{table}.parquet", schema, **PARQUET_SETTINGS) as writer:
            for first in range(0, rows[table], BATCH):
                count = min(BATCH, rows[table] - first)
                columns = [_random_column(rng, field.type, count) for field in schema]
                writer.write_table(pa.Table.from_arrays(columns, schema=schema))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rss_mib": _peak_rss_mib()}


def _child(mode: str, argument: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{mode}-") as out:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", mode, argument, out],
            capture_output=True,
            text=True,
            check=True,
        )
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, argument, out = args.child
        if mode == "synth":
            print(json.dumps(run_synth(int(argument), Path(out))))
        else:
            print(json.dumps(run_baseline(json.loads(argument), Path(out))))
        return
    for people in args.people:
        synth = _child("synth", str(people))
        rows = synth["rows"]
        assert isinstance(rows, dict)
        baseline = _child("baseline", json.dumps(rows))
        s_sec, b_sec = float(str(synth["seconds"])), float(str(baseline["seconds"]))
        print(f"people={people:,} rows={sum(rows.values()):,} ({rows['payments']:,} payments)")
        print(
            f"  synth:    {s_sec:8.1f} s  {people / s_sec:12,.0f} people/s  "
            f"peak RSS {float(str(synth['rss_mib'])):8.0f} MiB"
        )
        print(
            f"  baseline: {b_sec:8.1f} s  (random rows of the same types, same writer)  "
            f"peak RSS {float(str(baseline['rss_mib'])):8.0f} MiB"
        )
        print(f"  ratio synth/baseline time: {s_sec / b_sec:.2f}x")


if __name__ == "__main__":
    main()
