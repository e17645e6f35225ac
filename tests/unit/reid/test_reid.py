"""Break-glass re-identification: two distinct custodians, the requester only, in time, logged."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from custodiet.errors import InputError, RefusedError
from custodiet.gateway.tokens import Tokenizer, agreement_key, read_secret
from custodiet.reid import MAX_TOKENS, WINDOW
from custodiet.reid import service as reid
from custodiet.reid.service import ReidRecord, Release, records_sha256
from tests.conftest import run_cli
from tests.kit import set_clock
from tests.unit.screens.tinydata import (
    DIES_MID_MONTH,
    DUPLICATED,
    OLDEST,
    SHARED,
    person,
)
from tests.unit.screens.world import World, build_world

AGREEMENT = "all-screens"
NOW = dt.datetime.now(dt.UTC)
HOUR = dt.timedelta(hours=1)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    built = build_world(tmp_path_factory.mktemp("reid"))
    built.grant(AGREEMENT)
    built.grant("other", reviewer="rev-2")
    return built


def token_of(world: World, ssn: str, agreement: str = AGREEMENT, reviewer: str = "rev") -> str:
    key = agreement_key(read_secret(world.ws.secret_path), agreement, reviewer)
    token = Tokenizer(key, "ssn").token(ssn)
    assert token is not None
    return token


def act(world: World, service: Any, by: str, action: str, now: dt.datetime, **args: Any) -> Any:
    """``by``'s signed ``action`` with everything (checks, request, ledger) timed at ``now``."""
    with pytest.MonkeyPatch.context() as patch:
        set_clock(patch, now)
        return world.kit.call(world.ws, service, by, action, **args)


def request_reid(
    world: World, by: str, tokens: list[str], reason: str, now: dt.datetime = NOW,
    agreement: str = AGREEMENT, fields: tuple[str, ...] = ("name", "tin"),
) -> ReidRecord:  # fmt: skip
    record: ReidRecord = act(world, reid.request_reid, by, "reid.request", now,
                             agreement=agreement, tokens=tokens, fields=list(fields),
                             reason=reason)  # fmt: skip
    return record


def approve_reid(
    world: World, request_id: int, by: str, now: dt.datetime = NOW, sha256: str | None = None
) -> ReidRecord:
    """``by``'s approval of exactly the request's content (its sha256, as `reid list` shows)."""
    content = sha256 or world.kit.state(world.ws).reid[request_id].sha256
    record: ReidRecord = act(world, reid.approve_reid, by, "reid.approve", now,
                             request=request_id, sha256=content)  # fmt: skip
    return record


def show_reid(world: World, request_id: int, by: str, now: dt.datetime = NOW) -> Release:
    release: Release = act(world, reid.show_reid, by, "reid.show", now, request=request_id)
    return release


def request(world: World, *people: int, now: dt.datetime = NOW) -> int:
    tokens = [token_of(world, person(i)) for i in people]
    return request_reid(world, "rev", tokens, "paid after death", now=now).id


def approved(world: World, *people: int, now: dt.datetime = NOW) -> int:
    request_id = request(world, *people, now=now)
    approve_reid(world, request_id, "cust-a", now=now)
    approve_reid(world, request_id, "cust-b", now=now)
    return request_id


def refused(world: World, code: str, action: object) -> RefusedError:
    """Assert ``action()`` is refused with ``code`` and that the refusal is the last entry."""
    assert callable(action)
    with pytest.raises(RefusedError) as raised:
        action()
    assert raised.value.code == code
    last = world.ledger_entries()[-1]
    assert last["action"] == "refusal" and last["reason"] == raised.value.rule
    return raised.value


def test_release_holds_exactly_the_requested_tokens_and_their_identities(world: World) -> None:
    request_id = approved(world, DIES_MID_MONTH, DUPLICATED)
    release = show_reid(world, request_id, "rev", now=NOW + HOUR)
    wanted = {token_of(world, person(i)): person(i) for i in (DIES_MID_MONTH, DUPLICATED)}
    assert {r.token for r in release.records} == set(wanted)
    for r in release.records:
        ssn = r.fields.get("ssn") or r.fields.get("payee_tin") or r.fields.get("tin")
        assert ssn == wanted[r.token]
    datasets = {r.dataset for r in release.records if r.token == token_of(world, person(1))}
    assert datasets == {"beneficiaries", "deaths", "payments"}
    names = {r.fields.get("first_name") for r in release.records if r.dataset == "deaths"}
    assert names == {f"Given{DIES_MID_MONTH}"}


