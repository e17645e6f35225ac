"""Passes that turn a checked tree into the SQL that runs; the re-rendered text is what executes.

Each pass is a small function over the tree, golden-tested in ``tests/fixtures/sql/<pass>.sql``:

    without_main_qualifier  main.payments -> payments (the checked name is the executed name)
    output_names   unnamed outputs keep the name the reviewer would expect (``count(*)``)
    hoisted_joins  FROM-first joins move from the table to the SELECT, where scopes see them
    qualified      resolve every column to its table, expand ``*`` to the granted columns
    try_casts      CAST -> TRY_CAST, so no value ever appears in a cast error
    explicit_calls CURRENT_DATE -> current_date(): the bare keyword would bind to an output alias
    contribution_counts (contributors.py)  aggregate mode: hidden distinct-person counts for the
                   group and for every value, per dataset table
    row_limited    LIMIT max_rows + 1 (the user's own smaller LIMIT and ORDER BY still hold)
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, traverse_scope
from sqlglot.schema import MappingSchema

from custodiet.errors import RefusedError
from custodiet.gateway.contributors import HiddenCount
from custodiet.gateway.parse import DUCKDB, locate, underline
from custodiet.gateway.policy import Policy

PERSONS_COLUMN = "_custodiet_persons"  # every hidden output's name starts with _custodiet_
E = TypeVar("E", bound=exp.Expr)
_last_scopes: tuple[exp.Expr, list[Scope]] | None = None


@dataclass(frozen=True)
class CheckedQuery:
    submitted: str
    executed: str  # re-rendered SQL (duckdb dialect) to run on the projection
    tables: tuple[str, ...]  # datasets touched, sorted
    columns: tuple[str, ...]  # "table.column" touched, sorted
    aggregate: bool  # an aggregate query (GROUP BY / aggregate functions)
    hidden: tuple[HiddenCount, ...]  # aggregate mode: hidden person counts, dropped at release
    row_limit: int  # executed SQL carries LIMIT row_limit (= max_rows + 1)
    fast: str | None = None  # aggregate mode: ``executed`` counting rows, not distinct persons
    fast_rows: str | None = None  # one table: ``fast`` with count(*) (no NULL persons needed)


@dataclass(frozen=True)
class ColumnSource:
    """Where one column reference reads from: a dataset table, a derived scope, or nothing."""

    column: exp.Column
    source: exp.Table | Scope | None


def granted_schema(policy: Policy) -> MappingSchema:
    """The schema sqlglot resolves against: only granted columns, so nothing else can resolve."""
    return _schema(
        tuple(
            (name, tuple((c.name, c.sql_type) for c in view.columns.values()))
            for name, view in policy.tables.items()
        )
    )


@functools.lru_cache(maxsize=64)
def _schema(tables: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]) -> MappingSchema:
    # Building a schema parses every type name; policies repeat, so build each one once.
    return MappingSchema({name: dict(columns) for name, columns in tables}, dialect=DUCKDB)


def qualified(tree: exp.Expr, policy: Policy, sql: str) -> exp.Expr:
    """Every column qualified by its table alias and every star expanded to granted columns."""
    try:
        return qualify(
            tree,
            dialect=DUCKDB,
            schema=granted_schema(policy),
            validate_qualify_columns=True,
            quote_identifiers=False,
            identify=False,
        )
    except SqlglotError as error:  # OptimizeError mostly; any sqlglot failure is a refusal
        raise _unresolved(tree, policy, sql, str(error)) from None


def _unresolved(tree: exp.Expr, policy: Policy, sql: str, reason: str) -> RefusedError:
    tables = sorted({t.name for t in tree.find_all(exp.Table) if t.name in policy.tables})
    allowed = "; ".join(f"{t}: {policy.describe_allowed(t)}" for t in tables)
    hint = f"this agreement allows {allowed}" if allowed else "query only the agreement's datasets"
    for column in tree.find_all(exp.Column):
        if not column.table and column.name and reason.startswith(f"Column '{column.name}'"):
            return RefusedError(
                f"column '{column.name}' is not in agreement '{policy.agreement_id}'",
                hint=hint,
                code="CUST332",
                excerpt=underline(sql, column),
                span=locate(sql, column),
            )
    return RefusedError(
        f"a column of the query does not resolve to a column of agreement '{policy.agreement_id}'",
        hint=hint,
        code="CUST332",
    )


def scopes(tree: exp.Expr) -> list[Scope]:
    """The tree's scopes; the last tree's are kept, as every check rule asks for them again."""
    global _last_scopes
    last = _last_scopes
    if last is None or last[0] is not tree:
        last = _last_scopes = (tree, traverse_scope(tree))
    return last[1]


def column_sources(tree: exp.Expr) -> Iterator[ColumnSource]:
    """Each column reference of a qualified tree, with the source it reads from."""
    for scope in scopes(tree):
        for column in scope.columns:
            yield ColumnSource(column, _source(scope, column.table))


def _source(scope: Scope | None, name: str) -> exp.Table | Scope | None:
    while scope is not None and name:
        source = scope.sources.get(name)
        if isinstance(source, exp.Table | Scope):
            return source
        scope = scope.parent
    return None


def dataset_tables(tree: exp.Expr) -> Iterator[exp.Table]:
    """Every table reference that reads a dataset (not a CTE or derived table)."""
    for scope in scopes(tree):
        for source in scope.sources.values():
            if isinstance(source, exp.Table):
                yield source


def try_casts(tree: E) -> E:
    """CAST(x AS t) -> TRY_CAST(x AS t): a failed cast yields NULL instead of quoting the value."""
    for cast in list(tree.find_all(exp.Cast)):
        if not isinstance(cast, exp.TryCast):
            cast.replace(exp.TryCast(this=cast.this, to=cast.args["to"]))
    return tree


def explicit_calls(tree: E) -> E:
    """``CURRENT_DATE`` -> ``current_date()``: DuckDB binds the bare keyword to an output named
    ``current_date`` (``SELECT current_date`` is named so by ``output_names``) and fails."""
    for node in list(tree.find_all(exp.CurrentDate)):
        if not node.args:
            node.replace(exp.Anonymous(this="current_date", expressions=[]))
    return tree


def row_limited(tree: exp.Query, row_limit: int) -> exp.Query:
    """LIMIT row_limit, or the user's own LIMIT if it is smaller (check guarantees a literal)."""
    current = tree.args.get("limit")
    if current is not None:
        row_limit = min(row_limit, int(current.expression.name))
    tree.set("limit", exp.Limit(expression=exp.Literal.number(row_limit)))
    return tree


