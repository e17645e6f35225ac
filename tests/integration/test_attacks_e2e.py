"""The attack catalogue end to end: each attack through ``run_query`` on a real workspace.

Every attack must be refused with its rule, or come back harmless (nothing outside the grant);
either way the ledger holds the entry it left. Then the attacks only the engine can answer:
runaway queries, Python replacement scans, membership probes, cross-agreement linkage and
unkeyed hashes that try to reproduce a token.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
import yaml

from custodiet.agreements.lifecycle import active_agreement
from custodiet.errors import CustodietError, InputError, RefusedError
from custodiet.gateway.execute import execute, open_engine
from custodiet.gateway.projection import projection_path
from custodiet.gateway.release import result_sha256
from custodiet.gateway.tokens import agreement_key, read_secret
from tests.conftest import run_cli
from tests.gateway_data import agreement_document, make_world, run_query, ssn_of, state_of

ATTACKS = yaml.safe_load(
    (Path(__file__).resolve().parents[1] / "fixtures" / "attacks.yaml").read_text()
)
PEOPLE = 150
PSEUDONYMOUS = "ssa-deceased-payees"
AGGREGATE = "ssa-deceased-payees-agg"
AGREEMENT_OF_MODE = {"pseudonymous": PSEUDONYMOUS, "aggregate": AGGREGATE}


def _contract_agreement(agreement_id: str, mode: str, **limits: Any) -> dict[str, Any]:
    """docs/agreements.md's example, with payments.program and payments.agency also granted."""
    document = agreement_document(agreement_id, mode=mode)
    document["datasets"]["payments"]["columns"]["agency"] = "allow"
    document["limits"] = {"max_rows": 1000, "min_group_size": 5, "timeout_seconds": 5, **limits}
    return document


def _keyed_agreement(agreement_id: str) -> dict[str, Any]:
    """The pseudonymous example with the record key payment_id pseudonymized as well."""
    document = _contract_agreement(agreement_id, "pseudonymous")
    document["datasets"]["payments"]["columns"]["payment_id"] = "pseudonymize"
    return document


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    return make_world(
        tmp_path_factory.mktemp("attacks"),
        people=PEOPLE,
        agreements=(
            _contract_agreement(PSEUDONYMOUS, "pseudonymous"),
            _contract_agreement(AGGREGATE, "aggregate"),
            _contract_agreement("other-review", "pseudonymous"),
            _contract_agreement("runaway-guard", "pseudonymous", timeout_seconds=0.5),
            _keyed_agreement("keys-a"),
            _keyed_agreement("keys-b"),
        ),
    )


@pytest.fixture(scope="module")
def raw_values(world) -> set[str]:
    """Every identifying value in the raw files, in every spelling a result could carry."""
    con = duckdb.connect()
    values: set[str] = set()
    for column, path in (
        ("payee_tin", world.data["payments"]),
        ("payee_name", world.data["payments"]),
        ("routing_number", world.data["payments"]),
        ("account_number", world.data["payments"]),
        ("ssn", world.data["deaths"]),
        ("first_name", world.data["deaths"]),
    ):
        values.update(
            r[0] for r in con.execute(f"SELECT DISTINCT {column} FROM '{path}'").fetchall()
        )
    values.update(ssn_of(i).replace("-", "") for i in range(PEOPLE))
    return values


def _last_entry(ws) -> dict[str, Any]:
    ledger = ws.ledger()
    try:
        return json.loads(ledger.entry(ledger.size() - 1))
    finally:
        ledger.close()


def _cells(rows: list[tuple[Any, ...]]) -> set[str]:
    return {str(value) for row in rows for value in row}


