"""Concurrent requests share one durable commit; an entry that cannot be recorded releases
nothing, and neither does any entry checked after it; another process still gets its turn.

The runtime checks an access entry under its lock, queues it at the next index and waits for
durability outside the lock (``runtime``): these tests hold or break the store's transaction
to see that (1) the lock is free while an entry waits, so other requests join its commit, (2) a
failed commit fails every entry checked after it (CUST138) and the state is replayed, and (3) a
CLI command on the same workspace commits while the server keeps entries in flight.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from custodiet.errors import SystemFailure
from custodiet.gateway.service import QueryResult, run_query
from custodiet.ledger.replay import audit_entries
from custodiet.ledger.store import Batch, BatchBuilder
from custodiet.ledger.writer import Ledger
from custodiet.runtime import Runtime, opened
from tests.conftest import run_cli
from tests.gateway_data import World, make_world
from tests.kit import Kit

KIT = Kit()
SQL = "SELECT program, count(*) AS n FROM payments GROUP BY program"
PATIENCE = 60.0  # seconds a gate waits for what it expects before giving up (then tests fail)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("group"), people=60)


def _until(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


class GatedStore:
    """The ledger's store; ``hook(build)`` may replace the builder of the next append."""

    def __init__(self, ledger: Ledger) -> None:
        self.inner = ledger.store
        self.hook: Callable[[BatchBuilder], BatchBuilder] | None = None
        ledger.store = self  # type: ignore[assignment]

    def append(self, build: BatchBuilder) -> None:
        hook, self.hook = self.hook, None
        self.inner.append(hook(build) if hook else build)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _queued(ledger: Ledger) -> int:
    return len(ledger._queue)  # the writer's queue: entries waiting for the next commit


def _entries(rt: Runtime) -> list[dict[str, Any]]:
    return [json.loads(data) for _, data in rt.ledger.entries()]


def _run_all(rt: Runtime, requests: list[Any]) -> list[QueryResult | BaseException]:
    results: list[QueryResult | BaseException] = [RuntimeError("not run")] * len(requests)

    def one(n: int) -> None:
        try:
            results[n] = run_query(rt, requests[n])
        except BaseException as exc:  # the test inspects it
            results[n] = exc

    threads = [threading.Thread(target=one, args=(n,)) for n in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _query(rt: Runtime, world: World) -> Any:
    return KIT.sign(rt, "rev", "query", {"agreement": world.agreement_id, "sql": SQL})


def test_concurrent_queries_share_one_durable_commit(world: World) -> None:
    """The first intent's commit is held until every other request has queued its intent:
    possible only if the write lock is free while an entry waits for durability."""
    n = 6
    with opened(world.ws) as rt:
        store = GatedStore(rt.ledger)
        before = rt.ledger.size()

        def hold(build: BatchBuilder) -> BatchBuilder:
            _until(lambda: _queued(rt.ledger) >= n)  # ours and the n - 1 others
            return build

        store.hook = hold
        requests = [_query(rt, world) for _ in range(n)]
        results = _run_all(rt, requests)
        assert all(isinstance(r, QueryResult) and r.rows for r in results), results
        entries = _entries(rt)
        sizes = [size for size, _ in rt.ledger.store.checkpoints() if size > before]
    first_batch = entries[before : sizes[0]]
    assert [e["action"] for e in first_batch] == ["intent"] * n
    assert len(sizes) < 2 * n  # 2n entries in fewer commits than entries
    nonces = {e["request"]["nonce"]: e["index"] for e in first_batch}
    for signed, result in zip(requests, results, strict=True):
        assert isinstance(result, QueryResult)
        outcome = entries[result.ledger_index]
        assert outcome["action"] == "query"
        assert outcome["intent"] == nonces[signed.request["nonce"]]
    _, audit = audit_entries(entries)
    assert audit.violation is None and not audit.unfinished


def test_a_commit_that_fails_fails_every_entry_checked_after_it(world: World) -> None:
    """A's intent is checked at index n and B's at n + 1 while A's commit is in flight; A's
    commit fails: A gets no result, and B's intent, which would land at n, is refused by the
    writer (CUST138) instead of being recorded where it was not checked."""
    with opened(world.ws) as rt:
        store = GatedStore(rt.ledger)
        building = threading.Event()

        def fail(build: BatchBuilder) -> BatchBuilder:
            def failing(*args: Any) -> Batch:
                build(*args)  # the batch is taken: A's intent alone
                building.set()
                _until(lambda: _queued(rt.ledger) >= 1)  # B's intent, at n + 1
                raise OSError("the disk went away")

            return failing

        store.hook = fail
        first, second = _query(rt, world), _query(rt, world)
        size = rt.ledger.size()
        results: list[Any] = []
        a = threading.Thread(target=lambda: results.extend(_run_all(rt, [first])))
        a.start()
        assert building.wait(PATIENCE)
        (b,) = _run_all(rt, [second])
        a.join()
        (a_result,) = results
        assert isinstance(a_result, SystemFailure)
        assert isinstance(b, SystemFailure) and b.code == "CUST138"
        assert rt.ledger.size() == size  # nothing of either
        again = run_query(rt, first)  # never recorded, so not a replay: the state was replayed
        assert again.rows
        entries = _entries(rt)
    assert entries[size]["action"] == "intent"
    assert entries[size]["request"]["nonce"] == first.request["nonce"]
    assert second.request["nonce"] not in {e.get("request", {}).get("nonce") for e in entries}
    _, audit = audit_entries(entries)
    assert audit.violation is None and not audit.unfinished


def test_a_cli_command_commits_while_the_server_keeps_entries_in_flight(
    world: World, tmp_path: Path
) -> None:
    """Four threads keep queries in flight on one runtime (a server) until a `custodiet query`
    in another process has committed on the same workspace: it gets its turn, and the ledger
    is one consecutive, valid history."""
    done = threading.Event()
    served: list[int] = []
    failures: list[BaseException] = []
    with opened(world.ws) as rt:

        def busy() -> None:
            while not done.is_set():
                try:
                    served.append(run_query(rt, _query(rt, world)).ledger_index)
                except BaseException as exc:  # the test inspects it
                    failures.append(exc)
                    return

        threads = [threading.Thread(target=busy) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            assert _until(lambda: len(served) >= 8)
            ws, agreement = str(world.ws.root), world.agreement_id
            cli = run_cli("query", "--workspace", ws, "--agreement", agreement,
                          *world.kit.as_("rev"), "--format", "json", SQL)  # fmt: skip
            assert _until(lambda: len(served) >= 16)  # the server went on after it
        finally:
            done.set()
            for thread in threads:
                thread.join()
        assert cli.status == 0, cli.stderr
        assert not failures, failures
        entries = _entries(rt)
    cli_index = json.loads(cli.stdout)["ledger_index"]
    assert entries[cli_index]["action"] == "query"
    assert [e["index"] for e in entries] == list(range(len(entries)))
    _, audit = audit_entries(entries)
    assert audit.violation is None and not audit.unfinished
