"""Property: whatever query is generated, check_query refuses it or its executed SQL reads only
granted columns. Queries mix granted and denied columns in random clauses, casings, quoting,
qualifications, aliases, subqueries, CTEs and unions."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp
from sqlglot.optimizer.scope import traverse_scope

from custodiet.agreements.model import Mode
from custodiet.errors import CustodietError, InputError, RefusedError
from custodiet.gateway.check import check_query
from custodiet.gateway.parse import parse_statement
from tests.unit.gateway.checker_policy import DEATHS_DENIED, PAYMENTS_DENIED, sample_policy

POLICIES = {mode: sample_policy(mode) for mode in Mode}
TABLES = {
    "payments": sorted(
        set(POLICIES[Mode.PSEUDONYMOUS].tables["payments"].columns) | PAYMENTS_DENIED
    ),
    "deaths": sorted(set(POLICIES[Mode.PSEUDONYMOUS].tables["deaths"].columns) | DEATHS_DENIED),
}
DENIED = PAYMENTS_DENIED | DEATHS_DENIED


@st.composite
def spelled(draw: st.DrawFn, name: str) -> str:
    """A name in random case, sometimes double-quoted (DuckDB folds both)."""
    cased = "".join(c.upper() if draw(st.booleans()) else c for c in name)
    return f'"{cased}"' if draw(st.booleans()) else cased


@st.composite
def column_ref(draw: st.DrawFn, table: str, alias: str) -> str:
    column = draw(spelled(draw(st.sampled_from(TABLES[table]))))
    qualifier = draw(st.sampled_from(["", f"{alias}.", f"{alias}." if alias != table else "main."]))
    if qualifier == "main.":
        qualifier = f"main.{table}."
    return qualifier + column


@st.composite
def expression(draw: st.DrawFn, table: str, alias: str) -> str:
    column = draw(column_ref(table, alias))
    shape = draw(
        st.sampled_from(
            ["{c}", "lower({c})", "count({c})", "max({c})", "coalesce({c}, NULL)",
             "CAST({c} AS VARCHAR)", "CASE WHEN {c} IS NULL THEN 1 ELSE 0 END",
             "count(DISTINCT {c})", "sum(length({c}))", "{c} || 'x'"]
        )
    )  # fmt: skip
    return shape.format(c=column)


@st.composite
def simple_select(draw: st.DrawFn) -> str:
    table = draw(st.sampled_from(sorted(TABLES)))
    alias = draw(st.sampled_from([table, "t", "x"]))
    outputs = draw(st.lists(expression(table, alias), min_size=1, max_size=3))
    if draw(st.booleans()):
        outputs[0] = draw(st.sampled_from(["*", f"{alias}.*"]))
    select_list = ", ".join(
        f"{o} AS a{i}" if draw(st.booleans()) and "*" not in o else o for i, o in enumerate(outputs)
    )
    source = table if alias == table else f"{table} AS {alias}"
    clauses = [f"SELECT {select_list} FROM {source}"]
    if draw(st.booleans()):
        clauses.append(f"WHERE {draw(column_ref(table, alias))} IS NOT NULL")
    if draw(st.booleans()):
        clauses.append(f"GROUP BY {draw(column_ref(table, alias))}")
    if draw(st.booleans()):
        clauses.append(f"ORDER BY {draw(column_ref(table, alias))}")
    return " ".join(clauses)


@st.composite
def query(draw: st.DrawFn) -> str:
    inner = draw(simple_select())
    shape = draw(st.sampled_from(["plain", "subquery", "cte", "union", "in"]))
    if shape == "subquery":
        return f"SELECT * FROM ({inner}) AS s"
    if shape == "cte":
        name = draw(st.sampled_from(["c", "payments", "deaths"]))
        return f"WITH {name} AS ({inner}) SELECT * FROM {name}"
    if shape == "union":
        return f"{inner} UNION ALL {draw(simple_select())}"
    if shape == "in":
        column = draw(column_ref("payments", "payments"))
        return f"SELECT amount FROM payments WHERE {column} IN (SELECT {column} FROM payments)"
    return inner


def columns_read(sql: str) -> set[tuple[str, str]]:
    """(dataset, column) pairs the executed SQL reads, found by re-parsing it."""
    found = set()
    for scope in traverse_scope(parse_statement(sql)):
        for column in scope.columns:
            source = scope.sources.get(column.table)
            while source is None and scope.parent is not None:
                scope = scope.parent
                source = scope.sources.get(column.table)
            if isinstance(source, exp.Table):
                found.add((source.name, column.name))
    return found


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sql=query(), mode=st.sampled_from(list(Mode)))
def test_generated_queries_never_reach_a_denied_column(sql: str, mode: Mode) -> None:
    policy = POLICIES[mode]
    try:
        checked = check_query(sql, policy)
    except (RefusedError, InputError):
        return
    tree = parse_statement(checked.executed)
    assert not {c.name.lower() for c in tree.find_all(exp.Column)} & DENIED
    for table, column in columns_read(checked.executed):
        assert column in policy.tables[table].columns, (sql, checked.executed)
    assert {c.split(".")[1] for c in checked.columns}.isdisjoint(DENIED)


@settings(max_examples=60, deadline=None)
@given(sql=query())
def test_queries_naming_a_denied_column_are_always_refused(sql: str) -> None:
    names = {
        part.strip('"').lower()
        for part in sql.replace("(", " ")
        .replace(")", " ")
        .replace(",", " ")
        .replace(".", " ")
        .split()
    }
    if not names & DENIED:
        return
    try:
        check_query(sql, POLICIES[Mode.PSEUDONYMOUS])
    except (RefusedError, InputError):
        return
    raise AssertionError(f"accepted a query naming a denied column: {sql}")


SOUP = [
    "SELECT", "FROM", "WHERE", "GROUP BY", "ORDER BY", "payments", "deaths", "amount",
    "payee_tin", "payee_name", "p", "p.*", "*", ",", "(", ")", "count(*)", "sum(", "1", "'x'",
    "AS", "JOIN", "ON", "=", "WITH", "UNION", "LIMIT", ";", "::INT", "CAST(", "IN", "EXCLUDE",
    "OVER", "DISTINCT", "HAVING", "main.", '"A"', "--", "$1", "[", "]", "{", "}", "->", "LATERAL",
    "PIVOT", "USING", "VALUES", "ALL", "QUALIFY", "#1",
]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    tokens=st.lists(st.sampled_from(SOUP), min_size=1, max_size=14),
    mode=st.sampled_from(list(Mode)),
)
def test_any_token_soup_ends_in_a_result_or_one_of_our_errors(
    tokens: list[str], mode: Mode
) -> None:
    try:
        check_query(" ".join(tokens), POLICIES[mode])
    except CustodietError as error:
        assert error.code.startswith("CUST")
        assert error.exit_status in (2, 3)
