"""`custodiet query` as a user runs it: formats, exit statuses, refusals on stderr."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.conftest import run_cli
from tests.gateway_data import make_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    return make_world(tmp_path_factory.mktemp("cli"), people=60)


def _query(world, sql: str, *extra: str):
    return run_cli(
        "query",
        "--workspace",
        str(world.ws.root),
        "--agreement",
        world.agreement_id,
        *world.kit.as_("rev"),
        *extra,
        sql,
    )


def _last_index(ws) -> int:
    ledger = ws.ledger()
    try:
        return ledger.size() - 1
    finally:
        ledger.close()


def test_json_output_is_exactly_the_contract_shape(world) -> None:
    result = _query(
        world,
        "SELECT payee_tin, amount FROM payments ORDER BY payment_id LIMIT 2",
        "--format",
        "json",
    )
    assert result.status == 0, result.stderr
    document = json.loads(result.stdout)
    assert list(document) == ["columns", "types", "rows", "ledger_index", "notices"]
    assert document["columns"] == ["payee_tin", "amount"]
    assert [len(row[0]) for row in document["rows"]] == [12, 12]
    assert document["types"] == ["string", "decimal"]
    assert document["rows"][0][1] == 500.0  # DECIMAL(12,2): a JSON number (docs/cli.md)
    assert document["ledger_index"] == _last_index(world.ws)
    assert document["notices"] == ["columns pseudonymized (keyed tokens): payments.payee_tin"]


def test_csv_output_has_a_header_and_the_rows(world) -> None:
    result = _query(
        world,
        "SELECT program, count(*) AS n FROM payments GROUP BY program ORDER BY program",
        "--format",
        "csv",
    )
    assert result.status == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["program", "n"] and [r[0] for r in rows[1:]] == ["RSI", "SSDI", "SSI"]
    assert f"ledger entry {_last_index(world.ws)}" in result.stderr


def test_table_output_shows_columns_and_the_ledger_entry(world) -> None:
    result = _query(world, "SELECT count(*) AS payments_seen FROM payments")
    assert result.status == 0, result.stderr
    assert "payments_seen" in result.stdout
    assert f"1 row(s); ledger entry {_last_index(world.ws)}" in result.stderr


def test_refusal_exits_3_with_the_rule_the_underlined_position_and_a_hint(world) -> None:
    result = _query(world, "SELECT payee_name, amount FROM payments")
    assert result.status == 3
    lines = result.stderr.splitlines()
    assert (
        lines[0]
        == "refused: column 'payments.payee_name' is denied by agreement 'ssa-deceased' (v1)"
    )
    assert lines[1].strip() == "SELECT payee_name, amount FROM payments"
    assert lines[2].strip() == "~" * len("payee_name")
    assert lines[-1].startswith("hint: ")
    assert result.stdout == ""
    entry = json.loads(_entry(world.ws, _last_index(world.ws)))
    assert entry["action"] == "refusal" and entry["reason"] == lines[0].removeprefix("refused: ")


def _entry(ws, index: int) -> bytes:
    ledger = ws.ledger()
    try:
        return ledger.entry(index)
    finally:
        ledger.close()


def test_malformed_sql_exits_2(world) -> None:
    result = _query(world, "SELECT (")
    assert result.status == 2 and result.stdout == ""
    assert "Traceback" not in result.stderr


def test_a_broken_ledger_is_a_system_failure_with_no_data(tmp_path) -> None:
    world = make_world(tmp_path, people=10)
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    manifest = json.loads(world.ws.manifest_path.read_text())
    manifest["ledger_store"] = f"sqlite:///{blocker}/ledger.db"
    world.ws.manifest_path.write_text(json.dumps(manifest))
    result = _query(world, "SELECT payment_id FROM payments", "--format", "json")
    assert result.status == 1
    assert result.stdout == "" and "P0" not in result.stderr
    assert "Traceback" not in result.stderr
