"""The runtime's state is replayed from the ledger; ``state.json`` only caches it.

The cache is authenticated with a key derived from the workspace secret and pinned to the
ledger's size and root: one edited by hand, written for another history or deleted is discarded
(or rebuilt) and the state is replayed from the genesis, never acted on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

from custodiet import runtime
from custodiet.errors import SystemFailure
from custodiet.ledger.replay import State, audit_entries, canonical, state_document
from custodiet.principals import Role, add_principal
from custodiet.runtime import CACHE_FILE, opened
from custodiet.workspace import Workspace
from tests.catalog_data import ledger_entries
from tests.kit import Kit, public_key

KIT = Kit()


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """Custodians ana and ben (K = 2) and reviewer rae: a few entries, and a saved cache."""
    ws = KIT.init(tmp_path / "ws")
    KIT.add_principal(ws, "rae", Role.REVIEWER)
    return ws


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the caches the runtime accepted (an empty list: every start replayed)."""
    accepted: list[int] = []
    original = runtime.state_from_document

    def spy(document: Any) -> State:
        accepted.append(int(document["size"]))
        return original(document)

    monkeypatch.setattr(runtime, "state_from_document", spy)
    return accepted


def cache(ws: Workspace) -> Path:
    return ws.root / CACHE_FILE


def replayed(ws: Workspace) -> dict[str, Any]:
    """The state an independent audit replays from the ledger's entries alone."""
    state, result = audit_entries(ledger_entries(ws))
    assert result.violation is None
    return state_document(state)


def current(ws: Workspace) -> dict[str, Any]:
    with opened(ws) as rt:
        return state_document(rt.state)


def resign(ws: Workspace, body: dict[str, Any]) -> None:
    """Write ``body`` as a cache with a valid MAC (what only the cache's own key can do)."""
    secret = (ws.root / "keys" / "state-cache.key").read_bytes()
    key = hmac.new(secret, b"custodiet/state-cache/v1", hashlib.sha256)
    mac = hmac.new(key.digest(), canonical(body), hashlib.sha256).digest()
    cache(ws).write_text(json.dumps({"body": body, "mac": base64.b64encode(mac).decode()}))


def test_the_cache_is_written_0600_and_equals_the_replayed_state(
    ws: Workspace, loads: list[int]
) -> None:
    assert cache(ws).exists()
    assert stat.S_IMODE(cache(ws).stat().st_mode) == 0o600
    assert current(ws) == replayed(ws)
    assert loads == [len(ledger_entries(ws))]  # the cache was used, and it was right


def test_a_cache_edited_by_hand_is_discarded_and_the_state_replayed(
    ws: Workspace, loads: list[int]
) -> None:
    document = json.loads(cache(ws).read_text())
    document["body"]["state"]["principals"]["rae"][0] = "custodian"  # promote rae
    cache(ws).write_text(json.dumps(document))
    state = current(ws)
    assert loads == []
    assert state["principals"]["rae"][0] == "reviewer"
    assert state == replayed(ws)


def test_a_cache_with_a_forged_mac_is_discarded(ws: Workspace, loads: list[int]) -> None:
    document = json.loads(cache(ws).read_text())
    document["body"]["state"]["principals"]["rae"][0] = "custodian"
    document["mac"] = base64.b64encode(b"\0" * 32).decode()
    cache(ws).write_text(json.dumps(document))
    assert current(ws)["principals"]["rae"][0] == "reviewer"
    assert loads == []


def test_a_cache_for_a_different_ledger_root_is_discarded(
    ws: Workspace, tmp_path: Path, loads: list[int]
) -> None:
    """Two copies of one workspace diverge (same secret, same size, different entries): one's
    authentic cache says nothing about the other's ledger."""
    fork = Workspace(Path(shutil.copytree(ws.root, tmp_path / "fork")))
    KIT.add_principal(ws, "bob", Role.REVIEWER)
    KIT.add_principal(fork, "olga", Role.OVERSEER)
    assert len(ledger_entries(ws)) == len(ledger_entries(fork))
    shutil.copyfile(cache(ws), cache(fork))
    loads.clear()
    state = current(fork)
    assert loads == []
    assert "olga" in state["principals"] and "bob" not in state["principals"]
    assert state == replayed(fork)


def test_a_re_signed_cache_naming_another_root_is_discarded(
    ws: Workspace, loads: list[int]
) -> None:
    body = json.loads(cache(ws).read_text())["body"]
    body["state"]["principals"]["rae"][0] = "custodian"
    resign(ws, body)  # authentic, pinned to this ledger: accepted (the MAC is what protects it)
    assert current(ws)["principals"]["rae"][0] == "custodian"
    body["root"] = base64.b64encode(b"\1" * 32).decode()
    resign(ws, body)
    loads.clear()
    assert current(ws)["principals"]["rae"][0] == "reviewer"
    assert loads == []


def test_a_cache_from_a_longer_history_is_discarded(
    ws: Workspace, tmp_path: Path, loads: list[int]
) -> None:
    before = Workspace(Path(shutil.copytree(ws.root, tmp_path / "before")))
    KIT.add_principal(ws, "bob", Role.REVIEWER)
    shutil.copyfile(cache(ws), cache(before))
    loads.clear()
    state = current(before)
    assert loads == [] and "bob" not in state["principals"]
    assert state == replayed(before)


def test_an_older_cache_of_the_same_ledger_is_brought_up_to_date(
    ws: Workspace, tmp_path: Path, loads: list[int]
) -> None:
    old = cache(ws).read_bytes()
    KIT.add_principal(ws, "bob", Role.REVIEWER)
    cache(ws).write_bytes(old)
    loads.clear()
    state = current(ws)
    assert len(loads) == 1 and loads[0] < len(ledger_entries(ws))
    assert "bob" in state["principals"]
    assert state == replayed(ws)


def test_a_deleted_cache_is_rebuilt(ws: Workspace, loads: list[int]) -> None:
    cache(ws).unlink()
    assert current(ws) == replayed(ws)
    assert loads == []
    assert cache(ws).exists()
    assert current(ws) == replayed(ws)
    assert loads == [len(ledger_entries(ws))]


def test_an_unreadable_cache_is_replayed(ws: Workspace, loads: list[int]) -> None:
    cache(ws).write_text("{not json")
    assert current(ws) == replayed(ws)
    assert loads == []


class FailingAppend:
    """The workspace's ledger, except that nothing can be appended."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def append(self, entry: object) -> int:
        raise OSError("ledger store unavailable")

    def reserve(self, entry: object, index: int, time: str) -> Any:
        raise OSError("ledger store unavailable")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_nothing_changes_when_the_ledger_cannot_record(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = current(ws)
    real = Workspace.ledger
    monkeypatch.setattr(Workspace, "ledger", lambda self: FailingAppend(real(self)))
    with pytest.raises(SystemFailure) as caught:
        KIT.call(ws, add_principal, "ana", "principal.add",
                 name="bob", role="reviewer", pubkey=public_key("bob"))  # fmt: skip
    assert caught.value.code == "CUST147"
    monkeypatch.setattr(Workspace, "ledger", real)
    assert current(ws) == before
    assert "bob" not in current(ws)["principals"]