@pytest.mark.parametrize("attack", ATTACKS, ids=[a["id"] for a in ATTACKS])
def test_attack_is_refused_or_harmless_and_on_the_ledger(world, raw_values, attack) -> None:
    agreement = AGREEMENT_OF_MODE[attack["mode"]]
    if attack["expect"] == "refused":
        with pytest.raises(RefusedError) as caught:
            run_query(world.ws, agreement, "rev", attack["sql"])
        assert attack["rule"] in caught.value.rule
        entry = _last_entry(world.ws)
        assert entry["action"] == "refusal" and entry["decision"] == "refused"
        assert entry["reason"] == caught.value.rule
        assert entry["sql"] == attack["sql"] and entry["agreement"] == agreement
        assert "rows_returned" not in entry and "result_sha256" not in entry
    else:
        result = run_query(world.ws, agreement, "rev", attack["sql"])
        if attack["expect"] == "suppressed":
            assert result.rows == [], attack["id"]
            assert any("suppressed" in notice for notice in result.notices)
        assert not _cells(result.rows) & raw_values  # nothing identifying came back
        assert "payee_name" not in result.columns
        entry = _last_entry(world.ws)
        assert entry["index"] == result.ledger_index and entry["action"] == "query"
        assert entry["rows_returned"] == len(result.rows)
        assert entry["result_sha256"] == result_sha256(result.columns, result.rows)
        assert not {str(v) for v in entry.values()} & raw_values


def test_the_catalogue_covers_every_sql_attack_class() -> None:
    assert {a["class"] for a in ATTACKS} >= {"A", "B", "C", "D", "G"}


ONE_PERSON_ATTACKS = [a for a in ATTACKS if a["class"] == "G"]


@pytest.mark.parametrize("attack", ONE_PERSON_ATTACKS, ids=[a["id"] for a in ONE_PERSON_ATTACKS])
def test_one_person_attack_through_the_cli_releases_nothing(world, attack) -> None:
    result = run_cli(
        "query",
        "--workspace",
        str(world.ws.root),
        "--agreement",
        AGGREGATE,
        *world.kit.as_("rev"),
        "--format",
        "json",
        attack["sql"],
    )
    entry = _last_entry(world.ws)
    assert entry["sql"] == attack["sql"]
    if attack["expect"] == "refused":
        assert result.status == 3, result.stderr
        assert result.stderr.startswith("refused: ") and attack["rule"] in result.stderr
        assert entry["action"] == "refusal" and entry["decision"] == "refused"
        return
    assert result.status == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["rows"] == [] and document["ledger_index"] == entry["index"]
    assert any("suppressed" in notice for notice in document["notices"])
    assert not any(ch.isdigit() for n in document["notices"] for ch in n.split(":")[1][:3])
    assert entry["action"] == "query" and entry["rows_returned"] == 0


def test_the_same_join_without_the_isolating_condition_is_released(world) -> None:
    result = run_query(
        world.ws,
        AGGREGATE,
        "rev",
        "SELECT p.program, count(*) AS n, sum(p.amount) AS total FROM payments p "
        "JOIN deaths d ON p.payee_tin = d.ssn GROUP BY p.program ORDER BY p.program",
    )
    assert [row[0] for row in result.rows] == ["RSI", "SSDI", "SSI"]


def test_runaway_query_ends_at_the_deadline_and_the_gateway_keeps_serving(world) -> None:
    runaway = "SELECT count(*) AS n FROM payments a, payments b, payments c, payments d, payments e"
    with pytest.raises(RefusedError) as caught:
        run_query(world.ws, "runaway-guard", "rev", runaway)
    assert caught.value.rule == "query exceeded the time limit of 0.5 s"
    assert _last_entry(world.ws)["reason"] == caught.value.rule
    assert run_query(world.ws, "runaway-guard", "rev", "SELECT count(*) AS n FROM deaths").rows
    assert run_query(world.ws, PSEUDONYMOUS, "rev", "SELECT count(*) AS n FROM deaths").rows


