"""Screens run only under an agreement granting what they read; else it names what is missing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from custodiet.agreements.model import Agreement
from custodiet.errors import InputError, RefusedError
from custodiet.screens import SCREENS, select_screens
from custodiet.screens.grants import needed_grants
from custodiet.screens.needs import refusal_for
from tests.conftest import run_cli
from tests.unit.screens.world import World, build_world


def agreement(edit: Callable[[dict[str, Any]], None] | None = None) -> Agreement:
    document: dict[str, Any] = {
        "id": "screens",
        "purpose": "screens",
        "reviewer": "rev",
        "expires": "2099-01-01",
        "datasets": {
            name: {"columns": {c: t.value for c, t in columns.items()}}
            for name, columns in needed_grants(SCREENS.values()).items()
        },
    }
    if edit is not None:
        edit(document)
    return Agreement.model_validate(document)


@pytest.mark.parametrize("name", list(SCREENS))
def test_agreement_built_from_the_needs_grants_every_screen(name: str) -> None:
    assert refusal_for(SCREENS[name], agreement(), 1) is None


def test_refuses_a_screen_whose_dataset_is_not_granted() -> None:
    refusal = refusal_for(
        SCREENS["paid_after_death"], agreement(lambda d: d["datasets"].pop("deaths")), 3
    )
    assert refusal is not None
    assert refusal.rule == (
        "screen 'paid_after_death' needs dataset 'deaths', which agreement 'screens' (v3) "
        "does not grant"
    )
    assert refusal.hint is not None
    assert "deaths.ssn: pseudonymize" in refusal.hint
    assert "deaths.date_of_death: allow" in refusal.hint


def test_refuses_a_generalized_date_the_rule_needs_exact() -> None:
    def month_only(document: dict[str, Any]) -> None:
        document["datasets"]["payments"]["columns"]["payment_date"] = "generalize:month"

    refusal = refusal_for(SCREENS["paid_after_death"], agreement(month_only), 1)
    assert refusal is not None
    assert "needs column 'payments.payment_date' (allow)" in refusal.rule


def test_refuses_a_denied_join_key() -> None:
    def deny_tin(document: dict[str, Any]) -> None:
        document["datasets"]["exclusions"]["columns"]["tin"] = "deny"

    refusal = refusal_for(SCREENS["excluded_payee"], agreement(deny_tin), 1)
    assert refusal is not None
    assert "'exclusions.tin' (pseudonymize)" in refusal.rule


def test_refuses_every_screen_under_an_aggregate_agreement() -> None:
    aggregate = agreement(lambda d: d.update(mode="aggregate"))
    for screen in SCREENS.values():
        refusal = refusal_for(screen, aggregate, 1)
        assert refusal is not None and "is aggregate" in refusal.rule


def test_unknown_screen_name_is_bad_input_naming_the_choices() -> None:
    with pytest.raises(InputError) as raised:
        select_screens(["paid_after_birth"])
    assert "paid_after_birth" in raised.value.message
    assert raised.value.hint is not None and "paid_after_death" in raised.value.hint


def test_selection_keeps_registry_order_without_repeats() -> None:
    chosen = select_screens(["refund_to_deceased", "paid_after_death", "refund_to_deceased"])
    assert [s.name for s in chosen] == ["paid_after_death", "refund_to_deceased"]


# ---- under a real agreement that lacks the deaths dataset ----------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    built = build_world(tmp_path_factory.mktemp("needs"))
    built.grant("no-deaths", edit=lambda d: d["datasets"].pop("deaths"))
    return built


DEATH_SCREENS = {
    "paid_after_death",
    "implausible_age",
    "refund_to_deceased",
    "other_agency_after_death",
}


def test_screens_needing_deaths_are_refused_and_the_others_run(world: World) -> None:
    report = world.run_screens("no-deaths", "rev")
    assert {r.screen for r in report.refusals} == DEATH_SCREENS
    assert {s.screen for s in report.summaries} == set(SCREENS) - DEATH_SCREENS
    assert all("needs dataset 'deaths'" in r.rule for r in report.refusals)
    entries = world.ledger_entries()
    for refusal in report.refusals:
        entry = entries[refusal.ledger_index]
        assert entry["action"] == "refusal"
        assert entry["screen"] == refusal.screen
        assert entry["reason"] == refusal.rule
        assert entry["agreement"] == "no-deaths"


def test_a_principal_who_is_not_the_reviewer_is_refused_on_the_ledger(world: World) -> None:
    before = len(world.ledger_entries())
    with pytest.raises(RefusedError) as raised:
        world.run_screens("no-deaths", "rev-2")
    assert "not the reviewer" in raised.value.rule
    entries = world.ledger_entries()[before:]
    assert [e["action"] for e in entries] == ["refusal"]
    assert entries[0]["actor"] == "rev-2"


def test_cli_exits_3_with_a_refused_line_naming_what_to_grant(world: World) -> None:
    result = run_cli(
        "screen", "run", "paid_after_death", "duplicate_payment",
        "--agreement", "no-deaths", *world.as_("rev"), "--workspace", str(world.ws.root),
    )  # fmt: skip
    assert result.status == 3
    refused = [line for line in result.stderr.splitlines() if line.startswith("refused:")]
    assert refused == [
        "refused: screen 'paid_after_death' needs dataset 'deaths', which agreement "
        "'no-deaths' (v1) does not grant"
    ]
    assert "duplicate_payment" in result.stdout
    assert "Traceback" not in result.stderr
