"""Run screens through the gateway under one agreement and merge their findings per record.

Each screen is one query through ``gateway.service.run_query``: checked, run on the agreement's
protected projection, and written to the ledger like any other query. A screen whose needs the
agreement does not grant is refused, and the refusal is on the ledger too; the other screens run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from custodiet import entries
from custodiet.errors import CustodietError, InputError, RefusedError, SystemFailure
from custodiet.gateway.rendering import recorded, requested_output
from custodiet.gateway.service import QueryResult, authorized, execute_under, text_args
from custodiet.identity import SignedRequest
from custodiet.runtime import Runtime
from custodiet.screens import select_screens
from custodiet.screens.model import (
    CASE_COLUMNS,
    Case,
    Finding,
    Report,
    Screen,
    ScreenRefusal,
    ScreenSummary,
)
from custodiet.screens.needs import refusal_for

if TYPE_CHECKING:
    from custodiet.gateway.policy import Policy
    from custodiet.progress import Progress

RecordKey = tuple[str, str]
# (report, intent index, output format) -> (report to answer, fields for the run's outcome
# entry, the rendered file): how ``monitor`` keeps only the cases earlier runs did not see
Narrow = Callable[[Report, int, str | None], tuple[Report, dict[str, Any], bytes | None]]


class Restrict(Protocol):
    """How ``monitor`` runs a screen on the new rows only (cases/scope.py)."""

    def sql(self, screen: str, sql: str) -> str | None: ...  # None: the screen runs in full

    def policy(self, policy: Policy) -> Policy: ...  # what the restricted query is checked under


def run_screens(
    rt: Runtime, signed: SignedRequest, narrow: Narrow | None = None,
    restrict: Restrict | None = None, progress: Progress | None = None,
) -> Report:  # fmt: skip
    """Run the signed request's screens (``args.screens``; all when empty) under its agreement.

    One ``intent`` entry announces the run; each screen's query is then a ``query`` outcome of
    it, a screen the agreement cannot serve is a ``refusal`` naming the screen, and an entry
    named after the request's action (``screen.run``, ``monitor``) closes the run with its
    totals and what ``narrow`` adds. ``progress`` hears of each screen done."""
    from custodiet.gateway.check import check_query
    from custodiet.gateway.projection import load_policy, projection_path

    (agreement_id,) = text_args(rt, signed, "agreement")
    names = signed.args.get("screens") or []
    try:
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise InputError("the request's screens must be a list of names", code="CUST530")
        match = match_filter(signed.args.get("match"))
    except InputError as exc:
        rt.refuse(exc, attempted=signed.action, actor=signed.principal, signed=signed)
    output = requested_output(rt, signed)
    active = authorized(rt, signed, agreement_id)
    try:
        screens = select_screens(names, active.agreement.custom_screens)
    except InputError as exc:
        rt.refuse(exc, attempted=signed.action, actor=signed.principal, signed=signed)
    about = {"agreement": agreement_id, "agreement_version": active.version,
             "agreement_sha256": active.sha256}  # fmt: skip
    try:
        policy = load_policy(rt.ws, active)
        projection = projection_path(rt.ws, active)
    except CustodietError as exc:
        rt.refuse(exc, attempted=signed.action, actor=signed.principal, signed=signed,
                  context=about)  # fmt: skip
    intent = rt.commit(
        entries.intent(signed, **about, screens=[s.name for s in screens]), refuse_as=signed
    )
    merged: dict[RecordKey, _Merging] = {}
    summaries: list[ScreenSummary] = []
    refusals: list[ScreenRefusal] = []
    for ran, screen in enumerate(screens):
        if progress is not None:
            progress(ran, len(screens))
        sql = screen.sql_for(active.agreement.screens)
        if match and screen.reports_match:
            sql = with_match(sql, match)
        narrowed = None if restrict is None else restrict.sql(screen.name, sql)
        checked_under = policy
        if restrict is not None and narrowed is not None:
            sql, checked_under = narrowed, restrict.policy(policy)
        refusal = refusal_for(screen, active.agreement, active.version)
        if refusal is None:
            try:
                checked = check_query(sql, checked_under)
            except RefusedError as exc:
                refusal = exc
        if refusal is not None:
            index = rt.record(
                entries.refusal(refusal, attempted=signed.action, actor=signed.principal,
                                context={**about, "intent": intent.index, "screen": screen.name,
                                         "columns": list(screen.needed_columns())})
            )  # fmt: skip
            refusals.append(ScreenRefusal(screen.name, refusal.rule, refusal.hint or "", index))
            continue
        touched = {"sql": sql, "screen": screen.name, "datasets": list(checked.tables),
                   "columns": list(checked.columns)}  # fmt: skip
        result = execute_under(rt, intent.index, signed.principal, active, checked_under,
                               projection, checked, {**about, **touched},
                               what=signed.action)  # fmt: skip
        summaries.append(_summarize(screen, result, _collect(screen, result, merged)))
    if progress is not None:
        progress(len(screens), len(screens))
    cases = tuple(merged[key].case() for key in sorted(merged))
    report = Report(agreement_id, active.version, cases, tuple(summaries), tuple(refusals))
    extra: dict[str, Any] = {}
    if narrow is not None:
        report, extra, rendered = narrow(report, intent.index, output)
    elif output is not None:
        rendered = _rendered(rt, output, report, signed.principal,
                             {**about, "intent": intent.index})  # fmt: skip
    else:
        rendered = None
    done = rt.commit(
        entries.outcome(
            signed.action, intent.index, signed.principal, agreement_id,
            agreement_version=active.version, screens=[s.name for s in screens],
            cases=len(report.cases), refused=[r.screen for r in refusals], **extra,
            **(recorded(output, rendered) if output and rendered is not None else {}),
        )
    )  # fmt: skip
    return replace(report, ledger_index=done.index, output=rendered)


def match_filter(value: object) -> tuple[str, ...]:
    """The match categories a request keeps (``args.match``; empty: every category)."""
    from custodiet.gateway.match_quality import CATEGORIES

    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError("the request's match must be a list of categories", code="CUST720")
    unknown = [v for v in value if v not in CATEGORIES]
    if unknown or not value:
        raise InputError(
            "unknown match category" + (f" {unknown[0]!r}" if unknown else ": none given"),
            hint=f"choose from {', '.join(CATEGORIES)}",
            code="CUST720",
        )
    return tuple(c for c in CATEGORIES if c in value)


def with_match(sql: str, categories: tuple[str, ...]) -> str:
    """``sql`` keeping only the rows whose ``match`` is one of ``categories`` (validated names
    from ``CATEGORIES``, so quoting them is exact)."""
    listed = ", ".join(f"'{c}'" for c in categories)
    return f"SELECT * FROM ({sql.strip()}) AS screened WHERE screened.match IN ({listed})"


def _rendered(rt: Runtime, kind: str, report: Report, actor: str, context: dict[str, Any]) -> bytes:
    """The cases file the request asked for; a failure to render it is recorded."""
    from custodiet.screens.render import cases_file

    try:
        return cases_file(kind, report)
    except Exception as exc:  # fail closed: recorded, never shown raw
        failure = SystemFailure(
            f"internal error while writing the cases file ({type(exc).__name__})",
            hint="tell a custodian; the failure is on the ledger",
            code="CUST148",
        )
        rt.refuse(failure, attempted="screen.run", actor=actor, context=context)


class _Merging:
    """One record's findings as screens report them."""

    def __init__(self, record_table: str, record_id: str, payee: str, amount: Decimal) -> None:
        self.key = (record_table, record_id)
        self.payee = payee
        self.amount = amount
        self.findings: list[Finding] = []

    def case(self) -> Case:
        return Case(self.key[0], self.key[1], self.payee, self.amount, tuple(self.findings))


