"""Row filters: one boolean SQL expression over a dataset's own columns, by allow-list only."""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

BOOLEAN_ROOTS: tuple[type[exp.Expr], ...] = (
    exp.Predicate,
    exp.Connector,
    exp.Not,
    exp.Boolean,
)
ALLOWED_NODES: frozenset[type[exp.Expr]] = frozenset(
    {
        exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Paren,
        exp.And, exp.Or, exp.Not, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE,
        exp.Is, exp.In, exp.Between, exp.Like, exp.ILike, exp.Cast, exp.DataType,
        exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.Neg, exp.Interval, exp.Var,
    }
)  # fmt: skip
ALLOWED_FUNCTIONS: frozenset[type[exp.Expr]] = frozenset(
    {
        exp.Lower, exp.Upper, exp.Trim, exp.Length, exp.Substring, exp.Coalesce, exp.Abs,
        exp.Year, exp.Month, exp.Day, exp.Extract, exp.DateTrunc, exp.TimestampTrunc,
    }
)  # fmt: skip


def row_filter_problem(text: str, columns: set[str]) -> str | None:
    """What is wrong with ``text`` as a row filter over ``columns``, or None if it is fine."""
    try:
        parsed = sqlglot.parse(text, dialect="duckdb")
    except ParseError:
        return "row filter is not valid SQL"
    if len(parsed) != 1 or parsed[0] is None:
        return "row filter must be exactly one expression"
    tree = parsed[0]
    for node in tree.walk():
        problem = _node_problem(node, columns)
        if problem:
            return problem
    if not _is_boolean(tree):
        return "row filter must be a boolean condition (a comparison, IN, BETWEEN, LIKE, ...)"
    return None


def _node_problem(node: exp.Expr, columns: set[str]) -> str | None:
    kind = type(node)
    if isinstance(node, exp.Column):
        if node.table:
            return f"row filter may not qualify columns ({node.sql(dialect='duckdb')})"
        if node.name not in columns:
            return f"row filter names unknown column {node.name!r}"
        return None
    if kind in ALLOWED_FUNCTIONS or kind in ALLOWED_NODES:
        return None
    if isinstance(node, exp.Func):
        return f"function {node.sql_name().lower()!r} is not allowed in a row filter"
    return f"{kind.__name__} is not allowed in a row filter"


def _is_boolean(tree: exp.Expr) -> bool:
    while isinstance(tree, exp.Paren):
        tree = tree.this
    return isinstance(tree, BOOLEAN_ROOTS)
