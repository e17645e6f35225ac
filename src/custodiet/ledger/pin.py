"""The workspace's record of its log, kept outside the ledger store: ``DIR/log.json``.

    {"origin": ..., "genesis": base64 leaf hash of entry 0, "vkey": the log's verifier key
     pinned at init, "checkpoint": the latest signed checkpoint note pinned (no cosignatures)}

Written atomically (a temporary file in the same directory, fsynced, renamed, the directory
fsynced), mode 0600, under ``log.json.lock`` so that concurrent writers only ever advance it:
a checkpoint replaces the pinned one only if it is larger. ``check_log`` is what every command
runs when it opens the ledger: a store that is empty, starts with another entry 0, is shorter
than the pinned checkpoint or disagrees with it is fatal (exit 1), never a new log.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from custodiet.errors import SystemFailure, TamperedError
from custodiet.ledger.store import RESTORE_HINT
from custodiet.ledger.verify import (
    Checkpoint,
    VerificationError,
    VerifierKey,
    b64,
    leaf_hash,
    parse_vkey,
    verify_checkpoint,
)

if TYPE_CHECKING:
    from custodiet.ledger.writer import Ledger

PIN_FILE = "log.json"
TEMPORARY_SUFFIX = ".tmp"


def pin_fault(message: str, code: str) -> TamperedError:
    return TamperedError(f"ledger: {message}", hint=RESTORE_HINT, code=code)


def unreadable_pin(path: Path, why: str) -> TamperedError:
    return TamperedError(
        f"{path}: the workspace's record of its log is {why}",
        hint=RESTORE_HINT,
        code="CUST128",
    )


@dataclass(frozen=True)
class PinnedLog:
    origin: str
    genesis: str
    vkey: str
    checkpoint: str

    def signed(self, log_key: VerifierKey) -> Checkpoint:
        """The pinned checkpoint, verified under ``log_key``."""
        try:
            return verify_checkpoint(self.checkpoint, log_key)
        except VerificationError:
            raise pin_fault("the pinned checkpoint does not verify", "CUST128") from None


def write_atomically(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` by ``data`` all at once: a temporary sibling (``.NAME.HEX.tmp``) is
    written, fsynced and renamed over it, then the directory is fsynced. On any failure the
    temporary file is removed and ``path`` is left as it was; a full disk names the path."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}{TEMPORARY_SUFFIX}")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        temporary.replace(path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        why = "the disk holding it is full" if full else type(exc).__name__
        raise SystemFailure(
            f"{path}: cannot write ({why})",
            hint=f"free space on the disk holding {path.parent} and retry"
            if full
            else f"check that {path.parent} is writable",
            code="CUST137",
        ) from None


class LogPin:
    """``DIR/log.json``: read it, write it at init, advance its checkpoint."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def exists(self) -> bool:
        return self.path.exists()

    def read(self) -> PinnedLog:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            pinned = PinnedLog(
                **{k: str(raw[k]) for k in ("origin", "genesis", "vkey", "checkpoint")}
            )
            parse_vkey(pinned.vkey)
        except FileNotFoundError:
            raise unreadable_pin(self.path, "missing") from None
        except (OSError, ValueError, KeyError, TypeError, VerificationError) as exc:
            raise unreadable_pin(self.path, f"unreadable ({type(exc).__name__})") from None
        return pinned

    def write(self, pinned: PinnedLog) -> None:
        document = json.dumps(pinned.__dict__, indent=2) + "\n"
        write_atomically(self.path, document.encode())

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def advance(self, note: str, log_key: VerifierKey) -> None:
        """Pin ``note`` (a checkpoint signed by ``log_key``) if it is larger than the pinned one."""
        with self._locked():
            pinned = self.read()
            new = verify_checkpoint(note, log_key)
            if new.size > pinned.signed(log_key).size:
                self.write(PinnedLog(pinned.origin, pinned.genesis, pinned.vkey, note))


def pinned_log(ledger: Ledger, vkey: str) -> PinnedLog:
    """What init pins once entry 0 is committed with its checkpoint."""
    ledger.checkpoint()
    latest = ledger.store.latest_checkpoint()
    if latest is None:  # pragma: no cover - checkpoint() above raised already
        raise pin_fault("no signed checkpoint to pin", "CUST126")
    return PinnedLog(ledger.origin, b64(leaf_hash(ledger.entry(0))), vkey, latest[1])


def check_log(ledger: Ledger, pinned: PinnedLog) -> None:
    """The stored log is the pinned one: not empty, the same entry 0, at least as long as the
    pinned checkpoint, with the pinned root at that size, and its latest stored checkpoint
    covering every entry with the stored tree's root. Raises TamperedError naming the fault."""
    log_key = parse_vkey(pinned.vkey)
    if pinned.origin != ledger.origin:
        raise pin_fault("the workspace's origin is not the pinned log's", "CUST128")
    pin = pinned.signed(log_key)
    size = ledger.size()
    if not size:
        raise pin_fault("the ledger store holds no entries (it was emptied or replaced)", "CUST121")
    first = [data for _, data in ledger.store.entries(0, 1)]
    if [b64(leaf_hash(data)) for data in first] != [pinned.genesis]:
        raise pin_fault("entry 0 is not the pinned genesis entry (another log?)", "CUST122")
    if size < pin.size:
        raise pin_fault(
            f"the ledger holds {size} entries, fewer than the {pin.size} the pinned checkpoint"
            " covers (truncated or rolled back)",
            "CUST123",
        )
    try:
        root = ledger.root(pin.size)
    except SystemFailure as exc:
        if exc.code != "CUST133":
            raise
        root = b""
    if root != pin.root:
        raise pin_fault(
            f"the stored tree at size {pin.size} is not the pinned checkpoint's", "CUST124"
        )
    ledger.checkpoint()
