"""Property: in aggregate mode no released value comes from fewer than min_group_size persons.

Generated aggregate queries (conditional aggregation in its spellings: CASE, CASE ... ELSE 0, IF,
an indicator times the value, FILTER, a CASE constant for all but some rows; with or without a
WHERE and a GROUP BY) run through the real checker, engine and release on a small workspace; every
released row is then checked against a brute-force count, in Python, over the raw Parquet rows:
the persons whose rows contribute to each value, and those whose rows in the group do not.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custodiet.agreements.lifecycle import active_agreement
from custodiet.gateway.check import check_query
from custodiet.gateway.execute import execute, open_engine
from custodiet.gateway.projection import load_policy, projection_path
from custodiet.gateway.release import release
from custodiet.gateway.suppress import release_aggregate, settled
from tests.gateway_data import agreement_document, make_world, state_of

AGREEMENT = "agg-property"
THRESHOLD = 5
Row = dict[str, Any]


@dataclass(frozen=True)
class Pipeline:
    rows: list[Row]  # raw payments inside the agreement's filter
    run: Callable[[str], tuple[tuple[str, ...], list[tuple[Any, ...]]]]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory):
    document = agreement_document(AGREEMENT, mode="aggregate")
    document["limits"]["min_group_size"] = THRESHOLD
    world = make_world(tmp_path_factory.mktemp("contributors"), people=45, agreements=(document,))
    active = active_agreement(state_of(world.ws), AGREEMENT)
    policy = load_policy(world.ws, active)
    engine = open_engine(projection_path(world.ws, active))
    raw = duckdb.connect()
    columns = ["payee_tin", "program", "amount", "payment_date"]
    rows = [
        dict(zip(columns, r, strict=True))
        for r in raw.execute(
            f"SELECT {', '.join(columns)} FROM '{world.data['payments']}' WHERE agency = 'SSA'"
        ).fetchall()
    ]

    def run(sql: str) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        checked = check_query(sql, policy)
        executed = execute(
            engine, checked.executed, row_limit=checked.row_limit, timeout_seconds=10
        )
        released = release(
            policy, executed.columns, executed.rows, touched=checked.columns, hidden=checked.hidden
        )
        # the fast path (row counts, exact counts only where unsettled) releases the same rows
        fast = release_aggregate(
            world.ws,
            active,
            policy,
            checked,
            lambda s: execute(engine, s, row_limit=checked.row_limit, timeout_seconds=10),
        )
        assert fast.columns == released.columns, sql
        assert sorted(fast.rows, key=repr) == sorted(released.rows, key=repr), sql
        return released.columns, released.rows

    yield Pipeline(rows, run)
    engine.close()


# A condition over one row: (SQL, Python)
Condition = tuple[str, Callable[[Row], bool]]


@st.composite
def conditions(draw: st.DrawFn) -> Condition:
    kind = draw(st.sampled_from(["amount", "program", "month"]))
    if kind == "amount":
        limit = draw(st.integers(498, 665))
        return f"amount > {limit}", lambda r: r["amount"] > limit
    if kind == "program":
        program = draw(st.sampled_from(["RSI", "SSDI", "SSI"]))
        return f"program = '{program}'", lambda r: r["program"] == program
    month = draw(st.integers(1, 3))
    return f"month(payment_date) = {month}", lambda r: r["payment_date"].month == month


# An aggregate: SQL, the per-row value (None = NULL), and whether a row passes its FILTER.
Aggregate = tuple[str, str, Callable[[Row], Any], Callable[[Row], bool]]


@st.composite
def aggregates(draw: st.DrawFn) -> Aggregate:
    function = draw(st.sampled_from(["count", "sum", "avg"]))
    sql, test = draw(conditions())
    spelling = draw(st.sampled_from(["case", "case-else", "if", "indicator", "filter", "inverse"]))
    always: Callable[[Row], bool] = lambda r: True  # noqa: E731
    if spelling == "case":
        argument, value = (
            f"CASE WHEN {sql} THEN amount END",
            lambda r: r["amount"] if test(r) else None,
        )
    elif spelling == "case-else":
        argument, value = (
            f"CASE WHEN {sql} THEN amount ELSE 0 END",
            lambda r: r["amount"] if test(r) else 0,
        )
    elif spelling == "if":
        argument, value = f"if({sql}, amount, 0)", lambda r: r["amount"] if test(r) else 0
    elif spelling == "indicator":
        argument, value = f"amount * CAST({sql} AS INTEGER)", lambda r: r["amount"] * int(test(r))
    elif spelling == "inverse":
        argument, value = f"CASE WHEN {sql} THEN 0 ELSE 1 END", lambda r: 0 if test(r) else 1
    else:
        text = "*" if function == "count" and draw(st.booleans()) else "amount"
        return f"{function}({text}) FILTER (WHERE {sql})", function, lambda r: 1, test
    if function == "count" and draw(st.booleans()):
        return "count(*)", "count", lambda r: 1, always
    return f"{function}({argument})", function, value, always


GROUPS: dict[str, Callable[[Row], Any]] = {
    "program": lambda r: r["program"],
    "date_trunc('month', payment_date)": lambda r: r["payment_date"].replace(day=1),
}


def contributes(function: str, value: Any) -> bool:
    if function == "count":
        return value is not None
    return value is not None and decimal.Decimal(value) != 0


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    group=st.sampled_from([None, *GROUPS]),
    where=st.none() | conditions(),
    outputs=st.lists(aggregates(), min_size=1, max_size=3),
)
def test_no_released_value_has_fewer_contributors_than_the_threshold(
    pipeline: Pipeline, group: str | None, where: Condition | None, outputs: list[Aggregate]
) -> None:
    selects = ([f"{group} AS g"] if group else []) + [
        f"{sql} AS v{i}" for i, (sql, _, _, _) in enumerate(outputs)
    ]
    sql = f"SELECT {', '.join(selects)} FROM payments"
    if where is not None:
        sql += f" WHERE {where[0]}"
    if group:
        sql += " GROUP BY g"
    _, released = pipeline.run(sql)
    inside = [r for r in pipeline.rows if where is None or where[1](r)]
    for row in released:
        key = row[0] if group else None
        if isinstance(key, dt.datetime):
            key = key.date()
        members = [r for r in inside if group is None or GROUPS[group](r) == key]
        assert len({r["payee_tin"] for r in members}) >= THRESHOLD, sql
        for _, function, value, passes in outputs:
            persons = {
                r["payee_tin"] for r in members if passes(r) and contributes(function, value(r))
            }
            others = {
                r["payee_tin"]
                for r in members
                if not (passes(r) and contributes(function, value(r)))
            }
            assert len(persons) >= THRESHOLD, (sql, row)
            assert not others or len(others) >= THRESHOLD, (sql, row)


def test_row_counts_settle_only_what_the_pigeonhole_proves() -> None:
    from custodiet.gateway.contributors import HiddenCount

    persons = HiddenCount("p", False, "payments", ("payments",))
    others = HiddenCount("o", True, "payments", ("payments",))
    columns = ("v", "p", "o")
    bounds = {"payments": 3}  # at most 3 rows a person: 13 rows are at least 5 persons
    assert settled(columns, [(1, 13, 0)], [persons, others], bounds, 5) == [(1, 5, 0)]
    assert settled(columns, [(1, 4, 13)], [persons, others], bounds, 5) == [(1, 0, 5)]
    assert settled(columns, [(1, 13, 2)], [persons, others], bounds, 5) == [(1, 5, 1)]
    assert settled(columns, [(1, 12, 0)], [persons, others], bounds, 5) is None
    assert settled(columns, [(1, 13, 0)], [persons, others], {}, 5) is None
