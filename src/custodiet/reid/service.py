"""Break-glass re-identification: named case tokens only, K custodians, everything on the ledger.

    request  the agreement's reviewer names at most MAX_TOKENS person tokens that occur in the
             agreement's protected data, the fields wanted (names and TINs by default; bank
             numbers only when asked), and a reason
    approve  K distinct custodians (the genesis's min_approvals), none of them the requester,
             each approving exactly the request's content (its sha256)
    deny     any custodian, with a reason; a denied request is closed
    show     the requester alone, once approved and before the request expires (WINDOW after
             it was made), under the same agreement version, sees the identified records

A request's id is the ledger index of its ``reid.request`` entry. Each step, allowed or
refused, is on the ledger first; a release records the tokens, the fields disclosed, how many
records were released and the SHA-256 of their canonical JSON, never the identities.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import rfc8785

from custodiet import entries
from custodiet.agreements.lifecycle import active_agreement
from custodiet.catalog.registry import get_dataset
from custodiet.errors import InputError, RefusedError
from custodiet.gateway.identities import IdentifiedRecord, identify, person_tokens_present
from custodiet.identity import SignedRequest
from custodiet.ledger.replay import MAX_REID_TOKENS, REID_WINDOW, ReidRecord, State
from custodiet.runtime import Runtime

MAX_TOKENS = MAX_REID_TOKENS
WINDOW = REID_WINDOW
TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{12}$")
FIELDS = {"name": ("name",), "tin": ("ssn", "tin", "ein"), "bank": ("routing", "account")}
DEFAULT_FIELDS = ("name", "tin")

ReidRequest = ReidRecord


@dataclass(frozen=True)
class Release:
    request: ReidRecord
    records: tuple[IdentifiedRecord, ...]
    records_sha256: str
    ledger_index: int


def request_reid(rt: Runtime, signed: SignedRequest) -> ReidRecord:
    """File the signed request to re-identify ``args.tokens`` (no approvals yet)."""
    args = signed.args
    agreement_id = str(args.get("agreement") or "")
    try:
        wanted = _checked_tokens(args.get("tokens"))
    except InputError as exc:
        # a malformed token may be an identity typed by mistake: the refusal carries no copy of
        # the signed request, so the ledger never holds it (the error does not echo it either)
        rt.refuse(exc, attempted=signed.action, actor=signed.principal,
                  context={"agreement": agreement_id})  # fmt: skip
    try:
        fields = _checked_fields(args.get("fields"))
        reason = args.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise _no_reason()
    except InputError as exc:
        rt.refuse(exc, attempted=signed.action, actor=signed.principal, signed=signed,
                  context={"agreement": agreement_id})  # fmt: skip
    if len(wanted) != len(args.get("tokens") or []) or list(fields) != args.get("fields"):
        rt.refuse(
            InputError("tokens must be distinct and fields known", code="CUST401"),
            attempted=signed.action, actor=signed.principal, signed=signed,
        )  # fmt: skip
    rt.authorize(entries.action(signed, agreement=agreement_id), refuse_as=signed)
    active = active_agreement(rt.state, agreement_id, rt.now())
    absent = [t for t in wanted if t not in person_tokens_present(rt.ws, active, wanted)]
    if absent:
        rt.refuse(
            RefusedError(
                f"case token '{absent[0]}' does not occur in the protected data of agreement "
                f"'{agreement_id}' (v{active.version})",
                hint="request only payee tokens that your screens or queries under this "
                "agreement returned",
                code="CUST411",
            ),
            attempted=signed.action, actor=signed.principal, signed=signed,
            context={"agreement": agreement_id},
        )  # fmt: skip
    committed = rt.commit(
        entries.action(signed, agreement=agreement_id, count=len(wanted)), refuse_as=signed
    )
    return rt.state.reid[committed.index]


def approve_reid(rt: Runtime, signed: SignedRequest) -> ReidRecord:
    """A custodian's signed approval of exactly the request's content (``args.sha256``)."""
    request_id = _request_id(rt, signed)
    rt.commit(entries.action(signed, request_id=request_id), refuse_as=signed)
    return rt.state.reid[request_id]


def deny_reid(rt: Runtime, signed: SignedRequest) -> ReidRecord:
    """A custodian's signed denial, with a reason; the request can no longer be released."""
    request_id = _request_id(rt, signed)
    rt.commit(entries.action(signed, request_id=request_id), refuse_as=signed)
    return rt.state.reid[request_id]


