"""A sum's contributors are the rows whose argument is non-zero: ``x <> 0``, with no cast per row
when the argument is a number (``contributors.is_numeric``), ``TRY_CAST(x AS DOUBLE) <> 0`` when it
is not known to be one.

Leaving the cast out is exact only if DuckDB really types the argument as a number; each claim
is checked here against DuckDB's own ``typeof`` and against the cast comparison, row by row, on
values chosen to tell them apart (zero, NULL, -0.0, NaN, the smallest decimal, the largest
integers). The fast form counts contributing rows with ``count_if``, which the engine shares
with the aggregate's own argument; the property test in ``test_contributors_property.py`` checks
that it releases exactly what the distinct-person counts release.
"""

from __future__ import annotations

import dataclasses

import duckdb
import pytest
from sqlglot import exp

from custodiet.agreements.model import Mode
from custodiet.gateway.check import check_query
from custodiet.gateway.contributors import is_numeric
from custodiet.gateway.parse import DUCKDB, parse_statement
from tests.unit.gateway.checker_policy import sample_policy

NUMBER_COLUMNS = {"d", "f", "h", "u", "i"}
DUCKDB_NUMBER_TYPES = ("DECIMAL", "DOUBLE", "FLOAT", "HUGEINT", "UBIGINT", "BIGINT", "INTEGER")
DUCKDB_NUMBER_TYPES += ("SMALLINT", "TINYINT", "UTINYINT", "USMALLINT", "UINTEGER", "UHUGEINT")
DUCKDB_NUMBER_TYPES += ('"NULL"',)

NUMERIC = [
    "d",
    "f",
    "h",
    "u",
    "i",
    "0",
    "0.001",
    "NULL",
    "(d)",
    "-d",
    "d * i",
    "d / i",
    "i // 2",
    "i % 3",
    "d + f",
    "d - i",
    "CASE WHEN c THEN d ELSE 0 END",
    "CASE WHEN c THEN d END",
    "CASE WHEN c THEN u WHEN i > 0 THEN f ELSE 0.001 END",
    "CASE i WHEN 1 THEN d ELSE NULL END",
    "if(c, h, 0)",
    "d * TRY_CAST(c AS INTEGER)",
    "TRY_CAST(s AS DOUBLE)",
    "CAST(i AS HUGEINT)",
    "TRY_CAST(d AS DECIMAL(18, 3))",
    *(
        f"TRY_CAST(i AS {t})"
        for t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER")
    ),
    *(f"TRY_CAST(f AS {t})" for t in ("UBIGINT", "UHUGEINT", "DOUBLE", "FLOAT", "REAL")),
]
NOT_NUMERIC = [
    "s",
    "dt",
    "c",
    "'0'",
    "CASE WHEN c THEN d ELSE '0' END",
    "CASE WHEN c THEN d ELSE s END",
    "CASE WHEN c THEN s ELSE 0 END",
    "if(c, d, s)",
    "if(c, s, d)",
    "abs(d)",
    "coalesce(d, 0)",
    "TRY_CAST(i AS BOOLEAN)",
    "TRY_CAST(i AS BIT)",
    "TRY_CAST(i AS VARCHAR)",
    "dt - dt",
    "d + s",
    "s * d",
    "-s",
    "(s)",
]
ROWS = """
  (0, 0, 0, 0, 0, '0', NULL, true),
  (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (0.01, -0.0, 1, 1, 1, 'x', DATE '2024-01-01', false),
  (-0.01, 'nan', 170141183460469231731687303715884105727, 18446744073709551615, -1, '0.0',
   DATE '2024-01-02', true),
  (9999999999.99, 1e-300, -170141183460469231731687303715884105727, 0, 2, '1e-300',
   DATE '2024-01-03', NULL)
"""


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t (d DECIMAL(12,2), f DOUBLE, h HUGEINT, u UBIGINT, i INTEGER, s VARCHAR, "
        f"dt DATE, c BOOLEAN); INSERT INTO t VALUES {ROWS}"
    )
    return con


def numeric(sql: str) -> bool:
    tree = parse_statement(f"SELECT {sql} FROM t")
    assert isinstance(tree, exp.Select)
    return is_numeric(tree.expressions[0], lambda column: column.name in NUMBER_COLUMNS)


@pytest.mark.parametrize("sql", NUMERIC)
def test_what_is_called_a_number_is_one_and_compares_with_zero_as_its_cast_does(
    con: duckdb.DuckDBPyConnection, sql: str
) -> None:
    assert numeric(sql)
    rendered = parse_statement(f"SELECT {sql} FROM t").sql(dialect=DUCKDB)
    argument = rendered.removeprefix("SELECT ").removesuffix(" FROM t")
    types = {row[0] for row in con.execute(f"SELECT typeof({argument}) FROM t").fetchall()}
    assert all(t.startswith(DUCKDB_NUMBER_TYPES) for t in types), types
    differing = con.execute(
        f"SELECT count(*) FROM t WHERE (({argument}) <> 0) IS DISTINCT FROM "
        f"(TRY_CAST(({argument}) AS DOUBLE) <> 0)"
    ).fetchone()
    assert differing == (0,)


@pytest.mark.parametrize("sql", NOT_NUMERIC)
def test_anything_else_is_not_called_a_number(sql: str) -> None:
    assert not numeric(sql)


AGG = sample_policy(Mode.AGGREGATE)


