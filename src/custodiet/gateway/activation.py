"""Custodian-side use cases that end in a built projection: approve, and rebuild.

An approval that makes a version active builds its protected projection at once, in the
approving custodian's request, on the vault's side, from re-hashed registered sources; a
reviewer's request never builds anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from custodiet.agreements.lifecycle import ApprovalStatus, active_agreement, approve
from custodiet.errors import RefusedError
from custodiet.gateway.projection import build_for
from custodiet.identity import SignedRequest
from custodiet.runtime import Runtime

if TYPE_CHECKING:
    from custodiet.progress import Progress


@dataclass(frozen=True)
class Approved:
    status: ApprovalStatus
    projection: Path | None  # built when this approval made the version active


def approve_and_activate(
    rt: Runtime, signed: SignedRequest, progress: Progress | None = None
) -> Approved:
    """Record a custodian's approval; build the projection if the version became active
    (``progress`` hears of each table built)."""
    status = approve(rt, signed)
    if not status.active:
        return Approved(status, None)
    active = active_agreement(rt.state, status.id, rt.now())
    return Approved(status, build_for(rt, active, progress=progress))


def rebuild(rt: Runtime, signed: SignedRequest, progress: Progress | None = None) -> Path:
    """A custodian's signed request to rebuild the active version's projection."""
    agreement_id = signed.args.get("agreement")
    if not isinstance(agreement_id, str):
        agreement_id = ""
    try:
        active = active_agreement(rt.refresh(), agreement_id, rt.now())
    except RefusedError as exc:
        rt.refuse(exc, attempted=signed.action, actor=signed.principal, signed=signed,
                  context={"agreement": agreement_id})  # fmt: skip
    return build_for(rt, active, signed, progress)
