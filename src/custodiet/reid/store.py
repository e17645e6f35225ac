"""Where re-identification requests and their approvals live: two tables in the workspace state."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from dataclasses import dataclass

from custodiet.errors import InputError
from custodiet.state import register_schema

register_schema(
    """CREATE TABLE IF NOT EXISTS reid_requests (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        agreement_id TEXT NOT NULL,
        agreement_version INTEGER NOT NULL,
        agreement_sha256 TEXT NOT NULL,
        requester TEXT NOT NULL,
        reason TEXT NOT NULL,
        tokens TEXT NOT NULL,
        created TEXT NOT NULL,
        expires TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS reid_approvals (
        request_id INTEGER NOT NULL REFERENCES reid_requests(id),
        custodian TEXT NOT NULL,
        created TEXT NOT NULL,
        PRIMARY KEY (request_id, custodian)
    )""",
)


@dataclass(frozen=True)
class ReidRequest:
    id: int
    agreement_id: str
    agreement_version: int
    agreement_sha256: str
    requester: str
    reason: str
    tokens: tuple[str, ...]
    created: dt.datetime
    expires: dt.datetime
    approvals: tuple[str, ...]  # custodians, in the order they approved


def insert_request(
    con: sqlite3.Connection,
    *,
    agreement_id: str,
    agreement_version: int,
    agreement_sha256: str,
    requester: str,
    reason: str,
    tokens: tuple[str, ...],
    created: dt.datetime,
    expires: dt.datetime,
) -> int:
    cursor = con.execute(
        "INSERT INTO reid_requests (agreement_id, agreement_version, agreement_sha256, requester,"
        " reason, tokens, created, expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            agreement_id,
            agreement_version,
            agreement_sha256,
            requester,
            reason,
            json.dumps(list(tokens)),
            created.isoformat(),
            expires.isoformat(),
        ),
    )
    if cursor.lastrowid is None:
        raise AssertionError("sqlite returned no row id for an insert")
    return cursor.lastrowid


def insert_approval(
    con: sqlite3.Connection, request_id: int, custodian: str, when: dt.datetime
) -> None:
    con.execute(
        "INSERT INTO reid_approvals (request_id, custodian, created) VALUES (?, ?, ?)",
        (request_id, custodian, when.isoformat()),
    )


def load_request(con: sqlite3.Connection, request_id: int) -> ReidRequest:
    """The request with its approvals; ``InputError`` naming the id when there is none."""
    row = con.execute("SELECT * FROM reid_requests WHERE id = ?", (request_id,)).fetchone()
    if row is None:
        raise InputError(
            f"unknown re-identification request {request_id}",
            hint="use the REQUEST_ID printed by `custodiet reid request`",
            code="CUST403",
        )
    approvals = con.execute(
        "SELECT custodian FROM reid_approvals WHERE request_id = ? ORDER BY created, custodian",
        (request_id,),
    ).fetchall()
    return ReidRequest(
        id=int(row["id"]),
        agreement_id=row["agreement_id"],
        agreement_version=int(row["agreement_version"]),
        agreement_sha256=row["agreement_sha256"],
        requester=row["requester"],
        reason=row["reason"],
        tokens=tuple(json.loads(row["tokens"])),
        created=dt.datetime.fromisoformat(row["created"]),
        expires=dt.datetime.fromisoformat(row["expires"]),
        approvals=tuple(a["custodian"] for a in approvals),
    )
