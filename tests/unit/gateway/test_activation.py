"""Activation builds the projection on the custodian side, from re-hashed registered sources.

The approval that makes a version active builds its projection at once; a source whose bytes
no longer match the digest it was registered with stops the build (and the failure is on the
ledger), and with no projection built from registered sources no access is authorized.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from custodiet.errors import RefusedError, SystemFailure
from custodiet.gateway.activation import rebuild
from custodiet.principals import Role
from custodiet.workspace import Workspace
from tests.gateway_data import agreement_document, run_query, write_canonical
from tests.kit import Kit

ID = "ssa-deceased"
KIT = Kit()


def entries(ws: Workspace) -> list[dict[str, Any]]:
    ledger = ws.ledger()
    try:
        return [json.loads(data) for _, data in ledger.entries()]
    finally:
        ledger.close()


@pytest.fixture
def proposed(tmp_path: Path) -> tuple[Workspace, dict[str, Path]]:
    """Custodians cust1 and cust2, reviewer rev, both datasets, the agreement proposed by rev."""
    ws = KIT.init(tmp_path / "ws", custodians=("cust1", "cust2"))
    KIT.add_principal(ws, "rev", Role.REVIEWER, by=("cust1",))
    data = write_canonical(tmp_path / "data", people=20)
    for name, path in data.items():
        KIT.add_dataset(ws, name, path, by=("cust1",))
    path = tmp_path / "a.yaml"
    path.write_text(yaml.safe_dump(agreement_document(ID)))
    KIT.apply(ws, path, by="rev")
    return ws, data


def test_the_activating_approval_builds_and_records_the_projection(proposed) -> None:
    ws, _ = proposed
    first = KIT.approve(ws, ID, "cust1")
    assert first.projection is None and not list(ws.projections_dir.glob("*.duckdb"))
    second = KIT.approve(ws, ID, "cust2")
    assert second.status.active and second.projection is not None
    assert second.projection.exists()
    build = entries(ws)[-1]
    assert (build["action"], build["decision"], build["actor"]) == (
        "projection.build", "allowed", "custodiet",
    )  # fmt: skip
    registered = KIT.state(ws).datasets
    assert build["sources"] == {n: registered[n]["sha256"] for n in ("payments", "deaths")}
    assert run_query(ws, ID, "rev", "SELECT count(*) AS n FROM deaths").rows


def test_a_changed_source_stops_the_build_and_no_access_is_authorized(proposed) -> None:
    ws, data = proposed
    original = data["deaths"].read_bytes()
    shutil.copyfile(data["payments"], data["deaths"])  # other bytes behind a registered name
    KIT.approve(ws, ID, "cust1")
    with pytest.raises(SystemFailure) as caught:
        KIT.approve(ws, ID, "cust2")
    assert caught.value.code == "CUST536"
    failed = entries(ws)[-1]
    assert (failed["action"], failed["decision"], failed["code"]) == (
        "projection.build", "failed", "CUST536",
    )  # fmt: skip
    assert KIT.state(ws).agreements[ID].latest.approved  # approved, but nothing built
    with pytest.raises(RefusedError) as refused:
        run_query(ws, ID, "rev", "SELECT count(*) AS n FROM deaths")
    assert refused.value.code == "CUST527"
    with pytest.raises(SystemFailure):
        KIT.call(ws, rebuild, "cust1", "agreement.build", agreement=ID)
    data["deaths"].write_bytes(original)  # the registered bytes are back: a custodian rebuilds
    KIT.call(ws, rebuild, "cust1", "agreement.build", agreement=ID)
    assert entries(ws)[-1]["actor"] == "cust1"
    assert run_query(ws, ID, "rev", "SELECT count(*) AS n FROM deaths").rows


def test_only_a_custodian_rebuilds(proposed) -> None:
    ws, _ = proposed
    KIT.approve_all(ws, ID, by=("cust1", "cust2"))
    with pytest.raises(RefusedError) as caught:
        KIT.call(ws, rebuild, "rev", "agreement.build", agreement=ID)
    assert caught.value.code == "CUST318"
