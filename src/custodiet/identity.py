"""Principals' keys and signed requests: who is acting, proven by their own Ed25519 key.

A principal's key pair is OpenSSH format (``ssh-keygen -t ed25519`` keys work; ``custodiet key
new`` makes one). The private key never enters the workspace: the client signs each request
object — the action, its arguments, the log's origin, a time and a nonce — and the core checks
the signature against the key registered on the ledger (``ledger.replay``) before anything
happens. The signed request becomes part of the action's ledger entry.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodiet.errors import InputError
from custodiet.ledger.replay import request_message, ssh_ed25519_key

KEY_ENV = "CUSTODIET_KEY"


@dataclass(frozen=True)
class SignedRequest:
    """A request object and its signature, exactly as they go on the ledger."""

    request: dict[str, Any]
    signature: str

    @property
    def principal(self) -> str:
        return str(self.request.get("principal", ""))

    @property
    def action(self) -> str:
        return str(self.request.get("action", ""))

    @property
    def args(self) -> dict[str, Any]:
        args = self.request.get("args")
        return args if isinstance(args, dict) else {}

    def document(self) -> dict[str, Any]:
        return {"request": self.request, "signature": self.signature}

    @classmethod
    def from_document(cls, doc: Any) -> SignedRequest:
        if (
            not isinstance(doc, dict)
            or not isinstance(doc.get("request"), dict)
            or not isinstance(doc.get("signature"), str)
        ):
            raise InputError(
                "a signed request is an object with 'request' and 'signature'",
                hint="sign requests with the custodiet client (`--as NAME --key FILE`)",
                code="CUST530",
            )
        return cls(doc["request"], doc["signature"])


def sign_request(
    key: Ed25519PrivateKey,
    principal: str,
    origin: str,
    action: str,
    args: Mapping[str, Any],
    *,
    now: datetime | None = None,
) -> SignedRequest:
    """``principal``'s signed request to do ``action`` with ``args`` on the log ``origin``."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    request = {
        "v": 1,
        "origin": origin,
        "principal": principal,
        "action": action,
        "args": dict(args),
        "time": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "nonce": secrets.token_hex(16),
    }
    try:
        message = request_message(request)
    except UnicodeEncodeError:
        raise InputError(
            "an argument is not valid UTF-8 text (e.g. the SQL)",
            hint="check the terminal's encoding and the text you passed",
            code="CUST530",
        ) from None
    except ValueError:
        raise InputError(
            "an argument has no canonical JSON form (a number beyond 2**53?)",
            code="CUST530",
        ) from None
    signature = base64.b64encode(key.sign(message)).decode("ascii")
    return SignedRequest(request, signature)


def new_key(path: Path, comment: str = "custodiet") -> str:
    """Write a new Ed25519 key pair: ``path`` (OpenSSH private key, 0600) and ``path.pub``.

    Refuses to overwrite either file. Returns the public key line."""
    public_path = path.with_name(path.name + ".pub")
    for target in (path, public_path):
        if target.exists():
            raise InputError(
                f"{target}: exists; custodiet never overwrites a key",
                hint="choose another --out, or remove the old key yourself",
                code="CUST531",
            )
    if not path.parent.is_dir():
        raise InputError(f"{path.parent}: no such directory", code="CUST531")
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    line = f"{public.decode('ascii')} {comment}".strip()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private)
    public_path.write_text(line + "\n", encoding="ascii")
    return line


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """An Ed25519 private key from an OpenSSH or PEM (PKCS#8) file, unencrypted or with the
    passphrase in ``$CUSTODIET_KEY_PASSPHRASE``; InputError naming the file otherwise."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"{path}: cannot read the private key ({type(exc).__name__})",
            hint="pass your key with --key FILE (or $CUSTODIET_KEY)",
            code="CUST532",
        ) from None
    passphrase = os.environ.get("CUSTODIET_KEY_PASSPHRASE")
    secret = passphrase.encode() if passphrase else None
    loaders = (serialization.load_ssh_private_key, serialization.load_pem_private_key)
    for loader in loaders:
        try:
            key = loader(data, password=secret)
        except UnsupportedAlgorithm:  # an encrypted OpenSSH key: its KDF needs bcrypt
            raise InputError(
                f"{path}: a passphrase-protected OpenSSH key needs the bcrypt package to open",
                hint="install bcrypt, or use an unencrypted key or an encrypted PEM (PKCS#8) key",
                code="CUST532",
            ) from None
        except (ValueError, TypeError, IndexError):
            continue
        if isinstance(key, Ed25519PrivateKey):
            return key
        break
    raise InputError(
        f"{path}: not an Ed25519 private key (OpenSSH or PEM)",
        hint="make one with `custodiet key new --out FILE` or `ssh-keygen -t ed25519`",
        code="CUST532",
    )


def load_public_key(path: Path) -> str:
    """The ``ssh-ed25519 AAAA...`` public key in ``path`` (comment dropped), validated."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{path}: cannot read the public key ({type(exc).__name__})",
            hint="give the .pub file written by `custodiet key new` or ssh-keygen",
            code="CUST533",
        ) from None
    try:
        ssh_ed25519_key(text)
    except ValueError as exc:
        raise InputError(f"{path}: {exc}", hint="use an Ed25519 key", code="CUST533") from None
    return " ".join(text.split()[:2])


def fingerprint(pubkey: str) -> str:
    """``SHA256:...`` as ``ssh-keygen -l`` prints it for an OpenSSH public key line."""
    blob = base64.b64decode(pubkey.split()[1])
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")
    return f"SHA256:{digest}"


def resolve_key_path(explicit: Path | None, environ: Mapping[str, str] | None = None) -> Path:
    """``--key``, else ``$CUSTODIET_KEY``; InputError when neither is given."""
    if explicit is not None:
        return explicit
    env = os.environ if environ is None else environ
    if env.get(KEY_ENV):
        return Path(env[KEY_ENV])
    raise InputError(
        "acting as a principal needs that principal's private key",
        hint="pass --key FILE or set $CUSTODIET_KEY (make a key with `custodiet key new`)",
        code="CUST534",
    )
