"""The one place ledger entries are built (the schema is normative in docs/ledger.md).

Every entry is one of four shapes:

    action(signed, ...)   a principal's signed request and its effect (``agreement.approve``...)
    intent(signed, ...)   an access about to happen (``query``, ``screen.run``, ``reid.show``)
    outcome(intent, ...)  what the access released: rows and digest, never a value
    refusal(...)          anything refused, malformed or failed, with its rule and stable code
    system(action, ...)   the vault's own steps (``genesis``, ``projection.build``)

``index`` and ``time`` are assigned by the ledger. No entry ever holds a value read from the
data: results are recorded by their row count and SHA-256 only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from custodiet.errors import CustodietError, InputError, RefusedError
from custodiet.identity import SignedRequest

Entry = dict[str, Any]


def action(signed: SignedRequest, **fields: Any) -> Entry:
    """A principal's signed action; ``fields`` are its derived effect (checked by replay)."""
    return {
        "action": signed.action,
        "actor": signed.principal,
        "request": signed.request,
        "signature": signed.signature,
        **fields,
    }


def intent(signed: SignedRequest, **fields: Any) -> Entry:
    """Write-ahead: the signed request of an access, on the ledger before it executes."""
    return {
        "action": "intent",
        "attempted": signed.action,
        "actor": signed.principal,
        "request": signed.request,
        "signature": signed.signature,
        **fields,
    }


def outcome(what: str, intent_index: int, actor: str, agreement: str, **fields: Any) -> Entry:
    """The result of the access that ``intent_index`` announced."""
    return {
        "action": what,
        "intent": intent_index,
        "actor": actor,
        "agreement": agreement,
        "decision": "allowed",
        **fields,
    }


def system(what: str, **fields: Any) -> Entry:
    """A step the vault takes on its own (``actor`` and a request only when one asked)."""
    return {"action": what, "actor": "custodiet", **fields}


def refusal(
    error: CustodietError,
    *,
    attempted: str,
    actor: str,
    signed: SignedRequest | None = None,
    context: Mapping[str, Any] | None = None,
) -> Entry:
    """The one shape of every refusal: what was attempted, by whom, the rule and its code."""
    if isinstance(error, RefusedError):
        decision, reason = "refused", error.rule
    elif isinstance(error, InputError):
        decision, reason = "malformed", error.message
    else:
        decision, reason = "failed", error.message
    entry: Entry = {
        "action": "refusal",
        "attempted": attempted,
        "actor": actor,
        **(context or {}),
        "decision": decision,
        "reason": reason,
        "code": error.code,
    }
    if signed is not None:
        entry["request"], entry["signature"] = signed.request, signed.signature
    return entry
