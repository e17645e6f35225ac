"""Aggregate mode: count, for every released value, the distinct persons who contribute to it.

A row *contributes* to an aggregate when it passes the query's WHERE and joins, the aggregate's
own ``FILTER (WHERE f)``, and its argument makes a difference to the value:

    count(*)                 every row
    count(x), count(DISTINCT x)
                             x IS NOT NULL
    sum(x), avg(x)           x IS NOT NULL AND x <> 0  (a zero adds nothing to a sum, and an
                             average is a sum over a count that can be released beside it)

CASE, IF, FILTER and arithmetic with an indicator (``sum(amount * CAST(a > 9 AS INT))``) all come
down to the argument being NULL or zero for the rows that do not contribute, so one rule covers
every spelling. For each aggregate and each dataset table in FROM/JOIN (by that table's person
column, its privacy unit) the rewrite adds two hidden outputs:

    _custodiet_persons_<i>  count(DISTINCT CASE WHEN contributes THEN t.person END)   >= k
    _custodiet_others_<i>   count(DISTINCT CASE WHEN NOT contributes THEN t.person END)
                            0 or >= k: the rows that do not contribute are the complement of
                            the ones that do within the group, and a value beside count(*)
                            would otherwise difference them out (a CASE that is constant for
                            everyone but one person)

plus ``count(DISTINCT t.person)`` per table for the group itself. ``release`` drops every row in
which any of them is out of bounds, and the hidden outputs with it. Counting per table means a
cross join or a join on a tautology cannot lend one table's persons to another table's values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp

from custodiet.gateway.policy import Policy
from custodiet.gateway.refusal import Refusal

__all__ = [
    "HIDDEN_PREFIX",
    "HiddenCount",
    "contributes",
    "contribution_counts",
    "is_numeric",
    "person_tables",
]

HIDDEN_PREFIX = "_custodiet_"
_CONTRIBUTORS = f"{HIDDEN_PREFIX}persons"
_OTHERS = f"{HIDDEN_PREFIX}others"


@dataclass(frozen=True)
class HiddenCount:
    """A hidden output of distinct persons: ``zero_allowed`` for the non-contributors.

    ``table`` is the dataset whose persons it counts; ``bound_by`` the datasets whose largest
    rows-per-person multiply to a bound on one person's rows in the query (all of them when every
    join matches persons; empty when nothing bounds it). The *fast* form of the query counts rows
    instead of distinct persons, and ``suppress.py`` settles a group from the row count alone
    whenever the bound allows (pigeonhole), running the exact form only when it does not.
    """

    name: str
    zero_allowed: bool
    table: str = ""
    bound_by: tuple[str, ...] = ()


def person_tables(select: exp.Select, policy: Policy) -> list[tuple[str, str]]:
    """(alias, person column) of every table in FROM/JOIN; refused if one has no privacy unit."""
    from_ = select.args.get("from_")
    tables = [from_.this] if from_ is not None else []
    tables += [join.this for join in select.args.get("joins") or []]
    found: list[tuple[str, str]] = []
    for table in tables:
        if not isinstance(table, exp.Table) or table.name not in policy.tables:
            raise _unestablished("a FROM item that is not a dataset of the agreement", table)
        person = policy.tables[table.name].person_column
        if person is None:
            raise Refusal(
                f"dataset '{table.name}' identifies persons by no pseudonymized identifier, so "
                "the persons contributing to a value cannot be counted",
                code="CUST343",
                hint="pseudonymize the dataset's person identifier in the agreement, or leave "
                "the dataset out of the query",
                node=table,
            )
        found.append((table.alias_or_name, person))
    if not found:
        raise Refusal(
            "no dataset in the query identifies persons, so group sizes cannot be checked",
            code="CUST343",
            hint="include a dataset with a pseudonymized identifier",
        )
    return found


NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "DECIMAL", "DOUBLE",
                 "FLOAT", "REAL", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")  # fmt: skip


def contributes(
    aggregate: exp.Expr, numeric: Callable[[exp.Expr], bool] = lambda _: False
) -> exp.Expr | None:
    """The condition under which a row contributes to ``aggregate`` (None: every row does).

    ``numeric(argument)`` says the argument is a number already (``is_numeric``), so ``x <> 0``
    needs no cast.
    """
    condition: exp.Expr | None
    filter_: exp.Expr | None = None
    if isinstance(aggregate, exp.Filter):
        where = aggregate.expression
        filter_ = where.this if isinstance(where, exp.Where) else where
        aggregate = aggregate.this
    argument = aggregate.this
    arguments = argument.expressions if isinstance(argument, exp.Distinct) else [argument]
    if isinstance(aggregate, exp.Count):
        if isinstance(argument, exp.Star) or argument is None:
            condition = None
        else:
            condition = exp.and_(
                *(exp.Not(this=exp.Is(this=_paren(a), expression=exp.Null())) for a in arguments)
            )
    elif isinstance(aggregate, exp.Sum | exp.Avg) and len(arguments) == 1:
        argument = arguments[0]
        as_number = (
            _paren(argument)
            if numeric(argument)
            else exp.TryCast(this=_paren(argument), to=exp.DataType.build("DOUBLE"))
        )
        condition = exp.NEQ(this=as_number, expression=exp.Literal.number(0))
    else:
        raise _unestablished(f"aggregate {aggregate.key}", aggregate)
    if filter_ is not None:
        condition = (
            _paren(filter_.copy()) if condition is None else exp.and_(condition, _paren(filter_))
        )
    return condition.copy() if condition is not None else None


_NUMERIC_CASTS = (exp.DataType.Type.TINYINT, exp.DataType.Type.SMALLINT, exp.DataType.Type.INT,
                  exp.DataType.Type.BIGINT, exp.DataType.Type.INT128, exp.DataType.Type.DECIMAL,
                  exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT, exp.DataType.Type.UTINYINT,
                  exp.DataType.Type.USMALLINT, exp.DataType.Type.UINT, exp.DataType.Type.UBIGINT,
                  exp.DataType.Type.UINT128)  # fmt: skip
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod)


def is_numeric(node: exp.Expr, numeric_column: Callable[[exp.Column], bool]) -> bool:
    """DuckDB types ``node`` as a number: a numeric column (``numeric_column``), a number
    literal, NULL, a cast to a numeric type, or CASE, IF and arithmetic over those.

    Then ``x <> 0`` decides exactly as ``TRY_CAST(x AS DOUBLE) <> 0`` (a conversion between
    number types keeps zero zero and anything else non-zero), without a cast per row; and the
    comparison reads the very expression the aggregate sums, so the engine computes it once.
    Anything else (strings, dates, function calls) is compared after ``TRY_CAST`` to DOUBLE.
    """
    if isinstance(node, exp.Paren):
        return is_numeric(node.this, numeric_column)
    if isinstance(node, exp.Column):
        return numeric_column(node)
    if isinstance(node, exp.Literal):
        return not node.is_string
    if isinstance(node, exp.Null):
        return True
    if isinstance(node, exp.Cast):  # TRY_CAST too
        return node.to.is_type(*_NUMERIC_CASTS)
    if isinstance(node, exp.Neg):
        return is_numeric(node.this, numeric_column)
    if isinstance(node, _ARITHMETIC):
        return is_numeric(node.this, numeric_column) and is_numeric(node.expression, numeric_column)
    if isinstance(node, exp.Case):
        values = [branch.args.get("true") for branch in node.args.get("ifs") or []]
        default = node.args.get("default")
        values += [default] if default is not None else []
        return all(v is not None and is_numeric(v, numeric_column) for v in values)
    if isinstance(node, exp.If):
        values = [node.args.get("true"), node.args.get("false")]
        return all(v is None or is_numeric(v, numeric_column) for v in values)
    return False


def contribution_counts(
    select: exp.Select, policy: Policy, *, fast: bool = False, every_row_a_person: bool = False
) -> tuple[exp.Select, tuple[HiddenCount, ...]]:
    """``select`` with the hidden distinct-person counts added, and what each one must satisfy.

    ``fast``: count the contributing rows that have a person instead of distinct persons;
    ``every_row_a_person`` (one table, whose person column has no NULL): count rows with
    ``count(*)``, without reading the person column at all.
    """
    tables = person_tables(select, policy)
    names = _dataset_names(select)
    bound_by = tuple(sorted(names.values())) if _persons_joined(select, policy) else ()
    conditions: list[exp.Expr | None] = [None]  # the group itself

    def numeric_column(node: exp.Column) -> bool:
        if node.table not in names:
            return False
        view = policy.tables[names[node.table]].columns.get(node.name)
        return view is not None and view.sql_type.upper().startswith(NUMERIC_TYPES)

    def numeric(node: exp.Expr) -> bool:
        return is_numeric(node, numeric_column)

    for aggregate in _aggregates(select):
        conditions.append(contributes(aggregate, numeric))
    hidden: list[HiddenCount] = []
    seen: set[str] = set()
    for condition in conditions:
        for alias, person in tables:
            column = exp.column(person, table=alias)
            for negated in (False, True) if condition is not None else (False,):
                counted = _counted(
                    exp.Star() if every_row_a_person else column,
                    condition,
                    negated=negated,
                    distinct=not fast,
                )
                key = counted.sql()
                if key in seen:
                    continue
                seen.add(key)
                name = f"{_OTHERS if negated else _CONTRIBUTORS}_{len(hidden)}"
                hidden.append(HiddenCount(name, negated, names[alias], bound_by))
                select.select(exp.alias_(counted, name), copy=False)
    return select, tuple(hidden)


def _aggregates(select: exp.Select) -> list[exp.Expr]:
    """Every aggregate the query computes (outputs and ORDER BY), with its FILTER if it has one."""
    found: list[exp.Expr] = []
    places = [*select.expressions]
    order = select.args.get("order")
    if order is not None:
        places.append(order)
    for place in places:
        for node in place.find_all(exp.AggFunc):
            found.append(node.parent if isinstance(node.parent, exp.Filter) else node)
    return found


def _counted(
    column: exp.Column | exp.Star, condition: exp.Expr | None, *, negated: bool, distinct: bool
) -> exp.Expr:
    if not distinct:  # rows: count_if(c AND p IS NOT NULL), the others as count(p) minus that
        if condition is None:
            return exp.Count(this=column.copy())
        test = _paren(condition.copy())
        if isinstance(column, exp.Column):
            test = exp.and_(test, exp.Not(this=exp.Is(this=column.copy(), expression=exp.Null())))
        # count_if, not count(*) FILTER (WHERE c): the engine computes c once for the contributors
        # and the others, shares it with the aggregate's own argument, and folds it away when the
        # table's statistics prove it (no zero amount at all). count_if takes only a BOOLEAN
        # (FILTER casts its condition, a bare FILTER (WHERE x) may not be one) and is NULL over
        # no row or a NULL constant, where count(*) FILTER is 0: hence the cast and the coalesce.
        boolean = exp.TryCast(this=_paren(test), to=exp.DataType.build("BOOLEAN"))
        rows = exp.Coalesce(this=exp.CountIf(this=boolean), expressions=[exp.Literal.number(0)])
        return exp.Sub(this=exp.Count(this=column.copy()), expression=rows) if negated else rows
    if condition is None:
        value: exp.Expr = column
    else:
        test = condition.copy()
        if negated:
            test = exp.Not(this=exp.Coalesce(this=_paren(test), expressions=[exp.false()]))
        value = exp.Case(ifs=[exp.If(this=test, true=column.copy())])
    return exp.Count(this=exp.Distinct(expressions=[value]) if distinct else value)


def _dataset_names(select: exp.Select) -> dict[str, str]:
    from_ = select.args.get("from_")
    items = ([from_.this] if from_ is not None else []) + [
        join.this for join in select.args.get("joins") or []
    ]
    return {item.alias_or_name: item.name for item in items if isinstance(item, exp.Table)}


def _persons_joined(select: exp.Select, policy: Policy) -> bool:
    """Every join's ON has a conjunct ``a.<person> = b.<person>`` linking it to an earlier table:
    one person's rows in the join output are then at most the product of their rows per table."""
    names = _dataset_names(select)
    seen = list(names)[:1]
    for join in select.args.get("joins") or []:
        alias = join.this.alias_or_name
        on = join.args.get("on")
        conjuncts = list(on.flatten()) if isinstance(on, exp.And) else [on]
        if not any(_links(c, alias, seen, names, policy) for c in conjuncts):
            return False
        seen.append(alias)
    return True


def _links(
    node: exp.Expr | None, alias: str, seen: list[str], names: dict[str, str], policy: Policy
) -> bool:
    if not isinstance(node, exp.EQ):
        return False
    sides = [node.this, node.expression]
    if not all(isinstance(s, exp.Column) and s.table in names for s in sides):
        return False
    persons = [s for s in sides if s.name == policy.tables[names[s.table]].person_column]
    tables = {s.table for s in persons}
    return len(persons) == 2 and alias in tables and bool(tables & set(seen) - {alias})


def _paren(node: exp.Expr) -> exp.Expr:
    return node if isinstance(node, exp.Paren | exp.Column | exp.Literal) else exp.Paren(this=node)


def _unestablished(what: str, node: exp.Expr) -> Refusal:
    return Refusal(
        f"the persons contributing to {what} cannot be established in aggregate mode",
        code="CUST347",
        hint="aggregate mode: SELECT <groups>, count/sum/avg FROM <datasets> [JOIN ...] "
        "GROUP BY <groups>",
        node=node,
    )
