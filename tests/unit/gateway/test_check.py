"""check_query: what it lets through, what it refuses and how the refusal reads."""

from __future__ import annotations

from dataclasses import replace

import pytest

from custodiet.agreements.model import Mode
from custodiet.errors import RefusedError
from custodiet.gateway.check import check_query
from custodiet.gateway.parse import parse_statement
from custodiet.gateway.rewrite import PERSONS_COLUMN, granted_schema
from tests.unit.gateway.checker_policy import AGREEMENT, MAX_ROWS, sample_policy

PSEUDO = sample_policy()
AGG = sample_policy(Mode.AGGREGATE)


def refusal(sql: str, mode: Mode = Mode.PSEUDONYMOUS) -> RefusedError:
    with pytest.raises(RefusedError) as caught:
        check_query(sql, sample_policy(mode))
    return caught.value


def test_accepts_join_on_tokens_and_reports_what_it_touches() -> None:
    checked = check_query(
        "SELECT p.payee_tin, p.amount FROM payments p JOIN deaths d ON p.payee_tin = d.ssn "
        "WHERE p.payment_date > d.date_of_death",
        PSEUDO,
    )
    assert checked.tables == ("deaths", "payments")
    assert checked.columns == (
        "deaths.date_of_death",
        "deaths.ssn",
        "payments.amount",
        "payments.payee_tin",
        "payments.payment_date",
    )
    assert not checked.aggregate
    assert checked.hidden == ()
    assert checked.row_limit == MAX_ROWS + 1


def test_expands_star_to_granted_columns_only() -> None:
    checked = check_query("SELECT * FROM payments", PSEUDO)
    outputs = parse_statement(checked.executed).named_selects
    assert outputs == list(PSEUDO.tables["payments"].columns)


def test_expands_qualified_star_of_one_table() -> None:
    checked = check_query("SELECT d.* FROM payments p JOIN deaths d ON p.payee_tin = d.ssn", PSEUDO)
    assert parse_statement(checked.executed).named_selects == list(PSEUDO.tables["deaths"].columns)


DENIED_PLACES = {
    "select": "SELECT payee_name FROM payments",
    "uppercase quoted": 'SELECT "PAYEE_NAME" FROM payments',
    "qualified": "SELECT payments.payee_name FROM payments",
    "schema qualified": "SELECT main.payments.payee_name FROM main.payments",
    "alias qualified": "SELECT p.payee_name FROM payments AS p",
    "from first": "FROM payments SELECT payee_name",
    "where": "SELECT amount FROM payments WHERE payee_name LIKE 'A%'",
    "order by": "SELECT amount FROM payments ORDER BY payee_name",
    "group by": "SELECT count(*) FROM payments GROUP BY payee_name",
    "having": "SELECT program FROM payments GROUP BY program HAVING max(payee_name) > 'M'",
    "join on": "SELECT amount FROM payments p JOIN deaths d ON p.payee_name = d.ssn",
    "window": "SELECT row_number() OVER (PARTITION BY payee_name) FROM payments",
    "cte": "WITH x AS (SELECT payee_name FROM payments) SELECT * FROM x",
    "subquery": "SELECT * FROM (SELECT payee_name AS n FROM payments) AS s",
    "scalar subquery": "SELECT (SELECT max(payee_name) FROM payments) AS n",
    "in subquery": "SELECT amount FROM payments WHERE payee_tin IN "
    "(SELECT payee_name FROM payments)",
    "union branch": "SELECT program FROM payments UNION ALL SELECT payee_name FROM payments",
    "aggregate arg": "SELECT string_agg(payee_name, ',') FROM payments",
    "list": "SELECT list(payee_name) FROM payments",
    "case": "SELECT CASE WHEN payee_name IS NULL THEN 1 END FROM payments",
    "cast": "SELECT CAST(payee_name AS INTEGER) FROM payments",
}


@pytest.mark.parametrize("sql", DENIED_PLACES.values(), ids=DENIED_PLACES.keys())
def test_rejects_denied_column_wherever_it_appears(sql: str) -> None:
    error = refusal(sql)
    assert error.rule == (f"column 'payments.payee_name' is denied by agreement '{AGREEMENT}' (v3)")
    assert error.code == "CUST341"
    assert error.excerpt is not None and "~" in error.excerpt


