"""The agreement lifecycle: apply (a new version), approve, revoke, and the execution-time check.

Every command here records on the ledger both what it did and what it refused, before returning
or raising. ``require_active`` re-reads approvals, expiry and revocation on every call (no
caching) and records nothing: the gateway records its own refusals.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NoReturn

from custodiet.agreements.model import Agreement
from custodiet.agreements.store import (
    StoredVersion,
    agreement_document,
    agreement_sha256,
    all_latest_versions,
    insert_approval,
    insert_version,
    latest_version,
    mark_revoked,
)
from custodiet.errors import InputError, RefusedError
from custodiet.principals import Principal, Role, find_principal, unknown_principal
from custodiet.state import opened, record, transaction
from custodiet.workspace import Workspace


@dataclass(frozen=True)
class AgreementVersion:
    id: str
    version: int
    sha256: str
    is_new: bool = True  # False when the applied content equals the latest version


@dataclass(frozen=True)
class ApprovalStatus:
    id: str
    version: int
    approvals: int
    required: int
    active: bool


@dataclass(frozen=True)
class ActiveAgreement:
    agreement: Agreement
    version: int
    sha256: str


@dataclass(frozen=True)
class AgreementSummary:
    id: str
    version: int
    sha256: str
    reviewer: str
    expires: date
    approvals: tuple[str, ...]
    required: int
    status: str  # active | pending | expired | revoked
    document: dict[str, Any]


def apply_agreement(ws: Workspace, path: Path | str, actor: str) -> AgreementVersion:
    """Propose ``path`` (or update it): a new version when its validated content changed."""
    # YAML, sqlglot and the catalog load only here, keeping `custodiet query`'s cold start short
    from custodiet.agreements.load import load_with_marks
    from custodiet.agreements.validate import validate_agreement
    from custodiet.catalog.registry import list_datasets

    agreement, marks = load_with_marks(path)
    validate_agreement(agreement, {d.name: d for d in list_datasets(ws)}, marks)
    sha = agreement_sha256(agreement)
    with opened(ws) as con, transaction(con):
        _check_reviewer(con, agreement, marks.where(("reviewer",)))
        who = _principal_or_refuse(ws, con, actor, "agreement.propose", agreement.id)
        if who.role is not Role.CUSTODIAN and who.name != agreement.reviewer:
            _refuse(
                ws, who.name, "agreement.propose", agreement.id,
                f"principal {who.name!r} may not propose agreement {agreement.id!r}"
                " (only a custodian or its reviewer)",
                hint="apply it as a custodian or as the reviewer the agreement names",
                code="CUST312",
            )  # fmt: skip
        latest = latest_version(con, agreement.id)
        if latest is not None and latest.sha256 == sha:
            return AgreementVersion(agreement.id, latest.version, sha, is_new=False)
        version = 1 if latest is None else latest.version + 1
        insert_version(con, agreement, version, sha, who.name)
        record(
            ws,
            {
                **_about(agreement.id, version, sha, who.name, "agreement.propose"),
                "datasets": sorted(agreement.datasets),
                "approvals_required": agreement.approvals_required,
                "expires": agreement.expires.isoformat(),
            },
        )
    return AgreementVersion(agreement.id, version, sha)


def approve(
    ws: Workspace, agreement_id: str, actor: str, now: datetime | None = None
) -> ApprovalStatus:
    """Add ``actor``'s approval to the latest version (distinct custodians, never the reviewer)."""
    action = "agreement.approve"
    with opened(ws) as con, transaction(con):
        who = _principal_or_refuse(ws, con, actor, action, agreement_id)
        stored = _version_or_refuse(ws, con, agreement_id, who.name, action)
        if who.name == stored.agreement.reviewer:
            _refuse_on(ws, stored, who.name, action,
                       f"principal {who.name!r} is the reviewer of agreement {agreement_id!r}"
                       " and may not approve it", code="CUST319")  # fmt: skip
        if who.role is not Role.CUSTODIAN:
            _refuse_on(ws, stored, who.name, action,
                       f"principal {who.name!r} is not a custodian; only custodians approve",
                       code="CUST318")  # fmt: skip
        _refuse_if_closed(ws, stored, who.name, action, now)
        if who.name in stored.approvers:
            _refuse_on(ws, stored, who.name, action,
                       f"principal {who.name!r} already approved agreement {agreement_id!r}"
                       f" v{stored.version}; an approval counts once",
                       hint="another custodian must approve", code="CUST320")  # fmt: skip
        insert_approval(con, stored, who.name)
        status = _status(stored, len(stored.approvers) + 1, now)
        record(
            ws,
            {
                **_about(agreement_id, stored.version, stored.sha256, who.name, action),
                "approvals": status.approvals,
                "approvals_required": status.required,
                "active": status.active,
            },
        )
    return status


