"""Every principal action over HTTP, signed as the CLI signs it, with the CLI's JSON shapes;
every refusal (no signature, the wrong key, the wrong principal, a replay, an expired request,
another log's request) answered with its code and status and recorded on the ledger."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from custodiet.agreements.model import Agreement
from custodiet.agreements.store import agreement_document as canonical
from custodiet.identity import SignedRequest
from tests.api.world import ROUTES, Caller, add_people, served
from tests.gateway_data import agreement_document as raw_document
from tests.gateway_data import write_canonical
from tests.kit import public_key

AGREEMENT = "ssa-deceased"


def agreement_document(agreement_id: str, **changes: Any) -> dict[str, Any]:
    """The agreement as `agreement apply` signs it (canonical form)."""
    return canonical(Agreement.model_validate(raw_document(agreement_id, **changes)))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Caller]:
    root = tmp_path_factory.mktemp("api")
    with served(root) as caller:
        add_people(caller)
        caller.data = write_canonical(root / "data", people=60)
        for name, path in caller.data.items():
            caller.act("ana", "dataset.add", name=name, path=str(path), classify={})
        document = agreement_document(AGREEMENT, reviewer="rae")
        caller.act("rae", "agreement.propose", document=document)
        yield caller


def _approve_all(caller: Caller, agreement: str) -> dict[str, Any]:
    shown = caller.client.get(f"/v1/agreements/{agreement}").json()
    done: dict[str, Any] = {}
    for custodian in ("ana", "ben"):
        done = caller.act(
            custodian,
            "agreement.approve",
            agreement=agreement,
            version=shown["version"],
            sha256=shown["sha256"],
        )
    return done


@pytest.fixture(scope="module")
def active(world: Caller) -> Caller:
    done = _approve_all(world, AGREEMENT)
    assert done["active"] and done["projection"]
    return world


def test_public_reads_answer_the_cli_json_shapes(world: Caller) -> None:
    info = world.client.get("/v1/info").json()
    assert info["origin"] == world.origin and info["min_approvals"] == 2
    assert info["vkey"].startswith(world.origin + "+")
    principals = {p["name"]: p for p in world.client.get("/v1/principals").json()}
    assert principals["rae"]["role"] == "reviewer"
    assert principals["rae"]["pubkey"] == public_key("rae")
    assert principals["rae"]["fingerprint"].startswith("SHA256:")
    datasets = {d["name"]: d for d in world.client.get("/v1/datasets").json()}
    assert set(datasets) == {"payments", "deaths"}
    assert {"name", "type", "class", "identifier_kind"} <= set(datasets["payments"]["columns"][0])
    listed = world.client.get("/v1/agreements").json()
    assert [a["id"] for a in listed] == [AGREEMENT]
    shown = world.client.get(f"/v1/agreements/{AGREEMENT}").json()
    assert set(shown) >= {"id", "version", "sha256", "status", "approvals", "document"}
    assert world.client.get("/v1/reid/pending").json() == []


def test_query_screens_and_build_run_under_the_active_agreement(active: Caller) -> None:
    sql = "SELECT program, count(*) AS n FROM payments GROUP BY program ORDER BY program"
    result = active.act("rae", "query", agreement=AGREEMENT, sql=sql)
    assert result["columns"] == ["program", "n"] and len(result["rows"]) == 3
    entry = active.entries()[result["ledger_index"]]
    assert entry["actor"] == "rae" and entry["action"] == "query"
    report = active.act("rae", "screen.run", agreement=AGREEMENT, screens=[])
    assert {"cases", "summary", "total", "refused"} <= set(report)
    assert active.act("ana", "agreement.build", agreement=AGREEMENT)["projection"]


def test_reid_request_approve_show_and_deny(active: Caller) -> None:
    sql = "SELECT payee_tin FROM payments ORDER BY payment_id LIMIT 2"
    rows = active.act("rae", "query", agreement=AGREEMENT, sql=sql)["rows"]
    token, other = rows[0][0], rows[1][0]
    filed = active.act(
        "rae",
        "reid.request",
        agreement=AGREEMENT,
        tokens=[token],
        fields=["name"],
        reason="payment after death",
    )
    pending = active.client.get("/v1/reid/pending").json()
    assert [r["id"] for r in pending] == [filed["id"]]
    for custodian in ("ana", "ben"):
        approved = active.act(
            custodian, "reid.approve", request=filed["id"], sha256=filed["sha256"]
        )
    assert len(approved["approvals"]) == 2
    release = active.act("rae", "reid.show", request=filed["id"])
    assert release["request"] == filed["id"] and release["records"]
    assert release["records"][0]["token"] == token
    second = active.act(
        "rae", "reid.request", agreement=AGREEMENT, tokens=[other], fields=["name"], reason="check"
    )
    denied = active.act("ana", "reid.deny", request=second["id"], reason="not needed")
    assert denied["id"] == second["id"]


def test_principal_removal_takes_k_custodians(world: Caller) -> None:
    world.act("ana", "principal.add", name="tmp", role="overseer", pubkey=public_key("tmp"))
    first = world.act("ana", "principal.remove", name="tmp")
    assert not first["effective"] and first["votes"] == 1
    assert world.act("ben", "principal.remove", name="tmp")["effective"]


def test_revoke_ends_an_agreement(world: Caller) -> None:
    document = agreement_document("to-revoke", reviewer="rae")
    world.act("rae", "agreement.propose", document=document)
    _approve_all(world, "to-revoke")
    done = world.act("ana", "agreement.revoke", agreement="to-revoke")
    assert done["id"] == "to-revoke"
    assert world.client.get("/v1/agreements/to-revoke").json()["status"] == "revoked"


# --- refusals, for every route ------------------------------------------------------------------

ARGS: dict[str, dict[str, Any]] = {
    "principal.add": {"name": "zed", "role": "reviewer", "pubkey": public_key("zed")},
    "principal.remove": {"name": "otto"},
    "dataset.add": {"name": "x", "path": "/nonexistent.parquet", "classify": {}},
    "dataset.update": {"name": "payments", "path": "/nonexistent.parquet"},
    "agreement.propose": {"document": agreement_document("other", reviewer="rae")},
    "agreement.approve": {"agreement": AGREEMENT, "version": 1, "sha256": "0" * 64},
    "agreement.revoke": {"agreement": AGREEMENT},
    "agreement.build": {"agreement": AGREEMENT},
    "query": {"agreement": AGREEMENT, "sql": "SELECT 1"},
    "screen.run": {"agreement": AGREEMENT, "screens": []},
    "reid.request": {
        "agreement": AGREEMENT,
        "tokens": ["abcdefghijkl"],
        "fields": ["name"],
        "reason": "r",
    },
    "reid.approve": {"request": 0, "sha256": "0" * 64},
    "reid.deny": {"request": 0, "reason": "r"},
    "reid.show": {"request": 0},
    "monitor": {"agreement": AGREEMENT},
    "case.set": {"case": "0" * 64, "state": "confirmed"},
    "case.read": {"agreement": AGREEMENT},
}
ACTIONS = sorted(ROUTES)


def _refused(caller: Caller, response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is the error shape with ``code`` and ``status``; the refusal is the last
    ledger entry, and it names the code."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["status"] == status
    assert error["message"] and "Traceback" not in response.text
    entry = caller.last_entry()
    assert entry["action"] == "refusal" and entry["code"] == code
    return entry


@pytest.mark.parametrize("action", ACTIONS)
def test_an_unsigned_body_is_401_and_its_refusal_names_no_principal(
    world: Caller, action: str
) -> None:
    forged = world.sign("ana", action, ARGS[action]).request
    response = world.client.post(ROUTES[action], json={"request": forged})
    entry = _refused(world, response, 401, "CUST501")
    assert entry["actor"] == "(unauthenticated)" and entry["attempted"] == action
    assert "request" not in entry and "signature" not in entry
    bearer = world.client.post(
        ROUTES[action], json={"request": forged}, headers={"Authorization": "Bearer ana"}
    )
    assert bearer.status_code == 401
    assert world.last_entry()["actor"] == "(unauthenticated)"


@pytest.mark.parametrize("action", ACTIONS)
def test_a_signature_by_another_key_is_401(world: Caller, action: str) -> None:
    signed = world.sign("ana", action, ARGS[action], key_of="rae")
    _refused(world, world.post(signed), 401, "CUST502")


@pytest.mark.parametrize("action", ACTIONS)
def test_an_unknown_principal_is_401(world: Caller, action: str) -> None:
    _refused(world, world.post(world.sign("mallory", action, ARGS[action])), 401, "CUST310")


@pytest.mark.parametrize("action", ACTIONS)
def test_an_expired_request_is_401(world: Caller, action: str) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)
    _refused(world, world.post(world.sign("ana", action, ARGS[action], now=old)), 401, "CUST505")


@pytest.mark.parametrize("action", ACTIONS)
def test_a_request_for_another_log_is_401(world: Caller, action: str) -> None:
    signed = world.sign("ana", action, ARGS[action], origin="custodiet.local/elsewhere")
    _refused(world, world.post(signed), 401, "CUST503")


@pytest.mark.parametrize("action", ACTIONS)
def test_a_request_on_another_route_is_400(world: Caller, action: str) -> None:
    other = "query" if action != "query" else "screen.run"
    response = world.post(world.sign("ana", action, ARGS[action]), route=ROUTES[other])
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "CUST606"


WRONG_PRINCIPAL = {  # action -> (who may not, status, code)
    "principal.add": ("rae", 403, None),
    "principal.remove": ("rae", 403, None),
    "dataset.add": ("rae", 403, None),
    "dataset.update": ("rae", 403, None),
    "agreement.approve": ("rae", 403, None),
    "agreement.revoke": ("rae", 403, None),
    "agreement.build": ("rae", 403, None),
    "query": ("otto", 403, None),
    "screen.run": ("otto", 403, None),
    "reid.request": ("otto", 403, None),
    "monitor": ("otto", 403, None),
    "case.set": ("otto", 404, None),
}


@pytest.mark.parametrize("action", sorted(WRONG_PRINCIPAL))
def test_the_wrong_principal_is_refused_on_the_ledger(active: Caller, action: str) -> None:
    who, status, _ = WRONG_PRINCIPAL[action]
    args = dict(ARGS[action])
    if action in ("dataset.add", "dataset.update"):
        args["path"] = str(active.data["payments"])
    if action == "agreement.approve":
        shown = active.client.get(f"/v1/agreements/{AGREEMENT}").json()
        args.update(version=shown["version"], sha256=shown["sha256"])
    response = active.post(active.sign(who, action, args))
    assert response.status_code in (status, 404), response.text
    error = response.json()["error"]
    entry = active.last_entry()
    assert entry["action"] == "refusal" and entry["code"] == error["code"]
    assert entry["actor"] == who and entry["decision"] in ("refused", "malformed")


def test_a_custodian_adds_a_dataset_version_over_http(active: Caller, tmp_path: Path) -> None:
    new = write_canonical(tmp_path / "month2", people=30)["payments"]
    done = active.act("ana", "dataset.update", name="payments", path=str(new))
    assert (
        done["dataset"]["version"] == 2 and done["extended"] == []
    )  # the agreement does not follow
    assert [f["path"] for f in done["dataset"]["files"]][-1] == str(new.resolve())
    shown = active.client.get("/v1/datasets").json()
    assert next(d for d in shown if d["name"] == "payments")["version"] == 2
    entry = active.last_entry()
    assert entry["action"] == "dataset.update" and entry["version"] == 2


def test_a_replayed_signature_is_409_on_the_ledger(active: Caller) -> None:
    signed = active.sign("rae", "query", {"agreement": AGREEMENT, "sql": "SELECT 1 AS one"})
    assert active.post(signed).status_code == 200
    _refused(active, active.post(SignedRequest(signed.request, signed.signature)), 409, "CUST506")


def test_a_signature_replayed_concurrently_is_answered_once(active: Caller) -> None:
    """Four copies of one signed query at once (a principal's limit in flight): the server
    checks intents under its lock but waits for the ledger outside it, and still answers exactly
    one (its nonce is used when the intent is checked, not when it is durable); the others are
    409 CUST506, on the ledger."""
    signed = active.sign("rae", "query", {"agreement": AGREEMENT, "sql": "SELECT 1 AS one"})
    responses: list[Any] = []
    threads = [
        threading.Thread(target=lambda: responses.append(active.post(signed))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * 3, [r.text for r in responses]
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {"CUST506"}
    nonce = signed.request["nonce"]
    mine = [e for e in active.entries() if e.get("request", {}).get("nonce") == nonce]
    assert [e["action"] for e in mine].count("intent") == 1
    assert [e.get("code") for e in mine if e["action"] == "refusal"] == ["CUST506"] * 3


def test_a_refused_query_is_403_with_its_rule(active: Caller) -> None:
    sql = "SELECT payee_name FROM payments"
    response = active.post(active.sign("rae", "query", {"agreement": AGREEMENT, "sql": sql}))
    entry = _refused(active, response, 403, "CUST341")
    assert entry["actor"] == "rae"


@pytest.mark.parametrize(
    "sql,at_fault",
    [
        ("SELECT program,\n  payee_name FROM payments", "payee_name"),
        ("SELECT program FROM payments WHERE no_such_column > 1", "no_such_column"),
        ("SELECT program, read_csv('x') AS r FROM payments", "read_csv"),
        ("-- caf\u00e9 \U0001f600\nSELECT payee_name FROM payments", "payee_name"),
    ],
    ids=["denied-column", "unknown-column", "function", "non-ascii-before"],
)
def test_a_refused_query_points_at_the_sql_at_fault(
    active: Caller, sql: str, at_fault: str
) -> None:
    response = active.post(active.sign("rae", "query", {"agreement": AGREEMENT, "sql": sql}))
    assert response.status_code == 403, response.text
    span = response.json()["error"]["span"]
    assert sql[span["start"] : span["end"]].lower() == at_fault  # code points, as Python counts
    assert "span" not in active.last_entry()  # the ledger records the refusal, not the position


def test_a_refusal_without_a_place_in_the_sql_has_no_span(active: Caller) -> None:
    response = active.post(active.sign("rae", "query", {"agreement": "nope", "sql": "SELECT 1"}))
    assert response.status_code == 404 and "span" not in response.json()["error"]


def test_unknown_ids_are_404(active: Caller) -> None:
    response = active.client.get("/v1/agreements/no-such-agreement")
    assert response.status_code == 404 and response.json()["error"]["code"] == "CUST250"
    response = active.post(active.sign("rae", "query", {"agreement": "nope", "sql": "SELECT 1"}))
    assert response.status_code == 404, response.text
    response = active.post(active.sign("rae", "reid.show", {"request": 99999}))
    assert response.status_code == 404, response.text


def test_results_are_the_cli_json_shapes(active: Caller, tmp_path: Path) -> None:
    result = active.act("rae", "query", agreement=AGREEMENT, sql="SELECT 1 AS one")
    assert set(result) == {"columns", "types", "rows", "ledger_index", "notices"}
    assert result["types"] == ["integer"] and result["rows"] == [[1]]


def test_a_screen_run_filters_on_match_and_refuses_an_unknown_category(active: Caller) -> None:
    def matches(report: dict[str, Any]) -> dict[str, str]:
        return {c["record_id"]: e["match"] for c in report["cases"]
                for e in c["evidence"]["paid_after_death"]}  # fmt: skip

    every = matches(active.act("rae", "screen.run", agreement=AGREEMENT,
                               screens=["paid_after_death"]))  # fmt: skip
    # this world's payee names are not the death records' and it grants no beneficiaries
    assert every and set(every.values()) == {"ssn_only"}
    named = active.act("rae", "screen.run", agreement=AGREEMENT, screens=["paid_after_death"],
                       match=["exact", "ssn_name"])  # fmt: skip
    assert matches(named) == {}
    report = active.act("rae", "screen.run", agreement=AGREEMENT, screens=["paid_after_death"],
                        match=["ssn_only"])  # fmt: skip
    assert matches(report) == every
    entry = active.entries()[report["summary"][0]["ledger_index"]]
    assert "IN ('ssn_only')" in entry["sql"]
    args = {"agreement": AGREEMENT, "screens": [], "match": ["fuzzy"]}
    response = active.post(active.sign("rae", "screen.run", args))
    _refused(active, response, 400, "CUST720")
