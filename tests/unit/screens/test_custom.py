"""Custom screens in the agreement: checked at apply, run through the checker like any query."""

from __future__ import annotations

from typing import Any

import pytest

from custodiet.agreements.load import parse_agreement
from custodiet.agreements.validate import validate_agreement
from custodiet.errors import InputError
from custodiet.screens.model import Report
from tests.unit.screens.tinydata import scenario
from tests.unit.screens.world import World, build_world

BIG = {
    "name": "big_payment",
    "rule": "a payment of 4,000 or more",
    "sql": "SELECT 'payments' AS record_table, payment_id AS record_id, payee_tin AS payee, "
    "amount, payment_date FROM payments WHERE amount >= 4000",
}
NAMED = {  # reads a column the agreement denies: the checker refuses it on every run
    "name": "named_payee",
    "rule": "a payee called Given1",
    "sql": "SELECT 'payments' AS record_table, payment_id AS record_id, payee_tin AS payee, "
    "amount FROM payments WHERE payee_name LIKE 'given1 %'",
}


def _custom(document: dict[str, Any]) -> None:
    document["custom_screens"] = [BIG, NAMED]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    built = build_world(tmp_path_factory.mktemp("custom"))
    built.grant("custom", edit=_custom)
    return built


@pytest.fixture(scope="module")
def report(world: World) -> Report:
    return world.run_screens("custom", names=["big_payment", "named_payee", "duplicate_payment"])


def test_a_custom_screen_runs_under_the_agreement_and_its_query_is_on_the_ledger(
    world: World, report: Report
) -> None:
    big = {str(r["payment_id"]) for r in scenario().payments if float(str(r["amount"])) >= 4000}
    found = {c.record_id for c in report.cases if "big_payment" in c.patterns}
    assert found == big and big
    summary = next(s for s in report.summaries if s.screen == "big_payment")
    entry = world.ledger_entries()[summary.ledger_index]
    assert entry["action"] == "query" and entry["screen"] == "big_payment"
    assert entry["sql"] == BIG["sql"]
    assert {"duplicate_payment", "big_payment"} == {s.screen for s in report.summaries}


def test_a_custom_screen_reading_a_denied_column_is_refused_on_the_ledger(
    world: World, report: Report
) -> None:
    (refusal,) = report.refusals
    assert refusal.screen == "named_payee"
    assert "payee_name" in refusal.rule and "denied" in refusal.rule
    entry = world.ledger_entries()[refusal.ledger_index]
    assert entry["action"] == "refusal" and entry["screen"] == "named_payee"


def test_payees_of_a_custom_screen_are_tokens(report: Report) -> None:
    raw = {str(r["payee_tin"]) for r in scenario().payments}
    payees = {c.payee for c in report.cases if "big_payment" in c.patterns}
    assert payees and not payees & raw


BASE = """id: a
purpose: p
reviewer: rev
expires: 2099-01-01
datasets:
  payments:
    columns: {amount: allow, payment_id: allow, payee_tin: pseudonymize}
custom_screens:
  - name: s
    rule: r
"""


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("SELECT payment_id AS record_id FROM payments", "as its first four columns"),
        ("SELECT * FROM payments", "no *"),
        (
            "SELECT 'x' AS record_table, 1 AS record_id, 2 AS payee, 3 AS amount FROM deaths",
            "reads table 'deaths'",
        ),
        ("DELETE FROM payments", "exactly one SELECT"),
        ("SELECT (", "not valid SQL"),
    ],
)
def test_apply_refuses_a_custom_screen_that_cannot_be_a_screen(
    world: World, sql: str, problem: str
) -> None:
    agreement, marks = parse_agreement(BASE + f"    sql: {sql!r}\n", "a.yaml")
    with pytest.raises(InputError) as caught:
        validate_agreement(agreement, world.datasets, marks)
    assert caught.value.code == "CUST722"
    assert "a.yaml:11: custom_screens.0.sql:" in caught.value.message
    assert problem in caught.value.message


def test_a_custom_screen_named_like_a_built_in_is_refused_at_run(world: World) -> None:
    shadow = {**BIG, "name": "shared_account"}
    world.grant("shadow", edit=lambda d: d.update(custom_screens=[shadow]))
    with pytest.raises(InputError) as caught:
        world.run_screens("shadow")
    assert caught.value.code == "CUST721"
    assert world.ledger_entries()[-1]["code"] == "CUST721"


def test_agreement_show_prints_custom_screens_for_the_custodians(world: World) -> None:
    from tests.conftest import run_cli

    result = run_cli("agreement", "show", "custom", "--workspace", str(world.ws.root))
    assert result.status == 0, result.stderr
    assert "custom screen big_payment: a payment of 4,000 or more" in result.stdout
    assert "WHERE amount >= 4000" in result.stdout
