"""Real-format identifiers, derived from integer keys by seeded bijections.

Every person has a global index, every vendor a global index, every bank account a key;
each maps to exactly one identifier and no two map to the same one, so uniqueness holds
across chunks without remembering anything. SSNs are written ``AAA-GG-SSSS`` and EINs
``PP-NNNNNNN``: the two formats can never collide, so a payee TIN is one or the other.
"""

from __future__ import annotations

from math import gcd

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# SSA never issues area 000, 666 or 900-999; python-stdnum also blacklists three advertised
# numbers, so their areas are left out entirely.
_BLACKLISTED_AREAS = frozenset({78, 219, 457})
SSN_AREAS = np.array(
    [a for a in range(1, 900) if a != 666 and a not in _BLACKLISTED_AREAS], dtype=np.int64
)
_SSN_SPACE = len(SSN_AREAS) * 99 * 9999

# Valid EIN prefixes as published by the IRS.
EIN_PREFIXES = np.array(
    [
        *(1, 2, 3, 4, 5, 6, 10, 11, 12, 13, 14, 15, 16, 20, 21, 22, 23, 24, 25, 26, 27),
        *(30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48),
        *(50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68),
        *(71, 72, 73, 74, 75, 76, 77, 80, 81, 82, 83, 84, 85, 86, 87, 88),
        *(90, 91, 92, 93, 94, 95, 98, 99),
    ],
    dtype=np.int64,
)
_EIN_SERIALS = 10**7
_ACCOUNT_CORE = 10**9
ROUTING_POOL_SIZE = 512

# Account keys: 3 * owner index + kind, so persons, vendors and fraud rings never share one.
PERSON_ACCOUNT, VENDOR_ACCOUNT, RING_ACCOUNT = 0, 1, 2
MAX_PEOPLE = (_ACCOUNT_CORE // 3) - 1


class Bijection:
    """``x -> (a*x + b) mod space``: a seeded permutation of ``range(space)``."""

    def __init__(self, seed: int, label: int, space: int) -> None:
        rng = np.random.default_rng([seed, label])
        a = int(rng.integers(space // 3, space - 1))
        while gcd(a, space) != 1:
            a += 1
        self.a, self.b, self.space = a, int(rng.integers(0, space)), space

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x.astype(np.int64) * self.a + self.b) % self.space


def digits(values: np.ndarray, width: int) -> pa.Array:
    """Non-negative integers as zero-padded decimal strings."""
    text = pc.cast(pa.array(values.astype(np.int64)), pa.string())
    return pc.utf8_lpad(text, width=width, padding="0")


def join(parts: list[pa.Array], separator: str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, separator)


class Identifiers:
    """The identifier scheme of one generation run (one seed)."""

    def __init__(self, seed: int) -> None:
        self._ssn = Bijection(seed, 1, _SSN_SPACE)
        self._ein = Bijection(seed, 2, _EIN_SERIALS * len(EIN_PREFIXES))
        self._account = Bijection(seed, 3, _ACCOUNT_CORE)
        self._routing = routing_pool(np.random.default_rng([seed, 4]), ROUTING_POOL_SIZE)

    def ssn(self, person: np.ndarray) -> pa.Array:
        position = self._ssn(person)
        serial = position % 9999 + 1
        group = (position // 9999) % 99 + 1
        area = SSN_AREAS[position // (9999 * 99)]
        return join([digits(area, 3), digits(group, 2), digits(serial, 4)], "-")

    def ein(self, vendor: np.ndarray) -> pa.Array:
        position = self._ein(vendor)
        prefix = EIN_PREFIXES[position % len(EIN_PREFIXES)]
        serial = position // len(EIN_PREFIXES)
        return join([digits(prefix, 2), digits(serial, 7)], "-")

    def routing(self, account: np.ndarray) -> pa.Array:
        """Routing number of each account key (null where the key is negative)."""
        chosen = self._routing.take(pa.array(_mix(account, 11) % ROUTING_POOL_SIZE))
        return _null_where_negative(chosen, account)

    def account(self, account: np.ndarray) -> pa.Array:
        """Account numbers of 9-12 digits (null where the key is negative); unique per key."""
        safe = np.maximum(account, 0)
        core = digits(self._account(safe), 9)
        prefix = _first_characters(digits(_mix(safe, 47) % 1000, 3), _mix(safe, 29) % 4)
        return _null_where_negative(pc.binary_join_element_wise(prefix, core, ""), account)


def _first_characters(text: pa.Array, lengths: np.ndarray) -> pa.Array:
    """The first ``lengths[i]`` characters of each string (lengths 0-3)."""
    choices = [pc.utf8_slice_codeunits(text, start=0, stop=k) for k in range(4)]
    return pc.choose(pa.array(lengths.astype(np.int8)), *choices)


def _mix(values: np.ndarray, salt: int) -> np.ndarray:
    """A cheap deterministic hash of non-negative integer keys."""
    x = (values.astype(np.uint64) + np.uint64(salt)) * np.uint64(0x9E3779B97F4A7C15)
    x ^= x >> np.uint64(29)
    return (x % np.uint64(2**62)).astype(np.int64)


def _null_where_negative(values: pa.Array, keys: np.ndarray) -> pa.Array:
    return pc.if_else(pa.array(keys < 0), pa.nulls(len(keys), pa.string()), values)


def routing_pool(rng: np.random.Generator, size: int) -> pa.Array:
    """Distinct ABA routing numbers: a Federal Reserve district prefix and a valid check digit."""
    districts = np.concatenate([np.arange(1, 13), np.arange(21, 33)])
    numbers: set[str] = set()
    while len(numbers) < size:
        body = f"{rng.choice(districts):02d}" + "".join(map(str, rng.integers(0, 10, 6)))
        numbers.add(body + str(aba_check_digit(body)))
    return pa.array(sorted(numbers))


def aba_check_digit(body: str) -> int:
    """The ninth digit making 3(d1+d4+d7) + 7(d2+d5+d8) + (d3+d6+d9) a multiple of 10."""
    d = [int(c) for c in body]
    total = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + d[2] + d[5]
    return (-total) % 10