def test_ledger_records_the_release_by_digest_and_never_an_identity(world: World) -> None:
    request_id = approved(world, OLDEST)
    release = show_reid(world, request_id, "rev", now=NOW)
    entry = world.ledger_entries()[release.ledger_index]
    assert entry["action"] == "reid.release"
    assert entry["tokens"] == [token_of(world, person(OLDEST))]
    assert entry["count"] == len(release.records) > 0
    assert entry["records_sha256"] == records_sha256(release.records)
    text = world.ledger_text()
    for r in release.records:
        for value in r.fields.values():
            if value:
                assert value not in text


def test_show_is_refused_without_approvals_and_with_one(world: World) -> None:
    request_id = request(world, DIES_MID_MONTH)
    rule = refused(world, "CUST416", lambda: show_reid(world, request_id, "rev", now=NOW))
    assert "0 of 2" in rule.rule
    approve_reid(world, request_id, "cust-a", now=NOW)
    rule = refused(world, "CUST416", lambda: show_reid(world, request_id, "rev", now=NOW))
    assert "1 of 2" in rule.rule


def test_the_requester_cannot_approve_their_own_request(world: World) -> None:
    request_id = request(world, DIES_MID_MONTH)
    refused(world, "CUST413", lambda: approve_reid(world, request_id, "rev", now=NOW))


def test_one_custodian_approving_twice_counts_once(world: World) -> None:
    request_id = request(world, DIES_MID_MONTH)
    approve_reid(world, request_id, "cust-a", now=NOW)
    refused(world, "CUST414", lambda: approve_reid(world, request_id, "cust-a", now=NOW))
    refused(world, "CUST416", lambda: show_reid(world, request_id, "rev", now=NOW))


def test_only_custodians_approve(world: World) -> None:
    request_id = request(world, DIES_MID_MONTH)
    for principal in ("watcher", "rev-2"):
        refused(world, "CUST412", lambda p=principal: approve_reid(world, request_id, p, now=NOW))


def test_another_reviewer_cannot_see_an_approved_request(world: World) -> None:
    request_id = approved(world, DIES_MID_MONTH)
    refused(world, "CUST415", lambda: show_reid(world, request_id, "rev-2", now=NOW))


def test_another_reviewer_cannot_request_under_an_agreement_not_theirs(world: World) -> None:
    token = token_of(world, person(DIES_MID_MONTH))
    refused(
        world,
        "CUST316",
        lambda: request_reid(world, "rev-2", [token], "curious", now=NOW),
    )


def test_a_token_outside_the_agreement_is_refused(world: World) -> None:
    elsewhere = token_of(world, person(DIES_MID_MONTH), agreement="other", reviewer="rev-2")
    assert elsewhere != token_of(world, person(DIES_MID_MONTH))
    rule = refused(
        world,
        "CUST411",
        lambda: request_reid(world, "rev", [elsewhere], "why", now=NOW),
    )
    assert elsewhere in rule.rule
    # a valid-looking token of nobody, and an account token (not a person), are refused alike
    key = agreement_key(read_secret(world.ws.secret_path), AGREEMENT, "rev")
    account = Tokenizer(key, "account")
    for token in ("AAAAAAAAAAAA", account.token("0040000070")):
        assert token is not None
        refused(
            world,
            "CUST411",
            lambda t=token: request_reid(world, "rev", [t], "why", now=NOW),
        )


def test_a_request_expires(world: World) -> None:
    request_id = request(world, DIES_MID_MONTH)
    approve_reid(world, request_id, "cust-a", now=NOW)
    late = NOW + WINDOW
    refused(world, "CUST417", lambda: approve_reid(world, request_id, "cust-b", now=late))
    approve_reid(world, request_id, "cust-b", now=late - HOUR)
    refused(world, "CUST417", lambda: show_reid(world, request_id, "rev", now=late))
    assert show_reid(world, request_id, "rev", now=late - HOUR).records


