"""`custodiet screen list | run` as a user runs them."""

from __future__ import annotations

import json

import pytest

from custodiet.screens import SCREENS
from tests.conftest import run_cli
from tests.unit.screens.tinydata import EXPECTED, MATCH
from tests.unit.screens.world import World, build_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    built = build_world(tmp_path_factory.mktemp("cli"))
    built.grant("all-screens")
    return built


def test_list_names_every_screen_and_what_it_needs() -> None:
    result = run_cli("screen", "list")
    assert result.status == 0, result.stderr
    for name in SCREENS:
        assert name in result.stdout
    assert "payments.payee_tin: pseudonymize" in result.stdout


def test_run_json_carries_cases_evidence_and_summary(world: World) -> None:
    result = run_cli(
        "screen", "run", "--agreement", "all-screens", *world.as_("rev"), "--format", "json",
        "--workspace", str(world.ws.root),
    )  # fmt: skip
    assert result.status == 0, result.stderr
    document = json.loads(result.stdout)
    flagged: dict[str, set[str]] = {}
    for case in document["cases"]:
        for pattern in case["patterns"]:
            flagged.setdefault(pattern, set()).add(case["record_id"])
    assert flagged == EXPECTED
    p105 = next(c for c in document["cases"] if c["record_id"] == "P105")
    assert p105["amount_at_risk"] == 1200.0
    assert p105["evidence"]["paid_after_death"] == [
        {
            "date_of_death": "2024-03-15",
            "payment_date": "2024-05-03",
            "months_after_death": 2,
            "match": "exact",
        }
    ]
    summary = {s["screen"]: s for s in document["summary"]}
    assert {name: s["cases"] for name, s in summary.items()} == {
        name: len(ids) for name, ids in EXPECTED.items()
    }
    assert document["total"]["cases"] == len(document["cases"])
    assert document["refused"] == []


def test_run_unknown_screen_is_bad_usage(world: World) -> None:
    result = run_cli(
        "screen", "run", "no_such_screen", "--agreement", "all-screens", *world.as_("rev"),
        "--workspace", str(world.ws.root),
    )  # fmt: skip
    assert result.status == 2
    assert "unknown screen 'no_such_screen'" in result.stderr
    assert "Traceback" not in result.stderr


def _run_json(world: World, *args: str) -> dict[str, set[str]]:
    result = run_cli(
        "screen", "run", "--agreement", "all-screens", *world.as_("rev"), "--format", "json",
        "--workspace", str(world.ws.root), *args,
    )  # fmt: skip
    assert result.status == 0, result.stderr
    flagged: dict[str, set[str]] = {}
    for case in json.loads(result.stdout)["cases"]:
        for pattern in case["patterns"]:
            flagged.setdefault(pattern, set()).add(case["record_id"])
    return flagged


def test_match_keeps_only_the_death_matches_of_those_categories(world: World) -> None:
    flagged = _run_json(world, "--match", "ssn_name, ssn_only")
    kept = {r for r, category in MATCH.items() if category in ("ssn_name", "ssn_only")}
    assert flagged["paid_after_death"] | flagged["refund_to_deceased"] == kept - {"P702"}
    assert flagged["other_agency_after_death"] == {"P702"}
    assert flagged["duplicate_payment"] == EXPECTED["duplicate_payment"]  # no match: untouched
    entries = world.ledger_entries()
    query = next(e for e in reversed(entries) if e.get("screen") == "paid_after_death")
    assert "IN ('ssn_name', 'ssn_only')" in query["sql"]  # the filter ran in the recorded query


def test_an_unknown_match_category_is_bad_input_on_the_ledger(world: World) -> None:
    result = run_cli(
        "screen", "run", "--agreement", "all-screens", *world.as_("rev"), "--match", "fuzzy",
        "--workspace", str(world.ws.root),
    )  # fmt: skip
    assert result.status == 2
    assert "unknown match category 'fuzzy'" in result.stderr and "ssn_only" in result.stderr
    last = world.ledger_entries()[-1]
    assert last["action"] == "refusal" and last["code"] == "CUST720"
