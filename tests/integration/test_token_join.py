"""Joins on tokens give exactly what the same join gives on the raw identifiers."""

from __future__ import annotations

import duckdb
import pytest

from tests.gateway_data import make_world, run_query

PEOPLE = 400

# (gateway SQL over the projection, the same question over the raw files)
QUESTIONS = [
    (
        "SELECT count(*) FROM payments p JOIN deaths d ON p.payee_tin = d.ssn",
        "SELECT count(*) FROM payments p JOIN deaths d ON p.payee_tin = replace(d.ssn, '-', '') "
        "WHERE p.agency = 'SSA'",
    ),
    (
        "SELECT count(DISTINCT p.payee_tin), sum(p.amount) FROM payments p "
        "JOIN deaths d ON p.payee_tin = d.ssn WHERE p.payment_date > d.date_of_death",
        "SELECT count(DISTINCT p.payee_tin), sum(p.amount) FROM payments p "
        "JOIN deaths d ON p.payee_tin = replace(d.ssn, '-', '') "
        "WHERE p.agency = 'SSA' AND p.payment_date > d.date_of_death",
    ),
    (
        "SELECT p.program, count(*) AS n FROM payments p JOIN deaths d ON p.payee_tin = d.ssn "
        "WHERE date_trunc('month', p.payment_date) = DATE '2024-03-01' "
        "GROUP BY p.program ORDER BY p.program",
        "SELECT p.program, count(*) AS n FROM payments p "
        "JOIN deaths d ON p.payee_tin = replace(d.ssn, '-', '') "
        "WHERE p.agency = 'SSA' AND date_trunc('month', p.payment_date) = DATE '2024-03-01' "
        "GROUP BY p.program ORDER BY p.program",
    ),
    (
        "SELECT count(*) FROM deaths d WHERE d.ssn NOT IN (SELECT payee_tin FROM payments)",
        "SELECT count(*) FROM deaths d WHERE replace(d.ssn, '-', '') NOT IN "
        "(SELECT payee_tin FROM payments WHERE agency = 'SSA')",
    ),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    return make_world(tmp_path_factory.mktemp("join"), people=PEOPLE)


@pytest.mark.parametrize(("gateway_sql", "raw_sql"), QUESTIONS)
def test_join_on_tokens_matches_join_on_raw_identifiers(
    world, gateway_sql: str, raw_sql: str
) -> None:
    con = duckdb.connect()
    for name, path in world.data.items():
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}')")
    expected = con.execute(raw_sql).fetchall()
    result = run_query(world.ws, world.agreement_id, "rev", gateway_sql)
    assert result.rows == expected
    assert expected and expected[0][0]  # the join found something to compare
