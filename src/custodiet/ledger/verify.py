"""The standalone verifier of a custodiet ledger: standard library + ``cryptography`` only,
no custodiet import (the writer imports its hashing from here). RFC 9162 §2.1 hashing and
proofs; C2SP signed notes, tlog-checkpoint and tlog-cosignature/v1. Exit 0 verified, 1 not
verified, 2 usage or IO: ``python -m custodiet.ledger.verify --help``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import methodcaller
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HASH_SIZE = 32
ED25519_TYPE = 0x01
COSIGNATURE_TYPE = 0x04
SIGNATURE_PREFIX = "\u2014 "
MAX_SIGNATURES = 100
"""C2SP signed-note: a verifier may reject notes with more signature lines (Go's note.Open
rejects more than 100)."""
MAX_TIMESTAMP = 1 << 63
"""C2SP tlog-cosignature: the timestamp is a uint64 that must be below 2^63."""
_digest = methodcaller("digest")


class VerificationError(Exception):
    """The log, a proof or a note does not verify; expected and computed hashes are evidence."""

    def __init__(self, message: str, **hashes: bytes) -> None:
        super().__init__(message)
        self.expected, self.computed = hashes.get("expected"), hashes.get("computed")


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def leaf_hashes(data: Iterable[bytes]) -> list[bytes]:
    """``leaf_hash`` of each, looping in C: on short entries the per-call cost dominates."""
    return list(map(_digest, map(hashlib.sha256, map(b"\x00".__add__, data))))


def next_level(hashes: Sequence[bytes]) -> list[bytes]:
    """``node_hash`` of each pair (a lone last hash is left out), looping in C."""
    pairs = map(bytes.__add__, hashes[0::2], hashes[1::2])
    return list(map(_digest, map(hashlib.sha256, map(b"\x01".__add__, pairs))))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str, what: str, size: int | None = None) -> bytes:
    """Base64 ``text`` decoded, checked to be ``size`` bytes long if a size is given."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise VerificationError(f"{what} is not valid base64") from None
    if size is not None and len(raw) != size:
        raise VerificationError(f"{what} is {len(raw)} bytes, not {size}")
    return raw


