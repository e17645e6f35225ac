"""Aggregate-mode rules: one SELECT level over datasets whose outputs are aggregates or groups.

Run on the qualified tree after the scope rules. Identifiers, keys and tokens may only be counted
or joined on, never grouped by, and some dataset must identify persons so that release can
suppress groups smaller than ``min_group_size``.
"""

from __future__ import annotations

from sqlglot import exp

from custodiet.catalog.classes import ColumnClass
from custodiet.gateway.contributors import HIDDEN_PREFIX, person_tables
from custodiet.gateway.policy import ColumnKind, ColumnView, Policy
from custodiet.gateway.refusal import Refusal, Rule
from custodiet.gateway.rewrite import column_sources

__all__ = ["AGGREGATE_RULES", "is_aggregate"]

SINGLE_LEVEL_FORBIDDEN: tuple[tuple[type[exp.Expr], str], ...] = (
    (exp.With, "CTEs (WITH)"),
    (exp.Subquery, "subqueries"),
    (exp.Union, "UNION"),
    (exp.Intersect, "INTERSECT"),
    (exp.Except, "EXCEPT"),
    (exp.Window, "window functions"),
    (exp.Having, "HAVING"),
    (exp.Qualify, "QUALIFY"),
    (exp.Rollup, "ROLLUP"),
    (exp.Cube, "CUBE"),
    (exp.GroupingSets, "GROUPING SETS"),
    (exp.Exists, "EXISTS"),
    (exp.Values, "VALUES"),
)


def single_level(tree: exp.Expr, policy: Policy) -> None:
    """Aggregate mode: one SELECT over datasets and joins; nothing nested, no margins."""
    for node_type, label in SINGLE_LEVEL_FORBIDDEN:
        node = tree if isinstance(tree, node_type) else tree.find(node_type)
        if node is not None:
            raise _aggregate_refusal(f"{label} not allowed in aggregate mode", node)
    distinct = tree.args.get("distinct")
    if distinct is not None and distinct.args.get("on"):
        raise _aggregate_refusal("DISTINCT ON not allowed in aggregate mode", distinct)
    group = tree.args.get("group")
    if group is not None and group.args.get("all"):
        raise _aggregate_refusal("GROUP BY ALL not allowed in aggregate mode", group)


def aggregate_outputs(tree: exp.Expr, policy: Policy) -> None:
    """Aggregate mode: every output is an aggregate or a GROUP BY expression."""
    assert isinstance(tree, exp.Select)
    groups = list(tree.args["group"].expressions) if tree.args.get("group") else []
    if not groups and not any(_has_aggregate(e) for e in tree.expressions):
        raise _aggregate_refusal("only aggregate queries are allowed in aggregate mode", tree)
    for output in tree.expressions:
        if output.alias_or_name.lower().startswith(HIDDEN_PREFIX):
            raise _aggregate_refusal(
                f"the output name '{output.alias_or_name}' is reserved "
                f"(names starting with '{HIDDEN_PREFIX}' are the gateway's)",
                output,
            )
        value = output.unalias()
        if value in groups:
            continue
        loose = [
            c for c in value.find_all(exp.Column) if not c.find_ancestor(exp.AggFunc, exp.Filter)
        ]
        if loose or not _has_aggregate(value):
            raise _aggregate_refusal(
                "each output must be an aggregate or a GROUP BY expression",
                loose[0] if loose else output,
            )


def grouping_columns(tree: exp.Expr, policy: Policy) -> None:
    """Aggregate mode: GROUP BY never on identifiers, keys or tokens (groups of one)."""
    group = tree.args.get("group")
    for column, view in _dataset_column_views(tree, policy):
        if group is not None and column.find_ancestor(exp.Group) is group and _identifying(view):
            raise _aggregate_refusal(
                f"GROUP BY on {_describe(column, view)} is not allowed in aggregate mode", column
            )


def identifying_columns_counted(tree: exp.Expr, policy: Policy) -> None:
    """Aggregate mode: identifiers, keys and tokens may only be counted or joined on."""
    for column, view in _dataset_column_views(tree, policy):
        if _identifying(view) and not (_counted(column) or _join_key(column)):
            raise _aggregate_refusal(
                f"{_describe(column, view)} may only be counted or joined on in aggregate mode",
                column,
            )


def _dataset_column_views(tree: exp.Expr, policy: Policy) -> list[tuple[exp.Column, ColumnView]]:
    return [
        (found.column, policy.tables[found.source.name].columns[found.column.name])
        for found in column_sources(tree)
        if isinstance(found.source, exp.Table)
    ]


def _identifying(view: ColumnView) -> bool:
    return view.kind is ColumnKind.TOKEN or view.column_class in (
        ColumnClass.IDENTIFIER,
        ColumnClass.KEY,
    )


def _describe(column: exp.Column, view: ColumnView) -> str:
    return f"column '{column.name}' ({view.kind.value}, {view.column_class.value})"


def _counted(column: exp.Column) -> bool:
    parent = column.parent
    if isinstance(parent, exp.Distinct):
        parent = parent.parent
    return isinstance(parent, exp.Count)


def _join_key(column: exp.Column) -> bool:
    parent = column.parent
    return (
        isinstance(parent, exp.EQ)
        and isinstance(parent.left, exp.Column)
        and isinstance(parent.right, exp.Column)
        and isinstance(parent.find_ancestor(exp.Join, exp.Where, exp.Select), exp.Join)
    )


def _has_aggregate(node: exp.Expr) -> bool:
    return node.find(exp.AggFunc) is not None


def is_aggregate(tree: exp.Expr) -> bool:
    top = tree if isinstance(tree, exp.Select) else tree.find(exp.Select)
    if top is None:
        return False
    return bool(top.args.get("group")) or any(
        node.find_ancestor(exp.Window) is None
        for output in top.expressions
        for node in output.find_all(exp.AggFunc)
    )


def persons_identifiable(tree: exp.Expr, policy: Policy) -> None:
    """Aggregate mode: every dataset in the query identifies persons (``person_tables``), so the
    persons contributing to each value can be counted in each of them."""
    assert isinstance(tree, exp.Select)
    person_tables(tree, policy)


def _aggregate_refusal(rule: str, node: exp.Expr) -> Refusal:
    return Refusal(
        rule,
        code="CUST344",
        hint="aggregate mode: SELECT <groups>, count/sum/avg FROM ... GROUP BY <groups>",
        node=node,
    )


AGGREGATE_RULES: tuple[Rule, ...] = (
    single_level,
    aggregate_outputs,
    grouping_columns,
    identifying_columns_counted,
    persons_identifiable,
)
