"""truth.parquet equals what the rules find, recomputed here by SQL over the files."""

from __future__ import annotations

import duckdb
import pytest

PATTERN_SQL = {
    "paid_after_death": """
        SELECT 'payments', p.payment_id, p.amount
        FROM payments p JOIN deaths d ON p.payee_tin = d.ssn
        WHERE date_trunc('month', p.payment_date) > date_trunc('month', d.date_of_death)""",
    "duplicate_payment": """
        SELECT 'payments', payment_id, amount FROM (
            SELECT *, row_number() OVER (
                PARTITION BY payee_tin, amount, payment_date, program ORDER BY payment_id
            ) AS copy
            FROM payments)
        WHERE copy > 1""",
    "shared_account": """
        WITH deposits AS (
            SELECT routing_number, account_number, payee_tin AS tin FROM payments
            UNION ALL
            SELECT routing_number, account_number, tin FROM tax_refunds),
        shared AS (
            SELECT routing_number, account_number FROM deposits
            WHERE account_number IS NOT NULL
            GROUP BY routing_number, account_number HAVING count(DISTINCT tin) > 3)
        SELECT 'payments', payment_id, amount FROM payments
        JOIN shared USING (routing_number, account_number)
        UNION ALL
        SELECT 'tax_refunds', refund_id, refund_amount FROM tax_refunds
        JOIN shared USING (routing_number, account_number)""",
    "excluded_payee": """
        SELECT 'payments', p.payment_id, p.amount
        FROM payments p JOIN exclusions e ON p.payee_tin = e.tin
        WHERE e.exclusion_start <= p.payment_date
          AND (e.exclusion_end IS NULL OR p.payment_date <= e.exclusion_end)""",
    "implausible_age": """
        SELECT 'payments', p.payment_id, p.amount
        FROM payments p JOIN beneficiaries b ON p.payee_tin = b.ssn
        WHERE p.agency = 'SSA'
          AND p.payment_date >= b.date_of_birth + INTERVAL 115 YEAR
          AND NOT EXISTS (SELECT 1 FROM deaths d WHERE d.ssn = b.ssn)""",
    "refund_to_deceased": """
        SELECT 'tax_refunds', t.refund_id, t.refund_amount
        FROM tax_refunds t JOIN deaths d ON t.tin = d.ssn
        WHERE d.date_of_death < make_date(t.tax_year, 1, 1)""",
    "amount_outlier": """
        WITH logs AS (
            SELECT payment_id, payee_tin, program, amount, ln(amount) AS x FROM payments),
        usual AS (
            SELECT payee_tin, program, median(x) AS m FROM logs
            GROUP BY ALL HAVING count(*) >= 6),
        spread AS (
            SELECT payee_tin, program, m, greatest(1.4826 * median(abs(x - m)), ln(1.1)) AS s
            FROM logs JOIN usual USING (payee_tin, program) GROUP BY ALL)
        SELECT 'payments', payment_id, amount
        FROM logs JOIN spread USING (payee_tin, program)
        WHERE (x - m) / s > 3.5""",
}

