"""Golden files for each rewrite pass, and a differential run of rewritten SQL on DuckDB.

Fixture format (tests/fixtures/sql/<pass>.sql): "-- case: <name>", input SQL, "-- expected:",
expected SQL; comment lines before the first case are ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from sqlglot import exp

from custodiet.agreements.model import Mode
from custodiet.gateway.check import check_query
from custodiet.gateway.contributors import contribution_counts
from custodiet.gateway.parse import parse_statement
from custodiet.gateway.rewrite import (
    hoisted_joins,
    output_names,
    qualified,
    row_limited,
    try_casts,
    without_main_qualifier,
)
from tests.unit.gateway.checker_policy import sample_policy

FIXTURES = Path(__file__).parents[2] / "fixtures" / "sql"
POLICY = sample_policy()


@dataclass(frozen=True)
class Golden:
    name: str
    given: str
    expected: str


def goldens(path: Path) -> list[Golden]:
    """The cases of one golden file, in order."""
    cases: list[Golden] = []
    name, given, expected, current = "", [], [], None
    for line in [*path.read_text().splitlines(), "-- case: <end>"]:
        if line.startswith("-- case:"):
            if name:
                cases.append(Golden(name, "\n".join(given).strip(), "\n".join(expected).strip()))
            name, given, expected, current = line.removeprefix("-- case:").strip(), [], [], None
            current = given
        elif line.startswith("-- expected:"):
            current = expected
        elif current is not None and not line.startswith("--"):
            current.append(line)
    return cases


def rendered(tree: exp.Expr) -> str:
    return tree.sql(dialect="duckdb")


def canonical(sql: str) -> str:
    return rendered(parse_statement(sql))


PASSES: dict[str, Callable[[str], str]] = {
    "qualified": lambda sql: rendered(
        qualified(without_main_qualifier(parse_statement(sql)), POLICY, sql)
    ),
    "hoisted_joins": lambda sql: rendered(hoisted_joins(parse_statement(sql))),
    "output_names": lambda sql: rendered(output_names(parse_statement(sql))),
    "try_casts": lambda sql: rendered(try_casts(parse_statement(sql))),
    "contribution_counts": lambda sql: rendered(
        contribution_counts(parse_statement(sql), sample_policy(Mode.AGGREGATE))[0]  # type: ignore[arg-type]
    ),
    "row_limited": lambda sql: rendered(row_limited(parse_statement(sql), 101)),  # type: ignore[arg-type]
    "check_query": lambda sql: check_query(sql, POLICY).executed,
}

CASES = [
    pytest.param(name, case, id=f"{name}:{case.name}")
    for name in PASSES
    for case in goldens(FIXTURES / f"{name}.sql")
]


def test_every_pass_has_a_golden_file_with_cases() -> None:
    assert {path.stem for path in FIXTURES.glob("*.sql")} == set(PASSES)
    assert all(len(goldens(FIXTURES / f"{name}.sql")) >= 2 for name in PASSES)


@pytest.mark.parametrize("name, case", CASES)
def test_pass_output_matches_golden(name: str, case: Golden) -> None:
    assert PASSES[name](case.given) == canonical(case.expected)


# ---- differential: the rewritten query returns what the original returns ----------------------


@pytest.fixture(scope="module")
def engine() -> duckdb.DuckDBPyConnection:
    """Tiny tables with exactly the granted columns, as a projection would hold them."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE payments (payment_id VARCHAR, payee_tin VARCHAR, amount DECIMAL(12,2), "
        "payment_date DATE, program VARCHAR, agency VARCHAR, routing_number VARCHAR, "
        "account_number VARCHAR)"
    )
    con.execute("CREATE TABLE deaths (ssn VARCHAR, date_of_death DATE, date_of_birth INTEGER)")
    con.execute(
        "INSERT INTO payments SELECT 'P' || i, 't' || (i % 3), (i % 4) * 100 + 0.25, "
        "DATE '2023-01-01' + INTERVAL (i % 6 * 40) DAY, ['SSI', 'OASDI', 'VA'][i % 3 + 1], "
        "CASE WHEN i % 4 = 0 THEN NULL ELSE 'SSA' END, 'r' || (i % 2), 'a' || (i % 3) "
        "FROM range(60) t(i)"
    )
    con.execute(
        "INSERT INTO deaths SELECT 't' || i, DATE '2023-03-01' + INTERVAL (i * 20) DAY, "
        "1900 + i * 9 FROM range(5) t(i)"
    )
    return con


DIFFERENTIAL = [
    pytest.param(case.given, id=case.name) for case in goldens(FIXTURES / "check_query.sql")
] + [
    pytest.param(sql, id=sql)
    for sql in (
        "SELECT * FROM payments",
        "SELECT CAST(amount AS INTEGER) AS a FROM payments ORDER BY payment_id LIMIT 7",
        "SELECT program, count(*), sum(amount), avg(amount) FROM payments GROUP BY program",
        "SELECT p.* FROM payments p "
        "WHERE EXISTS (SELECT 1 FROM deaths d WHERE d.ssn = p.payee_tin)",
        "SELECT ssn FROM deaths EXCEPT SELECT payee_tin FROM payments",
        "SELECT year(payment_date) AS y, count(DISTINCT payee_tin) FROM payments GROUP BY y",
    )
]


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[object, ...]]:
    return sorted(con.execute(sql).fetchall(), key=repr)


@pytest.mark.parametrize("sql", DIFFERENTIAL)
def test_rewritten_query_returns_the_same_rows(engine: duckdb.DuckDBPyConnection, sql: str) -> None:
    original = rows(engine, sql)
    assert 0 < len(original) <= POLICY.max_rows
    assert rows(engine, check_query(sql, POLICY).executed) == original
