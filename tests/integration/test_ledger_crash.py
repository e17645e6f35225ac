"""kill -9 of several appending processes at a random moment loses no acknowledged entry."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from custodiet.ledger.audit import audit
from custodiet.ledger.verify import parse_vkey
from custodiet.ledger.writer import open_ledger
from tests.unit.ledger.conftest import ORIGIN, make_key, postgres_url, store_url  # noqa: F401

APPENDER = """
import sys, threading
from pathlib import Path
from custodiet.ledger.writer import open_ledger

url, origin, proc, key = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
ledger = open_ledger(url, origin, Path(key))
lock = threading.Lock()

def work(thread):
    n = 0
    while True:
        index = ledger.append({"actor": proc, "thread": thread, "n": n})
        with lock:
            print(index, proc, thread, n, flush=True)
        n += 1

for thread in range(4):
    threading.Thread(target=work, args=(thread,), daemon=True).start()
threading.Event().wait()
"""
PROCESSES = 3
ROUNDS = 2


def acknowledged(log: Path) -> list[list[str]]:
    """Complete lines only: a line cut by the kill was never an acknowledgement."""
    text = log.read_text(encoding="utf-8")
    return [line.split() for line in text.split("\n")[:-1]]


def crash_round(
    url: str, directory: Path, round_: int, rng: random.Random, key: Path
) -> list[list[str]]:
    logs = [directory / f"acks-{round_}-{p}.txt" for p in range(PROCESSES)]
    children = []
    for p, log in enumerate(logs):
        with log.open("w") as out:
            args = [sys.executable, "-c", APPENDER, url, ORIGIN, f"r{round_}p{p}", str(key)]
            children.append(subprocess.Popen(args, stdout=out, stderr=subprocess.DEVNULL))
    deadline = time.monotonic() + 60
    while any(len(acknowledged(log)) < 20 for log in logs) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(rng.uniform(0, 0.2))
    for child in children:
        os.kill(child.pid, signal.SIGKILL)
    for child in children:
        child.wait(timeout=30)
    return [ack for log in logs for ack in acknowledged(log)]


@pytest.mark.slow
def test_kill_9_during_concurrent_appends_keeps_every_acknowledged_entry(
    store_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    seed = random.randrange(2**32)  # a different moment every run, named on failure
    rng = random.Random(seed)
    acks = []
    key = make_key(tmp_path)
    open_ledger(store_url, ORIGIN, key, create=True).close()
    for round_ in range(ROUNDS):
        acks += crash_round(store_url, tmp_path, round_, rng, key)
    ledger = open_ledger(store_url, ORIGIN, key)
    try:
        report = audit(ledger, parse_vkey(ledger.vkey()))
        assert len(acks) >= PROCESSES * 20 * ROUNDS, f"seed {seed}"
        assert report.size >= len(acks), f"seed {seed}"
        for index, proc, thread, n in acks:
            entry = json.loads(ledger.entry(int(index)))
            got = (entry["actor"], entry["thread"], entry["n"])
            assert got == (proc, int(thread), int(n)), f"seed {seed}, index {index}"
        assert len({int(ack[0]) for ack in acks}) == len(acks)
    finally:
        ledger.close()
