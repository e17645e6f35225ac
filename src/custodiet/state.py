"""The workspace state store (``state.db``): catalog, principals, agreements and approvals.

One SQLite file in WAL mode with foreign keys on. The core schema is created idempotently and
stamped with a schema version; other packages add their own tables through ``register_schema``
(``CREATE TABLE IF NOT EXISTS`` statements run on every connect), e.g. the ``reid_*`` tables.
Engine errors become ``SystemFailure`` here, never a raw ``sqlite3`` message.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from custodiet.errors import SystemFailure
from custodiet.workspace import Workspace

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000

CORE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS schema_version (
        version INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS principals (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        token_sha256 TEXT NOT NULL UNIQUE,
        created TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS datasets (
        name TEXT PRIMARY KEY,
        document TEXT NOT NULL,
        created TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS agreement_versions (
        agreement_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        document TEXT NOT NULL,
        proposed_by TEXT NOT NULL,
        created TEXT NOT NULL,
        revoked_by TEXT,
        revoked_at TEXT,
        PRIMARY KEY (agreement_id, version)
    )""",
    """CREATE TABLE IF NOT EXISTS approvals (
        agreement_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        custodian TEXT NOT NULL REFERENCES principals(name),
        created TEXT NOT NULL,
        PRIMARY KEY (agreement_id, version, custodian),
        FOREIGN KEY (agreement_id, version) REFERENCES agreement_versions(agreement_id, version)
    )""",
)

_extra_schema: list[str] = []


def register_schema(*statements: str) -> None:
    """Add ``CREATE ... IF NOT EXISTS`` statements that every ``connect`` runs (idempotent)."""
    for statement in statements:
        if "IF NOT EXISTS" not in statement.upper():
            raise ValueError("registered schema statements must use IF NOT EXISTS")
        if statement not in _extra_schema:
            _extra_schema.append(statement)


def connect(ws: Workspace) -> sqlite3.Connection:
    """An open connection on ``ws.state_path`` with the schema in place (autocommit mode)."""
    ws.manifest()  # a clear InputError when the directory is not a workspace
    try:
        con = sqlite3.connect(ws.state_path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        con.row_factory = sqlite3.Row
        con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA foreign_keys = ON")
        con.execute("PRAGMA synchronous = FULL")
        _create_schema(con)
    except sqlite3.Error as exc:
        raise SystemFailure(
            f"{ws.state_path}: cannot open the workspace state ({type(exc).__name__})",
            hint="check the file's permissions and free disk space",
            code="CUST170",
        ) from None
    return con


def _create_schema(con: sqlite3.Connection) -> None:
    with transaction(con):
        for statement in (*CORE_SCHEMA, *_extra_schema):
            con.execute(statement)
        row = con.execute("SELECT max(version) FROM schema_version").fetchone()
        if row[0] is None:
            con.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        elif row[0] > SCHEMA_VERSION:
            raise SystemFailure(
                f"workspace state has schema version {row[0]}; this custodiet knows "
                f"{SCHEMA_VERSION}",
                hint="upgrade custodiet",
                code="CUST171",
            )


@contextmanager
def transaction(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception (including ours)."""
    con.execute("BEGIN IMMEDIATE")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


@contextmanager
def opened(ws: Workspace) -> Iterator[sqlite3.Connection]:
    """``connect`` as a context manager that always closes the connection."""
    con = connect(ws)
    try:
        yield con
    except sqlite3.Error as exc:
        raise SystemFailure(
            f"{ws.state_path}: workspace state failed ({type(exc).__name__})",
            hint="retry; if it persists check the disk",
            code="CUST172",
        ) from None
    finally:
        con.close()


def record(ws: Workspace, entry: dict[str, object]) -> int:
    """Append ``entry`` to the workspace ledger; ``SystemFailure`` if it cannot be recorded."""
    ledger = ws.ledger()
    try:
        index: int = ledger.append(entry)
    finally:
        ledger.close()
    return index
