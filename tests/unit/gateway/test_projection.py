from __future__ import annotations

import datetime as dt
import json
import secrets
from pathlib import Path

import duckdb
import pytest

from custodiet.agreements.model import ColumnRule, Mode
from custodiet.catalog.classes import ColumnClass
from custodiet.errors import SystemFailure
from custodiet.gateway.policy import ColumnKind
from custodiet.gateway.projection import (
    build_projection,
    load_policy,
    policy_from_json,
    policy_to_json,
    projection_files,
    scratch_database,
)
from custodiet.gateway.tokens import Tokenizer, agreement_key
from custodiet.gateway.treatments import projected_expression
from custodiet.workspace import Workspace
from tests.gateway_data import Active, canonical_datasets, make_agreement, ssn_of, write_canonical

PEOPLE = 60


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Active, bytes, Path]:
    root = tmp_path_factory.mktemp("ws")
    ws = Workspace(root)
    secret = secrets.token_bytes(32)
    (root / "keys").mkdir()
    ws.secret_path.write_bytes(secret)
    datasets = canonical_datasets(write_canonical(root / "data", PEOPLE))
    active = Active(make_agreement())
    key = agreement_key(secret, active.agreement.id, active.agreement.reviewer)
    build_projection(projection_files(ws, active), active, datasets, key)
    return ws, active, key, projection_files(ws, active).database


