"""`custodiet serve` killed with SIGKILL while 16 clients send signed queries, then restarted on
the same workspace: the ledger verifies and audits, every result a client received is an outcome
on the ledger (its intent carries the client's nonce, its digest is the result's), and every
intent is there: the ones the kill cut short are listed by `ledger audit` as unfinished."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from custodiet.client import Remote, perform
from custodiet.errors import CustodietError
from custodiet.gateway.release import result_sha256
from custodiet.identity import sign_request
from tests.conftest import run_cli
from tests.gateway_data import make_world
from tests.kit import private_key
from tests.processes import free_port, running

CLIENTS = 16
# integers and strings only: the decoded result hashes to the digest the server recorded
QUERIES = (
    "SELECT program, count(*) AS n FROM payments GROUP BY program ORDER BY program",
    "SELECT count(*) AS n FROM payments",
    "SELECT count(*) AS n FROM deaths",
    "SELECT payment_id FROM payments ORDER BY payment_id LIMIT 3",
)
RECEIVED_BEFORE_KILL = 48  # results the clients hold before the kill (bounded by KILL_AFTER)
KILL_AFTER = 12.0  # seconds of load at most before the kill


@contextmanager
def _serving(root: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`custodiet serve` on ``root`` in its own process, with room for 16 clients of one
    principal; stopped (if still alive) on exit."""
    port = free_port()
    limits = ("--port", str(port), "--max-in-flight", str(2 * CLIENTS), "--rate", "10000")
    with running(("serve", "--workspace", str(root), *limits), port) as proc:
        yield f"http://127.0.0.1:{port}", proc


class Load:
    """CLIENTS threads, each signing and sending queries as ``rev`` until stopped."""

    def __init__(self, url: str, agreement: str) -> None:
        self.url, self.agreement = url, agreement
        self.origin = httpx.get(f"{url}/v1/info", timeout=5).json()["origin"]
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.received: list[tuple[str, int, str]] = []  # (nonce, ledger index, result digest)
        self.sent: list[str] = []
        self.failures: list[str] = []  # codes: refused or unreachable once the server died
        self.threads = [threading.Thread(target=self._client, args=(i,)) for i in range(CLIENTS)]

    def _client(self, number: int) -> None:
        remote = Remote(self.url)
        try:
            sequence = 0
            while not self.stop.is_set():
                sql = QUERIES[(number + sequence) % len(QUERIES)]
                sequence += 1
                args = {"agreement": self.agreement, "sql": sql}
                signed = sign_request(private_key("rev"), "rev", self.origin, "query", args)
                nonce = str(signed.request["nonce"])
                with self.lock:
                    self.sent.append(nonce)
                try:
                    result = perform(remote, signed)
                except CustodietError as exc:
                    with self.lock:
                        self.failures.append(exc.code)
                    time.sleep(0.05)
                    continue
                digest = result_sha256(result.columns, result.rows)
                with self.lock:
                    self.received.append((nonce, result.ledger_index, digest))
        finally:
            remote.close()

    def count(self) -> int:
        with self.lock:
            return len(self.received)


def _entries(root: Path) -> list[dict[str, Any]]:
    from custodiet.workspace import Workspace

    ledger = Workspace(root).ledger()
    try:
        return [json.loads(data) for _, data in ledger.entries(0, ledger.size())]
    finally:
        ledger.close()


@pytest.mark.slow
def test_sigkill_under_16_clients_loses_no_result_and_no_intent(tmp_path: Path) -> None:
    world = make_world(tmp_path, people=30)
    root = world.ws.root
    for path in [root, *root.rglob("*")]:  # the server's alone (docs/deploy.md)
        path.chmod(path.stat().st_mode & 0o700)
    with _serving(root) as (url, proc):
        load = Load(url, world.agreement_id)
        for thread in load.threads:
            thread.start()
        try:
            until = time.monotonic() + KILL_AFTER
            while load.count() < RECEIVED_BEFORE_KILL and time.monotonic() < until:
                time.sleep(0.05)
            os.kill(proc.pid, signal.SIGKILL)  # mid-flight: 16 clients are still sending
            assert proc.wait(timeout=10) == -signal.SIGKILL
            time.sleep(0.5)  # the clients meet the dead server
        finally:
            load.stop.set()
            for thread in load.threads:
                thread.join(timeout=30)
    assert load.count() > 0, load.failures
    assert "CUST611" in load.failures  # the kill cut requests short

    with _serving(root) as (url, _):  # restarted on the same workspace
        after = Remote(url)
        try:
            args = {"agreement": world.agreement_id, "sql": QUERIES[1]}
            signed = sign_request(private_key("rev"), "rev", after.state.origin, "query", args)
            load.sent.append(str(signed.request["nonce"]))
            answered = perform(after, signed)
            assert answered.columns == ("n",) and answered.rows[0][0] > 0
        finally:
            after.close()

    verify = run_cli("ledger", "verify", "--workspace", str(root))
    assert verify.status == 0, verify.stderr
    audit = run_cli("ledger", "audit", "--workspace", str(root))
    assert audit.status == 0, audit.stderr

    entries = _entries(root)
    assert [e["index"] for e in entries] == list(range(len(entries)))
    intents = {e["request"]["nonce"]: e for e in entries if e["action"] == "intent"}
    for nonce, index, digest in load.received:
        outcome = entries[index]
        assert outcome["action"] == "query" and outcome["result_sha256"] == digest
        assert entries[outcome["intent"]]["request"]["nonce"] == nonce
        assert intents[nonce]["index"] == outcome["intent"]
    closed = {e["intent"] for e in entries if e["action"] in ("query", "refusal") and "intent" in e}
    unfinished = [e["index"] for e in intents.values() if e["index"] not in closed]
    listed = [
        int(line.split()[2])
        for line in audit.stdout.splitlines()
        if line.startswith("unfinished: entry ")
    ]
    assert listed == sorted(unfinished)
    assert set(intents) <= set(load.sent)  # every intent is a request a client sent
    assert len(load.received) + len(load.failures) <= len(load.sent)
    print(f"sent {len(load.sent)}, received {len(load.received)}, failed {len(load.failures)}, "
          f"intents {len(intents)}, unfinished {len(unfinished)}")  # fmt: skip
