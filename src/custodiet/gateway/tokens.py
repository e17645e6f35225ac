"""Keyed pseudonyms: the same identifier gives the same token within one agreement, and only there.

key   = HKDF-SHA256(workspace secret,
                    info = b"custodiet/token/v2/" + agreement id + 0x00 + reviewer)
token = base64url(HMAC-SHA256(key, domain || 0x00 || normalized value))[:12]

Twelve characters (72 bits) so DuckDB stores each token inline, which keeps joins and distinct
counts on tokens as fast as on the raw identifiers. The domain separates kinds of identifier:
SSNs, TINs and EINs share the ``tin`` domain (a person's SSN is their TIN), so a payee in
``payments.payee_tin`` meets the same person in ``deaths.ssn``; a routing number never links to a
TIN. Within that domain an SSN and an EIN with the same nine digits are different taxpayers, so
the normalized value keeps the type: a column classified as SSN or EIN says which; in a mixed TIN
column the IRS hyphenation does (``12-3456789`` is an EIN; ``123-45-6789`` or nine bare digits
are taken as an SSN). Tokens are stable across versions of one agreement and differ between
agreements, and between reviewers: an agreement id that changed hands would not share tokens.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from custodiet.errors import SystemFailure

TOKEN_LENGTH = 12
_TOKEN_BYTES = 9  # 9 bytes are exactly 12 base64 characters
_INFO_PREFIX = b"custodiet/token/v2/"
_NON_DIGITS = re.compile(r"[^0-9]")
_SPACES = re.compile(r"\s+")
_EIN_LAYOUT = re.compile(r"\s*[0-9]{2}-[0-9]{7}\s*")


def _digits(value: str) -> str:
    return value if value.isascii() and value.isdigit() else _NON_DIGITS.sub("", value)


def _typed(prefix: str) -> Callable[[str], str]:
    def normalize(value: str) -> str:
        digits = _digits(value)
        return prefix + digits if digits else ""

    return normalize


def _tin(value: str) -> str:
    """A TIN of unknown type: an EIN if written with the IRS hyphenation, else an SSN."""
    return (_ein if _EIN_LAYOUT.fullmatch(value) else _ssn)(value)


_ssn = _typed("ssn:")
_ein = _typed("ein:")


def _name(value: str) -> str:
    return _SPACES.sub(" ", value.casefold()).strip()


# identifier kind -> (token domain, normalization)
DOMAINS: dict[str, tuple[str, Callable[[str], str]]] = {
    "ssn": ("tin", _ssn),
    "tin": ("tin", _tin),
    "ein": ("tin", _ein),
    "routing": ("routing", _digits),
    "account": ("account", _digits),
    "name": ("name", _name),
}


def domain_of(kind: str | None) -> tuple[str, Callable[[str], str]]:
    """The token domain and normalization for an identifier kind (unknown kinds: exact text)."""
    if kind is None or kind not in DOMAINS:
        return ("other", str.strip)
    return DOMAINS[kind]


def read_secret(path: Path) -> bytes:
    try:
        secret = path.read_bytes()
    except OSError as exc:
        raise SystemFailure(
            f"{path}: cannot read the workspace secret ({type(exc).__name__})",
            hint="check the workspace's keys/ directory and its permissions",
            code="CUST140",
        ) from None
    if len(secret) < 16:
        raise SystemFailure(
            f"{path}: the workspace secret is too short", code="CUST141", hint="re-create it"
        )
    return secret


def agreement_key(secret: bytes, agreement_id: str, reviewer: str) -> bytes:
    """The token key of one agreement and its reviewer (HKDF-SHA256, no salt; the info names
    both, so tokens are never shared across agreements or reviewers)."""
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=_INFO_PREFIX + agreement_id.encode("utf-8") + b"\x00" + reviewer.encode("utf-8"),
    )
    return hkdf.derive(secret)


class Tokenizer:
    """Computes tokens of one identifier kind under one agreement key.

    HMAC-SHA256 is spelled out (inner and outer SHA-256 states prepared once, copied per value)
    because it is computed once per distinct identifier when a projection is built: millions of
    times, where the ``hmac`` module's per-call overhead would dominate.
    """

    def __init__(self, key: bytes, kind: str | None) -> None:
        domain, self.normalize = domain_of(kind)
        block = (
            key.ljust(64, b"\0")
            if len(key) <= 64
            else hashlib.sha256(key).digest().ljust(64, b"\0")
        )
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._inner.update(domain.encode("ascii") + b"\x00")
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def packed_tokens(self, normalized: Iterable[str]) -> bytes:
        """The tokens of normalized, non-empty values, concatenated: 12 ASCII bytes each.

        Each token is the base64url text of the MAC's first 9 bytes (= its first 12 characters),
        and 9 bytes encode to exactly 12 characters, so encoding the concatenation at once gives
        the same text as encoding each MAC on its own.
        """
        inner_copy, outer_copy = self._inner.copy, self._outer.copy

        def prefix(value: str) -> bytes:
            inner = inner_copy()
            inner.update(value.encode("utf-8"))
            outer = outer_copy()
            outer.update(inner.digest())
            return outer.digest()[:_TOKEN_BYTES]

        return base64.urlsafe_b64encode(b"".join([prefix(v) for v in normalized]))

    def token(self, value: str) -> str | None:
        """The token of one value; a value that normalizes to nothing has none (links nothing)."""
        normalized = self.normalize(value)
        return self.packed_tokens([normalized]).decode("ascii") if normalized else None

    def tokens(self, values: Iterable[str | None]) -> list[str | None]:
        """Tokens for many values; ``None`` stays ``None`` (a missing identifier links nothing)."""
        token = self.token
        return [None if v is None else token(v) for v in values]
