"""A witness (C2SP tlog-witness behaviour, tlog-cosignature/v1 signatures).

A witness keeps its own Ed25519 key and the last checkpoint it cosigned, in its own
directory. It cosigns a new checkpoint only if the log's signature verifies and a consistency
proof leads from what it cosigned before; otherwise it refuses, so a log cannot show two
histories to two parties that both trust this witness.

DIR/witness.ed25519   the witness key (0600)
DIR/witness.json      name, its own vkey, the log's vkey (pinned at first use), last cosigned
                      size and root

Both files are written under temporary names, fsynced and renamed into place (the key last), so
a failure (a full disk) leaves no half-made witness; the temporary files are removed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodiet.errors import InputError, TamperedError
from custodiet.ledger import note
from custodiet.ledger.pin import write_atomically
from custodiet.ledger.verify import (
    COSIGNATURE_TYPE,
    VerificationError,
    b64,
    cosigned_message,
    key_id,
    parse_vkey,
    unb64,
    valid_name,
    verify_checkpoint,
    verify_consistency,
)

KEY_FILE = "witness.ed25519"
STATE_FILE = "witness.json"


@dataclass(frozen=True)
class WitnessState:
    name: str
    log_vkey: str | None = None
    size: int = 0
    root: str = ""
    vkey: str = ""


def refused(message: str) -> TamperedError:
    return TamperedError(
        f"witness refuses to cosign: {message}",
        hint="the log may be showing different histories; keep both checkpoints and report it",
        code="CUST118",
    )


def check_witness_name(name: str) -> str:
    """A C2SP key name (non-empty, no whitespace, no '+'), else InputError CUST290."""
    if not valid_name(name):
        raise InputError(
            "--name: a witness name must be non-empty, without spaces or '+'",
            hint="use a name like witness.example.org/w1",
            code="CUST290",
        )
    return name


def unusable_directory(directory: Path, why: str) -> InputError:
    return InputError(
        f"{directory}: {why}",
        hint="give --dir a new or empty directory for the witness, or one it created",
        code="CUST229",
    )


class Witness:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.state = self._load_state()
        self.key = note.load_private_key(directory / KEY_FILE)
        if self.state.vkey and self.state.vkey != self.vkey:
            raise unusable_directory(directory, "the witness key is not the one witness.json names")

    @classmethod
    def open_or_create(cls, directory: Path, name: str | None = None) -> Witness:
        if directory.exists() and not directory.is_dir():
            raise unusable_directory(directory, "is not a directory")
        if not (directory / STATE_FILE).exists():
            witness_name = check_witness_name(
                name if name is not None else f"witness.local/{directory.resolve().name}"
            )
            if directory.exists() and any(directory.iterdir()):
                raise unusable_directory(directory, "not a witness directory and not empty")
            _create(directory, witness_name)
        elif name is not None and name != cls(directory).state.name:
            raise unusable_directory(directory, "--name differs from the witness's own name")
        return cls(directory)

    def _load_state(self) -> WitnessState:
        try:
            raw = json.loads((self.directory / STATE_FILE).read_text(encoding="utf-8"))
            state = WitnessState(**raw)
            check_witness_name(state.name)
            return state
        except (OSError, ValueError, TypeError, InputError) as exc:
            raise InputError(
                f"{self.directory / STATE_FILE}: unreadable witness state ({type(exc).__name__})",
                hint="point --dir at a directory created by `custodiet ledger witness`",
                code="CUST229",
            ) from None

    @property
    def vkey(self) -> str:
        return note.vkey(self.state.name, self.key, COSIGNATURE_TYPE)

    def cosign(self, checkpoint: str, log_vkey: str, proof: Sequence[bytes]) -> str:
        """The cosignature line for ``checkpoint``, given a consistency proof from the last
        checkpoint this witness cosigned (empty the first time). Raises if it must refuse."""
        pinned = self.state.log_vkey or log_vkey
        if pinned != log_vkey:
            raise refused("the log's key is not the one this witness pinned")
        try:
            cp = verify_checkpoint(checkpoint, parse_vkey(pinned))
            if self.state.size:
                old_root = unb64(self.state.root, "witnessed root")
                verify_consistency(self.state.size, cp.size, proof, old_root, cp.root)
        except VerificationError as exc:
            raise refused(str(exc)) from None
        timestamp = int(time.time())
        signature = self.key.sign(cosigned_message(cp.body, timestamp))
        kid = key_id(self.state.name, COSIGNATURE_TYPE, note.raw_public(self.key))
        line = note.signature_line(self.state.name, kid, timestamp.to_bytes(8, "big") + signature)
        self.state = WitnessState(self.state.name, pinned, cp.size, b64(cp.root), self.vkey)
        _save(self.directory, self.state)
        return line

    def refuse_rollback(self, size: int) -> None:
        """A log smaller than what this witness cosigned has been rolled back: refuse."""
        if size < self.state.size:
            raise refused(
                f"the log is at size {size}, smaller than the {self.state.size} cosigned before"
            )


def _save(directory: Path, state: WitnessState) -> None:
    write_atomically(directory / STATE_FILE, (json.dumps(state.__dict__, indent=2) + "\n").encode())


def _create(directory: Path, name: str) -> None:
    """A new witness: its state (with its vkey) first, then its key, each written atomically;
    on failure neither is left behind (nor the directory, if this made it)."""
    made = not directory.exists()
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    state = WitnessState(name, vkey=note.vkey(name, key, COSIGNATURE_TYPE))
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _save(directory, state)
        write_atomically(directory / KEY_FILE, pem)
    except BaseException:
        (directory / STATE_FILE).unlink(missing_ok=True)
        if made and directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
        raise
