"""A screens report as Rich tables (for people) and as one JSON document (for scripts)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from rich.console import JustifyMethod
from rich.table import Table

from custodiet.screens import SCREENS
from custodiet.screens.model import Case, Report
from custodiet.screens.score import PatternScore


def plain(value: Any) -> Any:
    """A JSON-friendly form of a value a screen returned (dates as ISO text, money a number)."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return number(value)
    return value


def number(value: Decimal) -> float | str:
    """A decimal as a JSON number when a 64-bit float gives back the same decimal (at most 15
    significant digits), else as a string with its exact digits."""
    if value.is_finite() and len(value.as_tuple().digits) <= 15:
        return float(value)
    return str(value)


def dollars(amount: Decimal) -> str:
    return f"${amount:,.2f}"


def report_document(report: Report) -> dict[str, Any]:
    """The whole report as JSON-ready data: cases, per-screen summary, total, refusals."""
    return {
        "agreement": report.agreement_id,
        "agreement_version": report.agreement_version,
        "cases": [_case_document(c) for c in report.cases],
        "summary": [
            {
                "screen": s.screen,
                "cases": s.cases,
                "amount_at_risk": number(s.amount_at_risk),
                "ledger_index": s.ledger_index,
                "truncated": s.truncated,
            }
            for s in report.summaries
        ],
        "total": {
            "cases": report.total_cases,
            "amount_at_risk": number(report.total_amount_at_risk),
        },
        "refused": [
            {"screen": r.screen, "rule": r.rule, "hint": r.hint, "ledger_index": r.ledger_index}
            for r in report.refusals
        ],
    }


def case_rows(report: Report) -> tuple[list[str], list[list[object]]]:
    """The cases flat: one row per (record, pattern), the evidence keys as columns."""
    keys = sorted({k for case in report.cases for f in case.findings for k in f.evidence})
    columns = ["record_table", "record_id", "pattern", "payee", "amount_at_risk", *keys]
    rows = [
        [case.record_table, case.record_id, finding.pattern, case.payee, case.amount_at_risk,
         *(finding.evidence.get(k) for k in keys)]
        for case in report.cases
        for finding in case.findings
    ]  # fmt: skip
    return columns, rows


def cases_file(kind: str, report: Report) -> bytes:
    """The cases as the bytes of a file: flat rows (csv, parquet) or the report (json)."""
    from custodiet.gateway.rendering import file_bytes

    columns, rows = case_rows(report)
    return file_bytes(kind, columns, rows, report_document(report))


def _case_document(case: Case) -> dict[str, Any]:
    evidence: dict[str, list[dict[str, Any]]] = {}
    for finding in case.findings:
        evidence.setdefault(finding.pattern, []).append(
            {k: plain(v) for k, v in finding.evidence.items()}
        )
    return {
        "record_table": case.record_table,
        "record_id": case.record_id,
        "patterns": list(case.patterns),
        "payee": case.payee,
        "amount_at_risk": number(case.amount_at_risk),
        "evidence": evidence,
    }


def summary_table(report: Report, title: str = "Improper-payment screens") -> Table:
    """Cases and dollars at risk per screen, and in total (each record counted once)."""
    table = Table(title=title, title_justify="left")
    table.add_column("screen")
    table.add_column("cases", justify="right")
    table.add_column("dollars at risk", justify="right")
    table.add_column("ledger entry", justify="right")
    for s in report.summaries:
        flag = " (truncated)" if s.truncated else ""
        table.add_row(
            s.screen, f"{s.cases:,}{flag}", dollars(s.amount_at_risk), str(s.ledger_index)
        )
    for r in report.refusals:
        table.add_row(r.screen, "refused", "-", str(r.ledger_index))
    table.add_section()
    table.add_row(
        "total (distinct records)",
        f"{report.total_cases:,}",
        dollars(report.total_amount_at_risk),
        "",
        style="bold",
    )
    return table


def cases_table(report: Report, limit: int, width: int | None = None) -> Table:
    """The first ``limit`` cases, largest amounts first, with their evidence in words: in full,
    or with ``width`` (the terminal's) cut to one line per case."""
    shown = sorted(report.cases, key=lambda c: (-c.amount_at_risk, c.record_id))[:limit]
    rows = [
        (c.record_id, ", ".join(c.patterns), c.payee, dollars(c.amount_at_risk),
         "; ".join(_evidence_text(f.evidence) for f in c.findings))
        for c in shown
    ]  # fmt: skip
    table = Table(title=f"Cases ({len(shown)} of {report.total_cases:,})", title_justify="left")
    headers = ("record", "patterns", "payee token", "amount", "evidence")
    # one line per case: every column as wide as its widest cell, the evidence cut to the rest
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    rest = max(len("evidence"), (width or 0) - sum(widths[:-1]) - 3 * len(headers) - 1)
    for i, column in enumerate(headers):
        justify: JustifyMethod = "right" if column == "amount" else "left"
        if width is None:
            table.add_column(column, justify=justify)
        elif column == "evidence":
            table.add_column(column, no_wrap=True, overflow="ellipsis", max_width=rest)
        else:
            table.add_column(column, justify=justify, no_wrap=True, min_width=widths[i])
    for row in rows:
        table.add_row(*row)
    return table


def _evidence_text(evidence: Mapping[str, Any]) -> str:
    return ", ".join(
        f"{k.replace('_', ' ')} {plain(v)}" for k, v in evidence.items() if v is not None
    )


def screens_text() -> str:
    """Every screen: its rule and what an agreement must grant for it, one block each."""
    blocks = []
    for screen in SCREENS.values():
        needs = "; ".join(
            f"{d}.{c}: {t.value}" for d, cols in screen.needs.items() for c, t in cols.items()
        )
        blocks.append(f"{screen.name}\n  flags: {screen.default_rule}\n  needs: {needs}")
    return "\n\n".join(blocks)


def score_table(scores: Iterable[PatternScore], title: str) -> Table:
    """Precision, recall and dollar recall per pattern against the planted truth."""
    table = Table(title=title, title_justify="left")
    for column in ("pattern", "planted", "flagged", "precision", "recall", "dollar recall"):
        table.add_column(column, justify="left" if column == "pattern" else "right")
    for s in scores:
        table.add_row(
            s.pattern,
            f"{s.planted:,}",
            f"{s.flagged:,}",
            f"{s.precision:.3f}",
            f"{s.recall:.3f}",
            f"{s.dollar_recall:.3f}",
        )
    return table