def without_main_qualifier(tree: E) -> E:
    """``main.payments`` -> ``payments``: what was checked is then exactly what runs."""
    for node in tree.find_all(exp.Table, exp.Column):
        db = node.args.get("db")
        if db is not None and db.name.lower() == "main" and not node.args.get("catalog"):
            node.set("db", None)
    return tree


def hoisted_joins(tree: E) -> E:
    """``FROM a JOIN b SELECT ...`` parses with the join inside the table; move it to the SELECT."""
    for select in tree.find_all(exp.Select):
        from_ = select.args.get("from_")
        table = from_.this if from_ is not None else None
        joins = table.args.get("joins") if isinstance(table, exp.Table) else None
        if table is not None and joins:
            table.set("joins", None)
            select.set("joins", [*joins, *(select.args.get("joins") or [])])
    return tree


def output_names(tree: E) -> E:
    """Name each unnamed, computed output after its own text, before qualification would call it
    ``_col_N``: the reviewer sees ``count(*)``, not ``_col_1``."""
    top = tree if isinstance(tree, exp.Select) else tree.find(exp.Select)
    if top is None:
        return tree
    for output in top.expressions:
        if not isinstance(output, exp.Alias | exp.Column | exp.Star):
            output.replace(exp.alias_(output.copy(), output.sql(dialect=DUCKDB), quoted=True))
    return tree
