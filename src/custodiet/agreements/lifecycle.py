"""The agreement lifecycle on the ledger: propose a version, approve exactly it, revoke.

Every step is a principal's signed request, checked by the replay rules (``ledger.replay``)
before it is appended; a refused step is on the ledger as a refusal. What is active is read from
the replayed state, never from a separate store:

* a version is proposed by a custodian or by the reviewer it names; later versions only by the
  agreement's own reviewer (a change of reviewer is a new agreement);
* it needs ``approvals_required`` (never fewer than the workspace's K) distinct custodians, none
  of them its proposer or reviewer, each approving exactly that version and sha256;
* the newest approved version is active until it expires or the agreement is revoked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from custodiet import entries
from custodiet.agreements.load import Marks
from custodiet.agreements.model import Agreement
from custodiet.agreements.store import (
    agreement_document,
    agreement_from_document,
    agreement_sha256,
)
from custodiet.errors import InputError, RefusedError
from custodiet.identity import SignedRequest
from custodiet.ledger.replay import AgreementRecord, State, Version, Violation
from custodiet.runtime import Runtime, refused


@dataclass(frozen=True)
class AgreementVersion:
    id: str
    version: int
    sha256: str
    is_new: bool = True  # False when the applied content equals the latest version
    ledger_index: int | None = None


@dataclass(frozen=True)
class ApprovalStatus:
    id: str
    version: int
    sha256: str
    approvals: int
    required: int
    active: bool
    ledger_index: int


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
    proposer: str
    expires: date
    approvals: tuple[str, ...]
    required: int
    status: str  # active | pending | expired | revoked
    active_version: int | None
    document: dict[str, Any]
    changes: tuple[str, ...]  # the difference from the active version (empty if none)


def load_document(path: Any, state: State) -> tuple[dict[str, Any], Marks]:
    """The agreement file as the canonical document a principal signs, validated against the
    ledger's catalog (``FILE:LINE: field`` errors, exit 2)."""
    from custodiet.agreements.load import load_with_marks
    from custodiet.agreements.validate import validate_agreement
    from custodiet.catalog.registry import list_datasets

    agreement, marks = load_with_marks(path)
    validate_agreement(agreement, {d.name: d for d in list_datasets(state)}, marks)
    return agreement_document(agreement), marks


def apply_agreement(rt: Runtime, signed: SignedRequest) -> AgreementVersion:
    """Propose ``args.document`` as a new version (or report it unchanged)."""
    from custodiet.agreements.validate import validate_agreement
    from custodiet.catalog.registry import list_datasets

    document = signed.args.get("document")
    try:
        agreement = _parsed_document(document)
        validate_agreement(agreement, {d.name: d for d in list_datasets(rt.refresh())})
        if agreement_document(agreement) != document:
            raise InputError(
                "the signed agreement is not in canonical form",
                hint="sign the document as `custodiet agreement apply` prepares it",
                code="CUST537",
            )
    except InputError as exc:
        rt.refuse(exc, attempted=signed.action, actor=signed.principal, signed=signed)
    sha = agreement_sha256(agreement)
    record = rt.state.agreements.get(agreement.id)
    if record is not None and record.latest.sha256 == sha:
        return AgreementVersion(agreement.id, record.latest.number, sha, is_new=False)
    committed = rt.commit(entries.action(signed), refuse_as=signed)
    filled = committed.entry
    return AgreementVersion(
        agreement.id, filled["agreement_version"], filled["agreement_sha256"], True,
        committed.index,
    )  # fmt: skip


def _parsed_document(document: Any) -> Agreement:
    from pydantic import ValidationError

    if not isinstance(document, dict):
        raise InputError("the request carries no agreement document", code="CUST537")
    try:
        return Agreement.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(document)"
        raise InputError(f"agreement {where}: {first['msg']}", code="CUST537") from None


def approve(rt: Runtime, signed: SignedRequest) -> ApprovalStatus:
    """A custodian's signed approval of exactly ``args.version`` with ``args.sha256``."""
    committed = rt.commit(entries.action(signed), refuse_as=signed)
    filled = committed.entry
    return ApprovalStatus(
        filled["agreement"],
        filled["agreement_version"],
        filled["agreement_sha256"],
        filled["approvals"],
        filled["approvals_required"],
        filled["active"],
        committed.index,
    )


