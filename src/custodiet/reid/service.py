"""Break-glass re-identification: named case tokens only, two custodians, everything on the ledger.

    request  the agreement's reviewer names at most MAX_TOKENS person tokens that occur in the
             agreement's protected data, with a reason
    approve  two distinct custodians, neither of them the requester
    show     the requester alone, once approved and before the request expires (WINDOW after it
             was made), under the same agreement version, sees the identified records

Each step, allowed or refused, is on the ledger first. A release records the tokens, how many
records were released and the SHA-256 of their canonical JSON; never the identities themselves.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import rfc8785

from custodiet.agreements.lifecycle import require_active
from custodiet.catalog.registry import get_dataset
from custodiet.errors import CustodietError, InputError, RefusedError
from custodiet.gateway.identities import IdentifiedRecord, identify, person_tokens_present
from custodiet.principals import Role, get_principal
from custodiet.reid.store import (
    ReidRequest,
    insert_approval,
    insert_request,
    load_request,
)
from custodiet.state import opened, record, transaction
from custodiet.workspace import Workspace

MAX_TOKENS = 20
APPROVALS_REQUIRED = 2
WINDOW = dt.timedelta(hours=24)
TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{12}$")

E = TypeVar("E", bound=CustodietError)


@dataclass(frozen=True)
class Release:
    request: ReidRequest
    records: tuple[IdentifiedRecord, ...]
    records_sha256: str
    ledger_index: int


def request_reid(
    ws: Workspace,
    agreement_id: str,
    requester: str,
    tokens: Sequence[str],
    reason: str,
    *,
    now: dt.datetime | None = None,
) -> ReidRequest:
    """File a request to re-identify ``tokens`` under ``agreement_id`` (no approvals yet)."""
    now = _now(now)
    context: dict[str, Any] = {"agreement": agreement_id, "reid": "request"}
    try:
        wanted = _checked_tokens(tokens)
    except InputError as exc:
        raise _logged(ws, requester, context, exc) from None
    context["tokens"] = list(wanted)
    if not reason.strip():
        raise _logged(ws, requester, context, _no_reason())
    if len(wanted) > MAX_TOKENS:
        raise _logged(
            ws,
            requester,
            context,
            RefusedError(
                f"a re-identification request names at most {MAX_TOKENS} case tokens "
                f"({len(wanted)} given)",
                hint="split the cases into several requests, each justified on its own",
                code="CUST410",
            ),
        )
    try:
        active = require_active(ws, agreement_id, requester, now=now)
    except RefusedError as exc:
        raise _logged(ws, requester, context, exc) from None
    context.update(agreement_version=active.version, agreement_sha256=active.sha256)
    absent = [t for t in wanted if t not in person_tokens_present(ws, active, wanted)]
    if absent:
        raise _logged(
            ws,
            requester,
            context,
            RefusedError(
                f"case token '{absent[0]}' does not occur in the protected data of agreement "
                f"'{agreement_id}' (v{active.version})",
                hint="request only payee tokens that your screens or queries under this "
                "agreement returned",
                code="CUST411",
            ),
        )
    with opened(ws) as con, transaction(con):
        request_id = insert_request(
            con,
            agreement_id=agreement_id,
            agreement_version=active.version,
            agreement_sha256=active.sha256,
            requester=requester,
            reason=reason.strip(),
            tokens=wanted,
            created=now,
            expires=now + WINDOW,
        )
        record(
            ws,
            {
                "actor": requester,
                "action": "reid.request",
                **context,
                "request": request_id,
                "count": len(wanted),
                "reason": reason.strip(),
                "expires": (now + WINDOW).isoformat(),
            },
        )
        return load_request(con, request_id)


def approve_reid(
    ws: Workspace, request_id: int, custodian: str, *, now: dt.datetime | None = None
) -> ReidRequest:
    """Record ``custodian``'s approval of the request; returns it with its approvals."""
    now = _now(now)
    context: dict[str, Any] = {"request": request_id, "reid": "approve"}
    try:
        principal = get_principal(ws, custodian)
    except RefusedError as exc:
        raise _logged(ws, custodian, context, exc) from None
    with opened(ws) as con, transaction(con):
        request = load_request(con, request_id)
        context["agreement"] = request.agreement_id
        refusal = _approval_refusal(request, principal.name, principal.role, now)
        if refusal is not None:
            raise _logged(ws, custodian, context, refusal)
        insert_approval(con, request_id, custodian, now)
        record(
            ws,
            {
                "actor": custodian,
                "action": "reid.approve",
                **context,
                "agreement_version": request.agreement_version,
                "approvals": len(request.approvals) + 1,
                "required": APPROVALS_REQUIRED,
            },
        )
        return load_request(con, request_id)


