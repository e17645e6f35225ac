"""The small interface every ledger store implements (SQLite embedded, PostgreSQL shared).

A store keeps three things: entries (index -> canonical JSON bytes), tiles of tree hashes
(``tree.node_key(tile level, tile index)`` -> up to 16 concatenated 32-byte hashes; see
``tree``) and signed checkpoints with their witness cosignatures.
It never interprets entries; the writer does the hashing. Engine errors become
``SystemFailure`` inside the store, so nothing above it sees sqlite3 or psycopg.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from custodiet.errors import InputError, SystemFailure
from custodiet.ledger.tree import KEY_SHIFT


@dataclass(frozen=True)
class Batch:
    """Rows one durable transaction writes: new entries as (index, data), and tiles as (key,
    blob), each replacing any stored tile of that key."""

    entries: Sequence[tuple[int, bytes]]
    tiles: Sequence[tuple[int, bytes]]


TileReader = Callable[[Sequence[int]], dict[int, bytes]]
BatchBuilder = Callable[[int, TileReader], Batch]


class LedgerStore(Protocol):
    url: str
    """What ``open_store`` opens this store from (another process reopens it so)."""

    def append(self, build: BatchBuilder) -> None:
        """Under a cross-process lock, in one transaction: read the size n, write ``build(n,
        read_tiles)`` and commit durably. Raises SystemFailure if it cannot."""

    def size(self) -> int:
        """One past the highest stored index."""

    def entries(self, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        """Stored (index, data) with start <= index < end, in index order."""

    def entry_data(self, start: int, end: int) -> Sequence[bytes]:
        """The data of the stored entries start <= index < end, in index order, at once."""

    def tiles(self, keys: Sequence[int]) -> dict[int, bytes]:
        """Stored tiles by key (missing keys are left out)."""

    def tile_level(
        self, level: int, first: int = 0, end: int = 1 << KEY_SHIFT
    ) -> Sequence[tuple[int, bytes]]:
        """The stored tiles of one tile level with first <= tile index < end, as (tile index,
        blob), in order."""

    def checkpoints(self) -> list[tuple[int, str]]:
        """Every stored (size, signed note without cosignatures), by size."""

    def put_checkpoint(self, size: int, note: str) -> None:
        """Store a signed note unless one for this size is already stored."""

    def cosignatures(self, size: int) -> list[str]: ...

    def put_cosignature(self, size: int, witness: str, line: str) -> None: ...

    def close(self) -> None: ...


def open_store(url: str) -> LedgerStore:
    """``sqlite:///abs/path.db`` or ``postgresql://...`` (optionally ``?schema=NAME``)."""
    if url.startswith("sqlite:///"):
        from custodiet.ledger.store_sqlite import SqliteStore

        return SqliteStore(url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        from custodiet.ledger.store_postgres import PostgresStore

        store: LedgerStore = PostgresStore(url)
        return store
    raise InputError(
        "ledger store URL must start with sqlite:/// or postgresql://",
        hint="fix ledger_store in workspace.json or the --ledger-store option",
        code="CUST221",
    )


@contextmanager
def engine_errors(
    engine: str, errors: type[Exception] | tuple[type[Exception], ...], action: str, code: str
) -> Iterator[None]:
    """The one boundary where an engine's errors become ours: no engine text reaches a user."""
    try:
        yield
    except errors as exc:
        raise SystemFailure(
            f"ledger store ({engine}): cannot {action} ({type(exc).__name__})",
            hint="check that the ledger store is reachable and writable, and the disk not full",
            code=code,
        ) from exc