def test_denied_refusal_underlines_the_column_and_hints_what_is_allowed() -> None:
    error = refusal("SELECT payee_name, amount FROM payments")
    assert error.excerpt == ("  SELECT payee_name, amount FROM payments\n         ~~~~~~~~~~")
    assert error.hint is not None and "payee_tin (token)" in error.hint
    assert "payee_name" not in error.hint
    assert error.render().splitlines()[0].startswith("refused: column 'payments.payee_name'")


def test_refusal_points_at_the_right_line_of_a_multiline_query() -> None:
    error = refusal("SELECT amount\nFROM payments\nWHERE payee_name = 'x'")
    assert error.excerpt == "  WHERE payee_name = 'x'\n        ~~~~~~~~~~"


def test_rejects_column_not_granted_nor_denied() -> None:
    error = refusal("SELECT ghost FROM payments")
    assert error.rule == f"column 'ghost' is not in agreement '{AGREEMENT}'"


def test_cte_named_like_a_dataset_is_checked_against_its_own_columns() -> None:
    error = refusal("WITH payments AS (SELECT ssn FROM deaths) SELECT amount FROM payments")
    assert "column 'amount' is not in agreement" in error.rule
    checked = check_query(
        "WITH payments AS (SELECT ssn FROM deaths) SELECT * FROM payments", PSEUDO
    )
    assert checked.tables == ("deaths",)
    assert checked.columns == ("deaths.ssn",)


@pytest.mark.parametrize(
    "sql, rule",
    [
        ("SELECT * FROM beneficiaries", "table 'beneficiaries' is not in agreement"),
        ("SELECT * FROM 'beneficiaries.parquet'", "table 'beneficiaries.parquet' is not in"),
        ("SELECT * FROM other.payments", "is not in agreement"),
        ("SELECT * FROM memory.main.payments", "is not in agreement"),
        ("SELECT * FROM key", "table 'key' is not in agreement"),
        ("SELECT * FROM information_schema.tables", "is not in agreement"),
    ],
)
def test_rejects_tables_outside_the_agreement(sql: str, rule: str) -> None:
    assert rule in refusal(sql).rule


@pytest.mark.parametrize(
    "sql, statement",
    [
        ("COPY payments TO 'x.csv'", "COPY"),
        ("ATTACH 'other.db'", "ATTACH"),
        ("INSTALL httpfs", "INSTALL"),
        ("LOAD httpfs", "LOAD"),
        ("SET threads = 64", "SET"),
        ("RESET threads", "RESET"),
        ("PRAGMA version", "PRAGMA"),
        ("SUMMARIZE payments", "SUMMARIZE"),
        ("DESCRIBE payments", "DESCRIBE"),
        ("SHOW TABLES", "SHOW"),
        ("PIVOT payments ON program", "PIVOT"),
        ("EXPLAIN ANALYZE SELECT * FROM payments", "EXPLAIN"),
        ("CREATE TABLE x AS SELECT * FROM payments", "CREATE"),
        ("INSERT INTO payments VALUES (1)", "INSERT"),
        ("DELETE FROM payments", "DELETE"),
        ("UPDATE payments SET amount = 0", "UPDATE"),
        ("CALL pragma_version()", "CALL"),
        ("USE main", "USE"),
    ],
)
def test_rejects_every_statement_but_select(sql: str, statement: str) -> None:
    error = refusal(sql)
    assert error.rule == f"statement {statement} is not allowed: only SELECT queries"


@pytest.mark.parametrize(
    "call, name",
    [
        ("read_csv('/etc/passwd')", "read_csv"),
        ("getenv('HOME')", "getenv"),
        ("current_setting('threads')", "current_setting"),
        ("version()", "version"),
        ("error('x')", "error"),
        ("setseed(0.5)", "setseed"),
        ("random()", "random"),
        ("md5('123456789')", "md5"),
        ("sha256('123456789')", "sha256"),
        ("hash('123456789')", "hash"),
        ("getvariable('k')", "getvariable"),
        ("nextval('s')", "nextval"),
        ("to_json(1)", "to_json"),
        ("repeat('x', 1000000000)", "repeat"),
    ],
)
def test_rejects_functions_outside_the_allow_list(call: str, name: str) -> None:
    assert refusal(f"SELECT {call} FROM payments").rule == f"function '{name}' is not allowed"


