"""The small interface every ledger store implements (SQLite embedded, PostgreSQL shared).

A store keeps three things: entries (index -> canonical JSON bytes), tiles of tree hashes
(``tree.node_key(tile level, tile index)`` -> up to 16 concatenated 32-byte hashes; see
``tree``) and signed checkpoints with their witness cosignatures.
It never interprets entries; the writer does the hashing. Engine errors become
``SystemFailure`` inside the store, so nothing above it sees sqlite3 or psycopg.

Only ``custodiet init`` creates a store (``open_store(url, create=True)``); opening one whose
file or tables are gone is a fatal ``TamperedError`` (CUST120), never a new, empty log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from custodiet.errors import InputError, SystemFailure, TamperedError
from custodiet.ledger.tree import KEY_SHIFT

RESTORE_HINT = (
    "restore the ledger store and DIR/log.json from a backup taken together, or run"
    " `custodiet ledger verify` for details; see docs/ledger.md, 'Restoring from a backup'"
)


@dataclass(frozen=True)
class Batch:
    """Rows one durable transaction writes: new entries as (index, data), tiles as (key, blob),
    each replacing any stored tile of that key, and the checkpoint (size, signed note) that
    covers them."""

    entries: Sequence[tuple[int, bytes]]
    tiles: Sequence[tuple[int, bytes]]
    checkpoint: tuple[int, str] | None = None


TileReader = Callable[[Sequence[int]], dict[int, bytes]]
CheckpointReader = Callable[[], tuple[int, str] | None]
BatchBuilder = Callable[[int, TileReader, CheckpointReader], Batch]


def store_missing(what: str) -> TamperedError:
    """The store, or its tables, are gone: fatal for every command (only init creates one)."""
    return TamperedError(f"ledger store {what}", hint=RESTORE_HINT, code="CUST120")


class LedgerStore(Protocol):
    url: str
    """What ``open_store`` opens this store from (another process reopens it so)."""

    def append(self, build: BatchBuilder) -> None:
        """Under a cross-process lock, in one transaction: read the size n, write ``build(n,
        read_tiles, read_latest_checkpoint)`` and commit durably. Raises SystemFailure if it
        cannot, and whatever ``build`` raises (then nothing is written)."""

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

    def latest_checkpoint(self) -> tuple[int, str] | None:
        """The stored (size, signed note) of the largest size, or None if there is none."""

    def cosignatures(self, size: int) -> list[str]: ...

    def put_cosignature(self, size: int, witness: str, line: str) -> None: ...

    def close(self) -> None: ...


def open_store(url: str, *, create: bool = False) -> LedgerStore:
    """``sqlite:///abs/path.db`` or ``postgresql://...`` (optionally ``?schema=NAME``). With
    ``create`` the file, schema and tables are made if missing; without, their absence is
    CUST120."""
    if url.startswith("sqlite:///"):
        from custodiet.ledger.store_sqlite import SqliteStore

        return SqliteStore(url.removeprefix("sqlite:///"), create=create)
    if url.startswith(("postgresql://", "postgres://")):
        from custodiet.ledger.store_postgres import PostgresStore

        store: LedgerStore = PostgresStore(url, create=create)
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
            hint="check that the ledger store is reachable and writable, and the disk not full;"
            " if it was damaged, see docs/ledger.md, 'Restoring from a backup'",
            code=code,
        ) from exc
