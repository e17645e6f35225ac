"""`case list`, `case show`, `report`: a signed ``case.read`` of one agreement's cases.

Case facts are released data (tokens, amounts) of one agreement: the replay
(``ledger.replay._case_read``) lets its reviewer, the custodians and the overseers read them,
and the read is on the ledger as one ``case.read`` entry stating what was released (the number
of cases and of report rows, and the SHA-256 of the released document), never a value. The
request is checked before anything is read; a refusal is on the ledger.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from custodiet import entries
from custodiet.cases.model import CaseView
from custodiet.cases.report import Row, month_end, report_rows
from custodiet.errors import CustodietError, InputError
from custodiet.identity import SignedRequest
from custodiet.ledger.replay import CASE_PREFIX, Violation, case_read_target, sha256_hex
from custodiet.runtime import Runtime, refused


@dataclass(frozen=True)
class CaseRead:
    agreement: str
    cases: tuple[CaseView, ...]  # the agreement's cases, or the one asked for (none for a report)
    report: tuple[Row, ...] | None  # the month's report rows when a month was asked for
    ledger_index: int
    output: bytes | None = None  # the file ``args.output`` asked for, as recorded on the ledger


def read_cases(rt: Runtime, signed: SignedRequest) -> CaseRead:
    """The cases (or one case, or a month's report rows) ``signed`` asks for, once the read is
    on the ledger."""
    from custodiet.cases.model import CASE_COLUMNS
    from custodiet.cases.store import case_table
    from custodiet.gateway.rendering import file_bytes, recorded, requested_output

    _check_args(signed.args)
    rt.authorize(entries.action(signed), refuse_as=signed)
    output = requested_output(rt, signed)
    try:
        agreement_id, case = case_read_target(rt.refresh(), signed.args)
    except Violation as exc:  # the state moved since the check: refused like the check
        rt.refuse(refused(exc), attempted="case.read", actor=signed.principal, signed=signed)
    month = signed.args.get("month")
    try:
        views = case_table(rt, agreement_id)
    except CustodietError as exc:  # e.g. a run file changed since its entry: on the ledger
        rt.refuse(exc, attempted="case.read", actor=signed.principal, signed=signed,
                  context={"agreement": agreement_id})  # fmt: skip
    if case is not None:
        views = [v for v in views if v.facts.id == case]
    views = [v for v in views if _selected(v, signed.args)]
    rows = None if not isinstance(month, str) else tuple(report_rows(views, month))
    released = () if rows is not None else tuple(views)
    document = read_document(CaseRead(agreement_id, released, rows, -1))
    rendered = None if output is None else file_bytes(
        output, CASE_COLUMNS, [v.row() for v in released], document["cases"]
    )  # fmt: skip
    done = rt.commit(
        entries.action(
            signed, agreement=agreement_id, **({"case": case} if case is not None else {}),
            cases=len(released), report_rows=0 if rows is None else len(rows),
            released_sha256=sha256_hex({k: document[k] for k in ("cases", "report")}),
            **(recorded(output, rendered) if output and rendered is not None else {}),
        ),
        refuse_as=signed,
    )  # fmt: skip
    return CaseRead(agreement_id, released, rows, done.index, rendered)


def _selected(view: CaseView, args: Mapping[str, Any]) -> bool:
    """Whether the case passes the read's filters (``state``, ``screen``, ``match``)."""
    state, screen, match = args.get("state"), args.get("screen"), args.get("match")
    return (
        (state is None or view.state == state)
        and (screen is None or view.facts.screen == screen)
        and (match is None or view.facts.evidence.get("match") in match)
    )


def _check_args(args: Mapping[str, Any]) -> None:
    """Bad input is exit 2 before anything is recorded (the replay checks the same shapes)."""
    case, month = args.get("case"), args.get("month")
    if case is not None and not (isinstance(case, str) and CASE_PREFIX.match(case)):
        raise InputError(
            "a case id is 8 to 64 leading hex digits",
            hint="give at least 8 hex digits of an id `custodiet case list` shows",
            code="CUST751",
        )
    if month is not None:
        month_end(str(month))
    match = args.get("match")
    if match is not None:
        from custodiet.gateway.match_quality import CATEGORIES

        if not (isinstance(match, list) and match and all(m in CATEGORIES for m in match)):
            raise InputError(
                f"the request's match must be a list of {', '.join(CATEGORIES)}",
                hint="check `case list --match`",
                code="CUST720",
            )


def row_document(row: Row) -> dict[str, Any]:
    return {"screen": row.screen, "program": row.program, "state": row.state,
            "payment_month": row.payment_month, "cases": row.cases,
            "amount_at_risk": str(row.amount_at_risk), "recovered": str(row.recovered)}  # fmt: skip


def read_document(read: CaseRead) -> dict[str, Any]:
    return {
        "agreement": read.agreement,
        "cases": [v.document() for v in read.cases],
        "report": None if read.report is None else [row_document(r) for r in read.report],
        "ledger_index": read.ledger_index,
        **({} if read.output is None else {"output": base64.b64encode(read.output).decode()}),
    }


def read_from_document(doc: Mapping[str, Any], output: bytes | None = None) -> CaseRead:
    """The read an answer document holds; ``output`` is its file, decoded by the caller."""
    from custodiet.cases.store import view_from_document

    report: Sequence[Mapping[str, Any]] | None = doc["report"]
    rows = None if report is None else tuple(
        Row(r["screen"], r["program"], r["state"], r["payment_month"], int(r["cases"]),
            Decimal(r["amount_at_risk"]), Decimal(r["recovered"]))
        for r in report
    )  # fmt: skip
    cases = tuple(view_from_document(d) for d in doc["cases"])
    return CaseRead(doc["agreement"], cases, rows, int(doc["ledger_index"]), output)
