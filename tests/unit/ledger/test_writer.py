"""The writer on every store: appends, canonical leaves, proofs, checkpoints, failures."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
from pathlib import Path

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from custodiet.errors import InputError, SystemFailure, TamperedError
from custodiet.ledger import canonical, tree
from custodiet.ledger.store import BatchBuilder
from custodiet.ledger.verify import (
    leaf_hash,
    parse_vkey,
    tree_hash,
    verify_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from custodiet.ledger.writer import Ledger, canonical_entry, canonical_members, open_ledger
from tests.unit.ledger.conftest import ORIGIN, make_key

json_scalars = st.none() | st.booleans() | st.text() | st.integers(-(2**53) + 1, 2**53 - 1)
json_values = st.recursive(
    json_scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
entries = st.dictionaries(
    st.text().filter(lambda k: k not in ("index", "time")), json_values, max_size=6
)


# the shape most entries have: ASCII keys, scalar or list values (the C-encoder fast path)
plain_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=6)
plain_entries = st.dictionaries(
    st.text(st.characters(max_codepoint=127)).filter(lambda k: k not in ("index", "time")),
    plain_values,
    max_size=8,
)


@given(entries | plain_entries, st.integers(0, 2**40), st.text())
def test_canonical_entry_is_rfc8785_of_the_whole_entry(entry, index, time) -> None:
    expected = rfc8785.dumps({**entry, "index": index, "time": time})
    assert canonical_entry(canonical_members(entry), index, canonical.dumps(time)) == expected


@pytest.mark.parametrize(
    "entry",
    [{"x": float("nan")}, {"x": b"bytes"}, {"x": object()}, {1: "key"}, {"x": 2**60}],
    ids=["nan", "bytes", "object", "int-key", "huge-int"],
)
def test_rejects_entries_that_are_not_json(entry) -> None:
    with pytest.raises(InputError) as caught:
        canonical_members(entry)
    assert caught.value.code == "CUST220"


def test_rejects_entries_that_set_index_or_time() -> None:
    with pytest.raises(InputError) as caught:
        canonical_members({"index": 3, "action": "query"})
    assert caught.value.code == "CUST222"


def test_append_returns_consecutive_indexes_and_stores_canonical_json(ledger: Ledger) -> None:
    indexes = [ledger.append({"actor": "alice", "action": "query", "n": n}) for n in range(5)]
    assert indexes == [0, 1, 2, 3, 4]
    assert ledger.size() == 5
    stored = json.loads(ledger.entry(3))
    assert stored["index"] == 3 and stored["n"] == 3 and stored["time"].endswith("Z")
    assert ledger.entry(3) == rfc8785.dumps(stored)


def test_missing_entry_is_an_input_error(ledger: Ledger) -> None:
    ledger.append({"action": "query"})
    with pytest.raises(InputError) as caught:
        ledger.entry(1)
    assert caught.value.code == "CUST223"


def test_proofs_and_roots_match_a_tree_built_from_scratch(ledger: Ledger) -> None:
    for n in range(21):
        ledger.append({"action": "query", "n": n})
    leaves = [leaf_hash(data) for _, data in ledger.entries()]
    for size in range(1, 22):
        root = tree_hash(leaves[:size])
        assert ledger.root(size) == root
        for index in {0, size // 2, size - 1}:
            proof = ledger.inclusion_proof(index, size)
            assert (proof.leaf_hash, proof.root_hash) == (leaves[index], root)
            verify_inclusion(index, size, leaves[index], proof.proof, root)
        for old in {1, size // 2 or 1, size}:
            cons = ledger.consistency_proof(old, size)
            verify_consistency(old, size, cons.proof, cons.old_root, cons.new_root)
            assert cons.old_root == tree_hash(leaves[:old])


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda led: led.inclusion_proof(3, 3), "CUST225"),
        (lambda led: led.inclusion_proof(0, 4), "CUST224"),
        (lambda led: led.consistency_proof(0, 2), "CUST226"),
        (lambda led: led.consistency_proof(3, 2), "CUST226"),
        (lambda led: led.consistency_proof(1, 9), "CUST224"),
    ],
)
def test_proof_requests_outside_the_tree_are_input_errors(ledger: Ledger, call, code) -> None:
    for n in range(3):
        ledger.append({"n": n})
    with pytest.raises(InputError) as caught:
        call(ledger)
    assert caught.value.code == code


def test_checkpoint_is_signed_and_renewed_only_when_the_tree_grows(ledger: Ledger) -> None:
    key = parse_vkey(ledger.vkey())
    ledger.append({"n": 0})
    first = ledger.checkpoint()
    assert ledger.checkpoint() == first
    ledger.append({"n": 1})
    second = verify_checkpoint(ledger.checkpoint(), key)
    assert (second.origin, second.size, second.root) == (ORIGIN, 2, ledger.root(2))
    assert verify_checkpoint(first, key).size == 1


def test_empty_ledger_has_no_checkpoint_and_never_signs_one(ledger: Ledger) -> None:
    with pytest.raises(TamperedError) as caught:
        ledger.checkpoint()
    assert caught.value.code == "CUST126"
    assert ledger.store.latest_checkpoint() is None
    assert tree_hash([]) == tree.EMPTY_ROOT


def test_every_committed_batch_stores_the_checkpoint_covering_it(ledger: Ledger) -> None:
    key = parse_vkey(ledger.vkey())
    ledger.append({"n": 0})
    ledger.append_many([{"n": 1}, {"n": 2}])
    sizes = [size for size, _ in ledger.store.checkpoints()]
    assert sizes == [1, 3]
    for size, text in ledger.store.checkpoints():
        assert verify_checkpoint(text, key).root == ledger.root(size)


def test_concurrent_threads_get_distinct_consecutive_indexes(ledger: Ledger) -> None:
    got: list[int] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        for n in range(20):
            index = ledger.append({"worker": k, "n": n})
            with lock:
                got.append(index)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(got) == list(range(160))
    for index in got:
        assert json.loads(ledger.entry(index))["index"] == index
    leaves = [leaf_hash(data) for _, data in ledger.entries()]
    assert ledger.root(160) == tree_hash(leaves)


def test_two_writers_on_one_store_interleave_without_gaps(store_url: str, tmp_path: Path) -> None:
    key = make_key(tmp_path)
    first = open_ledger(store_url, ORIGIN, key, create=True)
    second = open_ledger(store_url, ORIGIN, key)
    try:
        indexes = [w.append({"n": n}) for n in range(6) for w in (first, second)]
        assert indexes == list(range(12))
        leaves = [leaf_hash(data) for _, data in first.entries()]
        assert second.root(12) == tree_hash(leaves)
    finally:
        first.close()
        second.close()


def test_appends_queued_while_another_process_commits_join_one_transaction(
    tmp_path: Path,
) -> None:
    db = tmp_path / "ledger.db"
    ledger = open_ledger(f"sqlite:///{db}", ORIGIN, make_key(tmp_path), create=True)
    commits: list[int] = []
    store_append = ledger.store.append

    def counting(build: BatchBuilder) -> None:
        store_append(lambda size, read, latest: commits.append(size) or build(size, read, latest))

    ledger.store.append = counting  # type: ignore[method-assign]
    other = os.open(f"{db}.lock", os.O_RDWR)
    fcntl.flock(other, fcntl.LOCK_EX)  # another process committing: the leader must wait
    threads = [threading.Thread(target=ledger.append, args=({"n": n},)) for n in range(8)]
    for thread in threads:
        thread.start()
    while len(ledger._queue) < len(threads):  # every append is queued behind the lock
        threading.Event().wait(0.001)
    fcntl.flock(other, fcntl.LOCK_UN)
    os.close(other)
    for thread in threads:
        thread.join()
    assert commits == [0]
    assert ledger.size() == 8
    ledger.close()


def test_append_that_cannot_be_recorded_raises_system_failure(tmp_path: Path) -> None:
    ledger = open_ledger(
        f"sqlite:///{tmp_path / 'ledger.db'}", ORIGIN, make_key(tmp_path), create=True
    )
    ledger.append({"n": 0})
    ledger.store.close()
    with pytest.raises(SystemFailure) as caught:
        ledger.append({"n": 1})
    assert caught.value.code == "CUST130"
    assert "sqlite3" not in caught.value.render()


def test_failed_commits_fail_every_waiter_of_their_batch_and_nobody_hangs(
    tmp_path: Path,
) -> None:
    ledger = open_ledger(
        f"sqlite:///{tmp_path / 'ledger.db'}", ORIGIN, make_key(tmp_path), create=True
    )
    store_append, calls = ledger.store.append, [0]

    def every_third_commit_fails(build: BatchBuilder) -> None:
        calls[0] += 1
        if calls[0] % 3 == 0:
            raise sqlite3.OperationalError("disk I/O error")
        store_append(build)

    ledger.store.append = every_third_commit_fails  # type: ignore[method-assign]
    recorded: list[tuple[int, int, int]] = []
    failed: list[SystemFailure] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        for n in range(20):
            try:
                index = ledger.append({"worker": k, "n": n})
            except SystemFailure as exc:
                with lock:
                    failed.append(exc)
            else:
                with lock:
                    recorded.append((index, k, n))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a waiter was never woken"
    assert failed and recorded
    assert len(failed) + len(recorded) == 32 * 20
    assert sorted(index for index, _, _ in recorded) == list(range(len(recorded)))
    assert ledger.size() == len(recorded)
    for index, k, n in recorded:
        stored = json.loads(ledger.entry(index))
        assert (stored["index"], stored["worker"], stored["n"]) == (index, k, n)
    assert all("disk I/O" not in exc.render() for exc in failed)
    ledger.close()


def test_unopenable_store_is_a_system_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SystemFailure) as caught:
        open_ledger(f"sqlite:///{blocker}/ledger.db", ORIGIN, create=True)
    assert caught.value.code == "CUST130"


def test_missing_store_is_never_created_on_open(tmp_path: Path) -> None:
    with pytest.raises(TamperedError) as caught:
        open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}", ORIGIN)
    assert caught.value.code == "CUST120" and "docs/ledger.md" in (caught.value.hint or "")
    assert not (tmp_path / "ledger.db").exists()


def test_missing_tree_tiles_fail_closed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    key = make_key(tmp_path)
    writer = open_ledger(url, ORIGIN, key, create=True)
    for n in range(3):
        writer.append({"n": n})
    writer.close()
    with sqlite3.connect(tmp_path / "ledger.db") as con:
        con.execute("DELETE FROM tiles")
    fresh = open_ledger(url, ORIGIN, key)
    try:
        with pytest.raises(TamperedError) as caught:
            fresh.append({"n": 3})
        assert caught.value.code == "CUST125"
        assert len(fresh.store.checkpoints()) == 3
        with pytest.raises(SystemFailure):
            fresh.inclusion_proof(0, 3)
        assert fresh.size() == 3
    finally:
        fresh.close()


def test_ledger_without_its_key_cannot_sign(tmp_path: Path) -> None:
    ledger = open_ledger(f"sqlite:///{tmp_path / 'l.db'}", ORIGIN, create=True)
    try:
        with pytest.raises(SystemFailure) as caught:
            ledger.append({"n": 0})
        assert caught.value.code == "CUST131"
        assert ledger.size() == 0
    finally:
        ledger.close()


def test_unknown_store_scheme_is_an_input_error() -> None:
    with pytest.raises(InputError) as caught:
        open_ledger("mysql://x", ORIGIN)
    assert caught.value.code == "CUST221"


@settings(max_examples=15, deadline=None)
@given(st.lists(entries, min_size=1, max_size=12))
def test_any_sequence_of_appends_verifies(tmp_path_factory, batch) -> None:
    from custodiet.ledger.audit import audit

    directory = tmp_path_factory.mktemp("prop")
    ledger = open_ledger(
        f"sqlite:///{directory / 'l.db'}", ORIGIN, make_key(directory), create=True
    )
    try:
        checkpoints = []
        for entry in batch:
            ledger.append(entry)
            checkpoints.append(ledger.checkpoint())
        key = parse_vkey(ledger.vkey())
        report = audit(ledger, key, checkpoints[0])
        assert report.size == len(batch)
        latest = verify_checkpoint(checkpoints[-1], key)
        for text in checkpoints:
            old = verify_checkpoint(text, key)
            proof = ledger.consistency_proof(old.size, latest.size)
            verify_consistency(old.size, latest.size, proof.proof, old.root, latest.root)
    finally:
        ledger.close()


def test_a_reserved_entry_lands_at_its_index_with_its_time_or_not_at_all(ledger: Ledger) -> None:
    """``reserve`` queues finished bytes for one index: recorded byte for byte there; queued
    for an index the ledger is not at (an earlier entry failed, or another writer appended),
    its whole batch fails with CUST138 and nothing is recorded."""
    ledger.append({"n": 0})
    time = "2026-11-28T12:00:00.000001Z"
    data, ticket = ledger.reserve({"n": 1}, 1, time)
    assert json.loads(data) == {"n": 1, "index": 1, "time": time}
    assert ledger.settle(ticket) == [1]
    assert ledger.entry(1) == data
    _, wrong = ledger.reserve({"n": 2}, 3, time)  # the ledger holds 2 entries
    with pytest.raises(SystemFailure) as caught:
        ledger.settle(wrong)
    assert caught.value.code == "CUST138"
    assert ledger.size() == 2
    assert ledger.append({"n": 2}) == 2  # the writer goes on
    key = parse_vkey(ledger.vkey())
    assert verify_checkpoint(ledger.checkpoint(), key).size == 3


def test_the_latest_checkpoint_reads_while_batches_land(ledger: Ledger) -> None:
    """``checkpoint()`` takes no lock of the writer: read between commits, it is always a
    verifying note covering every entry stored when it was read, and never shrinks."""
    key = parse_vkey(ledger.vkey())
    done = threading.Event()

    ledger.append({"n": 0})  # an empty log has no checkpoint yet

    def appender() -> None:
        for n in range(1, 150):
            ledger.append({"n": n})
        done.set()

    thread = threading.Thread(target=appender)
    thread.start()
    sizes = []
    try:
        while not done.is_set():
            sizes.append(verify_checkpoint(ledger.checkpoint(), key).size)
    finally:
        thread.join()
    assert sizes == sorted(sizes)
    assert verify_checkpoint(ledger.checkpoint(), key).size == 150
