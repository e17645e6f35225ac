"""The written files: exact contract schema, valid identifiers, determinism, no partial files."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from stdnum.us import ein, rtn, ssn

from custodiet.synth import Summary
from tests.unit.synth.conftest import PEOPLE, TABLES, generate_small

TEXT, DATE, MONEY = pa.string(), pa.date32(), pa.decimal128(12, 2)
CONTRACT = {
    "beneficiaries": [
        ("ssn", TEXT), ("first_name", TEXT), ("last_name", TEXT), ("date_of_birth", DATE),
        ("address", TEXT), ("zip", TEXT), ("state", TEXT), ("program", TEXT),
        ("monthly_benefit", MONEY), ("entitlement_date", DATE), ("routing_number", TEXT),
        ("account_number", TEXT),
    ],
    "payments": [
        ("payment_id", TEXT), ("payee_tin", TEXT), ("payee_name", TEXT), ("agency", TEXT),
        ("program", TEXT), ("amount", MONEY), ("payment_date", DATE), ("routing_number", TEXT),
        ("account_number", TEXT), ("method", TEXT),
    ],
    "deaths": [
        ("ssn", TEXT), ("first_name", TEXT), ("last_name", TEXT), ("date_of_birth", DATE),
        ("date_of_death", DATE),
    ],
    "exclusions": [
        ("tin", TEXT), ("name", TEXT), ("source", TEXT), ("exclusion_start", DATE),
        ("exclusion_end", DATE),
    ],
    "tax_refunds": [
        ("refund_id", TEXT), ("tin", TEXT), ("tax_year", pa.int32()), ("filing_status", TEXT),
        ("refund_amount", MONEY), ("issue_date", DATE), ("routing_number", TEXT),
        ("account_number", TEXT),
    ],
    "truth": [
        ("record_table", TEXT), ("record_id", TEXT), ("pattern", TEXT), ("amount_at_risk", MONEY),
        ("match", TEXT),
    ],
}  # fmt: skip


def _column(sql: duckdb.DuckDBPyConnection, query: str) -> list[str]:
    return [row[0] for row in sql.execute(query).fetchall()]


@pytest.mark.parametrize("table", TABLES)
def test_schema_matches_contract_exactly(synth_dir: Path, table: str) -> None:
    schema = pq.read_schema(synth_dir / f"{table}.parquet")
    assert [(field.name, field.type) for field in schema] == CONTRACT[table]


def test_only_the_six_files_are_left(synth_dir: Path) -> None:
    assert sorted(p.name for p in synth_dir.iterdir()) == sorted(f"{t}.parquet" for t in TABLES)


def test_summary_counts_match_the_files(synth_dir: Path, synth_run: tuple[Path, Summary]) -> None:
    summary = synth_run[1]
    for table in TABLES:
        assert (
            summary.rows[table] == pq.ParquetFile(synth_dir / f"{table}.parquet").metadata.num_rows
        )
    assert sum(summary.patterns.values()) == summary.rows["truth"]


def test_every_ssn_is_valid_and_unique_per_person(sql: duckdb.DuckDBPyConnection) -> None:
    beneficiaries = _column(sql, "SELECT ssn FROM beneficiaries")
    deaths = _column(sql, "SELECT ssn FROM deaths")
    assert len(set(beneficiaries)) == len(beneficiaries)
    assert len(set(deaths)) == len(deaths)
    people = _column(
        sql,
        """SELECT ssn FROM beneficiaries UNION SELECT ssn FROM deaths
           UNION SELECT tin FROM tax_refunds
           UNION SELECT tin FROM exclusions WHERE source = 'LEIE'""",
    )
    assert len(people) <= PEOPLE
    assert all(ssn.is_valid(number) for number in people)


def test_every_payee_tin_is_a_valid_ssn_or_ein(sql: duckdb.DuckDBPyConnection) -> None:
    tins = _column(sql, "SELECT DISTINCT payee_tin FROM payments UNION SELECT tin FROM exclusions")
    persons = [tin for tin in tins if re.fullmatch(r"\d{3}-\d{2}-\d{4}", tin)]
    firms = [tin for tin in tins if re.fullmatch(r"\d{2}-\d{7}", tin)]
    assert len(persons) + len(firms) == len(tins)
    assert persons and firms
    assert all(ssn.is_valid(tin) for tin in persons)
    assert all(ein.is_valid(tin) for tin in firms)


def test_every_bank_identifier_is_valid(sql: duckdb.DuckDBPyConnection) -> None:
    union = """SELECT routing_number, account_number FROM beneficiaries
               UNION SELECT routing_number, account_number FROM payments
               UNION SELECT routing_number, account_number FROM tax_refunds"""
    pairs = sql.execute(f"SELECT * FROM ({union}) WHERE account_number IS NOT NULL").fetchall()
    assert pairs
    assert all(rtn.is_valid(routing) for routing, _ in pairs)
    assert all(re.fullmatch(r"\d{8,12}", account) for _, account in pairs)
    assert sql.execute(
        f"SELECT count(*) FROM ({union}) WHERE (routing_number IS NULL) <> (account_number IS NULL)"
    ).fetchone() == (0,)


def test_record_ids_are_unique_and_keep_leading_zeros(sql: duckdb.DuckDBPyConnection) -> None:
    for table, column, prefix in (
        ("payments", "payment_id", "P"),
        ("tax_refunds", "refund_id", "R"),
    ):
        count, distinct, well_formed = sql.execute(
            f"SELECT count(*), count(DISTINCT {column}), "
            f"count(*) FILTER (WHERE regexp_full_match({column}, '{prefix}\\d{{12}}')) FROM {table}"
        ).fetchone()
        assert count == distinct == well_formed > 0


def test_checks_have_no_account_and_deposits_have_one(sql: duckdb.DuckDBPyConnection) -> None:
    mismatched = sql.execute(
        "SELECT count(*) FROM payments WHERE (method = 'CHECK') <> (account_number IS NULL)"
    ).fetchone()
    assert mismatched == (0,)


def test_benefits_are_paid_on_the_third_and_stop_after_death(
    sql: duckdb.DuckDBPyConnection,
) -> None:
    off_schedule = sql.execute(
        "SELECT count(*) FROM payments WHERE agency = 'SSA' AND day(payment_date) <> 3"
    ).fetchone()
    assert off_schedule == (0,)
    unlabelled_late = sql.execute(
        """SELECT count(*) FROM payments p JOIN deaths d ON p.payee_tin = d.ssn
           WHERE date_trunc('month', p.payment_date) > date_trunc('month', d.date_of_death)
             AND p.payment_id NOT IN (SELECT record_id FROM truth)"""
    ).fetchone()
    assert unlabelled_late == (0,)


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    generate_small(first, people=3_000, seed=7)
    generate_small(second, people=3_000, seed=7)
    for table in TABLES:
        name = f"{table}.parquet"
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_another_seed_gives_other_people(tmp_path: Path) -> None:
    generate_small(tmp_path / "a", people=2_000, seed=1)
    generate_small(tmp_path / "b", people=2_000, seed=2)
    a = pq.read_table(tmp_path / "a" / "beneficiaries.parquet", columns=["ssn"]).column(0)
    b = pq.read_table(tmp_path / "b" / "beneficiaries.parquet", columns=["ssn"]).column(0)
    assert a.to_pylist() != b.to_pylist()


def test_realistic_profile_plants_fewer_cases(
    tmp_path: Path, synth_run: tuple[Path, Summary]
) -> None:
    realistic = generate_small(tmp_path / "realistic", profile="realistic")
    stress = synth_run[1]
    assert sum(realistic.patterns.values()) * 3 < sum(stress.patterns.values())
