"""The embedded ledger store: one SQLite file in WAL mode with synchronous=FULL.

Writers across processes queue on an advisory file lock (``PATH.lock``; the kernel wakes a
waiter at once, where SQLite's own busy handler polls with sleeps and starves processes), then
take ``BEGIN IMMEDIATE``; a commit returns only once the WAL is fsynced. Readers use their own
connection and see committed rows only.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, closing, contextmanager
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any

from custodiet.ledger.store import (
    Batch,
    BatchBuilder,
    CheckpointReader,
    TileReader,
    engine_errors,
    store_missing,
)
from custodiet.ledger.tree import KEY_SHIFT

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (idx INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS tiles (key INTEGER PRIMARY KEY, hashes BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (size INTEGER PRIMARY KEY, note TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cosignatures (
    size INTEGER NOT NULL, witness TEXT NOT NULL, line TEXT NOT NULL,
    PRIMARY KEY (size, witness)
);
"""
TABLES = ("checkpoints", "cosignatures", "entries", "tiles")
BUSY_TIMEOUT_MS = 60_000


def sqlite_errors(action: str) -> AbstractContextManager[None]:
    return engine_errors("SQLite", (sqlite3.Error, OSError), action, "CUST130")


ROWS_PER_STATEMENT = 400


def _insert(con: sqlite3.Connection, insert: str, rows: Sequence[tuple[int, bytes]]) -> None:
    """Pairs inserted with one multi-row statement per ROWS_PER_STATEMENT rows: each statement
    step releases the GIL, and with many appender threads each release costs a thread switch."""
    for at in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[at : at + ROWS_PER_STATEMENT]
        values = ",".join(["(?,?)"] * len(chunk))
        con.execute(f"{insert} VALUES {values}", list(chain.from_iterable(chunk)))


class SqliteStore:
    def __init__(self, path: str, *, create: bool = False) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        self._read_lock = threading.Lock()
        if not create and not Path(path).is_file():
            raise store_missing(f"file {path} is missing")
        with sqlite_errors("open the ledger"):
            self._write = self._connect(create)
            try:
                if create:
                    self._write.executescript(SCHEMA)
                self._check_tables()
                self._read = self._connect()
                self._lock_fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            except BaseException:
                self._write.close()
                raise

    def _check_tables(self) -> None:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        names = {str(row[0]) for row in self._write.execute(sql)}
        if not names.issuperset(TABLES):
            raise store_missing(f"file {self.path} holds no ledger tables")

    def _connect(self, create: bool = False) -> sqlite3.Connection:
        """A connection; without ``create`` it never makes the file (``mode=rw``)."""
        target = self.path if create else f"{Path(self.path).as_uri()}?mode=rw"
        con = sqlite3.connect(target, isolation_level=None, check_same_thread=False, uri=not create)
        con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = FULL")
        return con

    def append(self, build: BatchBuilder) -> None:
        with sqlite_errors("append to the ledger"), self._process_lock():
            con = self._write
            con.execute("BEGIN IMMEDIATE")
            try:
                size = int(
                    con.execute("SELECT coalesce(max(idx) + 1, 0) FROM entries").fetchone()[0]
                )
                batch: Batch = build(size, self._tile_reader(con), self._latest_reader(con))
                _insert(con, "INSERT INTO entries", batch.entries)
                _insert(con, "INSERT OR REPLACE INTO tiles", batch.tiles)
                if batch.checkpoint is not None:
                    sql = "INSERT INTO checkpoints (size, note) VALUES (?, ?)"
                    con.execute(sql, batch.checkpoint)
                con.execute("COMMIT")
            finally:
                if con.in_transaction:
                    con.execute("ROLLBACK")

    @contextmanager
    def _process_lock(self) -> Iterator[None]:
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    @staticmethod
    def _tile_reader(con: sqlite3.Connection) -> TileReader:
        def read(keys: Sequence[int]) -> dict[int, bytes]:
            if not keys:
                return {}
            marks = ",".join("?" * len(keys))
            sql = f"SELECT key, CAST(hashes AS BLOB) FROM tiles WHERE key IN ({marks})"
            return dict(con.execute(sql, keys).fetchall())

        return read

    @staticmethod
    def _latest_reader(con: sqlite3.Connection) -> CheckpointReader:
        def read() -> tuple[int, str] | None:
            sql = "SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1"
            row = con.execute(sql).fetchone()
            return None if row is None else (int(row[0]), str(row[1]))

        return read

    def _query_one(
        self, action: str, sql: str, params: Sequence[object] = ()
    ) -> list[tuple[object, ...]]:
        with sqlite_errors(action), self._read_lock:
            return list(self._read.execute(sql, params))

    def size(self) -> int:
        rows = self._query_one(
            "read the ledger size", "SELECT coalesce(max(idx) + 1, 0) FROM entries"
        )
        return int(str(rows[0][0]))

    def tiles(self, keys: Sequence[int]) -> dict[int, bytes]:
        with sqlite_errors("read tree tiles"), self._read_lock:
            return self._tile_reader(self._read)(keys)

    def _scan(self, action: str, sql: str, params: Sequence[int]) -> Iterator[tuple[int, bytes]]:
        with sqlite_errors(action), closing(self._connect()) as con:
            yield from con.execute(sql, params)

    def entries(self, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        sql = "SELECT idx, CAST(data AS BLOB) FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx"
        return self._scan("read entries", sql, (start, end))

    def _all(self, action: str, sql: str, params: Sequence[int]) -> list[Any]:
        """Every row at once: fetchall iterates in C, several times faster than a generator."""
        with sqlite_errors(action), closing(self._connect()) as con:
            return con.execute(sql, params).fetchall()

    def entry_data(self, start: int, end: int) -> list[bytes]:
        sql = "SELECT CAST(data AS BLOB) FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx"
        return list(map(itemgetter(0), self._all("read entries", sql, (start, end))))

    def tile_level(
        self, level: int, first: int = 0, end: int = 1 << KEY_SHIFT
    ) -> list[tuple[int, bytes]]:
        low = level << KEY_SHIFT
        sql = (
            "SELECT key - ?, CAST(hashes AS BLOB) FROM tiles"
            " WHERE key >= ? AND key < ? ORDER BY key"
        )
        return self._all("read tree tiles", sql, (low, low + first, low + end))

    def checkpoints(self) -> list[tuple[int, str]]:
        rows = self._query_one(
            "read checkpoints", "SELECT size, note FROM checkpoints ORDER BY size"
        )
        return [(int(str(size)), str(note)) for size, note in rows]

    def latest_checkpoint(self) -> tuple[int, str] | None:
        with sqlite_errors("read checkpoints"), self._read_lock:
            return self._latest_reader(self._read)()

    def _write_one(self, action: str, sql: str, params: Sequence[object]) -> None:
        with sqlite_errors(action), self._read_lock:
            self._read.execute(sql, params)

    def cosignatures(self, size: int) -> list[str]:
        sql = "SELECT line FROM cosignatures WHERE size = ? ORDER BY witness"
        return [str(row[0]) for row in self._query_one("read cosignatures", sql, (size,))]

    def put_cosignature(self, size: int, witness: str, line: str) -> None:
        sql = "INSERT OR REPLACE INTO cosignatures (size, witness, line) VALUES (?, ?, ?)"
        self._write_one("store a cosignature", sql, (size, witness, line))

    def close(self) -> None:
        with sqlite_errors("close the ledger"):
            self._write.close()
            self._read.close()
        os.close(self._lock_fd)