def revoke(ws: Workspace, agreement_id: str, actor: str) -> AgreementVersion:
    """Revoke the latest version (custodians only); it stops being active at once."""
    action = "agreement.revoke"
    with opened(ws) as con, transaction(con):
        who = _principal_or_refuse(ws, con, actor, action, agreement_id)
        stored = _version_or_refuse(ws, con, agreement_id, who.name, action)
        if who.role is not Role.CUSTODIAN:
            _refuse_on(ws, stored, who.name, action,
                       f"principal {who.name!r} is not a custodian; only custodians revoke",
                       code="CUST321")  # fmt: skip
        if stored.revoked_by is not None:
            _refuse_on(ws, stored, who.name, action,
                       f"agreement {agreement_id!r} v{stored.version} was already revoked",
                       code="CUST322")  # fmt: skip
        mark_revoked(con, stored, who.name)
        record(ws, _about(agreement_id, stored.version, stored.sha256, who.name, action))
    return AgreementVersion(agreement_id, stored.version, stored.sha256)


def require_active(
    ws: Workspace, agreement_id: str, principal_name: str, now: datetime | None = None
) -> ActiveAgreement:
    """What ``principal_name`` may query under now, else ``RefusedError`` (not recorded)."""
    stored = _stored_or_refused(ws, agreement_id)
    if principal_name != stored.agreement.reviewer:
        raise RefusedError(
            f"principal {principal_name!r} is not the reviewer of agreement {agreement_id!r}",
            hint="only the reviewer the agreement names may query under it",
            code="CUST316",
        )
    return _active(stored, now)


def active_agreement(
    ws: Workspace, agreement_id: str, now: datetime | None = None
) -> ActiveAgreement:
    """The active version, whoever asks (custodian side, e.g. to build its projection)."""
    return _active(_stored_or_refused(ws, agreement_id), now)


def _stored_or_refused(ws: Workspace, agreement_id: str) -> StoredVersion:
    with opened(ws) as con:
        stored = latest_version(con, agreement_id)
    if stored is None:
        raise _unknown_agreement(agreement_id)
    return stored


def _active(stored: StoredVersion, now: datetime | None) -> ActiveAgreement:
    problem = _closed_refusal(stored, now) or _unapproved_refusal(stored)
    if problem:
        raise problem
    return ActiveAgreement(stored.agreement, stored.version, stored.sha256)


def list_agreements(ws: Workspace, now: datetime | None = None) -> list[AgreementSummary]:
    with opened(ws) as con:
        return [_summary(stored, now) for stored in all_latest_versions(con)]


def show_agreement(
    ws: Workspace, agreement_id: str, now: datetime | None = None
) -> AgreementSummary:
    with opened(ws) as con:
        stored = latest_version(con, agreement_id)
    if stored is None:
        raise InputError(
            f"unknown agreement {agreement_id!r}",
            hint="`custodiet agreement list` shows the agreements",
            code="CUST250",
        )
    return _summary(stored, now)


def _summary(stored: StoredVersion, now: datetime | None) -> AgreementSummary:
    closed = _closed_refusal(stored, now)
    status = _status(stored, len(stored.approvers), now)
    state = "active" if status.active else "pending"
    if closed:
        state = "revoked" if stored.revoked_by else "expired"
    return AgreementSummary(
        id=stored.id,
        version=stored.version,
        sha256=stored.sha256,
        reviewer=stored.agreement.reviewer,
        expires=stored.agreement.expires,
        approvals=stored.approvers,
        required=stored.agreement.approvals_required,
        status=state,
        document=agreement_document(stored.agreement),
    )


