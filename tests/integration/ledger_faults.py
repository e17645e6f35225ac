"""Workspaces on SQLite or PostgreSQL and the faults an operator with a bad day inflicts on them.

Shared by the fail-closed end-to-end tests and the corruption battery.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from typer.testing import CliRunner

from custodiet.cli import commands
from custodiet.cli.app import app
from custodiet.ledger import note
from custodiet.ledger.store_postgres import split_schema
from custodiet.workspace import Workspace
from tests.conftest import CliResult
from tests.kit import Kit
from tests.unit.ledger.conftest import postgres_base_url

if not any(group.name == "ledger" for group in app.registered_groups):
    commands.register(app)

BATCHES = (7, 6, 6)  # with entry 0 from init: 20 entries, level-0 tiles 0 (full) and 1 (partial)


def invoke(*args: str) -> CliResult:
    result = CliRunner().invoke(app, list(args))
    return CliResult(result.exit_code, result.stdout, result.stderr)


@dataclass
class Site:
    """A workspace and raw SQL access to its store, whatever the engine."""

    ws: Workspace
    backend: str

    def ledger_cli(self, *args: str) -> CliResult:
        return invoke("ledger", *args, "--workspace", str(self.ws.root))

    @contextmanager
    def connection(self) -> Iterator[Callable[..., list[Any]]]:
        """``run(sql_with_?_marks, *params)`` -> rows, committed at the end."""
        if self.backend == "sqlite":
            target = f"{(self.ws.root / 'ledger.db').as_uri()}?mode=rw"  # never creates it
            with closing(sqlite3.connect(target, uri=True)) as con, con:
                yield lambda sql, *params: con.execute(sql, params).fetchall()
            return
        url, schema = split_schema(self.ws.ledger_store_url)
        with psycopg.connect(url, autocommit=True) as con:
            con.execute(f'SET search_path TO "{schema}"'.encode())

            def run(sql: str, *params: object) -> list[Any]:
                cur = con.execute(sql.replace("?", "%s").encode(), params)
                return cur.fetchall() if cur.description else []

            yield run

    def checkpoint_count(self) -> int | None:
        """How many checkpoints the store holds (None if it cannot be read at all)."""
        try:
            with self.connection() as run:
                return int(run("SELECT count(*) FROM checkpoints")[0][0])
        except (sqlite3.Error, psycopg.Error):
            return None

    def flip(self, table: str, column: str, key: str, row: int, offset: int) -> None:
        with self.connection() as run:
            (value,) = run(f"SELECT {column} FROM {table} WHERE {key} = ?", row)[0]
            flipped = bytearray(value.encode() if isinstance(value, str) else bytes(value))
            flipped[offset % len(flipped)] ^= 0x01
            new: object = flipped.decode() if isinstance(value, str) else bytes(flipped)
            run(f"UPDATE {table} SET {column} = ? WHERE {key} = ?", new, row)


def make_site(root: Path, backend: str) -> Site:
    """A workspace of 20 entries committed in four batches (init's and three more)."""
    store = None
    if backend == "postgres":
        store = f"{postgres_base_url()}?schema=ledger_fault_{uuid.uuid4().hex[:12]}"
    ws = Kit(root.parent / f"{root.name}-keys").init(root, ledger_store=store)
    ledger = ws.ledger()
    try:
        for count in BATCHES:
            ledger.append_many([{"actor": "reviewer-1", "action": "query"}] * count)
    finally:
        ledger.close()
    return Site(ws, backend)


def drop_site(site: Site) -> None:
    if site.backend == "postgres":
        url, schema = split_schema(site.ws.ledger_store_url)
        with psycopg.connect(url, autocommit=True) as con:
            con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())


def delete_store(site: Site) -> None:
    if site.backend == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            (site.ws.root / f"ledger.db{suffix}").unlink(missing_ok=True)
    else:
        drop_site(site)


def empty_store(site: Site) -> None:
    if site.backend == "sqlite":
        (site.ws.root / "ledger.db").write_bytes(b"")
    else:
        with site.connection() as run:
            run("TRUNCATE entries, tiles, checkpoints, cosignatures")


def truncate_log(site: Site) -> None:
    """Drop the last entries, as a rollback to an older state of the store would."""
    with site.connection() as run:
        run("DELETE FROM entries WHERE idx >= ?", 17)


def truncate_file(site: Site) -> None:
    path = site.ws.root / "ledger.db"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip_entry(site: Site) -> None:
    site.flip("entries", "data", "idx", 5, 12)


def flip_full_tile(site: Site) -> None:
    site.flip("tiles", "hashes", "key", 0, 3 * 32 + 7)  # leaf hash 3, in a tile no root reads


def flip_partial_tile(site: Site) -> None:
    site.flip("tiles", "hashes", "key", 1, 40)  # level-0 tile 1 (entries 16..19): on the root


def flip_checkpoint(site: Site) -> None:
    with site.connection() as run:
        (size,) = run("SELECT max(size) FROM checkpoints")[0]
    site.flip("checkpoints", "note", "size", int(size), len("custodiet.local/") + 2)


def swap_key(site: Site) -> None:
    path = site.ws.log_key_path
    path.unlink()
    note.write_private_key(path)
