"""Agreement versions and approvals in the workspace state (rows in, frozen records out)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rfc8785

from custodiet.agreements.model import Agreement


@dataclass(frozen=True)
class StoredVersion:
    agreement: Agreement
    version: int
    sha256: str
    proposed_by: str
    revoked_by: str | None
    approvers: tuple[str, ...]

    @property
    def id(self) -> str:
        return self.agreement.id


def agreement_document(agreement: Agreement) -> dict[str, Any]:
    """The validated agreement as plain JSON, treatments written as in the YAML."""
    doc: dict[str, Any] = agreement.model_dump(mode="json")
    for name, grant in agreement.datasets.items():
        doc["datasets"][name]["columns"] = {c: str(rule) for c, rule in grant.columns.items()}
    return doc


def agreement_sha256(agreement: Agreement) -> str:
    """SHA-256 (hex) of the RFC 8785 canonical JSON of the validated agreement."""
    return hashlib.sha256(rfc8785.dumps(agreement_document(agreement))).hexdigest()


def latest_version(con: sqlite3.Connection, agreement_id: str) -> StoredVersion | None:
    row = con.execute(
        "SELECT * FROM agreement_versions WHERE agreement_id = ? ORDER BY version DESC LIMIT 1",
        (agreement_id,),
    ).fetchone()
    return None if row is None else _stored(con, row)


def all_latest_versions(con: sqlite3.Connection) -> list[StoredVersion]:
    rows = con.execute(
        "SELECT v.* FROM agreement_versions v JOIN ("
        " SELECT agreement_id, max(version) AS version FROM agreement_versions"
        " GROUP BY agreement_id) m USING (agreement_id, version) ORDER BY v.agreement_id"
    ).fetchall()
    return [_stored(con, row) for row in rows]


def insert_version(
    con: sqlite3.Connection, agreement: Agreement, version: int, sha256: str, actor: str
) -> None:
    con.execute(
        "INSERT INTO agreement_versions (agreement_id, version, sha256, document, proposed_by,"
        " created) VALUES (?, ?, ?, ?, ?, ?)",
        (agreement.id, version, sha256, json.dumps(agreement_document(agreement)), actor, _now()),
    )


def insert_approval(con: sqlite3.Connection, stored: StoredVersion, custodian: str) -> None:
    con.execute(
        "INSERT INTO approvals (agreement_id, version, custodian, created) VALUES (?, ?, ?, ?)",
        (stored.id, stored.version, custodian, _now()),
    )


def mark_revoked(con: sqlite3.Connection, stored: StoredVersion, custodian: str) -> None:
    con.execute(
        "UPDATE agreement_versions SET revoked_by = ?, revoked_at = ?"
        " WHERE agreement_id = ? AND version = ?",
        (custodian, _now(), stored.id, stored.version),
    )


def _stored(con: sqlite3.Connection, row: sqlite3.Row) -> StoredVersion:
    approvers = con.execute(
        "SELECT custodian FROM approvals WHERE agreement_id = ? AND version = ? ORDER BY created",
        (row["agreement_id"], row["version"]),
    ).fetchall()
    return StoredVersion(
        agreement=Agreement.model_validate(json.loads(row["document"])),
        version=int(row["version"]),
        sha256=row["sha256"],
        proposed_by=row["proposed_by"],
        revoked_by=row["revoked_by"],
        approvers=tuple(r["custodian"] for r in approvers),
    )


def _now() -> str:
    return datetime.now(UTC).isoformat()
