"""Row filters: one boolean SQL expression over columns the agreement itself releases in the clear.

A filter decides which rows exist for the reviewer, so it is as much a query over the raw data as
the reviewer's own SQL: it uses the queries' allow-list (``agreements.allowlist``: only listed
syntax and scalar functions; no subquery, aggregate or window), and it may read only columns the
same grant releases as they are (treatment ``allow``) that are not identifiers, record keys or
quasi-identifiers. A filter over an identifier or a denied column would be a membership oracle
for values nobody may see (and ``agreement show`` prints the filter to everyone).

What runs is never the YAML text: ``row_filter_sql`` parses it, checks it and re-renders the tree
(identifiers quoted, comments dropped), so a trailing ``--`` comment or a stray quote cannot
change the SQL around it.
"""

from __future__ import annotations

from collections.abc import Collection

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from custodiet.agreements import allowlist as lists
from custodiet.agreements.model import Mode

__all__ = ["RowFilterProblem", "checked_row_filter", "row_filter_problem", "row_filter_sql"]

BOOLEAN_ROOTS: tuple[type[exp.Expr], ...] = (
    exp.Predicate,
    exp.Connector,
    exp.Not,
    exp.Boolean,
)
# Query structure is never part of a filter, even where the query allow-list has it.
NOT_IN_A_FILTER: frozenset[type[exp.Expr]] = frozenset(
    {
        exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery, exp.With, exp.CTE,
        exp.TableAlias, exp.From, exp.Join, exp.Table, exp.Star, exp.Alias, exp.Where,
        exp.Group, exp.Having, exp.Qualify, exp.Order, exp.Ordered, exp.Limit, exp.Offset,
        exp.Distinct, exp.Window, exp.WindowSpec, exp.Filter, exp.Values, exp.Exists,
    }
)  # fmt: skip


class RowFilterProblem(ValueError):
    """What is wrong with a row filter, in one line (the caller adds FILE:LINE)."""


def checked_row_filter(
    text: str, columns: Collection[str], readable: Collection[str] | None = None
) -> exp.Expr:
    """The filter's checked tree; ``columns`` exist in the dataset, ``readable`` may be read
    (None: any of ``columns``). Raises ``RowFilterProblem``."""
    try:
        parsed = sqlglot.parse(text, dialect="duckdb")
    except SqlglotError:  # ParseError and TokenError (an unterminated quote) alike
        raise RowFilterProblem("row filter is not valid SQL") from None
    except RecursionError:
        raise RowFilterProblem("row filter is nested too deeply") from None
    if len(parsed) != 1 or parsed[0] is None:
        raise RowFilterProblem("row filter must be exactly one expression")
    tree = parsed[0]
    for node in tree.walk():
        problem = _node_problem(node, columns, readable)
        if problem:
            raise RowFilterProblem(problem)
    if not _is_boolean(tree):
        raise RowFilterProblem(
            "row filter must be a boolean condition (a comparison, IN, BETWEEN, LIKE, ...)"
        )
    return tree


def row_filter_problem(
    text: str, columns: Collection[str], readable: Collection[str] | None = None
) -> str | None:
    """What is wrong with ``text`` as a row filter, or None if it is fine."""
    try:
        checked_row_filter(text, columns, readable)
    except RowFilterProblem as problem:
        return str(problem)
    return None


def row_filter_sql(text: str, columns: Collection[str], *, table: str | None = None) -> str:
    """The SQL that runs for a filter: the checked tree re-rendered (DuckDB, identifiers quoted,
    no comments), its columns qualified by ``table`` when given. Raises ``RowFilterProblem``."""
    tree = checked_row_filter(text, columns)
    if table is not None:
        for column in tree.find_all(exp.Column):
            column.set("table", exp.to_identifier(table))
    return "(" + tree.sql(dialect="duckdb", identify=True, comments=False) + ")"


def _node_problem(
    node: exp.Expr, columns: Collection[str], readable: Collection[str] | None
) -> str | None:
    if isinstance(node, exp.Column):
        if node.table or node.args.get("db") or node.args.get("catalog"):
            return f"row filter may not qualify columns ({node.sql(dialect='duckdb')})"
        if node.name not in columns:
            return f"row filter names unknown column {node.name!r}"
        if readable is not None and node.name not in readable:
            return (
                f"row filter reads column {node.name!r}, which the agreement does not release "
                "in the clear (a filter may read only allowed columns that are not identifiers, "
                "keys or quasi-identifiers)"
            )
        return None
    kind = type(node)
    if kind in NOT_IN_A_FILTER or isinstance(node, exp.AggFunc):
        return f"{kind.__name__} is not allowed in a row filter"
    if kind in lists.NODES:
        pass
    elif isinstance(node, exp.Func):
        if Mode.AGGREGATE not in lists.function_modes(node):
            return f"function {lists.function_name(node)!r} is not allowed in a row filter"
    else:
        return f"{kind.__name__} is not allowed in a row filter"
    if isinstance(node, exp.Var) and type(node.parent) not in lists.VAR_PARENTS:
        return f"keyword {node.name!r} is not allowed in a row filter"
    if isinstance(node, exp.DataType) and node.this not in lists.CAST_TYPES:
        return f"cast to {node.sql(dialect='duckdb')} is not allowed in a row filter"
    allowed = lists.ARGS.get(kind)
    if allowed is not None:
        for key, value in node.args.items():
            if value and key not in allowed:
                return f"{kind.__name__} option {key.upper()} is not allowed in a row filter"
    return None


def _is_boolean(tree: exp.Expr) -> bool:
    while isinstance(tree, exp.Paren):
        tree = tree.this
    return isinstance(tree, BOOLEAN_ROOTS)
