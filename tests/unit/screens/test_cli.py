"""`custodiet screen list | run` as a user runs them."""

from __future__ import annotations

import json

import pytest

from custodiet.screens import SCREENS
from tests.conftest import run_cli
from tests.unit.screens.tinydata import EXPECTED
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
        {"date_of_death": "2024-03-15", "payment_date": "2024-05-03", "months_after_death": 2}
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
