"""A witness (C2SP tlog-witness behaviour, tlog-cosignature/v1 signatures).

A witness keeps its own Ed25519 key and the last checkpoint it cosigned, in its own
directory. It cosigns a new checkpoint only if the log's signature verifies and a consistency
proof leads from what it cosigned before; otherwise it refuses, so a log cannot show two
histories to two parties that both trust this witness.

DIR/witness.ed25519   the witness key (0600)
DIR/witness.json      name, the log's vkey (pinned at first use), last cosigned size and root
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from custodiet.errors import InputError, TamperedError
from custodiet.ledger import note
from custodiet.ledger.verify import (
    COSIGNATURE_TYPE,
    VerificationError,
    b64,
    cosigned_message,
    key_id,
    parse_vkey,
    unb64,
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


def refused(message: str) -> TamperedError:
    return TamperedError(
        f"witness refuses to cosign: {message}",
        hint="the log may be showing different histories; keep both checkpoints and report it",
        code="CUST118",
    )


class Witness:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.state = self._load_state()
        self.key = note.load_private_key(directory / KEY_FILE)

    @classmethod
    def open_or_create(cls, directory: Path, name: str | None = None) -> Witness:
        if not (directory / STATE_FILE).exists():
            if directory.exists() and any(directory.iterdir()):
                raise InputError(
                    f"{directory}: not a witness directory and not empty",
                    hint="give --dir a new or empty directory for the witness",
                    code="CUST229",
                )
            note.write_private_key(directory / KEY_FILE)
            state = WitnessState(name or f"witness.local/{directory.resolve().name}")
            _save(directory, state)
        return cls(directory)

    def _load_state(self) -> WitnessState:
        try:
            raw = json.loads((self.directory / STATE_FILE).read_text(encoding="utf-8"))
            return WitnessState(**raw)
        except (OSError, ValueError, TypeError) as exc:
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
        self.state = WitnessState(self.state.name, pinned, cp.size, b64(cp.root))
        _save(self.directory, self.state)
        return line


def _save(directory: Path, state: WitnessState) -> None:
    path = directory / STATE_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state.__dict__, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)
