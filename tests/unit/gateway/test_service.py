from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from custodiet.errors import InputError, RefusedError, SystemFailure, TamperedError
from custodiet.gateway import service
from custodiet.gateway.release import result_sha256
from custodiet.gateway.service import QueryResult
from custodiet.runtime import opened
from custodiet.workspace import Workspace
from tests.gateway_data import agreement_document, make_world
from tests.kit import Kit

KIT = Kit()


def run_query(
    ws: Workspace, agreement: str, principal: str, sql: str, now: dt.datetime | None = None
) -> QueryResult:
    """``principal``'s signed query, run as one CLI command would (at ``now``, if given)."""
    with opened(ws) as rt:
        if now is not None:
            rt.now = lambda: now  # type: ignore[method-assign]
        request = KIT.sign(rt, principal, "query", {"agreement": agreement, "sql": sql}, now=now)
        return service.run_query(rt, request)


PEOPLE = 120


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    aggregate = agreement_document("ssa-aggregate", mode="aggregate")
    tight = agreement_document(
        "ssa-tight", limits={"max_rows": 5, "min_group_size": 5, "timeout_seconds": 0.5}
    )
    return make_world(
        tmp_path_factory.mktemp("svc"),
        people=PEOPLE,
        agreements=(agreement_document(), aggregate, tight),
    )


def _entry(ws, index: int) -> dict[str, Any]:
    ledger = ws.ledger()
    try:
        return json.loads(ledger.entry(index))
    finally:
        ledger.close()


def _last_entry(ws) -> dict[str, Any]:
    ledger = ws.ledger()
    try:
        return json.loads(ledger.entry(ledger.size() - 1))
    finally:
        ledger.close()


def test_allowed_query_returns_rows_and_is_on_the_ledger_first(world) -> None:
    sql = "SELECT program, count(*) AS n FROM payments GROUP BY program ORDER BY program"
    result = run_query(world.ws, "ssa-deceased", "rev", sql)
    ssa_people = [i for i in range(PEOPLE) if i % 10 != 9]
    assert result.rows == [
        (program, 3 * len([i for i in ssa_people if i % 3 == k]))
        for k, program in enumerate(["RSI", "SSDI", "SSI"])
    ]
    entry = _last_entry(world.ws)
    assert entry["index"] == result.ledger_index
    assert entry["action"] == "query" and entry["decision"] == "allowed"
    assert entry["actor"] == "rev" and entry["agreement"] == "ssa-deceased"
    assert entry["agreement_version"] == 1 and len(entry["agreement_sha256"]) == 64
    assert entry["sql"] == sql
    assert entry["datasets"] == ["payments"] and entry["columns"] == ["payments.program"]
    assert entry["rows_returned"] == 3 and entry["epsilon_spent"] == 0
    assert entry["result_sha256"] == result_sha256(result.columns, result.rows)
    assert "RSI" not in json.dumps(entry)  # a result value never reaches the ledger
    # the signed request went on the ledger as an intent before the query ran
    intent = _entry(world.ws, entry["intent"])
    assert (intent["action"], intent["attempted"], intent["actor"]) == ("intent", "query", "rev")
    assert intent["request"]["args"] == {"agreement": "ssa-deceased", "sql": sql}
    assert intent["signature"] and "LIMIT" in intent["executed_sql"]
    assert intent["index"] < entry["index"]


def test_pseudonymous_rows_carry_tokens_with_a_notice(world) -> None:
    result = run_query(
        world.ws,
        "ssa-deceased",
        "rev",
        "SELECT payee_tin, amount FROM payments ORDER BY payment_id LIMIT 2",
    )
    assert [len(row[0]) for row in result.rows] == [12, 12]
    assert "columns pseudonymized (keyed tokens): payments.payee_tin" in result.notices


def test_results_beyond_max_rows_are_truncated(world) -> None:
    result = run_query(world.ws, "ssa-tight", "rev", "SELECT payment_id FROM payments")
    assert result.truncated and len(result.rows) == 5
    assert _last_entry(world.ws)["rows_returned"] == 5


def test_aggregate_mode_suppresses_groups_of_few_persons(world) -> None:
    sql = (
        "SELECT amount, count(*) AS n FROM payments "
        "WHERE program = 'RSI' OR amount < 530 GROUP BY amount ORDER BY amount"
    )
    persons: dict[int, set[int]] = {}
    for i in (i for i in range(PEOPLE) if i % 10 != 9):
        for k in range(3):
            amount = 500 + (i % 17) * 10 + k
            if i % 3 == 0 or amount < 530:
                persons.setdefault(amount, set()).add(i)
    large = sorted(a for a, p in persons.items() if len(p) >= 5)
    assert large and len(large) < len(persons)  # the data has groups on both sides
    result = run_query(world.ws, "ssa-aggregate", "rev", sql)
    assert result.columns == ("amount", "n")
    assert [(int(a), n) for a, n in result.rows] == [(a, len(persons[a])) for a in large]
    assert result.notices[0] == (
        f"{len(persons) - len(large)} group(s) suppressed: "
        "a value came from fewer than 5 distinct persons"
    )


