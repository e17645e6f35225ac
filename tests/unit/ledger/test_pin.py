"""DIR/log.json: written atomically, only ever advanced, and what every open checks against."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from custodiet.errors import SystemFailure, TamperedError
from custodiet.ledger.pin import LogPin, PinnedLog, write_atomically
from custodiet.ledger.verify import parse_vkey
from custodiet.workspace import Workspace
from tests.kit import Kit


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Kit(tmp_path).init(tmp_path / "ws")


def grow(ws: Workspace, count: int) -> str:
    """Append ``count`` entries; the checkpoint note covering them."""
    ledger = ws.ledger()
    try:
        ledger.append_many([{"actor": "a", "action": "query"}] * count)
        latest = ledger.store.latest_checkpoint()
        assert latest is not None
        return latest[1]
    finally:
        ledger.close()


def test_write_atomically_leaves_the_old_file_and_no_temporary_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "log.json"
    target.write_text("old")
    os.chmod(tmp_path, 0o500)
    try:
        if os.access(tmp_path, os.W_OK):  # root ignores the mode: use a missing directory
            target = tmp_path / "missing" / "log.json"
        with pytest.raises(SystemFailure) as caught:
            write_atomically(target, b"new")
    finally:
        os.chmod(tmp_path, 0o700)
    assert caught.value.code == "CUST137" and str(target) in caught.value.message
    assert (tmp_path / "log.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_write_atomically_replaces_with_mode_0600(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    write_atomically(target, b"x" * 100_000)
    assert target.read_bytes() == b"x" * 100_000
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_pin_only_ever_advances(ws: Workspace) -> None:
    pin = LogPin(ws.log_pin_path)
    key = parse_vkey(pin.read().vkey)
    older = grow(ws, 2)
    grow(ws, 2)
    assert pin.read().signed(key).size == 5
    pin.advance(older, key)
    assert pin.read().signed(key).size == 5


@pytest.mark.parametrize("content", ["", "{", "[]", '{"origin": "x"}'])
def test_unreadable_pin_is_fatal(ws: Workspace, content: str) -> None:
    ws.log_pin_path.write_text(content)
    with pytest.raises(TamperedError) as caught:
        ws.ledger()
    assert caught.value.code == "CUST128"


def test_pinned_checkpoint_that_does_not_verify_is_fatal(ws: Workspace) -> None:
    pin = LogPin(ws.log_pin_path)
    pinned = pin.read()
    pin.write(PinnedLog(pinned.origin, pinned.genesis, pinned.vkey, pinned.checkpoint[:-3] + "\n"))
    with pytest.raises(TamperedError) as caught:
        ws.ledger()
    assert caught.value.code == "CUST128"


def test_another_workspaces_store_is_another_log(ws: Workspace, tmp_path: Path) -> None:
    other = Kit(tmp_path).init(tmp_path / "other")
    shutil.copy(other.root / "ledger.db", ws.root / "ledger.db")
    with pytest.raises(TamperedError) as caught:
        ws.ledger()
    assert caught.value.code == "CUST122" and "genesis" in caught.value.message


def test_origin_mismatch_is_fatal(ws: Workspace) -> None:
    pin = LogPin(ws.log_pin_path)
    pinned = pin.read()
    pin.write(PinnedLog("custodiet.local/else", pinned.genesis, pinned.vkey, pinned.checkpoint))
    with pytest.raises(TamperedError) as caught:
        ws.ledger()
    assert caught.value.code == "CUST128"


def test_origin_is_a_valid_key_name_whatever_the_directory_is_called(tmp_path: Path) -> None:
    ws = Kit(tmp_path).init(tmp_path / "my ws+1\u00a0é")
    assert parse_vkey(LogPin(ws.log_pin_path).read().vkey).name == ws.origin
    assert ws.origin.startswith("custodiet.local/my-ws-1-")
    ws.ledger().close()
