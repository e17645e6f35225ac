"""Receipts: a released file with the proof that it is exactly what the log says was released.

``FILE.receipt.json`` (docs/ledger.md §9) holds the outcome entry that released FILE (its
canonical bytes, base64, and its index), an RFC 9162 inclusion proof of that entry (as `custodiet
ledger proof` prints it), the signed checkpoint the proof leads to (with its cosignatures), the
log's origin and verifier key, and FILE's name, format and SHA-256. The gateway records the
SHA-256 of the exact bytes it rendered for FILE in that entry (``output_sha256``,
custodiet.gateway.rendering), so ``verify`` needs nothing but FILE, the receipt and a log key
the verifier trusts -- never the key the receipt names, which is only informative.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from custodiet.errors import InputError, TamperedError
from custodiet.ledger.verify import (
    HASH_SIZE,
    Checkpoint,
    VerificationError,
    VerifierKey,
    leaf_hash,
    verify_checkpoint,
    verify_inclusion,
)

RECEIPT = "custodiet/receipt/v1"
SUFFIX = ".receipt.json"
OUTCOMES = ("query", "screen.run", "monitor", "case.read")
READS = ("case.read",)  # signed actions whose entry is the release itself (a refusal is a
# `refusal` entry), so they state no decision; the others are outcomes, "allowed"


@dataclass(frozen=True)
class LogProof:
    """What the log shows of one entry: its bytes, an inclusion proof (the JSON document of
    `ledger proof`) at the size of ``checkpoint``, that signed note, and the log's vkey."""

    entry: bytes
    proof: dict[str, Any]
    checkpoint: str
    vkey: str


def checkpoint_size(note: str) -> int:
    """The tree size a checkpoint note states (its second line), unverified."""
    lines = note.split("\n")
    if len(lines) < 3 or not (lines[1].isascii() and lines[1].isdigit()):
        raise VerificationError("checkpoint body is not origin, size, root")
    return int(lines[1])


def document(
    log: LogProof, *, name: str, kind: str, data: bytes, link: Mapping[str, Any]
) -> dict[str, Any]:
    """The receipt of ``data`` (the file ``name`` in format ``kind``), released by the entry
    ``log`` proves; ``link`` adds ``ledger_index`` and what the command reports beside it."""
    return {
        "receipt": RECEIPT,
        "file": {"name": name, "format": kind, "sha256": hashlib.sha256(data).hexdigest()},
        **link,
        "entry": base64.b64encode(log.entry).decode("ascii"),
        "proof": log.proof,
        "checkpoint": log.checkpoint,
        "origin": log.vkey.split("+", 1)[0],
        "vkey": log.vkey,
    }


@dataclass(frozen=True)
class Receipt:
    index: int
    entry: bytes
    tree_size: int
    root: bytes
    proof: list[bytes]
    checkpoint: str
    vkey: str


def _malformed(where: str, field: str, what: str) -> InputError:
    return InputError(
        f"{where}: receipt field '{field}' {what}",
        hint="a receipt is FILE.receipt.json as `custodiet query --out FILE` writes it "
        "(docs/ledger.md §9)",
        code="CUST295",
    )


def _field(doc: Mapping[str, Any], name: str, kind: type, where: str, path: str = "") -> Any:
    value = doc.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise _malformed(where, path + name, f"is missing or not a {kind.__name__}")
    return value


def _hash(text: object, where: str, field: str) -> bytes:
    try:
        raw = base64.b64decode(str(text), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if not isinstance(text, str) or len(raw) != HASH_SIZE:
        raise _malformed(where, field, "is not a base64 SHA-256 hash")
    return raw


def parse(text: str | bytes, where: str) -> Receipt:
    """A receipt document; a malformed one is a usage error (exit 2) naming the field."""
    try:
        doc = json.loads(text)
    except ValueError:
        raise _malformed(where, "(document)", "is not one JSON object") from None
    if not isinstance(doc, dict):
        raise _malformed(where, "(document)", "is not one JSON object")
    if doc.get("receipt") != RECEIPT:
        raise _malformed(where, "receipt", f"is not {RECEIPT!r}")
    index = _field(doc, "ledger_index", int, where)
    proof = _field(doc, "proof", dict, where)
    if _field(proof, "index", int, where, "proof.") != index:
        raise _malformed(where, "proof.index", "is not the receipt's ledger_index")
    tree_size = _field(proof, "tree_size", int, where, "proof.")
    hashes = _field(proof, "proof", list, where, "proof.")
    try:
        entry = base64.b64decode(_field(doc, "entry", str, where), validate=True)
    except (binascii.Error, ValueError):
        raise _malformed(where, "entry", "is not base64") from None
    return Receipt(
        index,
        entry,
        tree_size,
        _hash(proof.get("root_hash"), where, "proof.root_hash"),
        [_hash(h, where, f"proof.proof[{i}]") for i, h in enumerate(hashes)],
        _field(doc, "checkpoint", str, where),
        _field(doc, "vkey", str, where),
    )


@dataclass(frozen=True)
class Verified:
    sha256: str
    index: int
    entry: dict[str, Any]
    checkpoint: Checkpoint


def _fault(name: str, message: str, code: str) -> TamperedError:
    return TamperedError(
        f"NOT VERIFIED {name}: {message}",
        hint="the file, its receipt or the log key trusted is not what the gateway released; "
        "ask for the result again, or check the key with `custodiet ledger key`",
        code=code,
    )


def verify(
    receipt: Receipt,
    data: bytes,
    log_key: VerifierKey,
    name: str,
    witnesses: Sequence[VerifierKey] = (),
) -> Verified:
    """FILE's bytes are the output the receipt's entry recorded, the entry is in the log under
    the receipt's checkpoint, and that checkpoint is signed by ``log_key`` (and cosigned by
    every one of ``witnesses``). TamperedError (exit 1) names the first check that fails."""
    try:
        signed = verify_checkpoint(receipt.checkpoint, log_key, witnesses)
    except VerificationError as exc:
        raise _fault(
            name, f"the receipt's checkpoint is not signed by the trusted log key ({exc})",
            "CUST150",
        ) from None  # fmt: skip
    if (receipt.tree_size, receipt.root) != (signed.size, signed.root):
        raise _fault(name, "the receipt's proof is for another tree than its checkpoint", "CUST151")
    try:
        verify_inclusion(
            receipt.index, signed.size, leaf_hash(receipt.entry), receipt.proof, signed.root
        )
    except VerificationError as exc:
        raise _fault(
            name, f"ledger entry {receipt.index} is not included in the checkpoint ({exc})",
            "CUST151",
        ) from None  # fmt: skip
    try:
        entry = json.loads(receipt.entry)
    except ValueError:
        entry = None
    if not isinstance(entry, dict) or entry.get("index") != receipt.index:
        raise _fault(name, f"the receipt's entry is not ledger entry {receipt.index}", "CUST152")
    recorded = entry.get("output_sha256")
    action = entry.get("action")
    allowed = action in READS or entry.get("decision") == "allowed"
    if action not in OUTCOMES or not allowed or not isinstance(recorded, str) or not recorded:
        raise _fault(name, f"ledger entry {receipt.index} released no output file", "CUST152")
    digest = hashlib.sha256(data).hexdigest()
    if digest != recorded:
        raise _fault(
            name, f"its sha256 is {digest}, ledger entry {receipt.index} released {recorded}",
            "CUST152",
        )  # fmt: skip
    return Verified(digest, receipt.index, entry, signed)