@pytest.mark.parametrize(
    ("principal", "agreement", "sql", "error", "reason"),
    [
        (
            "rev",
            "ssa-deceased",
            "SELECT payee_name FROM payments",
            RefusedError,
            "column 'payments.payee_name' is denied",
        ),
        ("rev2", "ssa-deceased", "SELECT 1", RefusedError, "not the reviewer"),
        ("nobody", "ssa-deceased", "SELECT 1", RefusedError, "unknown principal"),
        ("rev", "no-such-agreement", "SELECT 1", RefusedError, "no-such-agreement"),
        ("rev", "ssa-deceased", "SELECT (", InputError, ""),
    ],
)
def test_every_refused_or_malformed_request_is_recorded_before_raising(
    world, principal, agreement, sql, error, reason
) -> None:
    with pytest.raises(error) as caught:
        run_query(world.ws, agreement, principal, sql)
    entry = _last_entry(world.ws)
    assert entry["action"] == "refusal" and entry["actor"] == principal
    assert entry["agreement"] == agreement
    # the refusal carries the signed request, and with it the SQL that was attempted
    assert entry["request"]["args"] == {"agreement": agreement, "sql": sql}
    assert entry["request"]["principal"] == principal and entry["signature"]
    assert entry["code"] == caught.value.code
    assert reason in entry["reason"]
    assert entry["decision"] == ("malformed" if error is InputError else "refused")
    assert "rows_returned" not in entry


def test_an_expired_agreement_is_refused_and_recorded(world) -> None:
    with pytest.raises(RefusedError) as caught:
        run_query(
            world.ws, "ssa-deceased", "rev", "SELECT 1", now=dt.datetime(2031, 1, 1, tzinfo=dt.UTC)
        )
    assert "expired" in caught.value.rule
    assert _last_entry(world.ws)["reason"] == caught.value.rule


def test_a_timed_out_query_is_refused_recorded_and_the_next_one_runs(world) -> None:
    runaway = "SELECT count(*) FROM payments a, payments b, payments c, payments d, payments e"
    with pytest.raises(RefusedError) as caught:
        run_query(world.ws, "ssa-tight", "rev", runaway)
    assert caught.value.code == "CUST370"
    entry = _last_entry(world.ws)
    assert (
        entry["action"] == "refusal" and entry["reason"] == "query exceeded the time limit of 0.5 s"
    )
    assert run_query(world.ws, "ssa-tight", "rev", "SELECT count(*) FROM deaths").rows


def test_when_the_ledger_cannot_record_no_data_is_returned(tmp_path) -> None:
    world = make_world(tmp_path, people=20)
    sql = "SELECT payment_id FROM payments"
    assert run_query(world.ws, "ssa-deceased", "rev", sql).rows
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    manifest = json.loads(world.ws.manifest_path.read_text())
    manifest["ledger_store"] = f"sqlite:///{blocker}/ledger.db"
    world.ws.manifest_path.write_text(json.dumps(manifest))
    for query in (sql, "SELECT payee_name FROM payments"):
        # the ledger store is gone: every command fails closed (exit 1), nothing is re-created
        with pytest.raises((SystemFailure, TamperedError)) as caught:
            run_query(world.ws, "ssa-deceased", "rev", query)
        assert caught.value.exit_status == 1
        assert "P0" not in caught.value.render()
    assert not Path(f"{blocker}/ledger.db").exists()


def test_a_missing_workspace_is_bad_input_not_a_ledger_failure(tmp_path) -> None:
    from custodiet.workspace import Workspace

    with pytest.raises(InputError) as caught:
        run_query(Workspace(tmp_path / "nowhere"), "ssa-deceased", "rev", "SELECT 1")
    assert caught.value.code == "CUST201"
    assert not (tmp_path / "nowhere").exists()


def test_a_query_signed_with_another_key_or_replayed_is_refused(world) -> None:
    sql = "SELECT count(*) AS n FROM deaths"
    with opened(world.ws) as rt:
        args = {"agreement": "ssa-deceased", "sql": sql}
        forged = KIT.sign(rt, "rev", "query", args, key_of="rev2")
        with pytest.raises(RefusedError) as caught:
            service.run_query(rt, forged)
        assert caught.value.code == "CUST502"
        signed = KIT.sign(rt, "rev", "query", args)
        assert service.run_query(rt, signed).rows
        with pytest.raises(RefusedError) as replayed:
            service.run_query(rt, signed)
        assert replayed.value.code == "CUST506"
    assert _last_entry(world.ws)["code"] == "CUST506"


def test_a_reviewer_never_builds_a_missing_projection(tmp_path) -> None:
    """The projection is built when the approval activates the version; a query finding it
    gone is refused (and recorded) instead of building it in the reviewer's request."""
    world = make_world(tmp_path, people=20)
    for path in world.ws.projections_dir.iterdir():
        path.unlink()
    with pytest.raises(SystemFailure) as caught:
        run_query(world.ws, "ssa-deceased", "rev", "SELECT count(*) FROM deaths")
    assert caught.value.code == "CUST538"
    assert _last_entry(world.ws)["code"] == "CUST538"
    assert not list(world.ws.projections_dir.iterdir())
