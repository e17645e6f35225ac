"""Thresholds set by the agreement (``screens:``): validated, and the screens run with them."""

from __future__ import annotations

from typing import Any

import pytest

from custodiet.agreements.load import parse_agreement
from custodiet.errors import InputError
from custodiet.screens import SCREENS
from custodiet.screens.model import Report
from tests.unit.screens.tinydata import EXPECTED
from tests.unit.screens.world import World, build_world

SETTINGS = {
    "shared_account": {"payees": 2},
    "implausible_age": {"years": 114},
    "paid_after_death": {"months_behind": 0},
    "other_agency_after_death": {"grace_days": 1},
    "amount_outlier": {"z": 20, "min_payments": 5},
}


def _set(document: dict[str, Any]) -> None:
    document["screens"] = SETTINGS


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    built = build_world(tmp_path_factory.mktemp("settings"))
    built.grant("tuned", edit=_set)
    built.grant("defaults")
    return built


@pytest.fixture(scope="module")
def tuned(world: World) -> Report:
    return world.run_screens("tuned", names=list(SETTINGS))


def flagged(report: Report, pattern: str) -> set[str]:
    return {c.record_id for c in report.cases if pattern in c.patterns}


def test_agreement_without_screens_field_keeps_todays_thresholds(world: World) -> None:
    report = world.run_screens("defaults", names=list(SETTINGS))
    for name in SETTINGS:
        assert flagged(report, name) == EXPECTED[name]


def test_fewer_payees_per_account_flags_the_account_of_three(tuned: Report) -> None:
    found = flagged(tuned, "shared_account")
    assert found == EXPECTED["shared_account"] | {"P310", "P311", "P312", "R311"}
    assert not {"P320", "P321"} & found  # a couple is still two payees


def test_a_lower_age_flags_the_day_before_the_115th_birthday(tuned: Report) -> None:
    assert flagged(tuned, "implausible_age") == {"P501", "P502"}


def test_paying_in_arrears_zero_months_flags_the_month_of_death(tuned: Report) -> None:
    found = flagged(tuned, "paid_after_death")
    assert {"P102", "P121", "P131", "P141"} <= found  # paid in the month of death
    assert "P101" not in found  # the month before the death
    assert EXPECTED["paid_after_death"] <= found


def test_a_grace_period_spares_the_day_after_death(tuned: Report) -> None:
    assert flagged(tuned, "other_agency_after_death") == set()


def test_outlier_thresholds_are_the_agreements(tuned: Report) -> None:
    # five payments now judge P824; the default six did not
    assert flagged(tuned, "amount_outlier") == {"P806", "P824"}
    assert evidence_of(tuned, "P824")["robust_z"] == pytest.approx(21.14)  # ln(7.5) / ln(1.1)
    assert evidence_of(tuned, "P806")["payments_in_program"] == 7


def evidence_of(report: Report, record_id: str) -> dict[str, object]:
    case = next(c for c in report.cases if c.record_id == record_id)
    return dict(next(f.evidence for f in case.findings if f.pattern == "amount_outlier"))


def test_the_ledger_holds_the_query_with_the_agreements_thresholds(
    world: World, tuned: Report
) -> None:
    entries = world.ledger_entries()
    by_screen = {s.screen: entries[s.ledger_index]["sql"] for s in tuned.summaries}
    assert "HAVING count(DISTINCT payee) > 2" in by_screen["shared_account"]
    assert "a.age >= 114" in by_screen["implausible_age"]
    assert ">= 0" in by_screen["paid_after_death"]


BASE = """id: a
purpose: p
reviewer: rev
expires: 2099-01-01
datasets:
  payments:
    columns: {amount: allow}
"""


@pytest.mark.parametrize(
    ("screens", "field"),
    [
        ("  shared_account: {payees: 0}", "screens.shared_account.payees"),
        ("  implausible_age: {years: 200}", "screens.implausible_age.years"),
        ("  paid_after_death: {months_behind: -1}", "screens.paid_after_death.months_behind"),
        ("  amount_outlier: {z: .nan}", "screens.amount_outlier.z"),
        ("  shared_account: {accounts: 3}", "screens.shared_account.accounts"),
        ("  no_such_screen: {x: 1}", "screens.no_such_screen"),
    ],
)
def test_bad_thresholds_are_input_errors_naming_line_and_field(screens: str, field: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_agreement(BASE + "screens:\n" + screens + "\n", "a.yaml")
    assert caught.value.code == "CUST243"
    assert f"a.yaml:9: {field}:" in caught.value.message


def test_every_screen_with_thresholds_names_them_in_its_rule() -> None:
    for name in ("shared_account", "implausible_age", "paid_after_death"):
        assert "{" in SCREENS[name].rule and "{" not in SCREENS[name].default_rule


def test_agreement_show_prints_the_thresholds_for_the_custodians(world: World) -> None:
    from tests.conftest import run_cli

    result = run_cli("agreement", "show", "tuned", "--workspace", str(world.ws.root))
    assert result.status == 0, result.stderr
    assert "screen thresholds: {" in result.stdout
    assert '"shared_account": {"payees": 2}' in result.stdout
