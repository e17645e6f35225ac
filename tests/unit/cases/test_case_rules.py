"""The replay rules of cases, attacked with entries the services would never build, and the
whole history of a monitored, adjudicated workspace audited from its entries alone."""

from __future__ import annotations

import json
from typing import Any

import pytest

from custodiet import entries
from custodiet.cases.adjudicate import set_case
from custodiet.cases.monitor import monitor
from custodiet.errors import RefusedError
from custodiet.ledger.replay import Violation, audit_entries, state_document, state_from_document
from custodiet.runtime import opened
from tests.gateway_data import make_world
from tests.kit import Kit

AGREEMENT = "ssa-deceased"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    world = make_world(tmp_path_factory.mktemp("case-rules"), people=40)
    run = Kit().call(world.ws, monitor, "rev", "monitor", agreement=AGREEMENT)
    assert run.cases
    return world


def _ids(world: Any) -> list[str]:
    with opened(world.ws) as rt:
        return sorted(rt.state.cases)


def test_a_monitor_entry_cannot_open_a_case_twice(world: Any) -> None:
    kit = Kit()
    taken = _ids(world)[0]
    with opened(world.ws) as rt:
        signed = kit.sign(rt, "rev", "monitor", {"agreement": AGREEMENT})
        intent = rt.commit(entries.intent(signed, agreement=AGREEMENT, screens=[]))
        forged = entries.outcome("monitor", intent.index, "rev", AGREEMENT, agreement_version=1,
                                 screens=[], cases=1, refused=[], new_cases=[[taken, "x"]],
                                 cases_sha256="0" * 64)  # fmt: skip
        with pytest.raises(Violation) as caught:
            rt.state.check(forged, rt.now())
        assert caught.value.code == "CUST740"
        malformed = {**forged, "new_cases": [["not-an-id", "x"]]}
        with pytest.raises(Violation) as caught:
            rt.state.check(malformed, rt.now())
        assert caught.value.code == "CUST514"
        rt.commit({**forged, "new_cases": [], "cases": 0})  # closes the intent


def test_a_case_set_stating_another_previous_state_breaks_the_rules(world: Any) -> None:
    case = _ids(world)[1]
    with opened(world.ws) as rt:
        signed = Kit().sign(rt, "rev", "case.set", {"case": case, "state": "confirmed"})
        forged = {**entries.action(signed), "agreement": AGREEMENT, "case": case,
                  "previous": "confirmed"}  # fmt: skip
        with pytest.raises(Violation) as caught:
            rt.state.check(forged, rt.now())
        assert caught.value.code == "CUST514"


def test_the_second_reviewer_of_another_agreement_cannot_set_a_state(world: Any) -> None:
    case = _ids(world)[2]
    with pytest.raises(RefusedError) as caught:
        Kit().call(world.ws, set_case, "rev2", "case.set", case=case, state="confirmed")
    assert caught.value.code == "CUST742"
    with pytest.raises(RefusedError) as caught:
        Kit().call(world.ws, set_case, "cust1", "case.set", case=case, state="confirmed")
    assert caught.value.code == "CUST742"


def test_case_read_entries_the_services_would_never_build_break_the_rules(world: Any) -> None:
    """A read by another agreement's reviewer, a malformed request and an entry that does not
    state what it released are each a violation; the reviewer's well-formed read is not."""
    kit = Kit()
    case = _ids(world)[0]
    released = {"cases": 1, "report_rows": 0, "released_sha256": "0" * 64}
    with opened(world.ws) as rt:
        attacks = [
            ("rev2", {"agreement": AGREEMENT}, released, "CUST760"),
            ("rev", {"agreement": "nope"}, released, "CUST317"),
            ("rev", {"case": "ff" * 32}, released, "CUST761"),
            ("rev", {"case": case[:6]}, released, "CUST762"),
            ("rev", {"agreement": AGREEMENT, "month": "2024-13"}, released, "CUST762"),
            ("rev", {}, released, "CUST762"),
            ("rev", {"agreement": AGREEMENT}, {**released, "cases": -1}, "CUST514"),
            ("rev", {"case": case[:10]}, {**released, "case": _ids(world)[1]}, "CUST514"),
        ]
        for who, args, fields, code in attacks:
            forged = {**entries.action(kit.sign(rt, who, "case.read", args)), **fields}
            with pytest.raises(Violation) as caught:
                rt.state.check(forged, rt.now())
            assert caught.value.code == code, (who, args)
        for who in ("rev", "cust1"):
            good = {**entries.action(kit.sign(rt, who, "case.read", {"case": case[:10]})),
                    **released}  # fmt: skip
            assert rt.state.check(good, rt.now())["case"] == case


def test_the_history_audits_and_the_state_cache_keeps_the_cases(world: Any) -> None:
    kit = Kit()
    case = _ids(world)[3]
    kit.call(world.ws, set_case, "rev", "case.set", case=case, state="confirmed")
    kit.call(world.ws, set_case, "rev", "case.set", case=case, state="recovered",
             amount="12.34", note="repaid")  # fmt: skip
    with opened(world.ws) as rt:
        lines = [json.loads(d) for _, d in rt.ledger.entries(0, rt.ledger.size())]
        state = rt.state
    audited, result = audit_entries(lines)
    assert result.violation is None and result.unfinished == ()
    assert result.entries == len(lines)
    assert audited.cases[case].state == "recovered" and audited.cases[case].recovered == "12.34"
    assert set(audited.cases) == set(state.cases)
    again = state_from_document(json.loads(json.dumps(state_document(state))))
    assert again.cases == state.cases and again.monitored == state.monitored
    assert state.monitored[AGREEMENT][0] < len(lines)


def test_a_case_store_that_cannot_be_written_fails_the_run_on_the_ledger(
    world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from custodiet.cases import monitor as monitoring
    from custodiet.cases import store
    from custodiet.errors import SystemFailure

    with opened(world.ws) as rt:
        opened_before = dict(rt.state.cases)
    monkeypatch.setattr(monitoring, "changed", lambda *_: None)  # a full run, as after new data

    def broken(path: Any, data: bytes) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store, "write_private", broken)
    monkeypatch.setattr(monitoring, "_new_cases", lambda *_: [_fake_case()])
    with pytest.raises(SystemFailure) as caught:
        Kit().call(world.ws, monitor, "rev", "monitor", agreement=AGREEMENT)
    assert caught.value.code == "CUST746"
    with opened(world.ws) as rt:
        last = json.loads(rt.ledger.entry(rt.ledger.size() - 1))
        assert last["action"] == "refusal" and last["code"] == "CUST746"
        assert last["intent"] not in rt.state.intents  # the run is closed, not unfinished
        assert rt.state.cases == opened_before


def _fake_case() -> Any:
    from decimal import Decimal

    from custodiet.cases.model import CaseFacts

    return CaseFacts("e" * 64, "paid_after_death", "payments", "P1", "tok", Decimal(1), "RSI",
                     "2024-01", {})  # fmt: skip
