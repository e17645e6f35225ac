"""One code path per command, wherever it runs: ``call`` runs a service here or on the server
(``--server``), and the reads return the same objects from either side."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from custodiet.errors import InputError

if TYPE_CHECKING:
    from custodiet.agreements.lifecycle import AgreementSummary
    from custodiet.catalog.model import Dataset
    from custodiet.cli.options import Session
    from custodiet.identity import SignedRequest
    from custodiet.ledger.receipts import LogProof
    from custodiet.ledger.replay import ReidRecord
    from custodiet.principals import Principal
    from custodiet.runtime import Runtime

T = TypeVar("T")


def _remote(rt: Session) -> Any:
    from custodiet.client import Remote

    return rt if isinstance(rt, Remote) else None


def local(rt: Session) -> bool:
    """True when services run here (no ``--server``): only then is there progress to show."""
    return _remote(rt) is None


def call(rt: Session, service: Callable[[Runtime, SignedRequest], T], request: SignedRequest) -> T:
    """``service(rt, request)`` here, or the same request run by the server."""
    remote = _remote(rt)
    if remote is None:
        return service(cast("Runtime", rt), request)
    from custodiet.client import perform

    return cast(T, perform(remote, request))


def log_proof(rt: Session, index: int) -> LogProof:
    """Entry ``index``, its inclusion proof and the latest signed checkpoint it leads to, from
    the workspace's ledger (checked as `ledger proof` checks it) or from the server's log."""
    from custodiet.ledger.receipts import LogProof, checkpoint_size

    remote = _remote(rt)
    if remote is None:
        from custodiet.ledger.serving import checked_inclusion_proof

        ledger = cast("Runtime", rt).ledger
        note = ledger.checkpoint()
        proof = checked_inclusion_proof(ledger, index, checkpoint_size(note))
        return LogProof(ledger.entry(index), proof.to_json(), note, ledger.vkey())
    note = remote.text("/checkpoint")
    proof = remote.get(f"/v1/proof/{index}", size=checkpoint_size(note))
    entry = remote.text("/v1/entries", **{"from": index, "to": index}).encode()
    return LogProof(entry.removesuffix(b"\n"), proof, note, remote.state.vkey)


def principals(rt: Session) -> list[Principal]:
    remote = _remote(rt)
    if remote is None:
        from custodiet.principals import list_principals

        return list_principals(cast("Runtime", rt).state)
    from custodiet.client import principal

    return [principal(d) for d in remote.get("/v1/principals")]


def datasets(rt: Session) -> list[Dataset]:
    remote = _remote(rt)
    if remote is None:
        from custodiet.catalog.registry import list_datasets

        return list_datasets(cast("Runtime", rt).state)
    from custodiet.client import dataset

    return [dataset(d) for d in remote.get("/v1/datasets")]


def get_dataset(rt: Session, name: str) -> Dataset:
    remote = _remote(rt)
    if remote is None:
        from custodiet.catalog.registry import get_dataset as get

        return get(cast("Runtime", rt).state, name)
    for found in datasets(rt):
        if found.name == name:
            return found
    raise InputError(
        f"unknown dataset {name!r}", hint="see `custodiet dataset list`", code="CUST237"
    )


def classes(rt: Session) -> dict[str, dict[str, str]]:
    """dataset -> column -> class, columns in the file's order."""
    return {
        d.name: {c.name: c.column_class.value for c in d.columns.values()} for d in datasets(rt)
    }


def agreements(rt: Session) -> list[AgreementSummary]:
    remote = _remote(rt)
    if remote is None:
        from custodiet.agreements.lifecycle import list_agreements

        return list_agreements(cast("Runtime", rt).state)
    from custodiet.client import agreement_summary

    return [agreement_summary(d) for d in remote.get("/v1/agreements")]


def agreement(rt: Session, agreement_id: str) -> AgreementSummary:
    remote = _remote(rt)
    if remote is None:
        from custodiet.agreements.lifecycle import show_agreement

        return show_agreement(cast("Runtime", rt).state, agreement_id)
    from urllib.parse import quote

    from custodiet.client import agreement_summary

    return cast(
        "AgreementSummary",
        agreement_summary(remote.get(f"/v1/agreements/{quote(agreement_id, safe='')}")),
    )


def pending_reid(rt: Session) -> list[ReidRecord]:
    remote = _remote(rt)
    if remote is None:
        from custodiet.reid import pending

        runtime = cast("Runtime", rt)
        return pending(runtime.state, runtime.now())
    from custodiet.client import reid_record

    return [reid_record(d) for d in remote.get("/v1/reid/pending")]


def agreement_file(rt: Session, path: Any) -> dict[str, Any]:
    """The agreement file as the canonical document a principal signs, validated (with
    ``FILE:LINE`` errors) against the catalog the ledger registers, wherever that is."""
    from custodiet.agreements.lifecycle import load_document

    remote = _remote(rt)
    if remote is None:
        return load_document(path, cast("Runtime", rt).state)[0]
    from custodiet.agreements.load import load_with_marks
    from custodiet.agreements.store import agreement_document
    from custodiet.agreements.validate import validate_agreement

    parsed, marks = load_with_marks(path)
    validate_agreement(parsed, {d.name: d for d in datasets(rt)}, marks)
    return agreement_document(parsed)