@pytest.mark.parametrize(
    "sql, fragment",
    [
        ("SELECT * EXCLUDE (amount) FROM payments", "star modifiers"),
        ("SELECT * REPLACE (1 AS amount) FROM payments", "star modifiers"),
        ("SELECT COLUMNS('payee.*') FROM payments", "function 'columns'"),
        ("SELECT p FROM payments AS p", "table alias 'p' cannot be used as a value"),
        ("SELECT amount FROM payments USING SAMPLE 10", "SAMPLE"),
        ("SELECT $1 FROM payments", "PLACEHOLDER"),
        ("SELECT amount FROM payments LIMIT (SELECT 1)", "LIMIT must be a whole number"),
        ("SELECT a.amount FROM payments a JOIN payments b USING (amount)", "USING"),
        ("SELECT x FROM payments, LATERAL (SELECT 1 AS x)", "LATERAL"),
        ("SELECT t.x FROM payments AS t(x)", "column aliases on a dataset table"),
        (
            "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT n FROM t",
            "recursive",
        ),
        ("SELECT CAST(amount AS STRUCT(a INT)) FROM payments", "cast to STRUCT"),
        ("SELECT 1; SELECT 2", "only one statement"),
    ],
)
def test_rejects_syntax_outside_the_allow_list(sql: str, fragment: str) -> None:
    assert fragment in refusal(sql).rule


def test_casts_run_as_try_casts() -> None:
    checked = check_query("SELECT CAST(amount AS INTEGER), amount::VARCHAR FROM payments", PSEUDO)
    assert "TRY_CAST(payments.amount AS INT)" in checked.executed
    assert " CAST(" not in checked.executed


def test_user_limit_below_the_cap_is_kept_and_above_it_is_lowered() -> None:
    assert check_query("SELECT amount FROM payments LIMIT 5", PSEUDO).executed.endswith("LIMIT 5")
    high = check_query("SELECT amount FROM payments ORDER BY amount LIMIT 100000", PSEUDO)
    assert high.executed.endswith(f"ORDER BY amount LIMIT {MAX_ROWS + 1}")


def test_pseudonymous_aggregate_is_flagged_but_gets_no_persons_column() -> None:
    checked = check_query("SELECT program, count(*) FROM payments GROUP BY program", PSEUDO)
    assert checked.aggregate
    assert checked.hidden == ()
    assert PERSONS_COLUMN not in checked.executed


# ---- aggregate mode ----------------------------------------------------------------------------


def test_aggregate_mode_counts_distinct_persons_of_every_joined_table() -> None:
    checked = check_query(
        "SELECT d.date_of_birth, count(*) AS n FROM deaths d "
        "JOIN payments p ON p.payee_tin = d.ssn GROUP BY d.date_of_birth",
        AGG,
    )
    assert checked.aggregate
    assert [h.name for h in checked.hidden] == [f"{PERSONS_COLUMN}_0", f"{PERSONS_COLUMN}_1"]
    assert f"COUNT(DISTINCT d.ssn) AS {PERSONS_COLUMN}_0" in checked.executed
    assert f"COUNT(DISTINCT p.payee_tin) AS {PERSONS_COLUMN}_1" in checked.executed
    assert {"deaths.ssn", "payments.payee_tin"} <= set(checked.columns)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT program, count(*), sum(amount), avg(amount) FROM payments GROUP BY program",
        "SELECT count(DISTINCT payee_tin) FROM payments",
        "SELECT date_trunc('month', payment_date) AS m, count(*) FROM payments GROUP BY 1",
        "SELECT count(*) FROM payments p JOIN deaths d ON p.payee_tin = d.ssn "
        "WHERE p.payment_date > d.date_of_death",
    ],
)
def test_aggregate_mode_accepts_screen_shaped_queries(sql: str) -> None:
    hidden = check_query(sql, AGG).hidden
    assert hidden and hidden[0].name == f"{PERSONS_COLUMN}_0"


