"""Principals: named custodians, reviewers and overseers, each with an API token.

The token is shown once, when the principal is added; only its SHA-256 is stored. Adding a
principal is on the ledger (never the token or its hash).
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import re
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from custodiet.errors import InputError, RefusedError
from custodiet.state import opened, record, transaction
from custodiet.workspace import Workspace

NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
TOKEN_PREFIX = "cdt_"  # noqa: S105 -- a prefix that makes leaked tokens easy to scan for


class Role(StrEnum):
    CUSTODIAN = "custodian"
    REVIEWER = "reviewer"
    OVERSEER = "overseer"


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role


def local_actor() -> str:
    """The ledger actor for local administration without ``--as``: ``local:<os user>``."""
    try:
        return f"local:{getpass.getuser()}"
    except (OSError, KeyError):
        return "local"


def add_principal(ws: Workspace, name: str, role: Role, actor: str | None = None) -> str:
    """Register ``name`` with ``role`` and return its API token (the only time it is visible)."""
    if not NAME.match(name):
        raise InputError(
            f"principal name {name!r} is not valid",
            hint="use 1-64 characters: a lowercase letter, then lowercase letters, digits, _ . -",
            code="CUST230",
        )
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with opened(ws) as con, transaction(con):
        if con.execute("SELECT 1 FROM principals WHERE name = ?", (name,)).fetchone():
            raise InputError(
                f"principal {name!r} already exists",
                hint="choose another name; `custodiet principal list` shows the taken ones",
                code="CUST231",
            )
        con.execute(
            "INSERT INTO principals (name, role, token_sha256, created) VALUES (?, ?, ?, ?)",
            (name, role.value, _digest(token), _now()),
        )
        record(
            ws,
            {
                "actor": actor or local_actor(),
                "action": "principal.add",
                "principal": name,
                "role": role.value,
            },
        )
    return token


def get_principal(ws: Workspace, name: str) -> Principal:
    """The principal called ``name``; ``RefusedError`` when there is none."""
    with opened(ws) as con:
        found = find_principal(con, name)
    if found is None:
        raise unknown_principal(name)
    return found


def find_principal(con: sqlite3.Connection, name: str) -> Principal | None:
    row = con.execute("SELECT name, role FROM principals WHERE name = ?", (name,)).fetchone()
    return None if row is None else Principal(row["name"], Role(row["role"]))


def unknown_principal(name: str) -> RefusedError:
    return RefusedError(
        f"unknown principal {name!r}",
        hint="`custodiet principal list` shows the registered principals",
        code="CUST310",
    )


def list_principals(ws: Workspace) -> list[Principal]:
    with opened(ws) as con:
        rows = con.execute("SELECT name, role FROM principals ORDER BY name").fetchall()
    return [Principal(row["name"], Role(row["role"])) for row in rows]


def authenticate(ws: Workspace, token: str) -> Principal:
    """The principal holding ``token``. Every stored hash is compared in constant time."""
    presented = _digest(token)
    with opened(ws) as con:
        rows = con.execute("SELECT name, role, token_sha256 FROM principals").fetchall()
    found: Principal | None = None
    for row in rows:
        if hmac.compare_digest(presented, row["token_sha256"]):
            found = Principal(row["name"], Role(row["role"]))
    if found is None:
        rule = "the API token does not belong to any principal"
        record(ws, {"actor": "unknown", "action": "refusal", "reason": rule})
        raise RefusedError(rule, hint="use the token printed by `principal add`", code="CUST311")
    return found


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
