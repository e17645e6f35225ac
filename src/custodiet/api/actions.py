"""Every principal action the API takes: its route, its request action and its service.

Each service takes ``(rt, signed)`` exactly as the CLI calls it; the route only checks that the
signed request is for this route's action, authenticates it (a refusal is on the ledger before
any work is done for an unauthenticated caller), and shapes the result as JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from custodiet.api import documents
from custodiet.identity import SignedRequest
from custodiet.runtime import Runtime

Service = Callable[[Runtime, SignedRequest], dict[str, Any]]


def _add_principal(rt: Runtime, signed: SignedRequest) -> dict[str, Any]:
    from custodiet.principals import add_principal

    return documents.change(add_principal(rt, signed))


def _remove_principal(rt: Runtime, signed: SignedRequest) -> dict[str, Any]:
    from custodiet.principals import remove_principal

    return documents.change(remove_principal(rt, signed))


def _add_dataset(rt: Runtime, signed: SignedRequest) -> dict[str, Any]:
    from custodiet.catalog.registry import add_dataset

    return documents.registration(add_dataset(rt, signed))


def _update_dataset(rt: Runtime, signed: SignedRequest) -> dict[str, Any]:
    from custodiet.gateway.growth import update_and_extend

    done = update_and_extend(rt, signed)
    return {**documents.registration(done.registration), "extended": list(done.extended)}


def _propose(rt: Runtime, signed: SignedRequest) -> dict[str, Any]:
    from custodiet.agreements.lifecycle import apply_agreement

    return documents.agreement_version(apply_agreement(rt, signed))


def _approve(rt: Runtime, signed: SignedRequest) -> dict[str, Any]:
    from custodiet.gateway.activation import approve_and_activate

    return documents.approved(approve_and_activate(rt, signed))


def _revoke(rt: Runtime, signed: SignedRequest) -> dict[str, Any]:
    from custodiet.agreements.lifecycle import revoke

    done = revoke(rt, signed)
    return documents.agreement_version(done)


def _build(rt: Runtime, signed: SignedRequest) -> dict[str, Any]:
    from custodiet.gateway.activation import rebuild

    return {"projection": rebuild(rt, signed).name}


def _query(rt: Runtime, signed: SignedRequest) -> dict[str, Any]:
    from custodiet.gateway.service import run_query

    return documents.query(run_query(rt, signed))


def _screens(rt: Runtime, signed: SignedRequest) -> dict[str, Any]:
    from custodiet.screens.render import report_document
    from custodiet.screens.run import run_screens

    report = run_screens(rt, signed)
    return {**report_document(report), **documents.run(report)}


def _reid_request(rt: Runtime, signed: SignedRequest) -> dict[str, Any]:
    from custodiet.reid import request_reid

    return documents.reid_request(request_reid(rt, signed))


def _reid_approve(rt: Runtime, signed: SignedRequest) -> dict[str, Any]:
    from custodiet.reid import approve_reid

    return documents.reid_request(approve_reid(rt, signed))


def _reid_deny(rt: Runtime, signed: SignedRequest) -> dict[str, Any]:
    from custodiet.reid import deny_reid

    return documents.reid_request(deny_reid(rt, signed))


def _reid_show(rt: Runtime, signed: SignedRequest) -> dict[str, Any]:
    from custodiet.reid import show_reid

    request_id = signed.args.get("request")
    return documents.release(
        request_id if isinstance(request_id, int) else -1, show_reid(rt, signed)
    )


def _monitor(rt: Runtime, signed: SignedRequest) -> dict[str, Any]:
    from custodiet.cases.monitor import monitor, run_document

    return run_document(monitor(rt, signed))


def _case_set(rt: Runtime, signed: SignedRequest) -> dict[str, Any]:
    from custodiet.cases.adjudicate import set_case

    return set_case(rt, signed).document()


def _case_read(rt: Runtime, signed: SignedRequest) -> dict[str, Any]:
    from custodiet.cases.read import read_cases, read_document

    return read_document(read_cases(rt, signed))


@dataclass(frozen=True)
class Action:
    path: str  # under /v1
    action: str  # the signed request's action
    service: Service
    summary: str


ACTIONS: tuple[Action, ...] = (
    Action("/principals/add", "principal.add", _add_principal, "Register a principal"),
    Action("/principals/remove", "principal.remove", _remove_principal, "Remove a principal"),
    Action("/datasets/add", "dataset.add", _add_dataset, "Register a dataset"),
    Action("/datasets/update", "dataset.update", _update_dataset, "Add a dataset version"),
    Action("/agreements/propose", "agreement.propose", _propose, "Propose an agreement"),
    Action("/agreements/approve", "agreement.approve", _approve, "Approve an agreement"),
    Action("/agreements/revoke", "agreement.revoke", _revoke, "Revoke an agreement"),
    Action("/agreements/build", "agreement.build", _build, "Rebuild a projection"),
    Action("/query", "query", _query, "Run one query under an agreement"),
    Action("/screens/run", "screen.run", _screens, "Run screens under an agreement"),
    Action("/reid/request", "reid.request", _reid_request, "Ask to re-identify cases"),
    Action("/reid/approve", "reid.approve", _reid_approve, "Approve a re-identification"),
    Action("/reid/deny", "reid.deny", _reid_deny, "Deny a re-identification"),
    Action("/reid/show", "reid.show", _reid_show, "Reveal an approved re-identification"),
    Action("/monitor", "monitor", _monitor, "Monitor an agreement: open the new cases"),
    Action("/cases/set", "case.set", _case_set, "Record a case's adjudication"),
    Action("/cases/read", "case.read", _case_read, "Read an agreement's cases or report"),
)

BY_ACTION = {a.action: a for a in ACTIONS}