def _read(path: Path, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _columns(path: Path, table: str) -> list[str]:
    rows = _read(
        path,
        "SELECT column_name FROM information_schema.columns "
        f"WHERE table_name = '{table}' ORDER BY ordinal_position",
    )
    return [r[0] for r in rows]


def test_projection_is_named_after_agreement_version_and_hash(built) -> None:
    ws, _, _, database = built
    assert database == ws.projections_dir / f"ssa-deceased-v1-{'ab' * 6}.duckdb"
    assert database.exists()
    assert not [p for p in ws.projections_dir.iterdir() if p.name.endswith(".tmp")]


def test_denied_and_unnamed_columns_are_absent(built) -> None:
    database = built[3]
    assert _columns(database, "payments") == [
        "payment_id",
        "payee_tin",
        "agency",
        "program",
        "amount",
        "payment_date",
        "routing_number",
        "account_number",
        "_custodiet_version",  # the dataset version of each row: not in the policy (hidden)
    ]
    assert _columns(database, "deaths") == [
        "ssn",
        "date_of_death",
        "date_of_birth",
        "_custodiet_version",
    ]


def test_rows_outside_the_filter_are_absent(built) -> None:
    database = built[3]
    expected_ssa_people = len([i for i in range(PEOPLE) if i % 10 != 9])
    assert _read(database, "SELECT count(*) FROM payments") == [(expected_ssa_people * 3,)]


def test_identifiers_are_replaced_by_tokens_linking_one_person_across_datasets(built) -> None:
    _, _, key, database = built
    tin = Tokenizer(key, "tin")
    tokens = dict(_read(database, "SELECT payment_id, payee_tin FROM payments"))
    assert tokens["P0000003"] == tin.token(ssn_of(1))  # person 1, first payment
    dead = {r[0] for r in _read(database, "SELECT ssn FROM deaths")}
    assert dead == {tin.token(ssn_of(i)) for i in range(0, PEOPLE, 7)}
    linked = _read(
        database,
        "SELECT count(DISTINCT p.payee_tin) FROM payments p JOIN deaths d ON p.payee_tin = d.ssn",
    )
    assert linked == [(len([i for i in range(0, PEOPLE, 7) if i % 10 != 9]),)]


def test_no_raw_identifier_or_key_is_stored_in_the_file(built) -> None:
    _, _, key, database = built
    raw = {ssn_of(i) for i in range(PEOPLE)} | {ssn_of(i).replace("-", "") for i in range(PEOPLE)}
    values = {
        r[0]
        for r in _read(database, "SELECT payee_tin FROM payments UNION ALL SELECT ssn FROM deaths")
    }
    assert not values & raw
    content = database.read_bytes()
    assert key not in content and key.hex().encode() not in content
    assert not [s for s in raw if s.encode() in content]
    assert b"Person 1" not in content


def test_projection_holds_only_the_agreements_tables_and_no_view_sql(built) -> None:
    database = built[3]
    assert sorted(r[0] for r in _read(database, "SELECT table_name FROM duckdb_tables()")) == [
        "death_match",  # the match category of each payment to a dead payee, and nothing else
        "deaths",
        "payments",
    ]
    assert _read(
        database,
        "SELECT column_name FROM duckdb_columns() WHERE table_name = 'death_match' "
        "ORDER BY column_index",
    ) == [("record_table",), ("record_id",), ("match",)]
    categories = {r[0] for r in _read(database, "SELECT DISTINCT match FROM death_match")}
    assert categories and categories <= {"exact", "ssn_name", "ssn_dob", "ssn_only"}
    assert _read(database, "SELECT count(*) FROM duckdb_views() WHERE NOT internal") == [(0,)]
    assert _read(database, "SELECT count(*) FROM duckdb_databases() WHERE NOT internal") == [(1,)]


def test_generalized_date_of_birth_keeps_only_the_year(built) -> None:
    database = built[3]
    days = {r[0] for r in _read(database, "SELECT date_of_birth FROM deaths")}
    assert days and all(d.month == 1 and d.day == 1 for d in days)


def test_policy_is_saved_beside_the_projection_and_describes_it(built) -> None:
    ws, active, _, _ = built
    policy = load_policy(ws, active)
    payments = policy.tables["payments"]
    assert policy.mode is Mode.PSEUDONYMOUS and policy.max_rows == 1000
    assert payments.person_column == "payee_tin"
    assert policy.tables["deaths"].person_column == "ssn"
    assert payments.columns["payee_tin"].kind is ColumnKind.TOKEN
    assert payments.columns["amount"].sql_type == "DECIMAL(12,2)"
    assert policy.tables["deaths"].columns["date_of_birth"].kind is ColumnKind.GENERALIZED
    assert payments.denied == {"payee_name", "method"}
    assert policy_from_json(json.loads(json.dumps(policy_to_json(policy)))) == policy


def test_another_agreement_gets_different_tokens(built, tmp_path) -> None:
    ws, _, _, first = built
    other = Active(make_agreement("other-agreement"))
    datasets = canonical_datasets(
        {
            "payments": Path(ws.root / "data/payments.parquet"),
            "deaths": Path(ws.root / "data/deaths.parquet"),
        }
    )
    key = agreement_key(ws.secret_path.read_bytes(), "other-agreement", other.agreement.reviewer)
    files = projection_files(Workspace(tmp_path), other)
    build_projection(files, other, datasets, key)
    mine = {r[0] for r in _read(first, "SELECT ssn FROM deaths")}
    theirs = {r[0] for r in _read(files.database, "SELECT ssn FROM deaths")}
    assert len(theirs) == len(mine) and not mine & theirs


@pytest.mark.parametrize(
    ("rule", "value", "expected"),
    [
        ("generalize:year", "DATE '1987-06-02'", dt.date(1987, 1, 1)),
        ("generalize:month", "DATE '1987-06-02'", dt.date(1987, 6, 1)),
        ("generalize:decade", "DATE '1987-06-02'", dt.date(1980, 1, 1)),
        ("generalize:zip3", "'62704-1234'", "627"),
        ("generalize:state", "'12 Elm St, Springfield, IL 62704'", "IL"),
        ("generalize:state", "'12 Elm St, Springfield, il'", "IL"),
        ("generalize:age_band", "DATE '1987-06-02'", "40-49"),
        ("generalize:age_band", "DATE '1920-06-02'", "90+"),
        ("mask", "'123-45-6789'", "***"),
        ("allow", "42", 42),
    ],
)
def test_treatment_expressions(rule: str, value: str, expected: object) -> None:
    sql = projected_expression(ColumnRule.parse(rule), "src.v", dt.date(2030, 6, 30))
    assert duckdb.sql(f"SELECT {sql} FROM (SELECT {value} AS v) src").fetchall() == [(expected,)]


def test_aggregate_agreement_policy_carries_mode_and_group_size(tmp_path) -> None:
    ws = Workspace(tmp_path)
    datasets = canonical_datasets(write_canonical(tmp_path / "data", 10))
    active = Active(make_agreement(mode="aggregate"), version=2)
    build_projection(projection_files(ws, active), active, datasets, b"k" * 32)
    policy = policy_from_json(json.loads(projection_files(ws, active).policy.read_text()))
    assert policy.mode is Mode.AGGREGATE and policy.version == 2 and policy.min_group_size == 5
    assert policy.tables["payments"].columns["program"].column_class is ColumnClass.CATEGORY


def test_token_columns_are_stored_uncompressed_for_fast_joins(built) -> None:
    rows = _read(
        built[3],
        "SELECT DISTINCT column_name, compression FROM pragma_storage_info('payments') "
        "WHERE column_name IN ('payee_tin', 'program') AND compression <> 'Constant'",
    )
    assert ("payee_tin", "Uncompressed") in rows
    assert ("program", "Uncompressed") not in rows


def _with_filter(rows: str) -> Active:
    document = make_agreement().model_dump(mode="json")
    document["datasets"]["payments"]["rows"] = rows
    document["datasets"]["payments"]["columns"] = {
        k: str(v["treatment"]) if v["level"] is None else f"generalize:{v['level']}"
        for k, v in document["datasets"]["payments"]["columns"].items()
    }
    document["datasets"]["deaths"]["columns"] = {
        k: v["treatment"] if v["level"] is None else f"generalize:{v['level']}"
        for k, v in document["datasets"]["deaths"]["columns"].items()
    }
    from custodiet.agreements.model import Agreement

    return Active(Agreement.model_validate(document))


def test_a_filter_ending_in_a_comment_runs_as_its_checked_tree(tmp_path) -> None:
    ws = Workspace(tmp_path)
    datasets = canonical_datasets(write_canonical(tmp_path / "data", 20))
    active = _with_filter("agency = 'SSA' -- trailing comment")
    build_projection(projection_files(ws, active), active, datasets, b"k" * 32)
    rows = _read(projection_files(ws, active).database, "SELECT DISTINCT agency FROM payments")
    assert rows == [("SSA",)]


@pytest.mark.parametrize("rows", ["agency = 'SSA", "agency = 'SSA'; DROP TABLE x"])
def test_a_broken_filter_is_an_input_error_never_a_traceback(tmp_path, rows: str) -> None:
    from custodiet.errors import InputError

    ws = Workspace(tmp_path)
    datasets = canonical_datasets(write_canonical(tmp_path / "data", 5))
    active = _with_filter(rows)
    with pytest.raises(InputError) as caught:
        build_projection(projection_files(ws, active), active, datasets, b"k" * 32)
    assert caught.value.code == "CUST248" and "datasets.payments.rows" in caught.value.message


def test_an_engine_error_while_writing_a_projection_names_its_type_never_its_text(
    tmp_path: Path,
) -> None:
    """DuckDB's messages quote the values they failed on: the build's boundary keeps the error's
    type only, and the half-written file (and its WAL) is gone."""
    active = Active(make_agreement())
    files = projection_files(Workspace(tmp_path), active)
    files.database.parent.mkdir(parents=True)
    with (
        pytest.raises(SystemFailure) as caught,
        scratch_database(files, active, "build", "a hint") as temporary,
    ):
        temporary.write_bytes(b"half")
        temporary.with_name(temporary.name + ".wal").write_bytes(b"log")
        raise duckdb.ConversionException("Could not convert string '123-45-6789' to INT32")
    assert caught.value.code == "CUST143"
    assert (
        "123-45-6789" not in caught.value.message and "ConversionException" in caught.value.message
    )
    assert list(files.database.parent.iterdir()) == []
