"""The replay rules of data that grows, attacked with entries the services would never build:
an update that re-lists held files or changes the schema, an extension of an agreement that
does not follow, from a version the projection does not hold, or with unregistered files; and a
new file swapped between its update and the extension, which fails on the ledger."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from custodiet import entries
from custodiet.catalog.registry import file_sha256, update_dataset
from custodiet.errors import SystemFailure
from custodiet.gateway.growth import extend_following
from custodiet.ledger.replay import Violation, audit_entries
from custodiet.runtime import opened
from custodiet.workspace import Workspace
from tests.catalog_data import (
    TABLES,
    kit_for,
    ledger_entries,
    table_rows,
    workspace_with_people,
    write_agreement,
    write_table,
)

FOLLOWS, STAYS = "ssa-follows", "ssa-stays"


def _month(data: Path, month: int) -> Path:
    folder = data / f"month=2024-{month:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    rows = table_rows("payments", 40, seed=month)
    return write_table(folder / "payments.parquet", TABLES["payments"], rows)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("growth-rules")
    ws = workspace_with_people(root / "ws")
    kit = kit_for(ws)
    _month(root / "data", 1)
    deaths = write_table(root / "deaths.parquet", TABLES["deaths"], table_rows("deaths", 40))
    kit.add_dataset(ws, "payments", root / "data", by=("alice",))
    kit.add_dataset(ws, "deaths", deaths, by=("alice",))
    rows = "    rows: \"agency = 'SSA'\"\n"
    for agreement, grant in ((FOLLOWS, rows + "    follow: true\n"), (STAYS, rows)):
        path = write_agreement(
            root / f"{agreement}.yaml",
            **{"id: ssa-deceased-payees": f"id: {agreement}", rows: grant},
        )
        kit.apply(ws, path, by="bob")
        kit.approve_all(ws, agreement, by=("alice", "carol"))
    return root


@pytest.fixture
def world(template: Path, tmp_path: Path) -> tuple[Workspace, Path]:
    """A copy of the template (its data at the same paths: the digests name them)."""
    shutil.copytree(template / "ws", tmp_path / "ws")
    ws = Workspace(tmp_path / "ws")
    return ws, template


def _updated(ws: Workspace, data: Path, month: int) -> Path:
    """Month ``month`` added by alice's update, no projection extended."""
    new = _month(data, month)
    kit = kit_for(ws)
    kit.call(ws, update_dataset, "alice", "dataset.update", name="payments", path=str(new))
    return new


def _extension(ws: Workspace, agreement: str, **changes: Any) -> dict[str, Any]:
    update = next(e for e in reversed(ledger_entries(ws)) if e["action"] == "dataset.update")
    about = {
        "agreement": agreement, "agreement_version": 1, "dataset": "payments",
        "from_version": 1, "to_version": 2, "files": update["files"],
        "sources": {"payments": update["file_sha256"]}, "decision": "allowed",
    }  # fmt: skip
    return entries.system("projection.extend", **{**about, **changes})


def _violation(ws: Workspace, entry: dict[str, Any]) -> str:
    with opened(ws) as rt, pytest.raises(Violation) as caught:
        rt.state.check(entry, rt.now())
    return caught.value.code


def test_an_honest_extension_passes_and_the_forged_ones_break_rules(
    world: tuple[Workspace, Path], tmp_path: Path
) -> None:
    ws, _root = world
    data = tmp_path / "data2"
    new = _updated(ws, data, 2)
    with opened(ws) as rt:
        rt.state.check(_extension(ws, FOLLOWS), rt.now())  # what the vault writes: allowed
    assert _violation(ws, _extension(ws, STAYS)) == "CUST706"
    assert _violation(ws, _extension(ws, FOLLOWS, from_version=2)) == "CUST707"
    assert _violation(ws, _extension(ws, FOLLOWS, to_version=3)) == "CUST707"
    other = [{"path": str(new), "sha256": "0" * 64}]
    assert _violation(ws, _extension(ws, FOLLOWS, files=other)) == "CUST526"
    assert _violation(ws, _extension(ws, FOLLOWS, sources={"payments": "0" * 64})) == "CUST526"
    assert file_sha256(new)  # the new file is there: the rules, not the disk, refused


