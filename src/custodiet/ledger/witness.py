"""A witness (C2SP tlog-witness behaviour, tlog-cosignature/v1 signatures).

A witness keeps its own Ed25519 key and the last checkpoint it cosigned, in its own
directory. It cosigns a new checkpoint only if the log's signature verifies and a consistency
proof leads from what it cosigned before; otherwise it refuses, so a log cannot show two
histories to two parties that both trust this witness.

DIR/witness.ed25519   the witness key (0600)
DIR/witness.json      name, its own vkey, the log's vkey (pinned at first use), last cosigned
                      size and root
DIR/witness.lock      held while a checkpoint is checked and the new state saved, so that two
                      requests (threads of `witness serve`, or `ledger witness` meanwhile) never
                      roll the state back (C2SP tlog-witness: check and persist atomically)

``add_checkpoint`` is the one home of the cosigning rule: C2SP tlog-witness's checks, in its
order, each refusal a ``WitnessRefusal`` whose code maps to the protocol's HTTP status
(``custodiet.api.witness``); ``cosign`` (``ledger witness``) runs the same checks.

Both files are written under temporary names, fsynced and renamed into place (the key last), so
a failure (a full disk) leaves no half-made witness; the temporary files are removed.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodiet.errors import CustodietError, InputError, RefusedError, TamperedError
from custodiet.ledger import note
from custodiet.ledger.pin import write_atomically
from custodiet.ledger.verify import (
    COSIGNATURE_TYPE,
    ED25519_TYPE,
    Checkpoint,
    VerificationError,
    b64,
    cosigned_message,
    key_id,
    parse_checkpoint,
    parse_vkey,
    split_note,
    unb64,
    valid_name,
    verify_checkpoint,
    verify_consistency,
)

KEY_FILE = "witness.ed25519"
STATE_FILE = "witness.json"
LOCK_FILE = "witness.lock"
MAX_PROOF = 63  # C2SP tlog-witness: a client sends at most 63 consistency proof lines


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


class WitnessRefusal(CustodietError):
    """add-checkpoint refused; ``size`` is the witness's latest cosigned size (for a 409)."""

    def __init__(self, error: CustodietError, size: int) -> None:
        super().__init__(error.message, hint=error.hint, code=error.code)
        self.error, self.size = error, size


def malformed(message: str) -> InputError:
    return InputError(
        f"add-checkpoint: {message}",
        hint="send 'old SIZE', the consistency proof lines, a blank line, then the checkpoint"
        " (C2SP tlog-witness)",
        code="CUST620",
    )


def request_body(old: int, proof: Sequence[bytes], checkpoint: str) -> bytes:
    """An add-checkpoint request body: ``old N``, one base64 hash a line, a blank line, the note."""
    return "".join([f"old {old}\n", *(b64(h) + "\n" for h in proof), "\n", checkpoint]).encode()


