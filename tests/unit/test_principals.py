"""Principals are registered on the ledger by custodians' signed requests, each with an Ed25519
public key; who acts is proven by a signature under that key, never by a bearer token."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from custodiet.errors import InputError, RefusedError
from custodiet.principals import (
    Principal,
    Role,
    add_principal,
    list_principals,
    remove_principal,
)
from custodiet.runtime import opened
from custodiet.workspace import Workspace
from tests.catalog_data import ledger_entries
from tests.kit import Kit, private_key, public_key

KIT = Kit()


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """Custodians ana and ben (the genesis's), K = 2."""
    return KIT.init(tmp_path / "ws")


def add(ws: Workspace, name: str, role: Role, by: str = "ana", pubkey: str | None = None) -> object:
    return KIT.call(ws, add_principal, by, "principal.add",
                    name=name, role=role.value, pubkey=pubkey or public_key(name))  # fmt: skip


def refused(call: object, *args: object, **kwargs: object) -> RefusedError:
    with pytest.raises(RefusedError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    assert caught.value.exit_status == 3
    return caught.value


def assert_recorded(ws: Workspace, error: RefusedError, attempted: str = "principal.add") -> None:
    last = ledger_entries(ws)[-1]
    assert (last["action"], last["attempted"]) == ("refusal", attempted)
    assert (last["reason"], last["code"]) == (error.rule, error.code)


def test_the_workspace_holds_public_keys_only(ws: Workspace) -> None:
    """No private key of a principal is ever written into the workspace (tokens are gone)."""
    add(ws, "bob", Role.REVIEWER)
    secrets = [
        private_key(name).private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        for name in ("ana", "ben", "bob")
    ]  # fmt: skip
    for path in (p for p in ws.root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        assert not any(secret in data for secret in secrets), path
        assert b"PRIVATE KEY" not in data or path == ws.log_key_path, path
    entry = ledger_entries(ws)[-1]
    assert entry["request"]["args"]["pubkey"] == public_key("bob")


def test_one_public_key_belongs_to_one_principal(ws: Workspace) -> None:
    add(ws, "bob", Role.REVIEWER)
    error = refused(add, ws, "rae", Role.REVIEWER, pubkey=public_key("bob"))
    assert error.code == "CUST517"
    assert_recorded(ws, error)


def test_a_request_is_authenticated_by_the_registered_key(ws: Workspace) -> None:
    add(ws, "bob", Role.REVIEWER)
    with opened(ws) as rt:
        signed = KIT.sign(rt, "bob", "query", {"agreement": "a", "sql": "SELECT 1"})
        who = rt.state.authenticate(signed.request, signed.signature, rt.now())
    assert (who.name, who.role) == ("bob", "reviewer")


def test_a_signature_by_another_key_is_refused_and_recorded(ws: Workspace) -> None:
    with opened(ws) as rt:
        forged = KIT.sign(rt, "ana", "principal.add",
                          {"name": "bob", "role": "reviewer", "pubkey": public_key("bob")},
                          key_of="mallory")  # fmt: skip
        with pytest.raises(RefusedError) as caught:
            add_principal(rt, forged)
    error = caught.value
    assert error.code == "CUST502"
    assert error.rule == "the signature does not verify under the key registered for 'ana'"
    assert_recorded(ws, error)
    assert "bob" not in KIT.state(ws).principals


def test_a_replayed_request_is_refused(ws: Workspace) -> None:
    with opened(ws) as rt:
        args = {"name": "bob", "role": "reviewer", "pubkey": public_key("bob")}
        signed = KIT.sign(rt, "ana", "principal.add", args)
        add_principal(rt, signed)
    with opened(ws) as rt, pytest.raises(RefusedError) as caught:
        add_principal(rt, signed)
    assert caught.value.code == "CUST506"


def test_a_stale_request_or_one_for_another_log_is_refused(ws: Workspace) -> None:
    args = {"name": "bob", "role": "reviewer", "pubkey": public_key("bob")}
    with opened(ws) as rt:
        old = KIT.sign(rt, "ana", "principal.add", args, now=rt.now() - dt.timedelta(hours=1))
        with pytest.raises(RefusedError) as stale:
            add_principal(rt, old)
        elsewhere = KIT.sign(rt, "ana", "principal.add", args, origin="custodiet.local/other")
        with pytest.raises(RefusedError) as other:
            add_principal(rt, elsewhere)
    assert (stale.value.code, other.value.code) == ("CUST505", "CUST503")
    assert other.value.rule == "the request was signed for another log"


def test_principal_add_is_on_the_ledger_with_the_signed_request(ws: Workspace) -> None:
    add(ws, "bob", Role.REVIEWER, by="ana")
    entry = ledger_entries(ws)[-1]
    assert entry["action"] == "principal.add"
    assert (entry["principal"], entry["role"], entry["actor"]) == ("bob", "reviewer", "ana")
    assert (entry["votes"], entry["required"], entry["effective"]) == (1, 1, True)
    assert entry["request"]["principal"] == "ana" and entry["signature"]


@pytest.mark.parametrize("name", ["Alice", "1bob", "a" * 65, "bob smith", "bob;drop"])
def test_rejects_invalid_names(ws: Workspace, name: str) -> None:
    with pytest.raises(InputError) as caught:
        add(ws, name, Role.REVIEWER)
    assert caught.value.code == "CUST230"


def test_rejects_an_empty_name(ws: Workspace) -> None:
    with pytest.raises(InputError) as caught:
        KIT.call(ws, add_principal, "ana", "principal.add",
                 name="", role="reviewer", pubkey=public_key("x"))  # fmt: skip
    assert caught.value.code == "CUST530"


def test_rejects_duplicate_name_and_keeps_first_role(ws: Workspace) -> None:
    add(ws, "bob", Role.REVIEWER)
    error = refused(add, ws, "bob", Role.OVERSEER, pubkey=public_key("bob2"))
    assert (error.code, error.rule) == ("CUST231", "principal 'bob' already exists")
    assert KIT.state(ws).principals["bob"].role == "reviewer"


def test_lists_principals_by_name(ws: Workspace) -> None:
    add(ws, "olga", Role.OVERSEER)
    assert list_principals(KIT.state(ws)) == [
        Principal("ana", Role.CUSTODIAN, public_key("ana")),
        Principal("ben", Role.CUSTODIAN, public_key("ben")),
        Principal("olga", Role.OVERSEER, public_key("olga")),
    ]


def test_unknown_principal_is_refused(ws: Workspace) -> None:
    error = refused(add, ws, "bob", Role.REVIEWER, by="nobody")
    assert (error.code, error.rule) == ("CUST310", "unknown principal 'nobody'")
    assert_recorded(ws, error)


def test_only_custodians_add_principals(ws: Workspace) -> None:
    add(ws, "bob", Role.REVIEWER)
    error = refused(add, ws, "eve", Role.CUSTODIAN, by="bob")
    assert error.code == "CUST318"
    assert "eve" not in KIT.state(ws).principals


def test_a_new_custodian_needs_k_distinct_custodians(ws: Workspace) -> None:
    first = add(ws, "cat", Role.CUSTODIAN, by="ana")
    assert (first.votes, first.required, first.effective) == (1, 2, False)  # type: ignore[attr-defined]
    assert "cat" not in KIT.state(ws).principals
    again = refused(add, ws, "cat", Role.CUSTODIAN, by="ana")
    assert again.code == "CUST320"
    second = add(ws, "cat", Role.CUSTODIAN, by="ben")
    assert (second.votes, second.effective) == (2, True)  # type: ignore[attr-defined]
    assert KIT.state(ws).principals["cat"].role == "custodian"


def test_removal_needs_k_and_never_leaves_fewer_than_k_custodians(ws: Workspace) -> None:
    add(ws, "bob", Role.REVIEWER)
    first = KIT.call(ws, remove_principal, "ana", "principal.remove", name="bob")
    assert (first.votes, first.required, first.effective) == (1, 2, False)
    assert "bob" in KIT.state(ws).principals
    KIT.call(ws, remove_principal, "ben", "principal.remove", name="bob")
    assert "bob" not in KIT.state(ws).principals
    with pytest.raises(RefusedError) as caught:
        KIT.call(ws, remove_principal, "ana", "principal.remove", name="ben")
    assert caught.value.code == "CUST518"
    assert_recorded(ws, caught.value, attempted="principal.remove")