@pytest.mark.parametrize(
    "sql, fragment",
    [
        ("SELECT amount FROM payments", "only aggregate queries"),
        (
            "SELECT payee_tin, count(*) FROM payments GROUP BY payee_tin",
            "GROUP BY on column 'payee_tin'",
        ),
        (
            "SELECT payment_id, count(*) FROM payments GROUP BY payment_id",
            "GROUP BY on column 'payment_id'",
        ),
        ("SELECT count(*) FROM payments WHERE payment_id = 'P1'", "may only be counted"),
        ("SELECT count(*) FROM payments WHERE payee_tin <> 'tok'", "may only be counted"),
        ("SELECT program, count(*) FROM payments GROUP BY program HAVING count(*) < 5", "HAVING"),
        ("SELECT program, count(*) FROM payments GROUP BY ROLLUP (program)", "ROLLUP"),
        (
            "SELECT program, count(*) FROM payments GROUP BY GROUPING SETS ((program), ())",
            "GROUPING",
        ),
        ("SELECT max(amount) FROM payments", "function 'max' is not allowed in aggregate mode"),
        ("SELECT list(program) FROM payments", "is not allowed"),
        ("SELECT count(*) FROM (SELECT * FROM payments) AS s", "subqueries"),
        ("WITH s AS (SELECT * FROM payments) SELECT count(*) FROM s", "CTEs"),
        ("SELECT count(*) FROM payments UNION ALL SELECT count(*) FROM deaths", "UNION"),
        ("SELECT count(*) OVER () FROM payments", "window"),
        ("SELECT program, amount, count(*) FROM payments GROUP BY program", "each output"),
        ("SELECT program, count(*) FROM payments GROUP BY ALL", "GROUP BY ALL"),
        (f"SELECT count(*) AS {PERSONS_COLUMN} FROM payments", "reserved"),
    ],
)
def test_aggregate_mode_refuses(sql: str, fragment: str) -> None:
    assert fragment in refusal(sql, Mode.AGGREGATE).rule


def test_aggregate_mode_refuses_when_no_dataset_identifies_persons() -> None:
    with pytest.raises(RefusedError, match="identifies persons"):
        check_query(
            "SELECT program, count(*) FROM payments GROUP BY program",
            sample_policy(Mode.AGGREGATE, with_persons=False),
        )


def test_checking_never_changes_the_shared_schema() -> None:
    before = {t: granted_schema(PSEUDO).column_names(t) for t in PSEUDO.tables}
    for sql in (
        "WITH foo AS (SELECT amount FROM payments) SELECT * FROM foo",
        "SELECT x.amount FROM (SELECT amount FROM payments) AS x",
    ):
        check_query(sql, PSEUDO)
    with pytest.raises(RefusedError):
        check_query("SELECT * FROM foo", PSEUDO)
    assert {t: granted_schema(PSEUDO).column_names(t) for t in PSEUDO.tables} == before
    assert before["payments"] == list(PSEUDO.tables["payments"].columns)


def test_identical_checks_are_reused_but_never_across_different_grants() -> None:
    sql = "SELECT amount FROM payments"
    assert check_query(sql, sample_policy()) is check_query(sql, sample_policy())
    narrower = sample_policy()
    payments = narrower.tables["payments"]
    columns = {name: view for name, view in payments.columns.items() if name != "amount"}
    narrower = replace(
        narrower,
        tables={
            **narrower.tables,
            "payments": replace(payments, columns=columns, denied=payments.denied | {"amount"}),
        },
    )
    with pytest.raises(RefusedError, match=r"payments\.amount' is denied"):
        check_query(sql, narrower)
    smaller = replace(sample_policy(), max_rows=7)
    assert check_query(sql, smaller).executed.endswith("LIMIT 8")


def test_current_date_runs_even_when_the_output_is_named_after_it() -> None:
    import duckdb

    executed = check_query("SELECT current_date", PSEUDO).executed
    assert "CURRENT_DATE()" in executed
    assert duckdb.sql(executed).fetchall()[0][0] is not None


def test_accepts_an_explicit_try_cast() -> None:
    checked = check_query("SELECT TRY_CAST(amount AS INTEGER) AS a FROM payments", PSEUDO)
    assert "TRY_CAST(payments.amount AS INT)" in checked.executed