def show_reid(rt: Runtime, signed: SignedRequest) -> Release:
    """The identified records of an approved request, for its requester, before it expires."""
    request_id = _request_id(rt, signed)
    intent = rt.commit(entries.intent(signed, request_id=request_id), refuse_as=signed)
    record = rt.state.reid[request_id]
    state = rt.state
    active = active_agreement(state, record.agreement, rt.now())
    datasets = {name: get_dataset(state, name) for name in active.agreement.datasets}
    kinds = tuple(kind for name in record.fields for kind in FIELDS[name])
    records = tuple(identify(rt.ws, active, datasets, record.tokens, kinds))
    digest = records_sha256(records)
    done = rt.commit(
        entries.outcome(
            "reid.release", intent.index, signed.principal, record.agreement,
            request_id=request_id, agreement_version=active.version,
            tokens=list(record.tokens), fields=list(record.fields), count=len(records),
            records_sha256=digest,
        )
    )  # fmt: skip
    return Release(record, records, digest, done.index)


def pending(state: State, now: dt.datetime | None = None) -> list[ReidRecord]:
    """Requests a custodian may still decide: not denied, not expired, not yet fully approved."""
    moment = now or dt.datetime.now(dt.UTC)
    return [
        r
        for r in sorted(state.reid.values(), key=lambda r: r.id)
        if r.denied_by is None and moment < r.expires and len(r.approvals) < state.min_approvals
    ]


def find_request(state: State, request_id: int) -> ReidRecord:
    found = state.reid.get(request_id)
    if found is None:
        raise InputError(
            f"unknown re-identification request {request_id}",
            hint="`custodiet reid list` shows the pending requests and their ids",
            code="CUST403",
        )
    return found


def records_sha256(records: Sequence[IdentifiedRecord]) -> str:
    """SHA-256 of the released records as canonical JSON: what the ledger keeps of a release."""
    document: Any = [
        {"token": r.token, "dataset": r.dataset, "fields": dict(r.fields)} for r in records
    ]
    return hashlib.sha256(rfc8785.dumps(document)).hexdigest()


def _request_id(rt: Runtime, signed: SignedRequest) -> int:
    value = signed.args.get("request")
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**53:
        rt.refuse(
            InputError(
                "the request names no re-identification request id",
                hint="use the id `custodiet reid list` shows",
                code="CUST403",
            ),
            attempted=signed.action, actor=signed.principal, signed=signed,
        )  # fmt: skip
    return value


def _checked_tokens(tokens: Any) -> tuple[str, ...]:
    """The distinct tokens in the order given; ``InputError`` for none or a malformed one."""
    if not isinstance(tokens, list) or not tokens:
        raise InputError(
            "no case token given",
            hint="name each case with --case TOKEN (the payee token a screen reported)",
            code="CUST401",
        )
    for position, token in enumerate(tokens, start=1):
        if not isinstance(token, str) or not TOKEN_SHAPE.match(token):
            # the value is not echoed: a malformed token may be an identity typed by mistake
            raise InputError(
                f"--case number {position} is not a case token (12 letters, digits, - or _)",
                hint="copy the payee token from the screen report",
                code="CUST401",
            )
    return tuple(dict.fromkeys(tokens))


def _checked_fields(fields: Any) -> tuple[str, ...]:
    if not isinstance(fields, list) or not fields or not set(fields) <= set(FIELDS):
        raise InputError(
            "--fields names what a release discloses: " + ", ".join(FIELDS),
            hint="bank numbers (bank) are released only when the request asks for them",
            code="CUST404",
        )
    return tuple(dict.fromkeys(fields))


def _no_reason() -> InputError:
    return InputError(
        "--reason is empty",
        hint="say why these cases need a human decision; custodians read it before approving",
        code="CUST402",
    )
