"""Benchmark the ledger against same-run baselines on the same disk.

    .venv/bin/python bench/ledger.py [--big 1000000] [--dir DIR]

1. Durable appends with 1, 8 and 64 concurrent appender threads (group commit), then 64
   appenders spread over P processes x T threads sharing one ledger file (each process
   group-commits its own appenders, as gateway workers do), against raw SQLite WAL +
   synchronous=FULL inserts of similar rows committed in batches of the same average size the
   ledger's group commit produced.
2. Inclusion-proof latency at --big entries, against one primary-key lookup in the same file.
3. Full verification (`ledger verify`'s audit, with one job and with one per core) of the
   --big log, against SHA-256 of the same entry bytes (one hashlib call per entry, entries
   already in memory), as a Python loop that discards each digest and as a C-level ``map``
   that keeps them (as verification must).
4. Canonical JSON of typical entries as the append path does it: the in-house encoder
   (``canonical_members`` in the caller, ``canonical_entry`` in the committer) against
   ``rfc8785.dumps`` of the whole entry.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import operator
import os
import random
import sqlite3
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import rfc8785

from custodiet.ledger import canonical, note
from custodiet.ledger.audit import audit
from custodiet.ledger.verify import parse_vkey
from custodiet.ledger.writer import Ledger, canonical_entry, canonical_members, open_ledger

ORIGIN = "custodiet.bench/ledger"
ENTRY = {
    "actor": "reviewer-1",
    "action": "query",
    "agreement": "ssa-deceased-payees",
    "agreement_version": 3,
    "sql": "SELECT payee_tin, amount FROM payments WHERE agency = 'SSA'",
    "rows_returned": 118,
    "result_sha256": "9f" * 32,
}


def fresh_ledger(directory: Path, name: str) -> Ledger:
    key = directory / f"{name}.ed25519"
    note.write_private_key(key)
    return open_ledger(f"sqlite:///{directory / name}.db", ORIGIN, key, create=True)


def timed_appends(ledger: Ledger, threads: int, per_thread: int) -> tuple[list[float], int]:
    """Latencies of ``per_thread`` appends by each of ``threads`` threads, and the commits."""
    commits = [0]
    store_append = ledger.store.append

    def counting(build):  # type: ignore[no-untyped-def]
        commits[0] += 1
        store_append(build)

    ledger.store.append = counting  # type: ignore[method-assign]
    latencies: list[float] = []
    lock = threading.Lock()

    def work(k: int) -> None:
        mine = []
        for n in range(per_thread):
            start = time.perf_counter()
            ledger.append({**ENTRY, "thread": k, "n": n})
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return latencies, commits[0]


def appends(directory: Path, threads: int, per_thread: int) -> dict[str, float]:
    ledger = fresh_ledger(directory, f"appends-{threads}")
    start = time.monotonic()
    latencies, commits = timed_appends(ledger, threads, per_thread)
    elapsed = time.monotonic() - start
    ledger.close()
    return summary(latencies, commits, elapsed)


def summary(latencies: list[float], commits: int, elapsed: float) -> dict[str, float]:
    return {
        "rate": len(latencies) / elapsed,
        "median_ms": statistics.median(latencies) * 1000,
        "batch": len(latencies) / commits,
    }


def process_appends(db: str, key: str, threads: int, per_thread: int, go: Any, out: Any) -> None:
    """One worker process: open the shared ledger, wait for the start, append, report."""
    ledger = open_ledger(f"sqlite:///{db}", ORIGIN, Path(key), create=True)
    go.wait()
    start = time.monotonic()
    latencies, commits = timed_appends(ledger, threads, per_thread)
    out.put((latencies, commits, start, time.monotonic()))
    ledger.close()


def multiprocess_appends(
    directory: Path, processes: int, threads: int, per_thread: int
) -> dict[str, float]:
    """64 appenders as ``processes`` x ``threads``, all appending to one ledger file."""
    name = f"appends-{processes}x{threads}"
    fresh_ledger(directory, name).close()
    context = multiprocessing.get_context("spawn")
    go, out = context.Event(), context.Queue()
    args = (str(directory / f"{name}.db"), str(directory / f"{name}.ed25519"))
    workers = [
        context.Process(target=process_appends, args=(*args, threads, per_thread, go, out))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    time.sleep(2)  # every worker has imported and opened the ledger before the start
    go.set()
    results = [out.get() for _ in workers]
    for worker in workers:
        worker.join()
    elapsed = max(r[3] for r in results) - min(r[2] for r in results)
    return summary([t for r in results for t in r[0]], sum(r[1] for r in results), elapsed)


def raw_sqlite(directory: Path, rows: int, batch: int) -> float:
    con = sqlite3.connect(directory / f"raw-{time.monotonic_ns()}.db", isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = FULL")
    con.execute("CREATE TABLE t (idx INTEGER PRIMARY KEY, data BLOB NOT NULL)")
    payload = repr(ENTRY).encode()
    start = time.perf_counter()
    for first in range(0, rows, batch):
        con.execute("BEGIN IMMEDIATE")
        con.executemany(
            "INSERT INTO t VALUES (?, ?)", [(i, payload) for i in range(first, first + batch)]
        )
        con.execute("COMMIT")
    elapsed = time.perf_counter() - start
    con.close()
    return (rows - rows % batch or rows) / elapsed


def build_big(directory: Path, size: int) -> Ledger:
    ledger = fresh_ledger(directory, "big")
    chunk = 20_000
    for first in range(0, size, chunk):
        ledger.append_many([{**ENTRY, "n": n} for n in range(first, min(size, first + chunk))])
    ledger.checkpoint()
    return ledger


def proof_latency(ledger: Ledger, size: int, samples: int = 2000) -> tuple[float, float]:
    rng = random.Random(7)
    times = []
    for _ in range(samples):
        index = rng.randrange(size)
        start = time.perf_counter()
        ledger.inclusion_proof(index, size)
        times.append(time.perf_counter() - start)
    con = sqlite3.connect(ledger.store.path)  # type: ignore[attr-defined]
    lookups = []
    for _ in range(samples):
        index = rng.randrange(size)
        start = time.perf_counter()
        con.execute("SELECT data FROM entries WHERE idx = ?", (index,)).fetchone()
        lookups.append(time.perf_counter() - start)
    con.close()
    return statistics.median(times) * 1000, statistics.median(lookups) * 1000


def verification(ledger: Ledger) -> tuple[dict[int, float], float, float]:
    """Seconds of the full audit with one job and with one per core, and the two baselines."""
    data = [d for _, d in ledger.entries()]
    start = time.perf_counter()
    for item in data:
        hashlib.sha256(item).digest()
    loop = time.perf_counter() - start
    start = time.perf_counter()
    list(map(operator.methodcaller("digest"), map(hashlib.sha256, data)))
    mapped = time.perf_counter() - start
    del data
    audits = {}
    for jobs in sorted({1, os.cpu_count() or 1}):
        start = time.perf_counter()
        audit(ledger, parse_vkey(ledger.vkey()), jobs=jobs)
        audits[jobs] = time.perf_counter() - start
    return audits, loop, mapped


def encoders(count: int = 20_000) -> tuple[float, float]:
    """Entries/s of the in-house encoder and of rfc8785, for the bench's typical entries."""
    entries = [{**ENTRY, "thread": n % 64, "n": n} for n in range(count)]
    stamp = "2026-11-22T18:50:01.123456Z"
    start = time.perf_counter()
    when = canonical.dumps(stamp)
    ours = [canonical_entry(canonical_members(e), n, when) for n, e in enumerate(entries)]
    inhouse = count / (time.perf_counter() - start)
    start = time.perf_counter()
    theirs = [rfc8785.dumps({**e, "index": n, "time": stamp}) for n, e in enumerate(entries)]
    reference = count / (time.perf_counter() - start)
    assert ours == theirs
    return inhouse, reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--big", type=int, default=1_000_000, help="entries in the big log")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: tmp)")
    args = parser.parse_args()
    inhouse, reference = encoders()
    print(
        f"canonical JSON: in-house {inhouse:.0f} entries/s, rfc8785 {reference:.0f} entries/s;"
        f" ratio {inhouse / reference:.2f}"
    )
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        directory = Path(tmp)
        print("appenders (procs x threads)  appends/s  median ms  batch  raw SQLite rows/s  ratio")
        for processes, threads, per_thread in (
            (1, 1, 2000),
            (1, 8, 1000),
            (1, 64, 400),
            (2, 32, 400),
            (4, 16, 400),
        ):
            if processes == 1:
                got = appends(directory, threads, per_thread)
            else:
                got = multiprocess_appends(directory, processes, threads, per_thread)
            batch = max(1, round(got["batch"]))
            raw = raw_sqlite(directory, processes * threads * per_thread, batch)
            print(
                f"{processes * threads:9d} ({processes} x {threads:2d})      {got['rate']:9.0f}"
                f"  {got['median_ms']:9.3f}  {got['batch']:5.1f}  {raw:17.0f}"
                f"  {got['rate'] / raw:5.2f}"
            )
        start = time.perf_counter()
        ledger = build_big(directory, args.big)
        print(f"built a {args.big}-entry log in {time.perf_counter() - start:.1f} s")
        proof_ms, lookup_ms = proof_latency(ledger, args.big)
        print(
            f"inclusion proof at {args.big}: median {proof_ms:.3f} ms"
            f" (one primary-key lookup {lookup_ms:.3f} ms; ratio {proof_ms / lookup_ms:.1f})"
        )
        audits, loop_s, map_s = verification(ledger)
        print(
            f"SHA-256 of the same entries: {loop_s:.2f} s (loop, digests discarded),"
            f" {map_s:.2f} s (map, digests kept)"
        )
        for jobs, verify_s in audits.items():
            print(
                f"full verification, {jobs} job(s): {verify_s:.2f} s;"
                f" ratio {verify_s / loop_s:.2f} / {verify_s / map_s:.2f}"
            )
        ledger.close()


if __name__ == "__main__":
    main()