def _collect(
    screen: Screen, result: QueryResult, merged: dict[RecordKey, _Merging]
) -> dict[RecordKey, Decimal]:
    """Add the screen's rows to ``merged``; returns the amount of each record it flagged."""
    columns = list(result.columns)
    if tuple(columns[: len(CASE_COLUMNS)]) != CASE_COLUMNS:
        raise AssertionError(f"screen {screen.name} returns {columns[:4]}, not {CASE_COLUMNS}")
    evidence_columns = columns[len(CASE_COLUMNS) :]
    flagged: dict[RecordKey, Decimal] = {}
    for row in result.rows:
        record_table, record_id, payee, amount = (str(v) for v in row[: len(CASE_COLUMNS)])
        key = (record_table, record_id)
        entry = merged.get(key)
        if entry is None:
            entry = merged[key] = _Merging(record_table, record_id, payee, Decimal(amount))
        evidence = dict(zip(evidence_columns, row[len(CASE_COLUMNS) :], strict=True))
        entry.findings.append(Finding(screen.name, evidence))
        flagged[key] = entry.amount
    return flagged


def _summarize(
    screen: Screen, result: QueryResult, flagged: dict[RecordKey, Decimal]
) -> ScreenSummary:
    return ScreenSummary(
        screen=screen.name,
        cases=len(flagged),
        amount_at_risk=_total(flagged.values()),
        ledger_index=result.ledger_index,
        truncated=result.truncated,
    )


def _total(amounts: Iterable[Decimal]) -> Decimal:
    return sum(amounts, Decimal(0))
