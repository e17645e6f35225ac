"""Full verification of a stored log detects every change to entries, nodes and checkpoints."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from custodiet.errors import InputError, TamperedError
from custodiet.ledger import note, tree
from custodiet.ledger.audit import audit, log_key
from custodiet.ledger.verify import b64, leaf_hash, leaf_hashes, parse_vkey
from custodiet.ledger.writer import Ledger, open_ledger
from tests.unit.ledger.conftest import ORIGIN, make_key

SIZE = 11


@pytest.fixture
def filled(tmp_path: Path) -> Iterator[tuple[Ledger, Path]]:
    db = tmp_path / "ledger.db"
    ledger = open_ledger(f"sqlite:///{db}", ORIGIN, make_key(tmp_path), create=True)
    for n in range(SIZE):
        ledger.append({"actor": "alice", "action": "query", "n": n})
        if n in (4, SIZE - 1):
            ledger.checkpoint()
    yield ledger, db
    ledger.close()


def tamper(db: Path, *statements: str) -> None:
    with closing(sqlite3.connect(db)) as con, con:
        for statement in statements:
            con.execute(statement)


def resign(db: Path, key: Ed25519PrivateKey, size: int, root: bytes) -> None:
    """What a forger with a key does: store a checkpoint of its own making."""
    signed = note.sign(note.checkpoint_body(ORIGIN, size, root), ORIGIN, key)
    with closing(sqlite3.connect(db)) as con, con:
        con.execute("INSERT INTO checkpoints VALUES (?, ?)", (size, signed))


def verdict(ledger: Ledger, earlier: str | None = None) -> TamperedError:
    with pytest.raises(TamperedError) as caught:
        audit(ledger, parse_vkey(ledger.vkey()), earlier)
    return caught.value


def test_untouched_log_verifies(filled: tuple[Ledger, Path]) -> None:
    ledger, _ = filled
    report = audit(ledger, parse_vkey(ledger.vkey()))
    assert (report.size, report.checkpoints, report.root) == (SIZE, SIZE, ledger.root(SIZE))


def test_detects_modified_entry_naming_index_and_both_hashes(filled) -> None:
    ledger, db = filled
    original = ledger.entry(6)
    forged = original.replace(b'"n":6', b'"n":7')
    tamper(db, f"UPDATE entries SET data = x'{forged.hex()}' WHERE idx = 6")
    error = verdict(ledger)
    assert error.code == "CUST113"
    assert "ledger entry 6" in error.message
    assert f"expected {b64(leaf_hash(original))}" in error.message
    assert f"computed {b64(leaf_hash(forged))}" in error.message


def test_detects_dropped_entry(filled) -> None:
    ledger, db = filled
    tamper(db, "DELETE FROM entries WHERE idx = 3")
    error = verdict(ledger)
    assert error.code == "CUST111" and "ledger entry 3" in error.message


def test_detects_reordered_entries(filled) -> None:
    ledger, db = filled
    tamper(
        db,
        "UPDATE entries SET idx = -1 WHERE idx = 2",
        "UPDATE entries SET idx = 2 WHERE idx = 3",
        "UPDATE entries SET idx = 3 WHERE idx = -1",
    )
    error = verdict(ledger)
    assert error.code == "CUST112" and "ledger entry 2: records index 3" in error.message


def recompute_nodes(ledger: Ledger, db: Path) -> None:
    """What a careful forger does after editing entries: rebuild every leaf hash and node."""
    rebuild_tree(db)


def rebuild_tree(db: Path) -> None:
    with closing(sqlite3.connect(db)) as con, con:
        data = [row[0] for row in con.execute("SELECT data FROM entries ORDER BY idx")]
        con.execute("DELETE FROM tiles")
        tiles = tree.grow(0, {}, leaf_hashes(data))
        con.executemany("INSERT INTO tiles VALUES (?, ?)", tiles.items())


def test_detects_entry_rewritten_with_its_nodes_recomputed(filled) -> None:
    ledger, db = filled
    forged = ledger.entry(1).replace(b'"n":1', b'"n":9')
    tamper(db, f"UPDATE entries SET data = x'{forged.hex()}' WHERE idx = 1")
    recompute_nodes(ledger, db)
    error = verdict(ledger)
    assert error.code == "CUST116" and "root at size 2" in error.message


def test_detects_duplicated_entry(filled) -> None:
    ledger, db = filled
    copy = ledger.entry(4).replace(b'"index":4', b'"index":5')
    tamper(db, f"UPDATE entries SET data = x'{copy.hex()}' WHERE idx = 5")
    recompute_nodes(ledger, db)
    assert verdict(ledger).code == "CUST116"


def test_detects_truncated_tail_against_stored_checkpoint(filled) -> None:
    ledger, db = filled
    tamper(db, f"DELETE FROM entries WHERE idx >= {SIZE - 2}")
    error = verdict(ledger)
    assert error.code == "CUST115" and f"size {SIZE}" in error.message


def test_detects_truncation_and_rollback_against_a_kept_checkpoint(filled) -> None:
    ledger, db = filled
    kept = ledger.checkpoint()
    tamper(
        db,
        f"DELETE FROM entries WHERE idx >= {SIZE - 2}",
        "DELETE FROM checkpoints",
    )
    rebuild_tree(db)
    assert audit(ledger, parse_vkey(ledger.vkey())).size == SIZE - 2
    assert verdict(ledger, kept).code == "CUST115"


def test_detects_fork_against_a_kept_checkpoint(filled) -> None:
    ledger, db = filled
    kept = ledger.checkpoint()
    forged = ledger.entry(SIZE - 1).replace(b'"alice"', b'"mallory"')
    tamper(db, f"UPDATE entries SET data = x'{forged.hex()}' WHERE idx = {SIZE - 1}")
    tamper(db, "DELETE FROM checkpoints")
    recompute_nodes(ledger, db)
    resign(db, ledger._signing_key(), SIZE, ledger.root(SIZE))
    error = verdict(ledger, kept)
    assert error.code == "CUST116" and f"root at size {SIZE}" in error.message


def test_detects_checkpoint_signed_by_another_key(filled, tmp_path: Path) -> None:
    ledger, db = filled
    impostor = note.load_private_key(make_key(tmp_path, "other.ed25519"))
    tamper(db, "DELETE FROM checkpoints")
    resign(db, impostor, SIZE, ledger.root(SIZE))
    error = verdict(ledger)
    assert error.code == "CUST114" and "lacks a valid signature" in error.message


def test_rejects_a_bad_vkey_as_input() -> None:
    with pytest.raises(InputError) as caught:
        log_key("not-a-key")
    assert caught.value.code == "CUST228"


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(["entries.data", "tiles.hashes"]),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
)
def test_flipping_any_byte_of_any_stored_row_is_detected(tmp_path_factory, column, row, offset):
    directory = tmp_path_factory.mktemp("flip")
    db = directory / "ledger.db"
    ledger = open_ledger(f"sqlite:///{db}", ORIGIN, make_key(directory), create=True)
    try:
        for n in range(7):
            ledger.append({"actor": "bob", "n": n})
        ledger.checkpoint()
        table, name = column.split(".")
        pk = "idx" if table == "entries" else "key"
        with closing(sqlite3.connect(db)) as con, con:
            rows = con.execute(f"SELECT {pk}, {name} FROM {table} ORDER BY 1").fetchall()
            rowid, value = rows[row % len(rows)]
            flipped = bytearray(value)
            flipped[offset % len(flipped)] ^= 0x01
            con.execute(f"UPDATE {table} SET {name} = ? WHERE {pk} = ?", (bytes(flipped), rowid))
        with pytest.raises(TamperedError):
            audit(ledger, parse_vkey(ledger.vkey()))
    finally:
        ledger.close()


@pytest.fixture
def wide(tmp_path: Path) -> Iterator[tuple[Ledger, Path]]:
    """A log spanning two tile levels (40 entries: level-0 tiles 0..2, level-4 tile 0)."""
    db = tmp_path / "wide.db"
    ledger = open_ledger(f"sqlite:///{db}", ORIGIN, make_key(tmp_path), create=True)
    ledger.append_many([{"n": n} for n in range(40)])
    yield ledger, db
    ledger.close()


def test_detects_a_wrong_hash_in_an_upper_tile_naming_its_first_leaf(wide) -> None:
    ledger, db = wide
    with closing(sqlite3.connect(db)) as con, con:
        (blob,) = con.execute("SELECT hashes FROM tiles WHERE key = ?", (1 << 40,)).fetchone()
        forged = blob[:32] + bytes([blob[32] ^ 1]) + blob[33:]
        con.execute("UPDATE tiles SET hashes = ? WHERE key = ?", (forged, 1 << 40))
    error = verdict(ledger)
    assert error.code == "CUST113" and "ledger entry 16: stored node at level 4" in error.message
    assert f"expected {b64(forged[32:64])}" in error.message


@pytest.mark.parametrize(
    ("statement", "words"),
    [
        ("DELETE FROM tiles WHERE key = 1", "ledger entry 16: a stored node at level 0 is missing"),
        ("DELETE FROM tiles WHERE key = 2", "ledger entry 32: a stored node at level 0 is missing"),
        ("INSERT INTO tiles VALUES (9, x'00')", "ledger entry 144: unexpected stored node"),
    ],
    ids=["middle-tile", "last-tile", "extra-tile"],
)
def test_detects_missing_and_extra_tiles(wide, statement: str, words: str) -> None:
    ledger, db = wide
    tamper(db, statement)
    error = verdict(ledger)
    assert error.code == "CUST113" and words in error.message
