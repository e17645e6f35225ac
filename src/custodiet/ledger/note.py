"""Signing side of C2SP signed notes: the log's Ed25519 key, checkpoint bodies, signatures."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodiet.errors import SystemFailure
from custodiet.ledger.verify import ED25519_TYPE, SIGNATURE_PREFIX, b64, key_id


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def vkey(name: str, key: Ed25519PrivateKey, key_type: int = ED25519_TYPE) -> str:
    public = raw_public(key)
    return f"{name}+{key_id(name, key_type, public).hex()}+{b64(bytes([key_type]) + public)}"


def write_private_key(path: Path) -> Ed25519PrivateKey:
    """A new key in PKCS#8 PEM, created with mode 0600 (never readable by others, even briefly)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise SystemFailure(
            f"{path}: cannot load the signing key ({type(exc).__name__})",
            hint="the key is created by `custodiet init` (a witness's by its first"
            " `custodiet ledger witness --dir DIR`)",
            code="CUST134",
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SystemFailure(f"{path}: not an Ed25519 key", code="CUST134")
    return key


def checkpoint_body(origin: str, size: int, root: bytes) -> str:
    return f"{origin}\n{size}\n{b64(root)}\n"


def signature_line(name: str, key_id_bytes: bytes, signature: bytes) -> str:
    return f"{SIGNATURE_PREFIX}{name} {b64(key_id_bytes + signature)}\n"


def sign(body: str, name: str, key: Ed25519PrivateKey) -> str:
    """A signed note: the body, a blank line, one Ed25519 signature line."""
    kid = key_id(name, ED25519_TYPE, raw_public(key))
    return f"{body}\n{signature_line(name, kid, key.sign(body.encode()))}"


def with_cosignatures(signed: str, cosignature_lines: list[str]) -> str:
    return signed + "".join(cosignature_lines)