# Each decoy looks like its pattern but is proper: the SQL finds candidate record ids.
DECOY_SQL = {
    "death on the 1st or 2nd, paid on the 3rd of that month": (
        "paid_after_death",
        """SELECT p.payment_id FROM payments p JOIN deaths d ON p.payee_tin = d.ssn
           WHERE day(d.date_of_death) <= 2 AND day(p.payment_date) = 3
             AND date_trunc('month', p.payment_date) = date_trunc('month', d.date_of_death)""",
    ),
    "same benefit paid on different dates": (
        "duplicate_payment",
        """SELECT payment_id FROM (
               SELECT payment_id,
                      count(*) OVER (
                          PARTITION BY payee_tin, amount, payment_date, program) AS same_day,
                      count(*) OVER (PARTITION BY payee_tin, amount, program) AS same_benefit
               FROM payments WHERE agency = 'SSA')
           WHERE same_day = 1 AND same_benefit > 1""",
    ),
    "couple sharing an account": (
        "shared_account",
        """WITH deposits AS (
               SELECT routing_number, account_number, payee_tin AS tin, payment_id AS id
               FROM payments
               UNION ALL
               SELECT routing_number, account_number, tin, refund_id FROM tax_refunds),
           couples AS (
               SELECT routing_number, account_number FROM deposits WHERE account_number IS NOT NULL
               GROUP BY ALL HAVING count(DISTINCT tin) = 2)
           SELECT id FROM deposits JOIN couples USING (routing_number, account_number)""",
    ),
    "exclusion ended before the payment": (
        "excluded_payee",
        """SELECT p.payment_id FROM payments p JOIN exclusions e ON p.payee_tin = e.tin
           WHERE e.exclusion_end < p.payment_date""",
    ),
    "beneficiary aged 105 to 112": (
        "implausible_age",
        """SELECT p.payment_id FROM payments p JOIN beneficiaries b ON p.payee_tin = b.ssn
           WHERE p.agency = 'SSA'
             AND p.payment_date >= b.date_of_birth + INTERVAL 105 YEAR
             AND p.payment_date < b.date_of_birth + INTERVAL 113 YEAR""",
    ),
    "final return for the year of death": (
        "refund_to_deceased",
        """SELECT t.refund_id FROM tax_refunds t JOIN deaths d ON t.tin = d.ssn
           WHERE year(d.date_of_death) = t.tax_year""",
    ),
}


def _truth(sql: duckdb.DuckDBPyConnection, pattern: str) -> list[tuple[object, ...]]:
    rows = sql.execute(
        "SELECT record_table, record_id, amount_at_risk FROM truth WHERE pattern = ?", [pattern]
    ).fetchall()
    return sorted(rows)


@pytest.mark.parametrize("pattern", sorted(PATTERN_SQL))
def test_truth_equals_rule_recomputed_by_sql(sql: duckdb.DuckDBPyConnection, pattern: str) -> None:
    expected = sorted(sql.execute(PATTERN_SQL[pattern]).fetchall())
    assert expected, f"no {pattern} case in the generated data"
    assert _truth(sql, pattern) == expected


def test_truth_has_only_the_rules_patterns_and_no_repeated_rows(
    sql: duckdb.DuckDBPyConnection,
) -> None:
    patterns = {row[0] for row in sql.execute("SELECT DISTINCT pattern FROM truth").fetchall()}
    assert patterns == set(PATTERN_SQL)
    repeated = sql.execute(
        "SELECT count(*) FROM "
        "(SELECT record_id, pattern FROM truth GROUP BY ALL HAVING count(*) > 1)"
    ).fetchone()
    assert repeated == (0,)


@pytest.mark.parametrize("decoy", sorted(DECOY_SQL))
def test_decoy_exists_and_is_not_labelled(sql: duckdb.DuckDBPyConnection, decoy: str) -> None:
    pattern, query = DECOY_SQL[decoy]
    candidates = {row[0] for row in sql.execute(query).fetchall()}
    labelled = {
        row[0]
        for row in sql.execute(
            "SELECT record_id FROM truth WHERE pattern = ?", [pattern]
        ).fetchall()
    }
    assert candidates, f"no decoy: {decoy}"
    assert candidates.isdisjoint(labelled)


def test_background_accounts_have_at_most_two_payees_unless_labelled(
    sql: duckdb.DuckDBPyConnection,
) -> None:
    crowded = sql.execute(
        """SELECT count(*) FROM (
               SELECT routing_number, account_number FROM (
                   SELECT routing_number, account_number, payee_tin AS tin FROM payments
                   UNION ALL SELECT routing_number, account_number, tin FROM tax_refunds)
               WHERE account_number IS NOT NULL GROUP BY ALL HAVING count(DISTINCT tin) = 3)"""
    ).fetchone()
    assert crowded == (0,)
