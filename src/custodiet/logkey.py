"""Rotating the log's signing key: K custodians vote a ``key.rotate`` to the next key.

The next key is made on the vault's side (``keys/log.ed25519.next``, 0600, PKCS#8) by the
first ``custodiet ledger rotate-key``; each custodian's run signs ``{"vkey": <its vkey>}``.
The entry that reaches K votes is appended, and its batch's checkpoint signed, with the OLD
key. Right after it is durable, under the workspace's write lock (``follow``): the old key is
kept as ``keys/log.ed25519.retired-N`` (N: the first size the new key signs), the rotation is
recorded in ``log.json``'s key history, and the next key becomes ``keys/log.ed25519``. Each
step is idempotent, so a command killed midway leaves a workspace the next command finishes
(``finish_swap`` at every opening, ``follow`` at every write).
"""

from __future__ import annotations

import os
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from custodiet import entries
from custodiet.errors import SystemFailure, TamperedError
from custodiet.ledger import note
from custodiet.ledger.pin import LogPin
from custodiet.ledger.store import RESTORE_HINT

if TYPE_CHECKING:
    from pathlib import Path

    from custodiet.identity import SignedRequest
    from custodiet.runtime import Runtime
    from custodiet.workspace import Workspace


@dataclass(frozen=True)
class Rotation:
    """What one custodian's signature did: ``votes`` of ``required``; ``from_size`` is the
    first checkpoint size the new key signs once the rotation is effective."""

    vkey: str
    votes: int
    required: int
    effective: bool
    ledger_index: int
    from_size: int | None


def _vkey_of(ws: Workspace, path: Path) -> str | None:
    try:
        return note.vkey(ws.origin, note.load_private_key(path))
    except SystemFailure:
        return None


def next_vkey(ws: Workspace) -> str:
    """The verifier key of the next log key, made now if there is none yet."""
    path = ws.next_log_key_path
    if not path.exists():
        with suppress(FileExistsError):  # another custodian's run made it meanwhile
            note.write_private_key(path)
    return note.vkey(ws.origin, note.load_private_key(path))


def rotate_key(rt: Runtime, signed: SignedRequest) -> Rotation:
    """Count a custodian's signed vote to make ``args.vkey`` the log's key (K make it so)."""
    committed = rt.commit(entries.action(signed), refuse_as=signed)
    entry = committed.entry
    from_size = None
    if entry["effective"]:
        history = LogPin(rt.ws.log_pin_path).read().history
        from_size = next((size for vkey, size in history if vkey == entry["vkey"]), None)
    return Rotation(
        entry["vkey"], entry["votes"], entry["required"], entry["effective"],
        committed.index, from_size,
    )  # fmt: skip


def _mismatch(message: str) -> TamperedError:
    return TamperedError(f"ledger: {message}", hint=RESTORE_HINT, code="CUST542")


def follow(rt: Runtime) -> None:
    """Make the writer sign with the key the replayed ledger says is the log's (after an
    effective ``key.rotate``): keep the old key as retired, pin the new one from the next
    size, swap the key files. Called under the workspace's write lock, before any append."""
    target, current = rt.state.log_vkey, rt.ledger.current_vkey
    if not target or current is None or target == current:
        return
    ws = rt.ws
    pin = LogPin(ws.log_pin_path)
    pinned = pin.read()
    if pinned.vkey != target:
        if pinned.vkey != current:
            raise _mismatch(f"log.json pins {pinned.vkey}, the ledger's key is {target}")
        if not ws.next_log_key_path.exists() or _vkey_of(ws, ws.next_log_key_path) != target:
            raise _mismatch(
                f"the ledger made {target} the log's key, but {ws.next_log_key_path} is not"
                " that key; nothing was signed"
            )
        from_size = rt.ledger.size() + 1
        retired = ws.retired_log_key_path(from_size)
        if not retired.exists() and _vkey_of(ws, ws.log_key_path) == current:
            os.link(ws.log_key_path, retired)
        pinned = pin.rotate(target, from_size)
    finish_swap(ws, target)
    rt.ledger.rotated(pinned.history)


def finish_swap(ws: Workspace, vkey: str) -> None:
    """If ``keys/log.ed25519.next`` is the pinned key ``vkey`` and ``keys/log.ed25519`` is
    not, move it into place (the last step of a rotation); otherwise change nothing."""
    path = ws.next_log_key_path
    if not path.exists() or _vkey_of(ws, ws.log_key_path) == vkey:
        return
    if _vkey_of(ws, path) != vkey:
        return
    with suppress(FileNotFoundError):  # another process finished it meanwhile
        path.replace(ws.log_key_path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
