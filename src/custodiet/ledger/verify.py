"""The standalone verifier of a custodiet ledger: standard library + ``cryptography`` only.

Everything an overseer needs to check the log independently, readable in one sitting:

* hashing (RFC 9162 §2.1): leaf ``SHA-256(0x00 || data)``, node ``SHA-256(0x01 || l || r)``;
* inclusion and consistency proof verification (RFC 9162 §2.1.3.2 and §2.1.4.2);
* C2SP signed notes, tlog-checkpoint bodies and tlog-cosignature/v1 witness cosignatures.

Run ``python -m custodiet.ledger.verify --help``. Exit 0 verified, 1 not verified, 2 usage or IO.
This module imports nothing from custodiet: the writer imports its hashing from here.
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
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HASH_SIZE = 32
ED25519_TYPE = 0x01
COSIGNATURE_TYPE = 0x04
SIGNATURE_PREFIX = "\u2014 "


class VerificationError(Exception):
    """The log, a proof or a note does not verify; index, expected and computed are evidence."""

    def __init__(self, message: str, *, index: int | None = None, **hashes: bytes) -> None:
        super().__init__(message)
        self.index = index
        self.expected, self.computed = hashes.get("expected"), hashes.get("computed")


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise VerificationError(f"{what} is not valid base64") from None


def hash_from_b64(text: str, what: str) -> bytes:
    """A hash given in base64; it must decode to exactly 32 bytes."""
    raw = unb64(text, what)
    if len(raw) != HASH_SIZE:
        raise VerificationError(f"{what} is {len(raw)} bytes, not {HASH_SIZE}")
    return raw


def tree_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes (RFC 9162 §2.1.1), level by level; the empty tree is SHA-256('')."""
    if not leaf_hashes:
        return hashlib.sha256(b"").digest()
    level = list(leaf_hashes)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        level = paired + level[len(level) - len(level) % 2 :]
    return level[0]


def _check_hashes(hashes: Iterable[bytes]) -> None:
    for h in hashes:
        if len(h) != HASH_SIZE:
            raise VerificationError(f"a hash is {len(h)} bytes, not {HASH_SIZE}")


