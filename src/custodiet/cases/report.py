"""The monthly adjudication report of an agreement: counts and dollars by screen, program,
adjudication state and payment month, as the ledger's case states stood at the month's end.

Each case counts once per row it falls in: its state is the last ``case.set`` the ledger
recorded before the month ended (``open`` when none), and a case a monitor run opened after the
month ended is not in it. Dollars are the amounts at risk the screens found and, for recovered
cases, the amounts the reviewer recorded as recovered.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from custodiet.cases.model import CaseView
from custodiet.errors import InputError
from custodiet.gateway.rendering import rows_csv

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
COLUMNS = ("screen", "program", "state", "payment_month", "cases", "amount_at_risk",
           "recovered")  # fmt: skip


@dataclass(frozen=True)
class Row:
    screen: str
    program: str
    state: str
    payment_month: str
    cases: int
    amount_at_risk: Decimal
    recovered: Decimal


def month_end(month: str) -> dt.datetime:
    """The first instant after ``month`` (YYYY-MM), UTC; exit 2 for anything else."""
    found = MONTH.match(month)
    if found is None:
        raise InputError(f"--month {month!r} is not YYYY-MM", hint="e.g. --month 2024-03",
                         code="CUST749")  # fmt: skip
    year, number = int(found[1]), int(found[2])
    return dt.datetime(year + number // 12, number % 12 + 1, 1, tzinfo=dt.UTC)


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def report_rows(views: Sequence[CaseView], month: str) -> list[Row]:
    end = month_end(month)
    groups: dict[tuple[str, str, str, str], list[Decimal]] = {}
    for view in views:
        steps = [s for s in view.history if _time(s.time) < end]
        if not steps:
            continue
        last = steps[-1]
        key = (view.facts.screen, view.facts.program, last.state, view.facts.month)
        totals = groups.setdefault(key, [Decimal(0), Decimal(0), Decimal(0)])
        totals[0] += 1
        totals[1] += view.facts.amount
        totals[2] += Decimal(last.amount) if last.amount is not None else Decimal(0)
    return [Row(*key, int(t[0]), t[1], t[2]) for key, t in sorted(groups.items())]


def report_csv(rows: Sequence[Row]) -> str:
    return rows_csv(COLUMNS, [[r.screen, r.program, r.state, r.payment_month, r.cases,
                               f"{r.amount_at_risk:.2f}", f"{r.recovered:.2f}"]
                              for r in rows])  # fmt: skip


def _sum(rows: Sequence[Row], by: str) -> list[tuple[str, int, Decimal, Decimal]]:
    totals: dict[str, list[Decimal]] = {}
    for r in rows:
        t = totals.setdefault(str(getattr(r, by)) or "(no date)", [Decimal(0)] * 3)
        t[0] += r.cases
        t[1] += r.amount_at_risk
        t[2] += r.recovered
    return [(k, int(t[0]), t[1], t[2]) for k, t in sorted(totals.items())]


def _bars(title: str, items: Sequence[tuple[str, Decimal]], money: bool) -> str:
    """A horizontal bar chart as inline SVG (no script, no external asset)."""
    height = 24 * len(items) + 30
    top = max((v for _, v in items), default=Decimal(0)) or Decimal(1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="640" height="{height}" '
             f'role="img" aria-label="{html.escape(title)}">',
             f'<text x="0" y="16" font-weight="bold">{html.escape(title)}</text>']  # fmt: skip
    for i, (label, value) in enumerate(items):
        y = 28 + 24 * i
        width = int(360 * value / top)
        shown = f"${value:,.2f}" if money else f"{value:,}"
        parts.append(f'<text x="0" y="{y + 14}" font-size="12">{html.escape(label)}</text>')
        parts.append(f'<rect x="180" y="{y}" width="{width}" height="18" fill="#3b6ea5"/>')
        parts.append(f'<text x="{186 + width}" y="{y + 14}" font-size="12">{shown}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def report_html(agreement_id: str, month: str, rows: Sequence[Row]) -> str:
    e = html.escape
    cases = sum(r.cases for r in rows)
    at_risk = sum((r.amount_at_risk for r in rows), Decimal(0))
    recovered = sum((r.recovered for r in rows), Decimal(0))
    by_state = _sum(rows, "state")
    by_screen = _sum(rows, "screen")
    by_program = _sum(rows, "program")
    by_month = _sum(rows, "payment_month")
    charts = [
        _bars("Cases by adjudication state", [(k, Decimal(n)) for k, n, _, _ in by_state], False),
        _bars("Dollars at risk by screen", [(k, d) for k, _, d, _ in by_screen], True),
        _bars("Dollars at risk by program", [(k, d) for k, _, d, _ in by_program], True),
        _bars("Dollars at risk by payment month", [(k, d) for k, _, d, _ in by_month], True),
        _bars("Dollars recovered by screen", [(k, r) for k, _, _, r in by_screen], True),
    ]
    table = "\n".join(
        f"<tr><td>{e(r.screen)}</td><td>{e(r.program)}</td><td>{e(r.state)}</td>"
        f"<td>{e(r.payment_month)}</td><td>{r.cases}</td><td>${r.amount_at_risk:,.2f}</td>"
        f"<td>${r.recovered:,.2f}</td></tr>"
        for r in rows
    )
    head = "".join(f"<th>{e(c)}</th>" for c in COLUMNS)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Adjudication report: {e(agreement_id)}, {e(month)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}</style></head>
<body>
<h1>Adjudication report: {e(agreement_id)}, {e(month)}</h1>
<p>Case states as the ledger recorded them at the end of {e(month)} (UTC).
{cases} cases, ${at_risk:,.2f} at risk, ${recovered:,.2f} recovered.</p>
{"".join(f"<figure>{c}</figure>" for c in charts)}
<table><thead><tr>{head}</tr></thead><tbody>
{table}
</tbody></table>
</body></html>
"""