def revoke(rt: Runtime, signed: SignedRequest) -> AgreementVersion:
    """Revoke an agreement (custodians only): no version of it is active from now on."""
    committed = rt.commit(entries.action(signed), refuse_as=signed)
    filled = committed.entry
    record = rt.state.agreements[filled["agreement"]]
    return AgreementVersion(
        record.id, filled["agreement_version"], record.latest.sha256, True, committed.index
    )


def active_agreement(
    state: State, agreement_id: str, now: datetime | None = None
) -> ActiveAgreement:
    """The active version, whoever asks; RefusedError when there is none."""
    try:
        version = state.active_version(agreement_id, now or datetime.now(UTC))
    except Violation as exc:
        raise refused(exc) from None
    return ActiveAgreement(
        agreement_from_document(version.sha256, version.document), version.number, version.sha256
    )


def require_active(
    state: State, agreement_id: str, principal: str, now: datetime | None = None
) -> ActiveAgreement:
    """What ``principal`` may query under now: the active version, if they are its reviewer."""
    active = active_agreement(state, agreement_id, now)
    if principal != active.agreement.reviewer:
        raise RefusedError(
            f"principal {principal!r} is not the reviewer of agreement {agreement_id!r}",
            hint="only the reviewer the agreement names may query under it",
            code="CUST316",
        )
    return active


def list_agreements(state: State, now: datetime | None = None) -> list[AgreementSummary]:
    return [_summary(state, state.agreements[i], now) for i in sorted(state.agreements)]


def show_agreement(
    state: State, agreement_id: str, now: datetime | None = None
) -> AgreementSummary:
    record = state.agreements.get(agreement_id)
    if record is None:
        raise InputError(
            f"unknown agreement {agreement_id!r}",
            hint="`custodiet agreement list` shows the agreements",
            code="CUST250",
        )
    return _summary(state, record, now)


def _summary(state: State, record: AgreementRecord, now: datetime | None) -> AgreementSummary:
    moment = now or datetime.now(UTC)
    latest = record.latest
    active = record.active(moment)
    if latest.number <= record.revoked_through:
        status = "revoked"
    elif active is not None and active.number == latest.number:
        status = "active"
    elif latest.approved and moment.date() > latest.expires:
        status = "expired"
    else:
        status = "pending"
    return AgreementSummary(
        id=record.id,
        version=latest.number,
        sha256=latest.sha256,
        reviewer=record.reviewer,
        proposer=latest.proposer,
        expires=latest.expires,
        approvals=tuple(latest.approvals),
        required=latest.required,
        status=status,
        active_version=None if active is None else active.number,
        document=latest.document,
        changes=tuple(changes(active, latest)) if active is not latest else (),
    )


def changes(old: Version | None, new: Version) -> list[str]:
    """What ``new`` changes from ``old`` (the active version), one line each: ``+`` granted,
    ``-`` withdrawn, ``~`` changed."""
    if old is None:
        return ["+ everything (no version is active)"]
    lines: list[str] = []
    before, after = old.document, new.document
    for key in sorted(set(before) | set(after)):
        if key == "datasets":
            continue
        if before.get(key) != after.get(key):
            lines.append(f"~ {key}: {before.get(key)!r} -> {after.get(key)!r}")
    old_sets, new_sets = before.get("datasets", {}), after.get("datasets", {})
    for name in sorted(set(old_sets) | set(new_sets)):
        if name not in new_sets:
            lines.append(f"- dataset {name}")
            continue
        if name not in old_sets:
            lines.append(f"+ dataset {name}")
        was, now = old_sets.get(name, {}), new_sets[name]
        for field in ("rows", "allow_quasi_identifiers"):
            if was.get(field) != now.get(field):
                lines.append(f"~ {name}.{field}: {was.get(field)!r} -> {now.get(field)!r}")
        was_cols, now_cols = was.get("columns", {}), now.get("columns", {})
        for column in sorted(set(was_cols) | set(now_cols)):
            a, b = was_cols.get(column, "deny"), now_cols.get(column, "deny")
            if a != b:
                mark = "+" if a == "deny" else ("-" if b == "deny" else "~")
                lines.append(f"{mark} {name}.{column}: {a} -> {b}")
    return lines
