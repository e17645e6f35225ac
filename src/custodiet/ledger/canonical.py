"""RFC 8785 (JCS) canonical JSON, fast for what ledger entries hold.

The pure-Python ``rfc8785`` package costs tens of microseconds per entry, which would cap
group-committed appends far below target. Here strings go through the json module's C escaper
(it escapes exactly JCS's set: quote, backslash, control characters, lowercase ``\\u00xx``),
integers, booleans, null, arrays and objects are assembled directly, and only floats are
delegated to ``rfc8785`` (ECMAScript number formatting). A property test checks byte equality
with ``rfc8785.dumps``.
"""

from __future__ import annotations

from bisect import bisect
from collections.abc import Iterable, Mapping, Sequence
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from operator import itemgetter
from typing import Any

import rfc8785

SAFE_INTEGER = 2**53 - 1


def _reject(value: Any) -> Any:
    raise NotCanonical(f"unsupported type {type(value).__name__}")


# The json module's C encoder agrees with JCS on str, int, bool, null, arrays, and on objects
# whose keys are ASCII (code-point order is UTF-16 order there); floats differ, so they are never
# sent through it. Built once: json.dumps would rebuild it on every call with these options.
_C_ITERENCODE = c_make_encoder(None, _reject, encode_basestring, None, ":", ",", True, False, False)


def _c_encode(value: Any) -> str:
    return "".join(_C_ITERENCODE(value, 0))


class NotCanonical(ValueError):
    """The value has no RFC 8785 form (a non-JSON type, a non-str key, NaN, a huge integer...)."""


def utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def sorted_pairs(pairs: Iterable[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Object members in JCS order: by UTF-16 code units (code points agree when all ASCII)."""
    items = list(pairs)
    try:
        plain = "".join([key for key, _ in items]).isascii()
    except TypeError:
        raise NotCanonical("object keys must be strings") from None
    if plain:
        return sorted(items, key=itemgetter(0))
    return sorted(items, key=lambda kv: utf16_key(kv[0]))


def text(value: Any) -> str:
    """The JCS text of a JSON value."""
    if isinstance(value, str):
        return str(encode_basestring(value))
    if value is None or isinstance(value, bool):
        return "null" if value is None else ("true" if value else "false")
    if isinstance(value, int):
        if not -SAFE_INTEGER <= value <= SAFE_INTEGER:
            raise NotCanonical("integer beyond 2**53 - 1")
        return int.__repr__(value)
    if isinstance(value, float):
        try:
            return rfc8785.dumps(value).decode()
        except rfc8785.CanonicalizationError as exc:
            raise NotCanonical(str(exc)) from None
    if isinstance(value, list | tuple):
        return "[" + ",".join(text(item) for item in value) + "]"
    if isinstance(value, dict):
        members = sorted_pairs(value.items())
        return "{" + ",".join(f"{encode_basestring(k)}:{text(v)}" for k, v in members) + "}"
    raise NotCanonical(f"unsupported type {type(value).__name__}")


def encoded(value: str) -> bytes:
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise NotCanonical("text with lone surrogates") from None


def dumps(value: Any) -> bytes:
    return encoded(text(value))


_SCALARS = frozenset({str, bool, type(None)})
_FLAT = _SCALARS | {int}


def _plain(value: Any) -> bool:
    """True when the C encoder's output for ``value`` is its JCS form."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is int:
        return bool(-SAFE_INTEGER <= value <= SAFE_INTEGER)
    return (kind is list or kind is tuple) and all(map(_plain, value))


def _plain_members(entry: Mapping[str, Any]) -> bool:
    """True when every key is ASCII text and every value is ``_plain``; the common case (text,
    integers, null, booleans) is decided without a Python call per member."""
    try:
        if not "".join(entry).isascii():
            return False
    except TypeError:
        return False
    values = entry.values()
    if not _FLAT.issuperset(map(type, values)):
        return all(map(_plain, values))
    ints = [value for value in values if type(value) is int]
    return not ints or -SAFE_INTEGER <= min(ints) <= max(ints) <= SAFE_INTEGER


def object_parts(entry: Mapping[str, Any], bounds: Sequence[str]) -> list[bytes]:
    """The object's members in JCS order, split into groups at the (absent, sorted, ASCII)
    keys ``bounds``, each group as canonical ``"k":v,...`` bytes; splicing the bound members
    between the groups gives the JCS form of the whole object."""
    if _plain_members(entry):
        # encode once with null placeholders at the bounds, then cut there: with no nested
        # object, an unescaped '"bound":null' can only be the placeholder member itself
        remainder = encoded(_c_encode({**entry, **dict.fromkeys(bounds)}))[1:-1]
        parts = []
        for bound in bounds:
            part, _, remainder = remainder.partition(b'"%s":null' % bound.encode())
            parts.append(part.strip(b","))
        return [*parts, remainder.strip(b",")]
    limits = [utf16_key(bound) for bound in bounds]
    members: list[list[str]] = [[] for _ in range(len(bounds) + 1)]
    for key, value in sorted_pairs(entry.items()):
        members[bisect(limits, utf16_key(key))].append(f"{encode_basestring(key)}:{text(value)}")
    return [encoded(",".join(group)) for group in members]