def test_python_variables_stay_out_of_reach_even_past_the_checker(world) -> None:
    key = agreement_key(read_secret(world.ws.secret_path), PSEUDONYMOUS, "rev")
    token_key = pa.table({"key": [key.hex()]})  # what a replacement scan would hand over
    projection = projection_path(world.ws, active_agreement(state_of(world.ws), PSEUDONYMOUS))
    engine = open_engine(projection)
    try:
        with pytest.raises(InputError) as caught:
            execute(engine, "SELECT * FROM token_key", row_limit=10, timeout_seconds=5)
    finally:
        engine.close()
    assert key.hex() not in caught.value.render()
    with pytest.raises(RefusedError):
        run_query(world.ws, PSEUDONYMOUS, "rev", "SELECT * FROM token_key")
    del token_key


@pytest.mark.parametrize("spelling", [lambda s: s, lambda s: s.replace("-", "")])
def test_membership_probe_with_a_real_ssn_finds_nothing(world, spelling) -> None:
    ssn = spelling(ssn_of(0))  # person 0 is paid by SSA and dead: present in both datasets
    for sql in (
        f"SELECT count(*) AS n FROM payments WHERE payee_tin = '{ssn}'",
        f"SELECT count(*) AS n FROM deaths WHERE ssn = '{ssn}'",
    ):
        assert run_query(world.ws, PSEUDONYMOUS, "rev", sql).rows == [(0,)]
    assert (
        run_query(world.ws, PSEUDONYMOUS, "rev", "SELECT count(*) AS n FROM deaths").rows[0][0] > 0
    )


def test_tokens_differ_between_agreements(world) -> None:
    sql = "SELECT payment_id, payee_tin, account_number FROM payments ORDER BY payment_id"
    mine = run_query(world.ws, PSEUDONYMOUS, "rev", sql).rows
    theirs = run_query(world.ws, "other-review", "rev", sql).rows
    assert [r[0] for r in mine] == [r[0] for r in theirs]
    assert not {r[1] for r in mine} & {r[1] for r in theirs}
    assert not {r[2] for r in mine} & {r[2] for r in theirs}


def test_no_unkeyed_hash_of_an_identifier_reproduces_a_token(world) -> None:
    rows = run_query(world.ws, PSEUDONYMOUS, "rev", "SELECT DISTINCT payee_tin FROM payments").rows
    tokens = {r[0] for r in rows}
    spellings = {ssn_of(i) for i in range(PEOPLE)} | {
        ssn_of(i).replace("-", "") for i in range(PEOPLE)
    }
    for value in spellings:
        for algorithm in ("sha256", "md5", "sha1", "sha512"):
            digest = hashlib.new(algorithm, value.encode())
            guesses = {
                digest.hexdigest()[:12],
                base64.urlsafe_b64encode(digest.digest()).decode()[:12],
                base64.b64encode(digest.digest()).decode()[:12],
            }
            assert not guesses & tokens
    for sql in (
        "SELECT sha256('123456789') AS h",
        "SELECT md5('123456789') AS h",
        "SELECT hash('x') AS h",
    ):
        with pytest.raises(CustodietError):
            run_query(world.ws, PSEUDONYMOUS, "rev", sql)


def test_pseudonymized_record_keys_link_within_an_agreement_but_not_across(world) -> None:
    sql = "SELECT payment_id, payee_tin, amount, payment_date FROM payments"
    a = run_query(world.ws, "keys-a", "rev", sql).rows
    b = run_query(world.ws, "keys-b", "rev", sql).rows
    clear = run_query(world.ws, PSEUDONYMOUS, "rev", sql).rows
    assert len(a) == len(b) == len(clear)
    assert not {r[0] for r in a} & {r[0] for r in b}  # keys differ between agreements
    assert not {r[0] for r in a} & {r[0] for r in clear}  # and are not the record ids
    assert len({r[0] for r in a}) == len(a)  # still one key per record
    # a join on the pseudonymized key within one agreement still works
    joined = run_query(
        world.ws,
        "keys-a",
        "rev",
        "SELECT count(*) AS n FROM payments x JOIN payments y ON x.payment_id = y.payment_id",
    )
    assert joined.rows == [(len(a),)]
