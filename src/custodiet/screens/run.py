"""Run screens through the gateway under one agreement and merge their findings per record.

Each screen is one query through ``gateway.service.run_query``: checked, run on the agreement's
protected projection, and written to the ledger like any other query. A screen whose needs the
agreement does not grant is refused, and the refusal is on the ledger too; the other screens run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal

from custodiet.agreements.lifecycle import ActiveAgreement, require_active
from custodiet.errors import RefusedError
from custodiet.gateway.service import QueryResult, run_query
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
from custodiet.state import record
from custodiet.workspace import Workspace

RecordKey = tuple[str, str]


def run_screens(
    ws: Workspace,
    agreement_id: str,
    principal: str,
    names: Sequence[str] = (),
    *,
    now: dt.datetime | None = None,
) -> Report:
    """Run the named screens (all when none) as ``principal`` under ``agreement_id``."""
    screens = select_screens(names)
    try:
        active = require_active(ws, agreement_id, principal, now=now)
    except RefusedError as exc:
        record(
            ws,
            {
                "actor": principal,
                "action": "refusal",
                "agreement": agreement_id,
                "screens": [s.name for s in screens],
                "reason": exc.rule,
            },
        )
        raise
    merged: dict[RecordKey, _Merging] = {}
    summaries: list[ScreenSummary] = []
    refusals: list[ScreenRefusal] = []
    for screen in screens:
        refusal = refusal_for(screen, active.agreement, active.version)
        if refusal is not None:
            refusals.append(_recorded_refusal(ws, principal, active, screen, refusal))
            continue
        result = run_query(ws, agreement_id, principal, screen.sql, now=now)
        summaries.append(_summarize(screen, result, _collect(screen, result, merged)))
    cases = tuple(merged[key].case() for key in sorted(merged))
    return Report(agreement_id, active.version, cases, tuple(summaries), tuple(refusals))


def _recorded_refusal(
    ws: Workspace, principal: str, active: ActiveAgreement, screen: Screen, refusal: RefusedError
) -> ScreenRefusal:
    """Put the refusal of one screen on the ledger; the other screens still run."""
    index = record(
        ws,
        {
            "actor": principal,
            "action": "refusal",
            "agreement": active.agreement.id,
            "agreement_version": active.version,
            "agreement_sha256": active.sha256,
            "screen": screen.name,
            "columns": list(screen.needed_columns()),
            "reason": refusal.rule,
        },
    )
    return ScreenRefusal(screen.name, refusal.rule, refusal.hint or "", index)


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