def show_reid(
    ws: Workspace, request_id: int, principal: str, *, now: dt.datetime | None = None
) -> Release:
    """The identified records of an approved request, for its requester, before it expires."""
    now = _now(now)
    context: dict[str, Any] = {"request": request_id, "reid": "show"}
    with opened(ws) as con:
        request = load_request(con, request_id)
    context["agreement"] = request.agreement_id
    refusal = _release_refusal(request, principal, now)
    if refusal is not None:
        raise _logged(ws, principal, context, refusal)
    try:
        active = require_active(ws, request.agreement_id, principal, now=now)
    except RefusedError as exc:
        raise _logged(ws, principal, context, exc) from None
    if active.version != request.agreement_version:
        raise _logged(
            ws,
            principal,
            context,
            RefusedError(
                f"agreement '{request.agreement_id}' changed since request {request_id} "
                f"(v{request.agreement_version}, now v{active.version})",
                hint="file a new request under the current version",
                code="CUST418",
            ),
        )
    datasets = {name: get_dataset(ws, name) for name in active.agreement.datasets}
    records = tuple(identify(ws, active, datasets, request.tokens))
    digest = records_sha256(records)
    index = record(
        ws,
        {
            "actor": principal,
            "action": "reid.release",
            **context,
            "agreement_version": active.version,
            "agreement_sha256": active.sha256,
            "tokens": list(request.tokens),
            "count": len(records),
            "records_sha256": digest,
        },
    )
    return Release(request, records, digest, index)


def records_sha256(records: Sequence[IdentifiedRecord]) -> str:
    """SHA-256 of the released records as canonical JSON: what the ledger keeps of a release."""
    document: Any = [
        {"token": r.token, "dataset": r.dataset, "fields": dict(r.fields)} for r in records
    ]
    return hashlib.sha256(rfc8785.dumps(document)).hexdigest()


def _checked_tokens(tokens: Sequence[str]) -> tuple[str, ...]:
    """The distinct tokens in the order given; ``InputError`` for none or a malformed one."""
    if not tokens:
        raise InputError(
            "no case token given",
            hint="name each case with --case TOKEN (the payee token a screen reported)",
            code="CUST401",
        )
    for position, token in enumerate(tokens, start=1):
        if not TOKEN_SHAPE.match(token.strip()):
            # the value is not echoed: a malformed token may be an identity typed by mistake
            raise InputError(
                f"--case number {position} is not a case token (12 letters, digits, - or _)",
                hint="copy the payee token from the screen report",
                code="CUST401",
            )
    return tuple(dict.fromkeys(t.strip() for t in tokens))


def _no_reason() -> InputError:
    return InputError(
        "--reason is empty",
        hint="say why these cases need a human decision; custodians read it before approving",
        code="CUST402",
    )


def _approval_refusal(
    request: ReidRequest, custodian: str, role: Role, now: dt.datetime
) -> RefusedError | None:
    named = f"re-identification request {request.id}"
    if custodian == request.requester:
        return RefusedError(
            f"principal '{custodian}' requested {named} and cannot approve it",
            hint="two other custodians must approve it",
            code="CUST413",
        )
    if role is not Role.CUSTODIAN:
        return RefusedError(
            f"principal '{custodian}' is a {role.value}; only custodians approve {named}",
            hint="ask two custodians to approve it",
            code="CUST412",
        )
    if custodian in request.approvals:
        return RefusedError(
            f"custodian '{custodian}' already approved {named}; approvals must come from "
            f"{APPROVALS_REQUIRED} distinct custodians",
            hint="ask another custodian",
            code="CUST414",
        )
    return _expiry_refusal(request, now)


def _release_refusal(request: ReidRequest, principal: str, now: dt.datetime) -> RefusedError | None:
    named = f"re-identification request {request.id}"
    if principal != request.requester:
        return RefusedError(
            f"principal '{principal}' did not make {named}; only its requester may see it",
            hint="file your own request with `custodiet reid request`",
            code="CUST415",
        )
    if len(request.approvals) < APPROVALS_REQUIRED:
        return RefusedError(
            f"{named} is not approved ({len(request.approvals)} of {APPROVALS_REQUIRED} "
            "custodian approvals)",
            hint=f"ask custodians to run `custodiet reid approve {request.id} --as CUSTODIAN`",
            code="CUST416",
        )
    return _expiry_refusal(request, now)


def _expiry_refusal(request: ReidRequest, now: dt.datetime) -> RefusedError | None:
    if now < request.expires:
        return None
    return RefusedError(
        f"re-identification request {request.id} expired at "
        f"{request.expires.isoformat(timespec='seconds')}",
        hint="file a new request",
        code="CUST417",
    )


def _logged(ws: Workspace, actor: str, context: Mapping[str, Any], error: E) -> E:
    """Record ``error`` on the ledger as a refusal (before it is raised) and return it."""
    reason = error.rule if isinstance(error, RefusedError) else error.message
    record(ws, {"actor": actor, "action": "refusal", **context, "reason": reason})
    return error


def _now(now: dt.datetime | None) -> dt.datetime:
    return now if now is not None else dt.datetime.now(dt.UTC)
