"""The denied-column rule through check_query: letter case of names, aliases and qualifiers, and
which rule refuses (CUST341 naming the dataset, versus CUST332 when no dataset in the query
denies the name), with the exact refusal text and hint.
"""

from __future__ import annotations

import pytest

from custodiet.agreements.model import Mode
from custodiet.errors import RefusedError
from custodiet.gateway.check import check_query
from tests.unit.gateway.checker_policy import sample_policy

PSEUDO = sample_policy()
PAYMENTS_HINT = (
    "this agreement allows payment_id, payee_tin (token), amount, payment_date, program, agency, "
    "routing_number (token), account_number (token)"
)
DEATHS_HINT = "this agreement allows ssn (token), date_of_death, date_of_birth (generalized)"
JOIN = "FROM payments p JOIN deaths d ON p.payee_tin = d.ssn"


def refusal(sql: str, mode: Mode = Mode.PSEUDONYMOUS) -> RefusedError:
    with pytest.raises(RefusedError) as caught:
        check_query(sql, sample_policy(mode))
    return caught.value


def denied(dataset: str, column: str) -> str:
    return f"column '{dataset}.{column}' is denied by agreement 'ssa-deceased-payees' (v3)"


PAYMENTS_DENIED_CASES = {
    "upper-case qualifier, lower-case alias": "SELECT P.payee_name FROM payments p",
    "upper-case column, upper-case alias": "SELECT p.PAYEE_NAME FROM payments P",
    "upper-case table as qualifier": "SELECT PAYMENTS.payee_name FROM PAYMENTS",
    "quoted upper-case alias": 'SELECT "P".payee_name FROM payments AS "P"',
    "quoted column": 'SELECT "method" FROM payments',
    "upper-case column in WHERE": "SELECT amount AS m FROM payments p WHERE p.METHOD IS NULL",
    "upper-case column in GROUP BY": "SELECT count(*) FROM payments GROUP BY METHOD",
    "through an upper-case derived alias": "SELECT S.payee_name FROM (SELECT * FROM payments) s",
    "through a qualified star": "SELECT s.payee_name FROM (SELECT p.* FROM payments p) s",
    "through an upper-case qualified star": "SELECT s.payee_name FROM "
    "(SELECT P.* FROM payments p) s",
    "renamed inside a derived table": "SELECT s.x FROM (SELECT payee_name AS x FROM payments) s",
    "renamed in the output": "SELECT payee_name AS x FROM payments",
    "unknown upper-case qualifier": f"SELECT X.payee_name {JOIN}",
    "outer column in a correlated subquery": "SELECT amount FROM payments p WHERE EXISTS "
    "(SELECT 1 FROM deaths d WHERE d.ssn = p.payee_tin AND p.method = 1)",
    "after an output alias in ORDER BY": "SELECT amount AS total FROM payments "
    "ORDER BY total, method",
    "unqualified, next to a derived table of the same name": "SELECT method FROM "
    "(SELECT amount AS method FROM payments) c JOIN payments p ON c.method = p.amount",
    "inside syntax refused later": "SELECT string_agg(payee_name, ',') FROM payments",
    "inside a PIVOT": "SELECT * FROM payments PIVOT (count(*) FOR payee_name IN (1))",
    "second union branch of a cte, named by the first": "WITH u AS (SELECT agency FROM payments "
    "UNION ALL SELECT program AS payee_name FROM payments) SELECT payee_name FROM u",
}


@pytest.mark.parametrize("case", sorted(PAYMENTS_DENIED_CASES))
@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
def test_denied_payments_column_is_refused_by_name(case: str, mode: Mode) -> None:
    sql = PAYMENTS_DENIED_CASES[case]
    error = refusal(sql, mode)
    assert error.code == "CUST341"
    column = "method" if "method" in sql.lower() and "payee_name" not in sql else "payee_name"
    assert error.rule == denied("payments", column)
    assert error.hint == PAYMENTS_HINT
    assert error.excerpt is not None and "~" in error.excerpt


DEATHS_DENIED_CASES = {
    "unknown upper-case qualifier": "SELECT X.last_name FROM deaths D",
    "unknown qualifier over a join": f"SELECT q.first_name {JOIN}",
    "semi join": "SELECT p.amount FROM payments p SEMI JOIN deaths d "
    "ON p.payee_tin = d.ssn WHERE first_name IS NULL",
    "anti join condition": "SELECT amount FROM payments p ANTI JOIN deaths d "
    "ON p.payee_tin = d.ssn AND d.last_name IS NULL",
    "IN subquery": "SELECT amount FROM payments p WHERE p.payee_tin IN "
    "(SELECT ssn FROM deaths WHERE last_name = 1)",
    "upper-case alias of deaths": f"SELECT D.LAST_NAME {JOIN.replace(' d ', ' D ')}",
}


