from __future__ import annotations

from pathlib import Path

import pytest

from custodiet import state
from custodiet.errors import InputError, SystemFailure
from custodiet.principals import Role, add_principal, list_principals
from custodiet.state import SCHEMA_VERSION, connect, register_schema
from custodiet.workspace import Workspace, init_workspace


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return init_workspace(tmp_path / "ws")


def test_connect_sets_wal_foreign_keys_and_schema_version(ws: Workspace) -> None:
    con = connect(ws)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    rows = con.execute("SELECT version FROM schema_version").fetchall()
    assert [tuple(r) for r in rows] == [(SCHEMA_VERSION,)]
    con.close()


def test_schema_creation_is_idempotent(ws: Workspace) -> None:
    connect(ws).close()
    con = connect(ws)
    assert con.execute("SELECT count(*) FROM schema_version").fetchone()[0] == 1
    con.close()


def test_registered_tables_are_created_on_connect(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state, "_extra_schema", [])
    register_schema("CREATE TABLE IF NOT EXISTS test_extra_rows (id INTEGER PRIMARY KEY)")
    con = connect(ws)
    con.execute("INSERT INTO test_extra_rows (id) VALUES (1)")
    assert con.execute("SELECT count(*) FROM test_extra_rows").fetchone()[0] == 1
    con.close()


def test_registration_requires_if_not_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state, "_extra_schema", [])
    with pytest.raises(ValueError, match="IF NOT EXISTS"):
        register_schema("CREATE TABLE test_plain (id INTEGER)")


def test_connect_outside_a_workspace_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a custodiet workspace"):
        connect(Workspace(tmp_path))


class FailingLedger:
    def append(self, entry: object) -> int:
        raise SystemFailure("ledger store unavailable", code="CUST130")

    def close(self) -> None:
        pass


def test_state_change_is_rolled_back_when_the_ledger_cannot_record(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Workspace, "ledger", lambda self: FailingLedger())
    with pytest.raises(SystemFailure):
        add_principal(ws, "alice", Role.CUSTODIAN)
    assert list_principals(ws) == []
