"""Match categories through the gateway equal the synthetic truth's, for every death case."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from custodiet.principals import Role
from custodiet.screens import SCREENS
from custodiet.screens.model import Report
from custodiet.synth import generate
from tests.kit import Kit
from tests.unit.screens.world import CUSTODIANS, World

DEATH_SCREENS = ("paid_after_death", "refund_to_deceased")


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> tuple[World, Path]:
    root = tmp_path_factory.mktemp("match-synth")
    data = root / "data"
    generate(data, 3000, 11, "stress", chunk_people=2000)
    kit = Kit(root)
    ws = kit.init(root / "ws", custodians=CUSTODIANS, k=2)
    kit.add_principal(ws, "rev", Role.REVIEWER, by=("cust-a",))
    datasets = {
        name: kit.add_dataset(ws, name, data / f"{name}.parquet", {}, by=("cust-a",)).dataset
        for name in ("beneficiaries", "payments", "deaths", "tax_refunds")
    }
    world = World(root, ws, datasets, kit)
    world.grant("deaths", screens=[SCREENS[n] for n in (*DEATH_SCREENS, "implausible_age")])
    return world, data


@pytest.fixture(scope="module")
def report(synth: tuple[World, Path]) -> Report:
    return synth[0].run_screens("deaths", names=DEATH_SCREENS)


def test_every_death_case_carries_the_truths_match_category(
    synth: tuple[World, Path], report: Report
) -> None:
    truth = pq.read_table(synth[1] / "truth.parquet").to_pylist()
    expected = {
        (row["pattern"], row["record_id"]): row["match"]
        for row in truth
        if row["pattern"] in DEATH_SCREENS
    }
    found = {
        (f.pattern, c.record_id): f.evidence["match"] for c in report.cases for f in c.findings
    }
    assert found == expected
    assert set(expected.values()) == {"exact", "ssn_name", "ssn_dob", "ssn_only"}
