"""The attack catalogue (tests/fixtures/attacks.yaml) run through check_query.

Refused attacks must be refused with the catalogued rule; harmless ones must pass the checker and
their executed SQL must read only granted columns. The executor's end-to-end suite runs the same
catalogue through the CLI and asserts the ledger entries.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlglot import exp

from custodiet.agreements.model import Mode
from custodiet.errors import RefusedError
from custodiet.gateway.check import check_query
from custodiet.gateway.parse import parse_statement
from tests.unit.gateway.checker_policy import DENIED, sample_policy

CATALOGUE = Path(__file__).parents[2] / "fixtures" / "attacks.yaml"
ATTACKS: list[dict[str, Any]] = yaml.safe_load(CATALOGUE.read_text())
FIELDS = {"id", "class", "mode", "sql", "expect", "why"}


def test_catalogue_is_well_formed_and_covers_every_sql_class() -> None:
    assert len(ATTACKS) >= 60
    assert len({a["id"] for a in ATTACKS}) == len(ATTACKS)
    for attack in ATTACKS:
        assert attack.keys() >= FIELDS, attack.get("id")
        assert attack["class"] in {"A", "B", "C", "D", "G"}
        assert attack["mode"] in {m.value for m in Mode}
        assert attack["expect"] in {"refused", "harmless", "suppressed"}
        assert attack["expect"] != "suppressed" or attack["mode"] == "aggregate", attack["id"]
        assert ("rule" in attack) == (attack["expect"] == "refused"), attack["id"]
        assert attack.get("rule", "x").strip(), f"{attack['id']}: empty rule substring"
    classes = Counter(a["class"] for a in ATTACKS)
    assert all(classes[c] >= 3 for c in "ABCDG")


@pytest.mark.parametrize("attack", ATTACKS, ids=[a["id"] for a in ATTACKS])
def test_attack_is_defeated_by_the_checker(attack: dict[str, Any]) -> None:
    policy = sample_policy(Mode(attack["mode"]))
    if attack["expect"] == "refused":
        with pytest.raises(RefusedError) as caught:
            check_query(attack["sql"], policy)
        assert attack["rule"] in caught.value.rule
        assert caught.value.message.startswith("refused: ")
        assert "\n" not in caught.value.rule
        return
    checked = check_query(attack["sql"], policy)
    executed = parse_statement(checked.executed)
    assert not {c.name for c in executed.find_all(exp.Column)} & {d.split(".")[1] for d in DENIED}
    assert all(column not in DENIED for column in checked.columns)
    assert checked.executed.endswith(f"LIMIT {policy.max_rows + 1}")
    if attack["mode"] == "aggregate":  # every dataset table's persons are counted for release
        tables = [t.alias_or_name for t in executed.find_all(exp.Table)]
        counted = {
            c.table
            for h in checked.hidden
            for c in executed.selects[executed.named_selects.index(h.name)].find_all(exp.Column)
            if c.name in {"payee_tin", "ssn"}
        }
        assert counted == set(tables) and checked.hidden
