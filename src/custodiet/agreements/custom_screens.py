"""Custom screens (``custom_screens:``): what is checked when the agreement is applied.

The custodians approve a custom screen's SQL with the agreement. At apply time it must be one
SELECT whose output starts with the screens' four columns (``record_table``, ``record_id``,
``payee``, ``amount``; named, no star) and that reads only tables the agreement grants (or the
projection's ``death_match``). Each run then checks it with the queries' checker against the
built projection like any query (``screens.run``): a screen reading what the agreement denies
is refused there, on the ledger. Problems name ``FILE:LINE: custom_screens.N.field``.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from custodiet.agreements.model import Agreement, Mode
from custodiet.errors import InputError

LEADING_COLUMNS = ("record_table", "record_id", "payee", "amount")
DERIVED_TABLES = frozenset({"death_match"})

Where = Callable[[tuple[str | int, ...]], str]


def check_custom_screens(agreement: Agreement, where: Where) -> None:
    """Raise ``InputError`` (CUST722) naming the first custom screen that cannot be run."""
    seen: set[str] = set()
    for index, screen in enumerate(agreement.custom_screens):
        loc = ("custom_screens", index)
        if agreement.mode is not Mode.PSEUDONYMOUS:
            raise _problem(where(loc), "custom screens run only under a pseudonymous agreement")
        if screen.name in seen:
            raise _problem(where((*loc, "name")), f"screen name {screen.name!r} is repeated")
        seen.add(screen.name)
        problem = _sql_problem(screen.sql, frozenset(agreement.datasets) | DERIVED_TABLES)
        if problem:
            raise _problem(where((*loc, "sql")), problem)


def _sql_problem(sql: str, tables: frozenset[str]) -> str | None:
    try:
        parsed = sqlglot.parse(sql, dialect="duckdb")
    except SqlglotError:
        return "not valid SQL"
    except RecursionError:
        return "nested too deeply"
    if len(parsed) != 1 or not isinstance(parsed[0], exp.Select):
        return "must be exactly one SELECT"
    tree = parsed[0]
    names = list(tree.named_selects)
    if any(isinstance(e, exp.Star) or (isinstance(e, exp.Column) and e.is_star)
           for e in tree.expressions):  # fmt: skip
        return "must name its output columns (no *)"
    if tuple(names[: len(LEADING_COLUMNS)]) != LEADING_COLUMNS:
        return f"must return {', '.join(LEADING_COLUMNS)} as its first four columns"
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        if table.name not in ctes and table.name not in tables:
            return f"reads table {table.name!r}, which the agreement does not grant"
    return None


def _problem(loc: str, problem: str) -> InputError:
    return InputError(
        f"{loc}: {problem}",
        hint="a custom screen is one SELECT over the agreement's datasets returning "
        "record_table, record_id, payee, amount first (docs/agreements.md)",
        code="CUST722",
    )