def test_a_numeric_argument_is_compared_without_a_cast_and_other_arguments_with_one() -> None:
    checked = check_query(
        "SELECT sum(CASE WHEN amount > 900 THEN amount ELSE 0 END) AS a, "
        "sum(abs(amount)) AS b FROM payments",
        AGG,
    )
    case = "CASE WHEN payments.amount > 900 THEN payments.amount ELSE 0 END"
    assert f"({case}) <> 0" in checked.executed
    assert "TRY_CAST((ABS(payments.amount)) AS DOUBLE) <> 0" in checked.executed
    assert f"TRY_CAST(({case})" not in checked.executed


COLUMN_NUMBER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "DECIMAL(12,2)",
                       "DOUBLE", "FLOAT", "REAL", "UTINYINT", "USMALLINT", "UINTEGER",
                       "UBIGINT")  # fmt: skip


@pytest.mark.parametrize("sql_type", [*COLUMN_NUMBER_TYPES, "VARCHAR", "DATE", "BOOLEAN"])
def test_a_column_is_a_number_by_its_type_in_the_agreement(sql_type: str) -> None:
    payments = AGG.tables["payments"]
    amount = dataclasses.replace(payments.columns["amount"], sql_type=sql_type)
    columns = {**payments.columns, "amount": amount}
    tables = {**AGG.tables, "payments": dataclasses.replace(payments, columns=columns)}
    policy = dataclasses.replace(AGG, tables=tables)
    executed = check_query("SELECT sum(amount) AS s FROM payments", policy).executed
    cast = "TRY_CAST(payments.amount AS DOUBLE) <> 0" in executed
    assert cast is not (sql_type in COLUMN_NUMBER_TYPES)
    assert cast or "CASE WHEN payments.amount <> 0 THEN" in executed


def test_a_distinct_sum_and_an_unresolved_name_are_compared_as_they_should() -> None:
    # sum(DISTINCT amount): the argument is the column inside DISTINCT, a number
    distinct = check_query("SELECT sum(DISTINCT amount) AS s FROM payments", AGG).executed
    assert "CASE WHEN payments.amount <> 0 THEN" in distinct
    # an aggregate over an output name in ORDER BY reads no dataset column: not claimed a number
    ordered = check_query(
        "SELECT program, sum(amount) AS total FROM payments GROUP BY program ORDER BY sum(total)",
        AGG,
    ).executed
    assert "CASE WHEN TRY_CAST(total AS DOUBLE) <> 0 THEN" in ordered


def test_the_fast_forms_count_contributing_rows_with_count_if() -> None:
    checked = check_query(
        "SELECT program, sum(amount) FILTER (WHERE agency = 'SSA') AS total FROM payments "
        "GROUP BY program",
        AGG,
    )
    test = "payments.amount <> 0 AND (payments.agency = 'SSA')"
    assert checked.fast_rows is not None and checked.fast is not None
    rows = f"COALESCE(COUNT_IF(TRY_CAST(({test}) AS BOOLEAN)), 0)"
    assert f"{rows} AS _custodiet_persons_1" in checked.fast_rows
    assert f"COUNT(*) - {rows} AS _custodiet_others_2" in checked.fast_rows
    test = f"({test}) AND NOT payments.payee_tin IS NULL"
    counted = f"COALESCE(COUNT_IF(TRY_CAST(({test}) AS BOOLEAN)), 0)"
    assert f"{counted} AS _custodiet_persons_1" in checked.fast
    assert f"COUNT(payments.payee_tin) - {counted} AS _custodiet_others_2" in checked.fast
    assert "FILTER(WHERE (" not in checked.fast + checked.fast_rows


@pytest.mark.parametrize("where", ["payments.amount", "NULL", "payments.agency = 'SSA'"])
@pytest.mark.parametrize("rows", ["", "WHERE payments.amount > 100000"])
def test_the_fast_forms_count_the_rows_a_filter_passes_whatever_its_type(
    where: str, rows: str
) -> None:
    # a bare FILTER (WHERE amount) is cast to BOOLEAN, a NULL one passes nothing, and no row at
    # all counts 0: each as count(*) FILTER (WHERE ...) counts them (count_if alone would not)
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE payments (payee_tin VARCHAR, amount DECIMAL(12,2), agency VARCHAR);"
        "INSERT INTO payments VALUES ('a', 0, 'SSA'), ('b', 2.5, 'IRS'), (NULL, 3, 'SSA'), "
        "('c', NULL, NULL), ('a', 7, 'SSA')"
    )
    sql = f"SELECT count(*) FILTER (WHERE {where}) AS n FROM payments {rows}"
    checked = check_query(sql, AGG)
    assert checked.fast_rows is not None and checked.fast is not None
    given = f"FROM payments AS payments {rows}"
    (passed,) = con.execute(f"SELECT count(*) FILTER (WHERE {where}) {given}").fetchone() or ()
    (with_person,) = (
        con.execute(f"SELECT count(payee_tin) FILTER (WHERE {where}) {given}").fetchone() or ()
    )
    (everyone,) = con.execute(f"SELECT count(*) {given}").fetchone() or ()
    fast_rows = dict(zip(("n", "g", "p", "o"), con.execute(checked.fast_rows).fetchone() or ()))
    assert fast_rows == {"n": passed, "g": everyone, "p": passed, "o": everyone - passed}
    fast = con.execute(checked.fast).fetchone() or ()
    assert fast[2:] == (with_person, fast[1] - with_person)
