"""The JSON shapes of results, as the API answers and the CLI's ``--format json`` prints them.

No web framework here: the CLI and the remote client import these too.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from custodiet.agreements.lifecycle import AgreementSummary, AgreementVersion
    from custodiet.catalog.model import Dataset
    from custodiet.catalog.registry import Registration
    from custodiet.gateway.activation import Approved
    from custodiet.gateway.service import QueryResult
    from custodiet.ledger.replay import ReidRecord
    from custodiet.principals import Change, Principal
    from custodiet.reid.service import Release
    from custodiet.screens.model import Report

Document = dict[str, Any]


def query(result: QueryResult) -> Document:
    """``rows`` and the ledger entry that released them; with ``output``, the file the gateway
    rendered for ``--out`` (base64), whose SHA-256 that entry records."""
    from custodiet.gateway.rendering import rows_document

    document = rows_document(result.columns, result.rows, result.notices)
    document = {
        **{k: document[k] for k in ("columns", "types", "rows")},
        "ledger_index": result.ledger_index,
        "notices": document["notices"],
    }
    if result.output is not None:
        document["output"] = base64.b64encode(result.output).decode("ascii")
    return document


def run(report: Report) -> Document:
    """What a screen run's answer adds to its report: the run's outcome entry and, with
    ``output``, the cases file the gateway rendered (base64), whose SHA-256 it records."""
    document: Document = {"ledger_index": report.ledger_index}
    if report.output is not None:
        document["output"] = base64.b64encode(report.output).decode("ascii")
    return document


def principal(p: Principal) -> Document:
    from custodiet.identity import fingerprint

    return {
        "name": p.name,
        "role": p.role.value,
        "pubkey": p.pubkey,
        "fingerprint": fingerprint(p.pubkey),
    }


def change(c: Change) -> Document:
    return {
        "principal": c.principal,
        "votes": c.votes,
        "required": c.required,
        "effective": c.effective,
        "ledger_index": c.ledger_index,
    }


def dataset(d: Dataset) -> Document:
    return {
        "name": d.name,
        "path": d.path,
        "table": d.table,
        "format": d.format,
        "rows": d.rows,
        "sha256": d.sha256,
        "version": d.version,
        "files": [{"path": p, "sha256": h} for p, h in d.file_digests],
        "columns": [
            {
                "name": c.name,
                "type": c.sql_type,
                "class": c.column_class.value,
                "identifier_kind": c.identifier_kind,
            }
            for c in d.columns.values()
        ],
    }


def dataset_summary(d: Dataset) -> Document:
    """``dataset`` with ``columns`` as how many (``custodiet dataset list``)."""
    return {**dataset(d), "columns": len(d.columns)}


def registration(r: Registration) -> Document:
    return {
        "dataset": dataset(r.dataset),
        "lowered": list(r.lowered),
        "votes": r.votes,
        "required": r.required,
        "effective": r.effective,
        "ledger_index": r.ledger_index,
    }


def agreement_version(v: AgreementVersion) -> Document:
    return {
        "id": v.id,
        "version": v.version,
        "sha256": v.sha256,
        "is_new": v.is_new,
        "ledger_index": v.ledger_index,
    }


def approved(a: Approved) -> Document:
    s = a.status
    return {
        "id": s.id,
        "version": s.version,
        "sha256": s.sha256,
        "approvals": s.approvals,
        "required": s.required,
        "active": s.active,
        "ledger_index": s.ledger_index,
        "projection": a.projection.name if a.projection is not None else None,
    }


def agreement(a: AgreementSummary) -> Document:
    return {
        "id": a.id,
        "version": a.version,
        "sha256": a.sha256,
        "status": a.status,
        "reviewer": a.reviewer,
        "proposer": a.proposer,
        "expires": a.expires.isoformat(),
        "approvals": list(a.approvals),
        "approvals_required": a.required,
        "active_version": a.active_version,
        "changes": list(a.changes),
        "document": a.document,
    }


def reid_request(r: ReidRecord) -> Document:
    return {
        "id": r.id,
        "agreement": r.agreement,
        "version": r.version,
        "requester": r.requester,
        "tokens": r.tokens,
        "fields": r.fields,
        "reason": r.reason,
        "sha256": r.sha256,
        "approvals": r.approvals,
        "expires": r.expires.isoformat(),
    }


def release(request_id: int, r: Release) -> Document:
    return {
        "request": request_id,
        "fields": list(r.request.fields),
        "records": [{"token": x.token, "dataset": x.dataset, **dict(x.fields)} for x in r.records],
        "records_sha256": r.records_sha256,
        "ledger_index": r.ledger_index,
    }
