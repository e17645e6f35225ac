"""The allow-lists: every syntax node, function and cast type a reviewer's query may use.

Anything not listed here is refused. Each function carries the modes it is allowed in: aggregate
mode allows scalar functions plus count, sum and avg only; everything that can release an
individual value from a group (min, max, windows) is pseudonymous-only. Functions that pack many
rows into one value (list, array_agg, string_agg) are not listed in any mode: one row of them
would carry the whole projection past the agreement's ``max_rows``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from sqlglot import exp

from custodiet.agreements.model import Mode

ANY_MODE = frozenset(Mode)
_LEADING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?=\()")
PSEUDONYMOUS = frozenset({Mode.PSEUDONYMOUS})

# Syntax that is not a function call. Window/Subquery/With/set operations are further limited in
# aggregate mode by the aggregate rules, which give a more precise refusal.
NODES: frozenset[type[exp.Expr]] = frozenset(
    {
        exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery, exp.With, exp.CTE,
        exp.TableAlias, exp.From, exp.Join, exp.Table, exp.Identifier, exp.Column, exp.Star,
        exp.Alias, exp.Where, exp.Group, exp.Having, exp.Qualify, exp.Order, exp.Ordered,
        exp.Limit, exp.Offset, exp.Distinct, exp.Literal, exp.Boolean, exp.Null, exp.Paren,
        exp.Neg, exp.Not, exp.And, exp.Or, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE,
        exp.NullSafeEQ, exp.NullSafeNEQ, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.DPipe,
        exp.In, exp.Between, exp.Like, exp.ILike, exp.Is, exp.DataType, exp.DataTypeParam,
        exp.Interval, exp.Var, exp.Window, exp.WindowSpec, exp.Filter, exp.Values, exp.Tuple,
        exp.Exists,
    }
)  # fmt: skip

_QUERY_MODIFIERS = frozenset({"with_", "order", "limit", "offset"})

# For nodes whose options change what they read, the options (arguments) that may be set; a node
# listed here with any other argument set is refused (e.g. a table's SAMPLE, a star's EXCLUDE).
ARGS: Mapping[type[exp.Expr], frozenset[str]] = {
    exp.Select: _QUERY_MODIFIERS
    | {
        "expressions",
        "distinct",
        "from_",
        "joins",
        "where",
        "group",
        "having",
        "qualify",
        "windows",
    },
    exp.Union: _QUERY_MODIFIERS | {"this", "expression", "distinct"},
    exp.Intersect: _QUERY_MODIFIERS | {"this", "expression", "distinct"},
    exp.Except: _QUERY_MODIFIERS | {"this", "expression", "distinct"},
    exp.Subquery: _QUERY_MODIFIERS | {"this", "alias"},
    exp.Join: frozenset({"this", "on", "side", "kind", "using", "method"}),
    exp.Table: frozenset({"this", "alias", "db", "catalog"}),
    exp.Column: frozenset({"this", "table", "db", "catalog"}),
    exp.Star: frozenset(),
    exp.With: frozenset({"expressions", "recursive"}),
    exp.CTE: frozenset({"this", "alias"}),
    exp.Window: frozenset({"this", "partition_by", "order", "spec", "alias", "over"}),
    exp.Group: frozenset({"expressions", "all"}),
    exp.Distinct: frozenset({"expressions", "on"}),
    exp.Count: frozenset({"this", "big_int"}),
    exp.Cast: frozenset({"this", "to"}),
    exp.TryCast: frozenset({"this", "to", "safe"}),  # sqlglot marks every TRY_CAST safe
    exp.Ordered: frozenset({"this", "desc", "nulls_first"}),
}

# Functions sqlglot knows by class, with the modes they are allowed in.
FUNCTIONS: Mapping[type[exp.Func], frozenset[Mode]] = {
    # dates
    exp.TimestampTrunc: ANY_MODE, exp.DateTrunc: ANY_MODE, exp.Extract: ANY_MODE,
    exp.Year: ANY_MODE, exp.Month: ANY_MODE, exp.Day: ANY_MODE, exp.Quarter: ANY_MODE,
    exp.DayOfWeek: ANY_MODE, exp.Week: ANY_MODE, exp.DateDiff: ANY_MODE, exp.DateAdd: ANY_MODE,
    exp.DateSub: ANY_MODE, exp.DateFromParts: ANY_MODE, exp.LastDay: ANY_MODE,
    exp.CurrentDate: ANY_MODE,
    # scalars
    exp.Coalesce: ANY_MODE, exp.Nullif: ANY_MODE, exp.Abs: ANY_MODE, exp.Round: ANY_MODE,
    exp.Ln: ANY_MODE,
    exp.Floor: ANY_MODE, exp.Ceil: ANY_MODE, exp.Least: ANY_MODE, exp.Greatest: ANY_MODE,
    exp.Lower: ANY_MODE, exp.Upper: ANY_MODE, exp.Length: ANY_MODE, exp.Trim: ANY_MODE,
    exp.Concat: ANY_MODE, exp.Case: ANY_MODE, exp.If: ANY_MODE, exp.Cast: ANY_MODE,
    exp.TryCast: ANY_MODE, exp.StartsWith: ANY_MODE,
    # aggregates
    exp.Count: ANY_MODE, exp.Sum: ANY_MODE, exp.Avg: ANY_MODE,
    exp.Min: PSEUDONYMOUS, exp.Max: PSEUDONYMOUS, exp.Median: PSEUDONYMOUS,
    exp.LogicalOr: PSEUDONYMOUS, exp.LogicalAnd: PSEUDONYMOUS,
    # window functions
    exp.RowNumber: PSEUDONYMOUS, exp.Rank: PSEUDONYMOUS, exp.DenseRank: PSEUDONYMOUS,
    exp.Lag: PSEUDONYMOUS, exp.Lead: PSEUDONYMOUS, exp.FirstValue: PSEUDONYMOUS,
    exp.LastValue: PSEUDONYMOUS,
}  # fmt: skip

# Functions sqlglot parses as Anonymous, by lower-case name.
ANONYMOUS_FUNCTIONS: Mapping[str, frozenset[Mode]] = {
    "date_part": ANY_MODE,
    "datepart": ANY_MODE,
}

AGGREGATES_IN_AGGREGATE_MODE: frozenset[type[exp.Func]] = frozenset({exp.Count, exp.Sum, exp.Avg})

# Where a bare keyword (Var) may stand: a date part or interval unit, never a value.
VAR_PARENTS: frozenset[type[exp.Expr]] = frozenset(
    {exp.Interval, exp.Extract, exp.TimestampTrunc, exp.DateTrunc, exp.DateDiff, exp.DateAdd,
     exp.DateSub}
)  # fmt: skip

T = exp.DataType.Type
CAST_TYPES: frozenset[object] = frozenset(
    {
        T.TINYINT, T.SMALLINT, T.INT, T.BIGINT, T.INT128, T.FLOAT, T.DOUBLE, T.DECIMAL,
        T.VARCHAR, T.TEXT, T.CHAR, T.DATE, T.TIMESTAMP, T.TIMESTAMPNTZ, T.BOOLEAN, T.INTERVAL,
        T.TIME,
    }
)  # fmt: skip
# DuckDB's TIMESTAMP (and DATETIME) is sqlglot's TIMESTAMPNTZ; TIMESTAMPTZ stays refused.


def function_name(node: exp.Func) -> str:
    """The lower-case name of a function call as DuckDB spells it, for refusals."""
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    rendered = _LEADING_NAME.match(node.sql(dialect="duckdb"))
    return (rendered.group(0) if rendered else node.sql_name()).lower()


def function_modes(node: exp.Func) -> frozenset[Mode]:
    """The modes a function call is allowed in; empty if it is not allowed at all."""
    if isinstance(node, exp.Anonymous):
        return ANONYMOUS_FUNCTIONS.get(node.name.lower(), frozenset())
    return FUNCTIONS.get(type(node), frozenset())
