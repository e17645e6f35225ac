"""The shared ledger store on PostgreSQL, for a multi-user deployment.

``postgresql://user@host:port/db?schema=NAME``: the tables live in schema NAME (default
``custodiet_ledger``). Writers serialize on a self-conflicting table lock taken inside the
append transaction; a commit returns once PostgreSQL has made it durable.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from custodiet.ledger.store import (
    BatchBuilder,
    CheckpointReader,
    TileReader,
    engine_errors,
    store_missing,
)
from custodiet.ledger.tree import KEY_SHIFT

DEFAULT_SCHEMA = "custodiet_ledger"
SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (idx BIGINT PRIMARY KEY, data BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS tiles (key BIGINT PRIMARY KEY, hashes BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (size BIGINT PRIMARY KEY, note TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cosignatures (
    size BIGINT NOT NULL, witness TEXT NOT NULL, line TEXT NOT NULL,
    PRIMARY KEY (size, witness)
);
"""
TABLES = ("checkpoints", "cosignatures", "entries", "tiles")
LATEST_SQL = "SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1"
SIZE_SQL = "SELECT coalesce(max(idx) + 1, 0) FROM entries"
PAGE = 10_000


def postgres_errors(action: str) -> AbstractContextManager[None]:
    return engine_errors("PostgreSQL", psycopg.Error, action, "CUST135")


def split_schema(url: str) -> tuple[str, str]:
    """The connection URL without our ``schema`` parameter, and the schema it names."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    schema = next((value for key, value in query if key == "schema"), DEFAULT_SCHEMA)
    rest = urlencode([(key, value) for key, value in query if key != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


class PostgresStore:
    def __init__(self, url: str, *, create: bool = False) -> None:
        self.url = url
        self._url, self.schema = split_schema(url)
        self._lock = threading.Lock()
        with postgres_errors("open the ledger"):
            self._write = self._connect()
            try:
                if create:
                    self._create()
                self._check_tables()
                self._read = self._connect()
            except BaseException:
                self._write.close()
                raise

    def _create(self) -> None:
        with self._write.transaction():
            self._write.execute("SELECT pg_advisory_xact_lock(hashtext('custodiet-ledger'))")
            ident = sql.Identifier(self.schema)
            self._write.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
            self._write.execute(sql.SQL("SET search_path TO {}").format(ident))
            for statement in SCHEMA.split(";")[:-1]:
                self._write.execute(statement.encode())

    def _check_tables(self) -> None:
        query = (
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
            " ORDER BY table_name"
        )
        names = {str(row[0]) for row in self._write.execute(query.encode(), (self.schema,))}
        if not names.issuperset(TABLES):
            raise store_missing(f"schema {self.schema} is missing or holds no ledger tables")

    def _connect(self) -> psycopg.Connection[Any]:
        con = psycopg.connect(self._url, autocommit=True)
        con.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        return con

    def append(self, build: BatchBuilder) -> None:
        with postgres_errors("append to the ledger"), self._write.transaction():
            cur = self._write.cursor()
            cur.execute("LOCK TABLE entries IN SHARE ROW EXCLUSIVE MODE")
            row = cur.execute(SIZE_SQL).fetchone()
            reads = self._tile_reader(self._write), self._latest_reader(self._write)
            batch = build(int(row[0]) if row else 0, *reads)
            cur.executemany("INSERT INTO entries VALUES (%s, %s)", batch.entries)
            cur.executemany(
                "INSERT INTO tiles VALUES (%s, %s)"
                " ON CONFLICT (key) DO UPDATE SET hashes = EXCLUDED.hashes",
                batch.tiles,
            )
            if batch.checkpoint is not None:
                cur.execute("INSERT INTO checkpoints VALUES (%s, %s)", batch.checkpoint)

    @staticmethod
    def _tile_reader(con: psycopg.Connection[Any]) -> TileReader:
        def read(keys: Sequence[int]) -> dict[int, bytes]:
            rows = con.execute("SELECT key, hashes FROM tiles WHERE key = ANY(%s)", (list(keys),))
            return {int(k): bytes(h) for k, h in rows}

        return read

    @staticmethod
    def _latest_reader(con: psycopg.Connection[Any]) -> CheckpointReader:
        def read() -> tuple[int, str] | None:
            row = con.execute(LATEST_SQL.encode()).fetchone()
            return None if row is None else (int(row[0]), str(row[1]))

        return read

    def latest_checkpoint(self) -> tuple[int, str] | None:
        with postgres_errors("read checkpoints"), self._lock:
            return self._latest_reader(self._read)()

    def _query(self, action: str, query: str, params: Sequence[object] = ()) -> list[Any]:
        with postgres_errors(action), self._lock:
            return self._read.execute(query.encode(), params).fetchall()

    def size(self) -> int:
        return int(self._query("read the ledger size", SIZE_SQL)[0][0])

    def tiles(self, keys: Sequence[int]) -> dict[int, bytes]:
        with postgres_errors("read tree tiles"), self._lock:
            return self._tile_reader(self._read)(keys)

    def _pages(self, action: str, query: str, start: int, end: int) -> Iterator[Any]:
        while start < end:
            rows = self._query(action, query, (start, end, PAGE))
            if not rows:
                return
            yield from rows
            start = int(rows[-1][0]) + 1

    def entries(self, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        query = "SELECT idx, data FROM entries WHERE idx >= %s AND idx < %s ORDER BY idx LIMIT %s"
        return self._pages("read entries", query, start, end)

    def entry_data(self, start: int, end: int) -> list[bytes]:
        query = "SELECT idx, data FROM entries WHERE idx >= %s AND idx < %s ORDER BY idx LIMIT %s"
        return [bytes(data) for _, data in self._pages("read entries", query, start, end)]

    def tile_level(
        self, level: int, first: int = 0, end: int = 1 << KEY_SHIFT
    ) -> list[tuple[int, bytes]]:
        low = level << KEY_SHIFT
        query = "SELECT key, hashes FROM tiles WHERE key >= %s AND key < %s ORDER BY key LIMIT %s"
        pages = self._pages("read tree tiles", query, low + first, low + end)
        return [(key - low, bytes(value)) for key, value in pages]

    def checkpoints(self) -> list[tuple[int, str]]:
        rows = self._query("read checkpoints", "SELECT size, note FROM checkpoints ORDER BY size")
        return [(int(size), str(note)) for size, note in rows]

    def _execute(self, action: str, query: str, params: Sequence[object]) -> None:
        with postgres_errors(action), self._lock:
            self._read.execute(query.encode(), params)

    def cosignatures(self, size: int) -> list[str]:
        query = "SELECT line FROM cosignatures WHERE size = %s ORDER BY witness"
        return [str(row[0]) for row in self._query("read cosignatures", query, (size,))]

    def put_cosignature(self, size: int, witness: str, line: str) -> None:
        query = (
            "INSERT INTO cosignatures (size, witness, line) VALUES (%s, %s, %s) "
            "ON CONFLICT (size, witness) DO UPDATE SET line = EXCLUDED.line"
        )
        self._execute("store a cosignature", query, (size, witness, line))

    def close(self) -> None:
        with postgres_errors("close the ledger"):
            self._write.close()
            self._read.close()
