"""How many improper records (and look-alike decoys) to plant in one chunk, and on whom.

Planted cases are decided per chunk and use only that chunk's people, vendors and accounts,
so the rules give the same answer chunk by chunk as over the whole data.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import IntEnum

import numpy as np

PROFILES = ("stress", "realistic")
RING_SIZES = (4, 7)  # members per shared-account ring: 4 to 6 payees into one account


class Role(IntEnum):
    """What a person is planted as; BACKGROUND people follow the ordinary rules."""

    BACKGROUND = 0
    PAID_AFTER_DEATH = 1  # beneficiary still paid 1-3 months after the month of death
    DIES_EARLY_IN_MONTH = 2  # decoy: dies on the 1st or 2nd, paid on the 3rd (proper)
    TOO_OLD = 3  # beneficiary aged 116-124, no death record
    VERY_OLD = 4  # decoy: beneficiary aged 105-111
    RING_MEMBER = 5  # one of 4-6 payees paid into the same account
    REFUND_AFTER_DEATH = 6  # refund for the tax year though dead before it began
    FINAL_RETURN = 7  # decoy: died during the tax year, refund for that year (proper)
    EXCLUDED_PERSON = 8  # individual on the LEIE list who is paid nothing


@dataclass(frozen=True)
class Plan:
    """Counts planted in one chunk: people per role, and rings, vendors, copied payments."""

    paid_after_death: int
    dies_early_in_month: int
    too_old: int
    very_old: int
    rings: int
    refund_after_death: int
    final_return: int
    excluded_person: int
    duplicates: int
    excluded_vendors: int
    lapsed_vendors: int  # decoy: exclusion ended before the vendor was paid


# Per 100,000 people under the stress profile; "improper" counts are 10x rarer when realistic.
_STRESS_PER_100K = Plan(
    paid_after_death=50,
    dies_early_in_month=30,
    too_old=8,
    very_old=30,
    rings=15,
    refund_after_death=80,
    final_return=40,
    excluded_person=20,
    duplicates=80,
    excluded_vendors=8,
    lapsed_vendors=8,
)
_IMPROPER = frozenset(
    {"paid_after_death", "too_old", "rings", "refund_after_death", "duplicates", "excluded_vendors"}
)
_STRESS_FLOOR = 5  # so that small test runs still hold every pattern and decoy


def plan_for(people: int, profile: str) -> Plan:
    """The planted counts for a chunk of ``people`` under ``profile``."""
    counts: dict[str, int] = {}
    for field in fields(Plan):
        rate = getattr(_STRESS_PER_100K, field.name) * people / 100_000
        if profile == "realistic" and field.name in _IMPROPER:
            rate /= 10
        count = round(rate)
        if profile == "stress":
            count = max(count, _STRESS_FLOOR)
        counts[field.name] = count
    return _fitted(Plan(**counts), people)


def _fitted(plan: Plan, people: int) -> Plan:
    """Scale the plan down so planted people use at most a quarter of the chunk."""
    planted = planted_people(plan)
    if planted * 4 <= people:
        return plan
    factor = people / (4 * planted)
    return Plan(**{f.name: int(getattr(plan, f.name) * factor) for f in fields(Plan)})


def planted_people(plan: Plan) -> int:
    person_roles = (
        plan.paid_after_death
        + plan.dies_early_in_month
        + plan.too_old
        + plan.very_old
        + plan.refund_after_death
        + plan.final_return
        + plan.excluded_person
    )
    return person_roles + plan.rings * (RING_SIZES[1] - 1)


@dataclass(frozen=True)
class Roles:
    """Per person: planted role, ring number (-1 if none) and couple partner (-1 if none)."""

    role: np.ndarray
    ring: np.ndarray
    partner: np.ndarray


def assign_roles(rng: np.random.Generator, people: int, plan: Plan) -> Roles:
    order = rng.permutation(people)
    role = np.full(people, Role.BACKGROUND, dtype=np.int8)
    ring = np.full(people, -1, dtype=np.int64)
    taken = 0
    for kind, count in (
        (Role.PAID_AFTER_DEATH, plan.paid_after_death),
        (Role.DIES_EARLY_IN_MONTH, plan.dies_early_in_month),
        (Role.TOO_OLD, plan.too_old),
        (Role.VERY_OLD, plan.very_old),
        (Role.REFUND_AFTER_DEATH, plan.refund_after_death),
        (Role.FINAL_RETURN, plan.final_return),
        (Role.EXCLUDED_PERSON, plan.excluded_person),
    ):
        role[order[taken : taken + count]] = kind
        taken += count
    sizes = rng.integers(*RING_SIZES, size=plan.rings)
    members = order[taken : taken + int(sizes.sum())]
    role[members] = Role.RING_MEMBER
    ring[members] = np.repeat(np.arange(plan.rings), sizes)
    taken += int(sizes.sum())
    return Roles(role, ring, _couples(order[taken:], people))


def _couples(background: np.ndarray, people: int) -> np.ndarray:
    """Pair up a fifth of the (randomly ordered) background people as couples sharing an account."""
    paired = background[: (len(background) // 10) * 2]
    first, second = paired[0::2], paired[1::2]
    partner = np.full(people, -1, dtype=np.int64)
    partner[first], partner[second] = second, first
    return partner