@pytest.mark.parametrize("case", sorted(DEATHS_DENIED_CASES))
def test_denied_deaths_column_is_refused_by_name(case: str) -> None:
    sql = DEATHS_DENIED_CASES[case]
    error = refusal(sql)
    column = "last_name" if "last_name" in sql.lower() else "first_name"
    assert (error.code, error.rule, error.hint) == (
        "CUST341",
        denied("deaths", column),
        DEATHS_HINT,
    )


NOT_DENIED_HERE = {
    # a qualifier that names a dataset which does not deny the name: not the denied rule
    "denied elsewhere, qualified by the other alias": f"SELECT d.payee_name {JOIN}",
    "denied in deaths, qualified by payments": f"SELECT p.first_name {JOIN}",
    "denied only by a dataset not in the query": "SELECT first_name FROM payments",
    "qualified by the table that does not deny it": "SELECT payments.first_name FROM payments",
    "unknown qualifier over a derived table only": "SELECT t.method FROM (SELECT 1 AS x) t",
    "aliased dataset named by its table name": "SELECT payments.first_name FROM payments p "
    "JOIN deaths d ON p.payee_tin = d.ssn",
}


@pytest.mark.parametrize("case", sorted(NOT_DENIED_HERE))
def test_a_name_no_dataset_it_can_mean_denies_is_refused_as_not_granted(case: str) -> None:
    error = refusal(NOT_DENIED_HERE[case])
    assert error.code == "CUST332"
    assert "denied" not in error.rule


ACCEPTED = {
    "star of one dataset": "SELECT p.* FROM payments p",
    "upper-case star qualifier": "SELECT P.* FROM payments p",
    "no denied name at all": "SELECT amount FROM payments WHERE amount > 0",
    "output alias ordered": "SELECT amount AS method FROM payments ORDER BY method",
    "output alias in QUALIFY": "SELECT amount AS method FROM payments QUALIFY method > 0",
    "output alias in HAVING": "SELECT program, count(*) AS method FROM payments "
    "GROUP BY program HAVING method > 1",
    "upper-case output of a derived table": "SELECT s.method FROM "
    "(SELECT amount AS METHOD FROM payments) s",
    "upper-case reference to a derived output": "SELECT S.METHOD FROM "
    "(SELECT amount AS method FROM payments) s",
    "upper-case derived alias": "SELECT w.method FROM "
    "(SELECT p.payee_tin AS method FROM payments p) W",
    "qualified derived output next to the dataset": "SELECT c.method FROM "
    "(SELECT amount AS method FROM payments) c JOIN payments p ON c.method = p.amount",
    "first union branch names the output": "WITH u AS (SELECT program AS payee_name "
    "FROM payments UNION ALL SELECT agency FROM payments) SELECT payee_name FROM u",
    "values named like a denied column": "SELECT v.payee_name FROM (VALUES (1)) AS v(payee_name)",
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_names_that_only_look_denied_are_accepted(case: str) -> None:
    checked = check_query(ACCEPTED[case], PSEUDO)
    assert not {c for c in checked.columns if c.endswith((".payee_name", ".method"))}


def test_star_over_a_dataset_expands_to_granted_columns_only() -> None:
    checked = check_query("SELECT * FROM payments", PSEUDO)
    assert "payee_name" not in checked.executed and "method" not in checked.executed


def test_the_denied_rule_names_the_first_denied_reference() -> None:
    error = refusal(f"SELECT d.last_name, p.payee_name {JOIN}")
    assert error.rule == denied("deaths", "last_name")
    error = refusal(f"SELECT p.payee_name, d.last_name {JOIN}")
    assert error.rule == denied("payments", "payee_name")


@pytest.mark.parametrize(
    "sql",
    [
        "WITH W AS (SELECT payee_tin AS method FROM payments) SELECT w.method FROM w",
        "WITH w AS (SELECT payee_tin AS method FROM payments) SELECT W.method FROM W",
        "WITH W AS (SELECT payee_tin AS method FROM payments) SELECT method FROM w",
    ],
)
def test_a_cte_read_in_another_letter_case_is_not_the_denied_column(sql: str) -> None:
    # DuckDB matches CTE names without regard to case (denied.py matched them exactly, and took
    # w.method for payments.method: CUST341)
    assert check_query(sql, PSEUDO).columns == ("payments.payee_tin",)


@pytest.mark.parametrize(
    "sql",
    [
        "WITH W AS (SELECT * FROM payments) SELECT w.method FROM w",
        "WITH w AS (SELECT payee_name AS x, * FROM payments) SELECT W.method FROM W",
        "WITH W AS (SELECT payee_tin FROM payments) SELECT w.payee_name FROM w, payments",
    ],
)
def test_a_denied_column_through_a_cte_in_another_letter_case_is_refused(sql: str) -> None:
    assert refusal(sql).code == "CUST341"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT payee_name FROM other_table",
        "SELECT o.method FROM other_table o",
    ],
)
def test_a_denied_name_read_from_a_table_outside_the_agreement_is_refused_as_unknown(
    sql: str,
) -> None:
    error = refusal(sql)
    assert (error.code, error.rule) == (
        "CUST340",
        "table 'other_table' is not in agreement 'ssa-deceased-payees'",
    )