def parse_request(body: bytes) -> tuple[int, list[bytes], str]:
    """(old, proof, checkpoint) from an add-checkpoint body, else InputError CUST620."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise malformed("the body is not UTF-8") from None
    head, sep, checkpoint = text.partition("\n\n")
    lines = head.split("\n")
    if not sep or not checkpoint:
        raise malformed("no blank line before the checkpoint")
    words = lines[0].split(" ")
    digits = words[1] if len(words) == 2 and words[0] == "old" else ""
    if not (digits.isascii() and digits.isdigit()) or digits != str(int(digits)):
        raise malformed("the first line is not 'old SIZE' (decimal, no leading zeros)")
    if len(lines) - 1 > MAX_PROOF:
        raise malformed(f"more than {MAX_PROOF} consistency proof lines")
    try:
        proof = [unb64(line, "a consistency proof line", 32) for line in lines[1:]]
    except VerificationError as exc:
        raise malformed(str(exc)) from None
    return int(digits), proof, checkpoint


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

    def pin_log(self, log_vkey: str) -> None:
        """Trust ``log_vkey`` from now on (the first time), or check it is the pinned one."""
        try:
            if parse_vkey(log_vkey).key_type != ED25519_TYPE:
                raise VerificationError("not a log key")
        except VerificationError:
            raise InputError(
                "--log-vkey: not a log verifier key (name+keyid+base64)",
                hint="give the key `custodiet ledger key` prints on the log's side",
                code="CUST293",
            ) from None
        with self._locked():
            if self.state.log_vkey not in (None, log_vkey):
                raise InputError(
                    f"{self.directory}: this witness already trusts another log key",
                    hint="a witness follows one log; give that log's key, or a new --dir",
                    code="CUST293",
                )
            if self.state.log_vkey is None:
                self.state = replace(self.state, log_vkey=log_vkey)
                _save(self.directory, self.state)

    def cosign(self, checkpoint: str, log_vkey: str, proof: Sequence[bytes]) -> str:
        """The cosignature line for ``checkpoint``, given a consistency proof from the last
        checkpoint this witness cosigned (empty the first time). Raises if it must refuse."""
        if (self.state.log_vkey or log_vkey) != log_vkey:
            raise refused("the log's key is not the one this witness pinned")
        try:
            return self.add_checkpoint(self.state.size, proof, checkpoint, pin=log_vkey)
        except WitnessRefusal as exc:
            raise refused(exc.message.removeprefix("add-checkpoint: ")) from None

    def add_checkpoint(
        self, old: int, proof: Sequence[bytes], checkpoint: str, pin: str | None = None
    ) -> str:
        """C2SP tlog-witness add-checkpoint: the cosignature line for ``checkpoint`` if it is
        signed by the pinned log key and ``proof`` leads from ``old``, the size this witness
        cosigned last, to it; the new state is saved before returning. Refusals (in the spec's
        order) are WitnessRefusal: CUST620 malformed, CUST621 unknown log, CUST622 no valid log
        signature, CUST623 ``old`` is not the witness's size (or the same size has another
        root), CUST624 the proof does not verify. ``pin``: trust this log key if none is."""
        with self._locked():
            try:
                cp = self._check(old, proof, checkpoint, pin)
            except CustodietError as exc:
                raise WitnessRefusal(exc, self.state.size) from None
            timestamp = int(time.time())
            signature = self.key.sign(cosigned_message(cp.body, timestamp))
            kid = key_id(self.state.name, COSIGNATURE_TYPE, note.raw_public(self.key))
            line = note.signature_line(
                self.state.name, kid, timestamp.to_bytes(8, "big") + signature
            )
            assert self.state.log_vkey is not None  # _check pinned it
            state = WitnessState(
                self.state.name, self.state.log_vkey, cp.size, b64(cp.root), self.vkey
            )
            _save(self.directory, state)
            self.state = state
            return line

    def _check(
        self, old: int, proof: Sequence[bytes], checkpoint: str, pin: str | None
    ) -> Checkpoint:
        try:
            cp = parse_checkpoint(split_note(checkpoint)[0])
        except VerificationError as exc:
            raise malformed(f"the checkpoint is not a signed note ({exc})") from None
        pinned = self.state.log_vkey or pin
        log_key = parse_vkey(pinned) if pinned else None
        if log_key is None or cp.origin != log_key.name:
            raise RefusedError(
                "the checkpoint is for a log this witness does not follow",
                hint="a witness cosigns the one log whose key it pinned (witness.json)",
                code="CUST621",
            )
        try:
            verify_checkpoint(checkpoint, log_key)
        except VerificationError as exc:
            raise RefusedError(
                f"the checkpoint is not validly signed by the log's key ({exc})",
                hint="only checkpoints signed by the pinned log key are cosigned",
                code="CUST622",
            ) from None
        if old > cp.size:
            raise malformed(f"old size {old} is larger than the checkpoint's {cp.size}")
        if old != self.state.size:
            raise RefusedError(
                f"old size {old} is not {self.state.size}, the size this witness cosigned last",
                hint="send the consistency proof from the witness's size (the 409 body)",
                code="CUST623",
            )
        if old == 0 and proof:
            raise malformed("a consistency proof from size 0 must be empty")
        old_root = unb64(self.state.root, "witnessed root") if old else b""
        if old and old == cp.size and old_root != cp.root:
            raise RefusedError(
                f"a checkpoint of size {old} with another root than the one cosigned",
                hint="the log shows two histories: keep both checkpoints and report it",
                code="CUST623",
            )
        if old:
            try:
                verify_consistency(old, cp.size, proof, old_root, cp.root)
            except VerificationError as exc:
                raise TamperedError(
                    f"the consistency proof from size {old} does not verify ({exc})",
                    hint="the log may be showing different histories; keep both checkpoints"
                    " and report it",
                    code="CUST624",
                ) from None
        if self.state.log_vkey is None:
            assert pinned is not None
            self.state = replace(self.state, log_vkey=pinned)
        return cp

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The witness's lock held, and its state re-read (another holder may have moved it)."""
        fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            state = self._load_state()
            self.state = state
            try:
                yield
            except BaseException:
                self.state = state
                raise
        finally:
            os.close(fd)

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