def test_a_request_names_a_bounded_number_of_tokens(world: World) -> None:
    tokens = [token_of(world, person(i)) for i in range(1, MAX_TOKENS + 2)]
    rule = refused(
        world,
        "CUST410",
        lambda: request_reid(world, "rev", tokens, "all of them", now=NOW),
    )
    assert f"1 to {MAX_TOKENS} case tokens" in rule.rule


def test_a_malformed_token_is_bad_input_and_never_echoed(world: World) -> None:
    typed = person(SHARED[0])  # an SSN typed where a token belongs
    with pytest.raises(InputError) as raised:
        request_reid(world, "rev", [typed], "oops", now=NOW)
    assert raised.value.code == "CUST401"
    assert typed not in raised.value.render()
    assert typed not in world.ledger_text()
    last = world.ledger_entries()[-1]  # refused on the ledger, without the signed request
    assert (last["action"], last["code"], last["actor"]) == ("refusal", "CUST401", "rev")
    assert "request" not in last


def test_cli_request_approve_show(world: World) -> None:
    report = world.run_screens(AGREEMENT, "rev")
    case = next(c for c in report.cases if "paid_after_death" in c.patterns)
    ws = ("--workspace", str(world.ws.root))
    filed = run_cli(
        "reid", "request", "--agreement", AGREEMENT, *world.as_("rev"),
        "--case", case.payee, "--reason", f"{case.record_id} paid after death", *ws,
    )  # fmt: skip
    assert filed.status == 0, filed.stderr
    request_id = filed.stdout.split()[1].rstrip(":")
    listed = run_cli("reid", "list", "--format", "json", *ws)
    assert listed.status == 0, listed.stderr
    pending = next(r for r in json.loads(listed.stdout) if str(r["id"]) == request_id)
    assert pending["tokens"] == [case.payee] and pending["fields"] == ["name", "tin"]
    wrong = run_cli("reid", "approve", request_id, "--sha256", "0" * 64,
                    *world.as_("cust-a"), *ws)  # fmt: skip
    assert wrong.status == 3 and "CUST524" in world.ledger_entries()[-1]["code"]
    for custodian in ("cust-a", "cust-b"):
        approved = run_cli("reid", "approve", request_id, "--sha256", pending["sha256"],
                           *world.as_(custodian), *ws)  # fmt: skip
        assert approved.status == 0, approved.stderr
    other = run_cli("reid", "show", request_id, *world.as_("rev-2"), *ws)
    assert other.status == 3 and other.stderr.startswith("refused: ")
    assert "only the requester" in other.stderr
    shown = run_cli("reid", "show", request_id, *world.as_("rev"), "--format", "json", *ws)
    assert shown.status == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert {r["token"] for r in document["records"]} == {case.payee}


def test_an_approval_is_of_exactly_the_content_filed(world: World) -> None:
    request_id = request(world, DIES_MID_MONTH)
    refused(world, "CUST524",
            lambda: approve_reid(world, request_id, "cust-a", sha256="0" * 64))  # fmt: skip
    assert world.kit.state(world.ws).reid[request_id].approvals == []


def test_a_denied_request_is_closed(world: World) -> None:
    request_id = request(world, DIES_MID_MONTH)
    denied = act(world, reid.deny_reid, "cust-c", "reid.deny", NOW,
                 request=request_id, reason="not enough grounds")  # fmt: skip
    assert denied.denied_by == "cust-c"
    refused(world, "CUST529", lambda: approve_reid(world, request_id, "cust-a"))
    refused(world, "CUST529", lambda: show_reid(world, request_id, "rev"))
    assert request_id not in {r.id for r in reid.pending(world.kit.state(world.ws))}


def test_bank_numbers_are_released_only_when_asked(world: World) -> None:
    token = token_of(world, person(DIES_MID_MONTH))
    plain = request_reid(world, "rev", [token], "who")
    approve_reid(world, plain.id, "cust-a")
    approve_reid(world, plain.id, "cust-b")
    kinds = {k for r in show_reid(world, plain.id, "rev").records for k in r.fields}
    assert not kinds & {"routing_number", "account_number"}
    bank = request_reid(world, "rev", [token], "where did it go", fields=("name", "bank"))
    approve_reid(world, bank.id, "cust-a")
    approve_reid(world, bank.id, "cust-c")
    kinds = {k for r in show_reid(world, bank.id, "rev").records for k in r.fields}
    assert kinds & {"routing_number", "account_number"}
