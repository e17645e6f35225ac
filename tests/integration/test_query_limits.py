"""A query's limits end to end, through the CLI and the HTTP API: a query too large to check and a
result past the workspace's ``max_result_bytes`` are refused with their codes, on the ledger, and
nothing is released."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from custodiet.client import error_from
from custodiet.errors import InputError, RefusedError
from custodiet.gateway.bounds import MAX_NODES
from custodiet.gateway.service import MAX_SQL_CHARS
from custodiet.workspace import Workspace
from tests.api.world import served
from tests.conftest import run_cli
from tests.gateway_data import World, make_world

CAP = 4096  # bytes: a few rows of payments, far less than all of them
WIDE = "SELECT * FROM payments"  # 180 rows of 9 columns
SMALL = "SELECT program, count(*) AS n FROM payments GROUP BY program ORDER BY program"
LONG_CHAIN = "SELECT " + "+".join(["1"] * ((MAX_SQL_CHARS - 7) // 2))
MANY_NODES = "SELECT " + ", ".join(["amount"] * (MAX_NODES // 2 + 10)) + " FROM payments"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    built = make_world(tmp_path_factory.mktemp("limits"), people=60)
    manifest = json.loads(built.ws.manifest_path.read_text())
    manifest["max_result_bytes"] = CAP
    built.ws.manifest_path.write_text(json.dumps(manifest))
    return built


def _entries(ws: Workspace) -> list[dict[str, Any]]:
    ledger = ws.ledger()
    try:
        return [json.loads(data) for _, data in ledger.entries(0, ledger.size())]
    finally:
        ledger.close()


def _query(world: World, sql: str) -> Any:
    return run_cli(
        "query",
        "--workspace",
        str(world.ws.root),
        "--agreement",
        world.agreement_id,
        *world.kit.as_("rev"),
        "--format",
        "json",
        sql,
    )


def _assert_outcome_refused(entries: list[dict[str, Any]], code: str) -> dict[str, Any]:
    """The last entry refuses with ``code`` as the outcome of the intent just before it."""
    refusal, intent = entries[-1], entries[-2]
    assert refusal["action"] == "refusal" and refusal["code"] == code, refusal
    assert refusal["decision"] == "refused"
    assert intent["action"] == "intent" and refusal["intent"] == intent["index"]
    assert "result_sha256" not in refusal and "rows_returned" not in refusal
    return intent


def test_cli_a_result_over_the_cap_is_refused_as_the_query_outcome(world: World) -> None:
    result = _query(world, WIDE)
    assert result.status == 3, result.stderr
    assert result.stdout == ""
    expected = f"refused: the result is larger than this vault's limit of {CAP:,} bytes"
    assert result.stderr.startswith(expected)
    assert "P0" not in result.stderr  # no payment id, no value from the data
    intent = _assert_outcome_refused(_entries(world.ws), "CUST376")
    assert intent["sql"] == WIDE
    small = _query(world, SMALL)
    assert small.status == 0, small.stderr
    assert [row[0] for row in json.loads(small.stdout)["rows"]] == ["RSI", "SSDI", "SSI"]
    audit = run_cli("ledger", "audit", "--workspace", str(world.ws.root))
    assert audit.status == 0, audit.stderr


def test_cli_the_longest_chain_within_the_length_limit_is_refused_on_the_ledger(
    world: World,
) -> None:
    result = _query(world, LONG_CHAIN)
    assert result.status == 3, result.stderr
    assert result.stderr.startswith("refused: the query is too long to check")
    last = _entries(world.ws)[-1]
    assert last["action"] == "refusal" and last["code"] == "CUST373"
    assert last["actor"] == "rev" and "signature" in last


@pytest.mark.parametrize(
    ("sql", "status", "code"),
    [
        (WIDE, 403, "CUST376"),
        (LONG_CHAIN, 413, "CUST373"),
        (MANY_NODES, 413, "CUST374"),
        ("SELECT " + "(" * 200 + "1" + ")" * 200, 400, "CUST263"),
    ],
    ids=["result over the cap", "too many tokens", "too many nodes", "too deep"],
)
def test_api_limits_have_their_status_and_code_and_are_on_the_ledger(
    world: World, tmp_path: Path, sql: str, status: int, code: str
) -> None:
    with served(tmp_path, workspace=world.ws) as caller:
        signed = caller.sign("rev", "query", {"agreement": world.agreement_id, "sql": sql})
        response = caller.post(signed)
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert error["code"] == code and error["status"] == status
        assert "rows" not in response.json()
        entries = caller.entries()
        if code == "CUST376":
            intent = _assert_outcome_refused(entries, code)
            assert intent["request"]["nonce"] == signed.request["nonce"]
        else:
            assert entries[-1]["code"] == code
            assert entries[-1]["request"]["nonce"] == signed.request["nonce"]
        args = {"agreement": world.agreement_id, "sql": SMALL}
        ok = caller.post(caller.sign("rev", "query", args))
        assert ok.status_code == 200, ok.text


def test_a_remote_refusal_with_413_exits_as_the_local_one() -> None:
    def response(code: str, message: str) -> httpx.Response:
        body = {"code": code, "message": message, "hint": "shorten it", "status": 413}
        return httpx.Response(413, json={"error": body})

    too_long = error_from(response("CUST373", "refused: the query is too long to check"))
    assert isinstance(too_long, RefusedError) and too_long.exit_status == 3
    assert too_long.code == "CUST373" and too_long.render().startswith("refused: the query")
    body = error_from(response("CUST601", "the request body is larger than 1024 bytes"))
    assert isinstance(body, InputError) and body.exit_status == 2