def _forged_update(ws: Workspace, **fields: Any) -> dict[str, Any]:
    kit = kit_for(ws)
    with opened(ws) as rt:
        signed = kit.sign(rt, "alice", "dataset.update", {"name": "payments", "path": "/x"})
        registered = rt.state.datasets["payments"]["schema"]
    schema = [{"name": c["name"], "sql_type": c["sql_type"]} for c in registered]
    return entries.action(signed, **{"dataset": "payments", "rows": 1, "schema": schema, **fields})


def test_an_update_may_not_relist_a_held_file_or_change_a_granted_column(
    world: tuple[Workspace, Path],
) -> None:
    ws, root = world
    held = root / "data" / "month=2024-01" / "payments.parquet"
    relisted = [{"path": str(held.resolve()), "sha256": file_sha256(held)}]
    assert _violation(ws, _forged_update(ws, files=relisted)) == "CUST703"
    fresh = [{"path": "/elsewhere/payments.parquet", "sha256": "1" * 64}]
    registered = _forged_update(ws, files=fresh)["schema"]
    wider = [*registered, {"name": "memo", "sql_type": "VARCHAR"}]
    # an added column the entry does not classify, or classifies with no known class
    assert _violation(ws, _forged_update(ws, files=fresh, schema=wider)) == "CUST514"
    memo = {"name": "memo", "sql_type": "VARCHAR", "identifier_kind": None}
    unclassed = [{**memo, "column_class": "public"}]
    forged = _forged_update(ws, files=fresh, schema=wider, columns_added=unclassed)
    assert _violation(ws, forged) == "CUST514"
    # a column with identifiers by value classified below identifier
    lowered = [{**memo, "column_class": "category"}]
    forged = _forged_update(ws, files=fresh, schema=wider, columns_added=lowered,
                            identifiers_by_value=["memo"])  # fmt: skip
    assert _violation(ws, forged) == "CUST519"
    # a granted column dropped, or retyped
    dropped = [c for c in registered if c["name"] != "amount"]
    assert _violation(ws, _forged_update(ws, files=fresh, schema=dropped)) == "CUST702"
    retyped = [{**c, "sql_type": "VARCHAR"} if c["name"] == "amount" else c for c in registered]
    assert _violation(ws, _forged_update(ws, files=fresh, schema=retyped)) == "CUST702"
    with opened(ws) as rt:  # an added, classified column and a dropped ungranted one are fine
        kept = [c for c in wider if c["name"] != "method"]
        added = [{**memo, "column_class": "category"}]
        forged = _forged_update(ws, files=fresh, schema=kept, columns_added=added)
        assert rt.state.check(forged, rt.now())["version"] == 2
    with opened(ws) as rt:  # the same entry with the registered schema is allowed
        filled = rt.state.check(_forged_update(ws, files=fresh), rt.now())
    assert filled["version"] == 2


def test_a_new_file_swapped_before_the_extension_fails_on_the_ledger(
    world: tuple[Workspace, Path], tmp_path: Path
) -> None:
    ws, _ = world
    new = _updated(ws, tmp_path / "data2", 2)
    write_table(new, TABLES["payments"], table_rows("payments", 40, seed=99))  # swapped
    with opened(ws) as rt, pytest.raises(SystemFailure) as caught:
        extend_following(rt, "payments")
    assert caught.value.code == "CUST536"
    last = ledger_entries(ws)[-1]
    assert (last["action"], last["decision"], last["agreement"]) == (
        "projection.extend",
        "failed",
        FOLLOWS,
    )
    state, result = audit_entries(ledger_entries(ws))
    assert result.violation is None
    before = state.datasets["payments"]["versions"][0]["sha256"]
    assert state.projections[f"{FOLLOWS}@1"]["payments"] == before  # still version 1
