"""The case store, custodian side: one file of case facts per monitor run, and the case table.

``cases/<agreement>/run-<intent>.json`` holds the facts of the cases a monitor run opened; the
run's ``monitor`` entry on the ledger records that file's SHA-256, so a file changed since is
refused. ``cases/<agreement>/cases.json`` is the case table: derived from the ledger alone (the
runs that opened cases, the ``case.set`` entries the replay accepted) and the run files, and
brought up to date from where it stopped. Deleted, it is rebuilt identical; one that
disagrees with the replayed state is rebuilt from the genesis.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from custodiet.cases.model import CaseFacts, CaseView, Step
from custodiet.errors import InputError, SystemFailure
from custodiet.ledger.pin import write_atomically
from custodiet.ledger.replay import canonical, sha256_hex
from custodiet.runtime import Runtime
from custodiet.workspace import Workspace

TABLE = "cases.json"


def agreement_dir(ws: Workspace, agreement_id: str) -> Path:
    return ws.root / "cases" / agreement_id


def run_bytes(document: dict[str, Any]) -> bytes:
    return canonical(document)


def write_private(path: Path, data: bytes) -> None:
    """``data`` in ``path`` (0600, its directories 0700), replaced atomically and durably
    (``ledger.pin.write_atomically``); a failure is OSError, the file left as it was."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.parent.chmod(0o700)
    path.parent.chmod(0o700)
    try:
        write_atomically(path, data)
    except SystemFailure as exc:
        raise OSError(exc.message) from None


def write_run(ws: Workspace, agreement_id: str, intent: int, cases: Iterable[CaseFacts]) -> str:
    """Store the facts of the cases the run announced by ``intent`` opens; their SHA-256."""
    document = {"agreement": agreement_id, "intent": intent,
                "cases": [c.document() for c in cases]}  # fmt: skip
    data = run_bytes(document)
    if not document["cases"]:
        return sha256_hex(document)  # nothing opened: nothing to keep
    try:
        write_private(agreement_dir(ws, agreement_id) / f"run-{intent}.json", data)
    except OSError as exc:
        raise SystemFailure(
            f"the case store could not be written ({type(exc).__name__}); nothing recorded",
            hint="check the workspace's disk and permissions",
            code="CUST746",
        ) from None
    return sha256_hex(document)


def read_run(ws: Workspace, agreement_id: str, intent: int, sha256: Any) -> list[CaseFacts]:
    """The facts of run ``intent``, if the file still has the SHA-256 its entry recorded."""
    path = agreement_dir(ws, agreement_id) / f"run-{intent}.json"
    try:
        document = json.loads(path.read_bytes())
        if sha256_hex(document) != sha256:
            raise ValueError("digest")
        return [CaseFacts.from_document(c) for c in document["cases"]]
    except (OSError, ValueError, KeyError, TypeError):
        raise SystemFailure(
            f"the case facts of monitor run {intent} are missing or differ from what the "
            "ledger recorded",
            hint=f"restore {path.name} from a backup of the workspace; the ledger names it",
            code="CUST747",
        ) from None


def case_table(rt: Runtime, agreement_id: str) -> list[CaseView]:
    """Every case of ``agreement_id``, up to date with the ledger, in the order they opened."""
    if agreement_id not in rt.state.agreements:
        raise InputError(
            f"unknown agreement {agreement_id!r}", hint="see `custodiet agreement list`",
            code="CUST748",
        )  # fmt: skip
    path = agreement_dir(rt.ws, agreement_id) / TABLE
    size = rt.refresh().size
    cases, start = _load(rt, path, size)
    views = _follow(rt, agreement_id, cases, start, size)
    if not _agrees(rt, agreement_id, views):
        views = _follow(rt, agreement_id, {}, 0, size)
        if not _agrees(rt, agreement_id, views):
            raise SystemFailure(
                "the case table cannot be derived from the ledger's replayed state",
                hint="run `custodiet ledger audit`; the case store does not match the ledger",
                code="CUST747",
            )
    ordered = sorted(views.values(), key=lambda v: (v.opened_by, v.facts.id))
    if start != size or not path.exists():
        document = {"size": size, "root": base64.b64encode(rt.ledger.root(size)).decode(),
                    "cases": [v.document() for v in ordered]}  # fmt: skip
        with contextlib.suppress(OSError):  # the table is a cache: derived again next time
            write_private(path, canonical(document))
    return ordered


def _load(rt: Runtime, path: Path, size: int) -> tuple[dict[str, CaseView], int]:
    try:
        document = json.loads(path.read_bytes())
        stop = int(document["size"])
        if (
            not 0 < stop <= size
            or document["root"] != base64.b64encode(rt.ledger.root(stop)).decode()
        ):
            return {}, 0
        views = {d["id"]: view_from_document(d) for d in document["cases"]}
        return views, stop
    except (OSError, ValueError, KeyError, TypeError):
        return {}, 0


def view_from_document(doc: dict[str, Any]) -> CaseView:
    return CaseView(
        CaseFacts.from_document(doc),
        doc["agreement"],
        doc["state"],
        None if doc["recovered"] is None else Decimal(doc["recovered"]),
        tuple(Step(**s) for s in doc["history"]),
    )


def _follow(
    rt: Runtime, agreement_id: str, views: dict[str, CaseView], start: int, size: int
) -> dict[str, CaseView]:
    """``views`` with the entries ``start`` to ``size`` applied (those the replay accepted)."""
    views = dict(views)
    accepted = rt.state.cases
    for index, data in rt.ledger.entries(start, size):
        entry = json.loads(data)
        action = entry.get("action")
        if entry.get("agreement") != agreement_id or action not in ("monitor", "case.set"):
            continue
        if action == "monitor":
            new = [i for i, _ in entry.get("new_cases", []) if i in accepted
                   and accepted[i].entries[0] == index]  # fmt: skip
            if not new:
                continue
            opened = Step(index, entry["time"], entry["actor"], "open")
            for facts in read_run(rt.ws, agreement_id, entry["intent"], entry["cases_sha256"]):
                if facts.id in new:
                    views[facts.id] = CaseView(facts, agreement_id, "open", None, (opened,))
            continue
        case = entry.get("case")
        view = views.get(case) if isinstance(case, str) else None
        if view is None or index not in accepted[view.facts.id].entries:
            continue
        args = entry["request"]["args"]
        step = Step(index, entry["time"], entry["actor"], args["state"], args.get("amount"),
                    args.get("note"))  # fmt: skip
        amount = args.get("amount")
        views[case] = CaseView(view.facts, agreement_id, step.state,
                               None if amount is None else Decimal(amount),
                               (*view.history, step))  # fmt: skip
    return views


def _agrees(rt: Runtime, agreement_id: str, views: dict[str, CaseView]) -> bool:
    replayed = {c.id: c for c in rt.state.cases.values() if c.agreement == agreement_id}
    return set(replayed) == set(views) and all(
        views[i].state == c.state and [s.index for s in views[i].history] == c.entries
        for i, c in replayed.items()
    )
