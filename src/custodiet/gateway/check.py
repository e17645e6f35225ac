"""Check a reviewer's SQL against a Policy and produce the SQL that will actually run.

    scan -> parse -> tree_within -> RULES (syntax) -> qualify -> SCOPE_RULES
         -> AGGREGATE_RULES (aggregate mode) -> rewrite

``scan`` and ``tree_within`` (``bounds.py``) bound what checking may cost before the passes run
(and again once qualification has expanded every star), and a query's ``Deadline`` is tested
between passes.

Every rule is a small named pass ``rule(tree, policy) -> None`` that raises ``Refusal`` naming the
node at fault; ``check_query`` turns that into a ``RefusedError`` with the node underlined.
Everything is allow-listed (``allowlist.py``): a node, function or table not listed is refused.
The denied-column rule lives in ``denied.py`` and the aggregate-mode rules in ``aggregate.py``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlglot import exp

from custodiet.agreements.model import Mode
from custodiet.errors import RefusedError
from custodiet.gateway import allowlist
from custodiet.gateway.aggregate import AGGREGATE_RULES, is_aggregate
from custodiet.gateway.bounds import MAX_EXPANDED_NODES, Deadline, scan, tree_within
from custodiet.gateway.contributors import HiddenCount, contribution_counts
from custodiet.gateway.denied import denied_columns
from custodiet.gateway.parse import DUCKDB, locate, parse_statement, too_deep, underline
from custodiet.gateway.policy import Policy
from custodiet.gateway.refusal import Refusal, Rule
from custodiet.gateway.rewrite import (
    CheckedQuery,
    column_sources,
    dataset_tables,
    explicit_calls,
    hoisted_joins,
    output_names,
    qualified,
    row_limited,
    try_casts,
    without_main_qualifier,
)

__all__ = ["AGGREGATE_RULES", "RULES", "SCOPE_RULES", "CheckedQuery", "Refusal", "check_query"]

READ_QUERIES = (exp.Select, exp.Union, exp.Intersect, exp.Except)
PLAIN_JOIN_KINDS = frozenset({"", "INNER", "OUTER", "CROSS", "SEMI", "ANTI"})


def check_query(sql: str, policy: Policy, deadline: Deadline | None = None) -> CheckedQuery:
    """The checked, rewritten query; RefusedError for anything the policy does not allow, or
    for a query too large to check (``bounds``) or not checked by ``deadline``."""
    scan(sql)
    return _check_once(sql, _PolicyKey(policy, _fingerprint(policy), deadline))


@dataclass(frozen=True)
class _PolicyKey:
    """A Policy made hashable by its content, so identical checks are computed once (the
    deadline of the check in progress rides along, outside the key)."""

    policy: Policy = field(compare=False, hash=False)
    fingerprint: tuple[object, ...]
    deadline: Deadline | None = field(default=None, compare=False, hash=False)


def _fingerprint(policy: Policy) -> tuple[object, ...]:
    tables = tuple(
        (
            view.name,
            view.person_column,
            tuple(sorted(view.denied)),
            tuple((c.name, c.kind, c.column_class, c.sql_type) for c in view.columns.values()),
        )
        for view in policy.tables.values()
    )
    return (
        policy.agreement_id,
        policy.version,
        policy.mode,
        policy.max_rows,
        policy.min_group_size,
        tables,
    )


# check_query is a pure function of (sql, policy): screens and repeated queries are checked once.
# Refusals raise, so they are never cached and are checked afresh every time.
@functools.lru_cache(maxsize=256)
def _check_once(sql: str, key: _PolicyKey) -> CheckedQuery:
    policy = key.policy
    on_time = key.deadline.check if key.deadline is not None else _always
    parsed = parse_statement(sql)
    tree_within(parsed)
    on_time()
    tree = hoisted_joins(without_main_qualifier(parsed))
    try:
        for rule in RULES:
            rule(tree, policy)
            on_time()
        tree = qualified(output_names(tree), policy, sql)
        tree_within(tree, MAX_EXPANDED_NODES)
        on_time()
        for rule in SCOPE_RULES:
            rule(tree, policy)
            on_time()
        if policy.mode in (Mode.AGGREGATE, Mode.DP):  # dp: then gateway/dp.py bounds it
            for rule in AGGREGATE_RULES:
                rule(tree, policy)
                on_time()
        checked = _checked(sql, tree, policy, on_time)
        on_time()
        return checked
    except Refusal as refusal:
        node = refusal.node
        raise RefusedError(
            refusal.rule,
            hint=refusal.hint,
            code=refusal.code,
            excerpt=underline(sql, node) if node is not None else None,
            span=locate(sql, node) if node is not None else None,
        ) from None
    except RecursionError:
        raise too_deep() from None


def _always() -> None:
    """No deadline to test."""


def _checked(
    sql: str, tree: exp.Expr, policy: Policy, on_time: Callable[[], None] = _always
) -> CheckedQuery:
    assert isinstance(tree, exp.Query)
    tables = sorted({table.name for table in dataset_tables(tree)})
    columns = {
        f"{found.source.name}.{found.column.name}"
        for found in column_sources(tree)
        if isinstance(found.source, exp.Table)
    }
    aggregate = is_aggregate(tree)
    hidden: tuple[HiddenCount, ...] = ()
    fast: str | None = None
    fast_rows: str | None = None
    tree = explicit_calls(try_casts(tree))
    if policy.mode is Mode.AGGREGATE:
        assert isinstance(tree, exp.Select)
        for table in [tree.args["from_"].this, *(j.this for j in tree.args.get("joins") or [])]:
            person = policy.tables[table.name].person_column
            columns.add(f"{table.name}.{person}")
        fast_tree, _ = contribution_counts(tree.copy(), policy, fast=True)
        fast = row_limited(fast_tree, policy.max_rows + 1).sql(dialect=DUCKDB, comments=False)
        on_time()
        if not tree.args.get("joins"):
            rows_tree, _ = contribution_counts(
                tree.copy(), policy, fast=True, every_row_a_person=True
            )
            fast_rows = row_limited(rows_tree, policy.max_rows + 1).sql(
                dialect=DUCKDB, comments=False
            )
            on_time()
        tree, hidden = contribution_counts(tree, policy)
    row_limit = policy.max_rows + 1
    tree = row_limited(tree, row_limit)
    return CheckedQuery(
        submitted=sql,
        executed=tree.sql(dialect=DUCKDB, comments=False, copy=False),
        tables=tuple(tables),
        columns=tuple(sorted(columns)),
        aggregate=aggregate,
        hidden=hidden,
        fast=fast,
        fast_rows=fast_rows,
        row_limit=row_limit,
    )


# ---- syntax rules (on the parsed tree) -------------------------------------------------------


def one_read_query(tree: exp.Expr, policy: Policy) -> None:
    """Only a SELECT (with set operations) is a query; every other statement is refused."""
    if not isinstance(tree, READ_QUERIES):
        name = tree.key.upper() if not isinstance(tree, exp.Command) else tree.name.upper()
        raise Refusal(
            f"statement {name} is not allowed: only SELECT queries",
            code="CUST333",
            hint="submit a single SELECT query over the agreement's datasets",
            node=tree,
        )


def allowed_nodes(tree: exp.Expr, policy: Policy) -> None:
    """Every node is allow-listed: a function for this mode, or a listed piece of syntax."""
    for node in tree.walk():
        if type(node) in allowlist.NODES:
            pass  # some listed syntax (AND, OR, ||) is a Func subclass in sqlglot
        elif isinstance(node, exp.Func):
            if policy.mode not in allowlist.function_modes(node):
                raise _function_refusal(node, policy)
        else:
            raise _syntax_refusal(_syntax_name(node), node)
        if isinstance(node, exp.Var) and type(node.parent) not in allowlist.VAR_PARENTS:
            raise Refusal(
                f"keyword '{node.name}' is not allowed here",
                code="CUST335",
                hint="name a column of the agreement",
                node=node,
            )
        if isinstance(node, exp.DataType) and node.this not in allowlist.CAST_TYPES:
            raise Refusal(
                f"cast to {node.sql(dialect=DUCKDB)} is not allowed",
                code="CUST346",
                hint="cast only to basic types: INTEGER, BIGINT, DOUBLE, DECIMAL, VARCHAR, DATE",
                node=node.parent or node,
            )
        _check_args(node)


def _check_args(node: exp.Expr) -> None:
    allowed = allowlist.ARGS.get(type(node))
    if allowed is None:
        return
    for key, value in node.args.items():
        if value and key not in allowed:
            raise _syntax_refusal(f"{node.key.upper()} option {key.rstrip('_').upper()}", node)


def _syntax_refusal(what: str, node: exp.Expr) -> Refusal:
    return Refusal(
        f"{what} is not allowed",
        code="CUST335",
        hint="use plain SELECT syntax: FROM, JOIN ... ON, WHERE, GROUP BY, ORDER BY, LIMIT",
        node=node,
    )


def _function_refusal(node: exp.Func, policy: Policy) -> Refusal:
    name = allowlist.function_name(node)
    if allowlist.function_modes(node):
        return Refusal(
            f"function '{name}' is not allowed in {policy.mode.value} mode",
            code="CUST336",
            hint="aggregate mode allows count, count(DISTINCT ...), sum and avg",
            node=node,
        )
    return Refusal(
        f"function '{name}' is not allowed",
        code="CUST334",
        hint="see the allowed functions in docs (date_trunc, extract, coalesce, count, sum, ...)",
        node=node,
    )


def _syntax_name(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        return f"statement {node.name.upper()}"
    return f"syntax {node.key.upper()}"


def plain_stars(tree: exp.Expr, policy: Policy) -> None:
    """``*`` and ``t.*`` only: no EXCLUDE, REPLACE or RENAME modifiers."""
    for star in tree.find_all(exp.Star):
        if any(star.args.values()):
            raise Refusal(
                "star modifiers (EXCLUDE, REPLACE, RENAME) are not allowed",
                code="CUST337",
                hint="list the columns you want explicitly",
                node=star.parent or star,
            )


def plain_joins(tree: exp.Expr, policy: Policy) -> None:
    """Joins with ON (or cross joins): no USING, NATURAL, ASOF or POSITIONAL."""
    for join in tree.find_all(exp.Join):
        kind = " ".join(str(join.args.get(k) or "") for k in ("method", "kind")).strip().upper()
        if join.args.get("using") or join.args.get("method") or kind not in PLAIN_JOIN_KINDS:
            raise Refusal(
                f"{kind} JOIN is not allowed"
                if not join.args.get("using")
                else "JOIN ... USING is not allowed",
                code="CUST331",
                hint="write the join condition with ON a.x = b.y",
                node=join,
            )


def literal_limits(tree: exp.Expr, policy: Policy) -> None:
    """LIMIT and OFFSET are non-negative integer literals."""
    for clause in tree.find_all(exp.Limit, exp.Offset):
        value = clause.expression
        if not (isinstance(value, exp.Literal) and value.is_int and int(value.name) >= 0):
            raise Refusal(
                f"{clause.key.upper()} must be a whole number",
                code="CUST338",
                hint="write LIMIT 100, not an expression",
                node=clause,
            )


def no_recursion(tree: exp.Expr, policy: Policy) -> None:
    """WITH RECURSIVE is refused: it can run without bound."""
    for with_ in tree.find_all(exp.With):
        if with_.args.get("recursive"):
            raise Refusal(
                "recursive CTEs are not allowed",
                code="CUST339",
                hint="use a plain WITH or a join",
                node=with_,
            )


def known_tables(tree: exp.Expr, policy: Policy) -> None:
    """Every table is a dataset of the agreement or a CTE of the query (``main.`` is dropped)."""
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        name = table.name.lower()
        if not isinstance(table.this, exp.Identifier) or table.args.get("db") or table.catalog:
            raise _not_in_agreement(table.sql(dialect=DUCKDB), table, policy)
        if name not in policy.tables and name not in ctes:
            raise _not_in_agreement(name, table, policy)
    for column in tree.find_all(exp.Column):
        if column.args.get("db") or column.args.get("catalog"):
            raise _not_in_agreement(
                ".".join(p.name for p in column.parts[:-1]).lower(), column, policy
            )


def _not_in_agreement(name: str, node: exp.Expr, policy: Policy) -> Refusal:
    return Refusal(
        f"table '{name}' is not in agreement '{policy.agreement_id}'",
        code="CUST340",
        hint=f"this agreement covers {', '.join(sorted(policy.tables))}",
        node=node,
    )


# denied_columns comes early so a denied column is named even inside refused syntax.
RULES: tuple[Rule, ...] = (
    one_read_query,
    denied_columns,
    plain_stars,
    allowed_nodes,
    plain_joins,
    literal_limits,
    no_recursion,
    known_tables,
)


# ---- scope rules (on the qualified tree) -----------------------------------------------------


def no_row_values(tree: exp.Expr, policy: Policy) -> None:
    """A table alias used as a value (``SELECT p FROM payments p``) would pack whole rows."""
    for node in tree.find_all(exp.TableColumn):
        raise Refusal(
            f"table alias '{node.name}' cannot be used as a value",
            code="CUST345",
            hint=f"name the columns you want, e.g. {node.name}.<column>",
            node=node,
        )


def datasets_only(tree: exp.Expr, policy: Policy) -> None:
    """Each table that resolves to a real table (not a CTE) is a dataset, without column aliases."""
    for table in dataset_tables(tree):
        if table.name not in policy.tables or table.args.get("db"):
            raise _not_in_agreement(table.name, table, policy)
        alias = table.args.get("alias")
        if alias is not None and alias.columns:
            raise Refusal(
                "column aliases on a dataset table are not allowed",
                code="CUST342",
                hint="rename columns in the SELECT list with AS",
                node=alias,
            )


def granted_columns(tree: exp.Expr, policy: Policy) -> None:
    """Every column resolves to a granted dataset column, a derived table's output, or an alias."""
    for found in column_sources(tree):
        column, source = found.column, found.source
        if isinstance(source, exp.Table):
            if column.name not in policy.tables[source.name].columns:
                raise _not_granted(column, policy)
        elif source is None and not _is_output_alias(column):
            raise _not_granted(column, policy)
    for column in tree.find_all(exp.Column):
        if not column.table and not _is_output_alias(column):
            raise _not_granted(column, policy)


def _not_granted(column: exp.Column, policy: Policy) -> Refusal:
    tables = sorted({t.name for t in dataset_tables(column.root())})
    allowed = "; ".join(f"{t}: {policy.describe_allowed(t)}" for t in tables)
    return Refusal(
        f"column '{column.name}' is not in agreement '{policy.agreement_id}'",
        code="CUST332",
        hint=f"this agreement allows {allowed}" if allowed else "name a column of a dataset",
        node=column,
    )


def _is_output_alias(column: exp.Column) -> bool:
    """``ORDER BY n`` or ``DISTINCT ON (n)`` naming an output of its own query (qualification
    leaves those bare, as DuckDB binds them to the output)."""
    clause = column.find_ancestor(exp.Order, exp.Distinct, exp.Select, exp.Window)
    query = clause.parent if isinstance(clause, exp.Order | exp.Distinct) else None
    return isinstance(query, exp.Query) and column.name in query.named_selects


# allowed_nodes runs again: qualification must not have introduced anything unlisted.
SCOPE_RULES: tuple[Rule, ...] = (no_row_values, allowed_nodes, datasets_only, granted_columns)
