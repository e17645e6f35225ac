"""The workspace's record of its log, kept outside the ledger store: ``DIR/log.json``.

    {"origin": ..., "genesis": base64 leaf hash of entry 0, "vkey": the log's current verifier
     key, "checkpoint": the latest signed checkpoint note pinned (no cosignatures),
     "keys": [{"vkey": ..., "from_size": N}, ...] every key the log has had, oldest first}

A checkpoint of size n is signed by the key in force at n: the last one whose ``from_size`` is
at most n (the first key from size 1, pinned at init; each later one from the size after the
batch of the ``key.rotate`` entry that made it effective). A pin written before keys rotated
has no "keys": its ``vkey`` alone is the history.

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
from dataclasses import dataclass, replace
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


KeyHistory = tuple[tuple[str, int], ...]
"""(vkey, from_size) pairs, oldest first: each key signs the checkpoints from its size on."""


def key_at(history: KeyHistory, size: int) -> str:
    """The vkey in force for a checkpoint of ``size`` entries."""
    found = history[0][0]
    for vkey, from_size in history:
        if from_size <= size:
            found = vkey
    return found


@dataclass(frozen=True)
class PinnedLog:
    origin: str
    genesis: str
    vkey: str
    checkpoint: str
    keys: KeyHistory = ()

    @property
    def history(self) -> KeyHistory:
        """Every key of the log with the size it signs from (one key if never rotated)."""
        return self.keys or ((self.vkey, 1),)

    def signed(self, log_key: VerifierKey | None = None) -> Checkpoint:
        """The pinned checkpoint, verified under ``log_key``, else under the key in force at
        its size."""
        try:
            if log_key is None:
                size = int(self.checkpoint.split("\n")[1])
                log_key = parse_vkey(key_at(self.history, size))
            return verify_checkpoint(self.checkpoint, log_key)
        except (VerificationError, ValueError, IndexError):
            raise pin_fault("the pinned checkpoint does not verify", "CUST128") from None

    def document(self) -> dict[str, object]:
        keys = [{"vkey": vkey, "from_size": size} for vkey, size in self.history]
        return {**{k: getattr(self, k) for k in ("origin", "genesis", "vkey", "checkpoint")},
                "keys": keys}  # fmt: skip


def _history(raw: object, vkey: str) -> KeyHistory:
    """The pin's "keys", checked: valid vkeys, sizes from 1 strictly increasing, the last
    one the current ``vkey``."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        raise ValueError("keys is not a list")
    history = tuple((str(item["vkey"]), item["from_size"]) for item in raw)
    sizes = [size for _, size in history]
    if (
        not all(type(size) is int for size in sizes)
        or sizes[0] != 1
        or sizes != sorted(set(sizes))
        or history[-1][0] != vkey
        or len({v for v, _ in history}) != len(history)
    ):
        raise ValueError("keys is not a history ending in vkey")
    for item, _ in history:
        parse_vkey(item)
    return history


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
            fields = {k: str(raw[k]) for k in ("origin", "genesis", "vkey", "checkpoint")}
            pinned = PinnedLog(**fields, keys=_history(raw.get("keys"), fields["vkey"]))
            parse_vkey(pinned.vkey)
        except FileNotFoundError:
            raise unreadable_pin(self.path, "missing") from None
        except (OSError, ValueError, KeyError, TypeError, VerificationError) as exc:
            raise unreadable_pin(self.path, f"unreadable ({type(exc).__name__})") from None
        return pinned

    def write(self, pinned: PinnedLog) -> None:
        document = json.dumps(pinned.document(), indent=2) + "\n"
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
            if new.size > pinned.signed().size:
                self.write(replace(pinned, checkpoint=note))

    def rotate(self, vkey: str, from_size: int) -> PinnedLog:
        """Record ``vkey`` as the log's key from ``from_size`` on (nothing if it already is)."""
        with self._locked():
            pinned = self.read()
            if pinned.vkey == vkey:
                return pinned
            history = pinned.history
            if vkey in (v for v, _ in history) or from_size <= history[-1][1]:
                raise pin_fault(
                    f"cannot pin key {vkey} from size {from_size} after {history}", "CUST128"
                )
            rotated = replace(pinned, vkey=vkey, keys=(*history, (vkey, from_size)))
            self.write(rotated)
            return rotated


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
    if pinned.origin != ledger.origin:
        raise pin_fault("the workspace's origin is not the pinned log's", "CUST128")
    pin = pinned.signed()
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
