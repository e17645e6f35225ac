from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from custodiet.errors import InputError, RefusedError
from custodiet.principals import (
    Principal,
    Role,
    add_principal,
    authenticate,
    get_principal,
    list_principals,
)
from custodiet.workspace import Workspace, init_workspace
from tests.catalog_data import ledger_entries


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return init_workspace(tmp_path / "ws")


def test_stores_only_the_hash_of_the_token(ws: Workspace) -> None:
    token = add_principal(ws, "alice", Role.CUSTODIAN)
    dump = "\n".join(sqlite3.connect(ws.state_path).iterdump())
    assert token not in dump
    assert hashlib.sha256(token.encode()).hexdigest() in dump


def test_tokens_are_distinct_per_principal(ws: Workspace) -> None:
    assert add_principal(ws, "alice", Role.CUSTODIAN) != add_principal(ws, "bob", Role.REVIEWER)


def test_authenticates_principal_by_token(ws: Workspace) -> None:
    add_principal(ws, "alice", Role.CUSTODIAN)
    token = add_principal(ws, "bob", Role.REVIEWER)
    assert authenticate(ws, token) == Principal("bob", Role.REVIEWER)


def test_refuses_unknown_token_and_records_it(ws: Workspace) -> None:
    token = add_principal(ws, "bob", Role.REVIEWER)
    with pytest.raises(RefusedError) as caught:
        authenticate(ws, token + "x")
    assert caught.value.exit_status == 3
    last = ledger_entries(ws)[-1]
    assert (last["action"], last["reason"]) == ("refusal", caught.value.rule)


def test_principal_add_is_on_the_ledger_without_token(ws: Workspace) -> None:
    token = add_principal(ws, "bob", Role.REVIEWER, actor="alice")
    entry = ledger_entries(ws)[-1]
    assert entry["action"] == "principal.add"
    assert (entry["principal"], entry["role"], entry["actor"]) == ("bob", "reviewer", "alice")
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(entry) and digest not in str(entry)


@pytest.mark.parametrize("name", ["Alice", "1bob", "", "a" * 65, "bob smith", "bob;drop"])
def test_rejects_invalid_names(ws: Workspace, name: str) -> None:
    with pytest.raises(InputError) as caught:
        add_principal(ws, name, Role.REVIEWER)
    assert caught.value.code == "CUST230"


def test_rejects_duplicate_name_and_keeps_first_role(ws: Workspace) -> None:
    add_principal(ws, "bob", Role.REVIEWER)
    with pytest.raises(InputError, match="already exists"):
        add_principal(ws, "bob", Role.CUSTODIAN)
    assert get_principal(ws, "bob").role is Role.REVIEWER


def test_lists_principals_by_name(ws: Workspace) -> None:
    add_principal(ws, "olga", Role.OVERSEER)
    add_principal(ws, "alice", Role.CUSTODIAN)
    assert list_principals(ws) == [
        Principal("alice", Role.CUSTODIAN),
        Principal("olga", Role.OVERSEER),
    ]


def test_unknown_principal_is_refused(ws: Workspace) -> None:
    with pytest.raises(RefusedError, match="unknown principal 'nobody'"):
        get_principal(ws, "nobody")