def _status(stored: StoredVersion, approvals: int, now: datetime | None) -> ApprovalStatus:
    required = stored.agreement.approvals_required
    active = approvals >= required and _closed_refusal(stored, now) is None
    return ApprovalStatus(stored.id, stored.version, approvals, required, active)


def _closed_refusal(stored: StoredVersion, now: datetime | None) -> RefusedError | None:
    """The refusal for a revoked or expired version, else None."""
    if stored.revoked_by is not None:
        return RefusedError(
            f"agreement {stored.id!r} was revoked",
            hint="apply a changed agreement and have it approved again",
            code="CUST315",
        )
    expires = stored.agreement.expires
    if _today(now) > expires:
        return RefusedError(
            f"agreement {stored.id!r} expired on {expires.isoformat()}",
            hint="apply it with a later `expires` date and have it approved again",
            code="CUST314",
        )
    return None


def _unapproved_refusal(stored: StoredVersion) -> RefusedError | None:
    have, need = len(stored.approvers), stored.agreement.approvals_required
    if have >= need:
        return None
    return RefusedError(
        f"agreement {stored.id!r} is not approved ({have} of {need} approvals)",
        hint=f"custodians approve it with `custodiet agreement approve {stored.id} --as CUSTODIAN`",
        code="CUST313",
    )


def _today(now: datetime | None) -> date:
    moment = now or datetime.now(UTC)
    return (moment.astimezone(UTC) if moment.tzinfo else moment).date()


def _check_reviewer(con: sqlite3.Connection, agreement: Agreement, where: str) -> None:
    reviewer = find_principal(con, agreement.reviewer)
    if reviewer is None or reviewer.role is not Role.REVIEWER:
        raise InputError(
            f"{where}: {agreement.reviewer!r} is not a registered reviewer",
            hint="add it with `custodiet principal add NAME --role reviewer`",
            code="CUST249",
        )


def _principal_or_refuse(
    ws: Workspace, con: sqlite3.Connection, name: str, action: str, agreement_id: str
) -> Principal:
    found = find_principal(con, name)
    if found is None:
        error = unknown_principal(name)
        _record_refusal(ws, {"actor": name, "agreement": agreement_id}, action, error.rule)
        raise error
    return found


def _version_or_refuse(
    ws: Workspace, con: sqlite3.Connection, agreement_id: str, actor: str, action: str
) -> StoredVersion:
    stored = latest_version(con, agreement_id)
    if stored is None:
        error = _unknown_agreement(agreement_id)
        _record_refusal(ws, {"actor": actor, "agreement": agreement_id}, action, error.rule)
        raise error
    return stored


def _refuse_if_closed(
    ws: Workspace, stored: StoredVersion, actor: str, action: str, now: datetime | None
) -> None:
    closed = _closed_refusal(stored, now)
    if closed:
        about = _about(stored.id, stored.version, stored.sha256, actor, action)
        _record_refusal(ws, about, action, closed.rule)
        raise closed


def _refuse_on(
    ws: Workspace,
    stored: StoredVersion,
    actor: str,
    action: str,
    rule: str,
    *,
    code: str,
    hint: str | None = None,
) -> NoReturn:
    about = _about(stored.id, stored.version, stored.sha256, actor, action)
    _record_refusal(ws, about, action, rule)
    raise RefusedError(rule, hint=hint, code=code)


def _refuse(
    ws: Workspace, actor: str, action: str, agreement_id: str, rule: str, *, hint: str, code: str
) -> NoReturn:
    _record_refusal(ws, {"actor": actor, "agreement": agreement_id}, action, rule)
    raise RefusedError(rule, hint=hint, code=code)


def _record_refusal(ws: Workspace, about: dict[str, Any], action: str, rule: str) -> None:
    record(ws, {**about, "action": "refusal", "attempted": action, "reason": rule})


def _about(agreement_id: str, version: int, sha: str, actor: str, action: str) -> dict[str, Any]:
    return {
        "actor": actor,
        "action": action,
        "agreement": agreement_id,
        "agreement_version": version,
        "agreement_sha256": sha,
    }


def _unknown_agreement(agreement_id: str) -> RefusedError:
    return RefusedError(
        f"unknown agreement {agreement_id!r}",
        hint="`custodiet agreement list` shows the agreements",
        code="CUST317",
    )
