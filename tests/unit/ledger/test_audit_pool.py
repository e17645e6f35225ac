"""Verification in worker processes reaches the same verdict and evidence as in one process."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from custodiet.errors import TamperedError
from custodiet.ledger import audit_pool, tree
from custodiet.ledger.audit import audit
from custodiet.ledger.verify import parse_vkey
from custodiet.ledger.writer import Ledger, open_ledger
from tests.unit.ledger.conftest import ORIGIN, make_key

SIZE = 1500  # spans of 256 leaves with two jobs: five whole spans and a partial one


@pytest.fixture
def big(tmp_path: Path) -> Iterator[tuple[Ledger, Path]]:
    db = tmp_path / "ledger.db"
    ledger = open_ledger(f"sqlite:///{db}", ORIGIN, make_key(tmp_path), create=True)
    for first, end in ((0, 300), (300, 700), (700, 1000)):
        ledger.append_many([{"actor": "alice", "n": n} for n in range(first, end)])
        ledger.checkpoint()
    ledger.append_many([{"actor": "bob", "n": n} for n in range(1000, SIZE)])
    yield ledger, db
    ledger.close()


def tamper(db: Path, statement: str) -> None:
    with closing(sqlite3.connect(db)) as con, con:
        con.execute(statement)


def outcome(ledger: Ledger, jobs: int) -> tuple[str, str]:
    try:
        report = audit(ledger, parse_vkey(ledger.vkey()), jobs=jobs)
    except TamperedError as error:
        return error.code, str(error)
    return "verified", f"{report.size} {report.root.hex()} {report.checkpoints}"


def spans_match(ledger: Ledger) -> bool:
    size = ledger.size()
    return audit_pool.checked_spans(ledger.store.url, size, 2, set()) is not None


def test_two_jobs_verify_an_untouched_log_like_one(big: tuple[Ledger, Path]) -> None:
    ledger, _ = big
    assert spans_match(ledger)
    assert outcome(ledger, 2) == outcome(ledger, 1)
    assert outcome(ledger, 1)[0] == "verified"


def test_two_jobs_verify_a_log_on_every_store_like_one(ledger: Ledger) -> None:
    ledger.append_many([{"actor": "alice", "n": n} for n in range(100)])
    ledger.checkpoint()
    assert audit_pool.checked_spans(ledger.store.url, 100, 2, set()) is not None
    assert outcome(ledger, 2) == outcome(ledger, 1)
    assert outcome(ledger, 1)[0] == "verified"


IN_SPANS = {
    "modified entry": "UPDATE entries SET data = CAST(replace(data, 'bob', 'eve') AS BLOB)"
    " WHERE idx = 1400",
    "dropped entry": "DELETE FROM entries WHERE idx = 900",
    "leaf hash in a middle span": "UPDATE tiles SET hashes = zeroblob(512)"
    f" WHERE key = {tree.node_key(0, 40)}",
    "extra tile past the end": f"INSERT INTO tiles VALUES ({tree.node_key(1, 500)}, zeroblob(32))",
    "short rightmost tile": "UPDATE tiles SET hashes = substr(hashes, 1, 64)"
    f" WHERE key = {tree.node_key(0, SIZE // tree.TILE_WIDTH)}",
}
ABOVE_SPANS = {
    "node above the spans": "UPDATE tiles SET hashes = zeroblob(64)"
    f" WHERE key = {tree.node_key(2, 0)}",
}


@pytest.mark.parametrize("statement", IN_SPANS.values(), ids=IN_SPANS.keys())
def test_workers_notice_a_change_inside_their_spans(
    big: tuple[Ledger, Path], statement: str
) -> None:
    ledger, db = big
    tamper(db, statement)
    assert not spans_match(ledger)


@pytest.mark.parametrize(
    "statement", [*IN_SPANS.values(), *ABOVE_SPANS.values()], ids=[*IN_SPANS, *ABOVE_SPANS]
)
def test_two_jobs_name_the_same_first_bad_index_with_the_same_hashes(
    big: tuple[Ledger, Path], statement: str
) -> None:
    ledger, db = big
    tamper(db, statement)
    one, two = outcome(ledger, 1), outcome(ledger, 2)
    assert one[0].startswith("CUST11")
    assert two == one


def test_spans_cover_the_log_on_subtree_boundaries() -> None:
    keep = set(tree.keys_for([(0, 1000), (0, 1500)]))
    cut = audit_pool.spans("sqlite:///x", 1500, 8, keep)
    assert [(s.start, s.end) for s in cut] == [(n, min(n + 256, 1500)) for n in range(0, 1500, 256)]
    assert {key for s in cut for key in s.wanted} == {
        key for key in keep if tree.split_key(key)[0] < 8
    }


def test_too_few_leaves_for_every_job_are_checked_in_one_process() -> None:
    assert audit_pool.span_top(63, 2) == 0
    assert audit_pool.span_top(64, 2) == 4
    assert audit_pool.span_top(1 << 30, 2) == audit_pool.MAX_TOP
    assert audit_pool.checked_spans("sqlite:///nowhere", 63, 2, set()) is None
    assert audit_pool.checked_spans("sqlite:///nowhere", 1 << 20, 1, set()) is None


def test_a_store_workers_cannot_read_is_left_to_the_parent(tmp_path: Path) -> None:
    garbage = tmp_path / "not-a-ledger.db"
    garbage.write_bytes(b"not a database" * 100)
    assert audit_pool.checked_spans(f"sqlite:///{garbage}", 1 << 10, 2, set()) is None
