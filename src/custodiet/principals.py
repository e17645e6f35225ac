"""Principals: named custodians, reviewers and overseers, each with an Ed25519 key on the ledger.

A principal is registered by a ``principal.add`` entry carrying custodians' signed requests: one
custodian's for a reviewer or overseer, K custodians' (the genesis's ``min_approvals``) for a new
custodian. Each custodian runs the same ``principal add`` with the same name, role and key; the
principal exists once enough have signed. Removing one takes K. The registry is the replayed
ledger (``Runtime.state``); nothing else is consulted.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from custodiet import entries
from custodiet.errors import InputError
from custodiet.identity import SignedRequest
from custodiet.ledger.replay import NAME, State
from custodiet.runtime import Runtime


class Role(StrEnum):
    CUSTODIAN = "custodian"
    REVIEWER = "reviewer"
    OVERSEER = "overseer"


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    pubkey: str


@dataclass(frozen=True)
class Change:
    """What one custodian's signature did: counted as ``votes`` of ``required``."""

    principal: str
    votes: int
    required: int
    effective: bool
    ledger_index: int


def _text_arg(rt: Runtime, signed: SignedRequest, key: str, hint: str) -> str:
    value = signed.args.get(key)
    if not isinstance(value, str) or not value:
        rt.refuse(
            InputError(f"the request has no {key}", hint=hint, code="CUST530"),
            attempted=signed.action,
            actor=signed.principal,
            signed=signed,
        )
    return value


def add_principal(rt: Runtime, signed: SignedRequest) -> Change:
    """Count a custodian's signed vote to register ``args.name`` with ``args.role`` and key."""
    name = _text_arg(rt, signed, "name", "name the principal to add")
    if not NAME.match(name):
        rt.refuse(
            InputError(
                f"principal name {name!r} is not valid",
                hint="use 1-64 characters: a lowercase letter, then lowercase letters, digits, "
                "_ . -",
                code="CUST230",
            ),
            attempted=signed.action,
            actor=signed.principal,
            signed=signed,
        )
    committed = rt.commit(entries.action(signed, principal=name), refuse_as=signed)
    entry = committed.entry
    return Change(name, entry["votes"], entry["required"], entry["effective"], committed.index)


def remove_principal(rt: Runtime, signed: SignedRequest) -> Change:
    """Count a custodian's signed vote to remove ``args.name`` (K custodians remove one)."""
    name = _text_arg(rt, signed, "name", "name the principal to remove")
    committed = rt.commit(entries.action(signed, principal=name), refuse_as=signed)
    entry = committed.entry
    return Change(name, entry["votes"], rt.state.min_approvals, entry["effective"], committed.index)


def list_principals(state: State) -> list[Principal]:
    return [
        Principal(p.name, Role(p.role), p.pubkey)
        for p in sorted(state.principals.values(), key=lambda p: p.name)
    ]