def tree_hash(hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes (RFC 9162 §2.1.1), level by level; the empty tree is SHA-256('')."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    level = list(hashes)
    while len(level) > 1:
        level = next_level(level) + level[len(level) - len(level) % 2 :]
    return level[0]


def _walk(fn: int, sn: int, seed: bytes, path: Sequence[bytes], what: str) -> tuple[bytes, bytes]:
    """The proof walk RFC 9162 §2.1.3.2 and §2.1.4.2 share: from ``seed``, the hashes ``fr``
    (only hashing in proof nodes on the left) and ``sr`` (hashing in every proof node)."""
    for h in (seed, *path):
        if len(h) != HASH_SIZE:
            raise VerificationError(f"a hash is {len(h)} bytes, not {HASH_SIZE}")
    fr = sr = seed
    for c in path:
        if sn == 0:
            raise VerificationError(f"{what} proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise VerificationError(f"{what} proof is too short")
    return fr, sr


def _match(expected: bytes, computed: bytes, message: str) -> None:
    if computed != expected:
        raise VerificationError(message, expected=expected, computed=computed)


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    if not 0 <= index < size:
        raise VerificationError(f"index {index} is outside a tree of size {size}")
    computed = _walk(index, size - 1, leaf, proof, "inclusion")[1]
    _match(root, computed, f"inclusion proof for index {index} does not lead to the root")


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of size1 with root1 is a prefix of the tree of size2 with root2."""
    if not 0 < size1 <= size2:
        raise VerificationError(f"sizes {size1} and {size2} are not 0 < old <= new")
    if size1 == size2:
        if proof or root1 != root2:
            raise VerificationError(
                "equal sizes need an empty proof and equal roots", expected=root1, computed=root2
            )
        return
    if not proof:
        raise VerificationError("consistency proof is empty")
    path = [root1, *proof] if size1 & (size1 - 1) == 0 else list(proof)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr, sr = _walk(fn, sn, path[0], path[1:], "consistency")
    _match(root1, fr, "old root does not match")
    _match(root2, sr, "new root does not match")


# --- C2SP signed notes, checkpoints and cosignatures -------------------------------------------


@dataclass(frozen=True)
class VerifierKey:
    name: str
    key_id: bytes
    key_type: int
    public_key: bytes


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    body: str


def key_id(name: str, key_type: int, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([key_type]) + public_key).digest()[:4]


def valid_name(name: str) -> bool:
    """C2SP signed-note key names: non-empty, no Unicode whitespace, no '+'."""
    return bool(name) and "+" not in name and not any(ch.isspace() for ch in name)


def _check_name(name: str) -> None:
    if not valid_name(name):
        raise VerificationError("key name is empty or contains '+' or whitespace")


def parse_vkey(vkey: str) -> VerifierKey:
    """``name+keyid(hex)+base64(type || pubkey)`` with type 0x01 (log) or 0x04 (witness)."""
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3 or len(parts[1]) != 8:
        raise VerificationError("verifier key is not name+keyid+key")
    name, hex_id, encoded = parts
    _check_name(name)
    raw = unb64(encoded, "verifier key")
    if len(raw) != 33 or raw[0] not in (ED25519_TYPE, COSIGNATURE_TYPE):
        raise VerificationError("verifier key is not an Ed25519 key")
    computed = key_id(name, raw[0], raw[1:])
    if hex_id.lower() != computed.hex():
        raise VerificationError("verifier key id does not match its key")
    return VerifierKey(name, computed, raw[0], raw[1:])


def split_note(text: str) -> tuple[str, list[tuple[str, bytes]]]:
    """The note body (ending in a newline) and its signature lines as (name, raw signature).
    As C2SP signed-note and Go's note.Open: no control character but newline, the signature
    block after the LAST blank line, at most MAX_SIGNATURES lines."""
    if any(ch < " " and ch != "\n" for ch in text):
        raise VerificationError("note holds a control character")
    body, sep, sigs = text.rpartition("\n\n")
    if not sep or not sigs.endswith("\n"):
        raise VerificationError("note has no blank line before its signatures")
    lines = sigs[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise VerificationError(f"note has more than {MAX_SIGNATURES} signature lines")
    signatures = []
    for line in lines:
        name, _, encoded = line.removeprefix(SIGNATURE_PREFIX).partition(" ")
        if not line.startswith(SIGNATURE_PREFIX) or not encoded or " " in encoded:
            raise VerificationError("malformed signature line in note")
        _check_name(name)
        raw = unb64(encoded, "note signature")
        if len(raw) < 5:
            raise VerificationError("note signature is too short")
        signatures.append((name, raw))
    return body + "\n", signatures


def cosigned_message(body: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{body}".encode()


def _signature_valid(key: VerifierKey, raw: bytes, body: str) -> bool:
    if key.key_type == ED25519_TYPE:
        payload, message = raw[4:], body.encode()
    else:
        timestamp = int.from_bytes(raw[4:12], "big")
        if timestamp >= MAX_TIMESTAMP:
            raise VerificationError(f"cosignature by {key.name} has a timestamp of 2^63 or more")
        payload, message = raw[12:], cosigned_message(body, timestamp)
    if len(payload) != 64:
        raise VerificationError(f"signature by {key.name} has the wrong length")
    try:
        Ed25519PublicKey.from_public_bytes(key.public_key).verify(payload, message)
    except InvalidSignature:
        return False
    return True


def parse_checkpoint(body: str) -> Checkpoint:
    """A checkpoint note's body (origin, size, root lines, each ending in a newline) parsed,
    its signatures not checked."""
    lines = body.split("\n")
    origin, size = lines[0], lines[1] if len(lines) >= 4 else ""
    if not origin or not (size.isascii() and size.isdigit()) or size != str(int(size)):
        raise VerificationError("checkpoint body is not origin, size, root")
    root = unb64(lines[2], "checkpoint root", HASH_SIZE)
    return Checkpoint(origin, int(size), root, body)


def cosignature_valid(body: str, line: str, witness: VerifierKey) -> bool:
    """Whether ``line`` (one signature line) is ``witness``'s valid cosignature of ``body``."""
    try:
        _, signatures = split_note(f"{body}\n{line}")
        if len(signatures) != 1 or witness.key_type != COSIGNATURE_TYPE:
            return False
        name, raw = signatures[0]
        return (name, raw[:4]) == (witness.name, witness.key_id) and _signature_valid(
            witness, raw, body
        )
    except VerificationError:
        return False


def cosigners(text: str, witnesses: Sequence[VerifierKey]) -> list[str]:
    """The names of the ``witnesses`` whose valid cosignature ``text`` (a note) carries; the
    log's own signature is not checked here."""
    body, _ = split_note(text)
    lines = text[len(body) + 1 :].splitlines(keepends=True)
    return [w.name for w in witnesses if any(cosignature_valid(body, x, w) for x in lines)]


def verify_checkpoint(
    text: str,
    log_key: VerifierKey,
    witnesses: Sequence[VerifierKey] = (),
    required: int | None = None,
) -> Checkpoint:
    """A checkpoint signed by the log, and cosigned by ``required`` of the witnesses given
    (default: every one); signatures by unknown keys are ignored."""
    body, signatures = split_note(text)
    cp = parse_checkpoint(body)
    origin = cp.origin
    if origin != log_key.name:
        raise VerificationError(f"checkpoint origin {origin!r} is not the key's {log_key.name!r}")
    known = {(k.name, k.key_id): k for k in (log_key, *witnesses)}
    valid: set[str] = set()
    for name, raw in signatures:
        key = known.get((name, raw[:4]))
        if key is not None:
            if not _signature_valid(key, raw, body):
                raise VerificationError(f"invalid signature by {name}")
            valid.add(name)
    missing = [k.name for k in (log_key, *witnesses) if k.name not in valid]
    need = len(witnesses) if required is None else required
    cosigned = len(witnesses) - len([name for name in missing if name != log_key.name])
    if log_key.name in missing or cosigned < need:
        counted = f" ({cosigned} of the {need} witnesses required)" if need < len(witnesses) else ""
        raise VerificationError(
            f"checkpoint lacks a valid signature by {', '.join(missing)}{counted}"
        )
    return cp


def verify_entries(lines: Iterable[bytes], checkpoint: Checkpoint) -> None:
    """Entries (canonical JSON, one per line, in order) rebuild the checkpoint's tree exactly."""
    data = [line.rstrip(b"\n") for line in lines]
    for index, entry in enumerate(data):
        try:
            recorded = json.loads(entry).get("index")
        except (ValueError, AttributeError):
            raise VerificationError(f"entry {index} is not a JSON object") from None
        if recorded != index:
            raise VerificationError(f"entry {index} records index {recorded}")
    if len(data) != checkpoint.size:
        raise VerificationError(f"{len(data)} entries, checkpoint says {checkpoint.size}")
    computed = tree_hash(leaf_hashes(data))
    _match(checkpoint.root, computed, "entries do not rebuild the checkpoint root")


# --- command line -------------------------------------------------------------------------------

COMMANDS = ("checkpoint", "entries", "inclusion", "consistency")
WHAT = "a signed checkpoint note, entries as JSON lines, an inclusion or a consistency proof"


def _verify_proof(args: argparse.Namespace) -> tuple[int, bytes]:
    """Check the proof in FILE; the tree size and root it proves against."""
    doc = json.loads(Path(args.file).read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or not isinstance(doc.get("proof"), list):
        raise VerificationError(f"{args.file}: not a proof (a JSON object with a proof list)")
    proof = [unb64(str(h), "proof hash", HASH_SIZE) for h in doc["proof"]]
    if args.command == "consistency":
        size, root = int(str(doc["new_size"])), unb64(str(doc["new_root"]), "root", HASH_SIZE)
        old = unb64(str(doc["old_root"]), "old root", HASH_SIZE)
        verify_consistency(int(str(doc["old_size"])), size, proof, old, root)
        return size, root
    size, root = int(str(doc["tree_size"])), unb64(str(doc["root_hash"]), "root", HASH_SIZE)
    leaf = unb64(str(doc["leaf_hash"]), "leaf hash", HASH_SIZE)
    if args.entry:
        leaf = leaf_hash(Path(args.entry).read_bytes().rstrip(b"\n"))
    verify_inclusion(int(str(doc["index"])), size, leaf, proof, root)
    return size, root


def key_argument(value: str) -> VerifierKey:
    """A ``--vkey``/``--witness`` value: the key itself, or a file holding it (as `custodiet
    ledger key > log.vkey` writes it). A malformed key is a usage error (ValueError), never a
    verification failure."""
    text = Path(value).read_text(encoding="utf-8") if Path(value).is_file() else value
    try:
        return parse_vkey(text)
    except VerificationError as exc:
        raise ValueError(f"not a verifier key: {exc}") from None


def _run(args: argparse.Namespace, note: str | None) -> str:
    witnesses = [key_argument(w) for w in args.witness]
    log_key = key_argument(args.vkey) if args.vkey else None
    text = Path(note).read_text(encoding="utf-8") if note else None
    cp = None
    if text is not None:
        assert log_key is not None  # main() asks for --vkey whenever there is a checkpoint
        cp = verify_checkpoint(text, log_key, witnesses, args.witnesses_required)
    if cp and args.command == "checkpoint":
        return f"checkpoint verified: {cp.origin} size {cp.size} root {b64(cp.root)}"
    if cp and args.command == "entries":
        with Path(args.file).open("rb") as lines:
            verify_entries(lines, cp)
        return f"{cp.size} entries verified against root {b64(cp.root)}"
    size, root = _verify_proof(args)
    if cp and (cp.size, cp.root) != (size, root):
        raise VerificationError("proof is for another tree than the checkpoint")
    return f"{args.command} proof verified at size {size}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m custodiet.ledger.verify",
        description="The standalone verifier of a custodiet ledger (standard library and "
        "cryptography only): RFC 9162 proofs, C2SP signed notes, checkpoints and cosignatures. "
        "Exit 0 verified, 1 not verified, 2 usage or unreadable input.",
    )
    parser.add_argument("command", choices=COMMANDS, help="what FILE holds")
    parser.add_argument("file", help=WHAT + " (as `custodiet ledger` prints them)")
    parser.add_argument(
        "--vkey", help="the log's verifier key, or a file holding it (needed for a checkpoint)"
    )
    parser.add_argument(
        "--witness", action="append", default=[], help="a required witness's vkey, or its file"
    )
    parser.add_argument(
        "--witnesses-required",
        type=int,
        metavar="N",
        help="how many of the --witness keys must have cosigned (default: every one)",
    )
    parser.add_argument("--checkpoint", help="a signed checkpoint the proof or entries must match")
    parser.add_argument("--entry", help="inclusion: the entry's canonical JSON, hashed as the leaf")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    note = args.file if args.command == "checkpoint" else args.checkpoint
    missing = "--checkpoint" if args.command == "entries" and not note else "--vkey"
    if missing == "--checkpoint" or (note and not args.vkey):
        print(f"error: {args.command} needs {missing}", file=sys.stderr)
        return 2
    required = args.witnesses_required
    if required is not None and not 1 <= required <= len(args.witness):
        print(
            "error: --witnesses-required must be between 1 and the --witness count", file=sys.stderr
        )
        return 2
    try:
        print(_run(args, note))
    except VerificationError as exc:
        pairs = (("expected", exc.expected), ("computed", exc.computed))
        evidence = "".join(f"\n{label}: {b64(value)}" for label, value in pairs if value)
        print(f"NOT VERIFIED: {exc}{evidence}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: cannot read input ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