def _shift_until_odd(fn: int, sn: int) -> tuple[int, int]:
    while fn and not fn & 1:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root implied by an inclusion proof (RFC 9162 §2.1.3.2); raises if it is malformed."""
    if not 0 <= index < size:
        raise VerificationError(f"index {index} is outside a tree of size {size}")
    _check_hashes([leaf, *proof])
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise VerificationError("inclusion proof is too long", index=index)
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            fn, sn = _shift_until_odd(fn, sn)
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise VerificationError("inclusion proof is too short", index=index)
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    computed = root_from_inclusion(index, size, leaf, proof)
    if computed != root:
        raise VerificationError(
            f"inclusion proof for index {index} does not lead to the root",
            index=index,
            expected=root,
            computed=computed,
        )


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of size1 with root1 is a prefix of the tree of size2 with root2."""
    if not 0 <= size1 <= size2:
        raise VerificationError(f"sizes {size1} and {size2} are not in order")
    if size1 == 0:
        raise VerificationError("a consistency proof needs a non-empty old tree")
    if size1 == size2:
        if proof:
            raise VerificationError("consistency proof for equal sizes must be empty")
        if root1 != root2:
            raise VerificationError(
                f"two different roots for size {size1}", expected=root1, computed=root2
            )
        return
    _check_hashes([root1, root2, *proof])
    if not proof:
        raise VerificationError("consistency proof is empty")
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            fn, sn = _shift_until_odd(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise VerificationError("consistency proof is too short")
    if fr != root1:
        raise VerificationError("old root does not match", expected=root1, computed=fr)
    if sr != root2:
        raise VerificationError("new root does not match", expected=root2, computed=sr)


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
    cosigners: tuple[str, ...] = ()


def key_id(name: str, key_type: int, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([key_type]) + public_key).digest()[:4]


def _check_name(name: str) -> None:
    if not name or "+" in name or any(ch.isspace() for ch in name):
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
    """The note body (ending in a newline) and its signature lines as (name, raw signature)."""
    body, sep, sigs = text.partition("\n\n")
    if not sep or not text.endswith("\n"):
        raise VerificationError("note has no blank line before its signatures")
    lines = sigs[:-1].split("\n")
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
        payload, message = raw[12:], cosigned_message(body, int.from_bytes(raw[4:12], "big"))
    if len(payload) != 64:
        raise VerificationError(f"signature by {key.name} has the wrong length")
    try:
        Ed25519PublicKey.from_public_bytes(key.public_key).verify(payload, message)
    except InvalidSignature:
        return False
    return True


def parse_checkpoint_body(body: str) -> tuple[str, int, bytes]:
    lines = body.split("\n")
    size = lines[1] if len(lines) >= 4 and lines[1].isascii() and lines[1].isdigit() else ""
    if not lines[0] or not size or size != str(int(size)):
        raise VerificationError("checkpoint body is not origin, size, root")
    return lines[0], int(size), hash_from_b64(lines[2], "checkpoint root")


def verify_checkpoint(
    text: str, log_key: VerifierKey, witnesses: Sequence[VerifierKey] = ()
) -> Checkpoint:
    """A checkpoint signed by the log, and cosigned by every witness given; unknown keys ignored."""
    body, signatures = split_note(text)
    origin, size, root = parse_checkpoint_body(body)
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
    if missing:
        raise VerificationError(f"checkpoint lacks a valid signature by {', '.join(missing)}")
    return Checkpoint(origin, size, root, body, tuple(k.name for k in witnesses))


def verify_entries(lines: Iterable[bytes], checkpoint: Checkpoint) -> None:
    """Entries (canonical JSON, one per line, in order) rebuild the checkpoint's tree exactly."""
    hashes = []
    for index, line in enumerate(lines):
        data = line.rstrip(b"\n")
        try:
            recorded = json.loads(data).get("index")
        except (ValueError, AttributeError):
            raise VerificationError(f"entry {index} is not a JSON object", index=index) from None
        if recorded != index:
            raise VerificationError(f"entry {index} records index {recorded}", index=index)
        hashes.append(leaf_hash(data))
    if len(hashes) != checkpoint.size:
        raise VerificationError(f"{len(hashes)} entries, checkpoint says {checkpoint.size}")
    computed = tree_hash(hashes)
    if computed != checkpoint.root:
        raise VerificationError(
            "entries do not rebuild the checkpoint root",
            expected=checkpoint.root,
            computed=computed,
        )


# --- command line -------------------------------------------------------------------------------


def _proof_document(path: str) -> tuple[dict[str, object], list[bytes]]:
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or not isinstance(doc.get("proof"), list):
        raise VerificationError(f"{path}: not a proof (a JSON object with a proof list)")
    return doc, [hash_from_b64(str(h), "proof hash") for h in doc["proof"]]


def _checkpoint_arg(path: str, args: argparse.Namespace) -> Checkpoint:
    text, witnesses = Path(path).read_text(encoding="utf-8"), map(parse_vkey, args.witness)
    return verify_checkpoint(text, parse_vkey(args.vkey), list(witnesses))


def _run(args: argparse.Namespace) -> str:
    if args.command == "checkpoint":
        cp = _checkpoint_arg(args.note, args)
        return f"checkpoint verified: {cp.origin} size {cp.size} root {b64(cp.root)}"
    if args.command == "entries":
        cp = _checkpoint_arg(args.checkpoint, args)
        with Path(args.dump).open("rb") as lines:
            verify_entries(lines, cp)
        return f"{cp.size} entries verified against root {b64(cp.root)}"
    doc, proof = _proof_document(args.proof)
    size_key, root_key = (
        ("tree_size", "root_hash") if args.command == "inclusion" else ("new_size", "new_root")
    )
    size, root = int(str(doc[size_key])), hash_from_b64(str(doc[root_key]), "root")
    if args.command == "inclusion":
        leaf = hash_from_b64(str(doc["leaf_hash"]), "leaf hash")
        if args.entry:
            leaf = leaf_hash(Path(args.entry).read_bytes().rstrip(b"\n"))
        verify_inclusion(int(str(doc["index"])), size, leaf, proof, root)
    else:
        old = hash_from_b64(str(doc["old_root"]), "old root")
        verify_consistency(int(str(doc["old_size"])), size, proof, old, root)
    if args.checkpoint:
        cp = _checkpoint_arg(args.checkpoint, args)
        if (cp.size, cp.root) != (size, root):
            raise VerificationError("proof is for another tree than the checkpoint")
    return f"{args.command} proof verified at size {size}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m custodiet.ledger.verify", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    specs = {
        "checkpoint": ("note", "a signed checkpoint note"),
        "entries": ("dump", "entries as JSON lines (`custodiet ledger entries`)"),
        "inclusion": ("proof", "inclusion proof JSON (`custodiet ledger proof`)"),
        "consistency": ("proof", "consistency proof JSON (`custodiet ledger consistency`)"),
    }
    for command, (arg, help_text) in specs.items():
        p = sub.add_parser(command, help=f"verify {help_text}")
        p.add_argument(arg, help=help_text)
        p.add_argument("--vkey", required=command in ("checkpoint", "entries"), help="log vkey")
        p.add_argument("--witness", action="append", default=[], help="required witness vkey")
        if command != "checkpoint":
            p.add_argument("--checkpoint", required=command == "entries", help="checkpoint note")
        if command == "inclusion":
            p.add_argument("--entry", help="file holding the entry's canonical JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "checkpoint", None) and not args.vkey:
        print("error: --checkpoint needs --vkey", file=sys.stderr)
        return 2
    try:
        print(_run(args))
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
