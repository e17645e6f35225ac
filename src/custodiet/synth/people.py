"""The people of one chunk: birth, benefits, death, bank account and tax filing.

Background people follow the ordinary rules, so they never trip an improper-payment rule:
beneficiaries are aged under 106, stop being paid after the month they die, and share an
account only with a spouse; only planted roles (see ``plant.Role``) break a rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from custodiet.synth import calendar as cal
from custodiet.synth.identifiers import PERSON_ACCOUNT, RING_ACCOUNT
from custodiet.synth.plant import Role, Roles

PROGRAMS = ("RSI", "SSDI", "SSI")
RSI, SSDI, SSI = 0, 1, 2
NOT_BENEFICIARY = -1
FILING_STATUSES = (
    "single",
    "married_filing_jointly",
    "married_filing_separately",
    "head_of_household",
)
_YEAR = 365.25


@dataclass(frozen=True)
class People:
    """One row per person of a chunk; ``index`` is the global person index (the SSN's key)."""

    index: np.ndarray
    role: np.ndarray
    born: np.ndarray
    program: np.ndarray  # NOT_BENEFICIARY or an index into PROGRAMS
    benefit_cents: np.ndarray
    entitled: np.ndarray
    died: np.ndarray  # cal.NO_DATE when alive
    months_paid_after_death: np.ndarray  # > 0 only for planted Role.PAID_AFTER_DEATH
    paid_by_check: np.ndarray
    account: np.ndarray  # account key
    files_return: np.ndarray
    refund_by_deposit: np.ndarray
    filing_status: np.ndarray

    @property
    def beneficiary(self) -> np.ndarray:
        return np.asarray(self.program != NOT_BENEFICIARY)


def people_of_chunk(rng: np.random.Generator, first: int, roles: Roles) -> People:
    role = roles.role
    n = len(role)
    program = _programs(rng, role)
    born = _birth_days(rng, role, program)
    died = _death_days(rng, role, program, born)
    partner = roles.partner
    second_of_couple = (partner >= 0) & (np.arange(n) > partner)
    index = first + np.arange(n, dtype=np.int64)
    return People(
        index=index,
        role=role,
        born=born,
        program=program,
        benefit_cents=_benefits(rng, program) * 100,
        entitled=_entitlement_days(rng, role, program, born),
        died=died,
        months_paid_after_death=np.where(
            role == Role.PAID_AFTER_DEATH, rng.integers(1, 4, size=n), 0
        ),
        paid_by_check=(rng.random(n) < 0.02) & (role != Role.RING_MEMBER),
        account=_account_keys(first, index, partner, roles.ring),
        files_return=_files_return(rng, role, died, second_of_couple),
        refund_by_deposit=(rng.random(n) < 0.85) | (role == Role.RING_MEMBER),
        filing_status=np.where(
            partner >= 0, 1, rng.choice([0, 2, 3], size=n, p=[0.75, 0.08, 0.17])
        ).astype(np.int8),
    )


def _programs(rng: np.random.Generator, role: np.ndarray) -> np.ndarray:
    n = len(role)
    drawn = rng.choice([RSI, SSDI, SSI], size=n, p=[0.7, 0.15, 0.15])
    is_beneficiary = rng.random(n) < 0.75
    forced = np.isin(role, [Role.PAID_AFTER_DEATH, Role.DIES_EARLY_IN_MONTH])
    never = np.isin(role, [Role.REFUND_AFTER_DEATH, Role.FINAL_RETURN, Role.EXCLUDED_PERSON])
    program = np.where((is_beneficiary | forced) & ~never, drawn, NOT_BENEFICIARY)
    old = np.isin(role, [Role.TOO_OLD, Role.VERY_OLD])
    return np.where(old, RSI, program).astype(np.int8)


def _birth_days(rng: np.random.Generator, role: np.ndarray, program: np.ndarray) -> np.ndarray:
    """Birth days from an age (in whole years on the window's first day) per program and role."""
    n = len(role)
    age = np.select(
        [
            role == Role.TOO_OLD,
            role == Role.VERY_OLD,
            np.isin(role, [Role.REFUND_AFTER_DEATH, Role.FINAL_RETURN]),
            program == RSI,
            program == SSDI,
            program == SSI,
        ],
        [
            rng.integers(116, 125, size=n),
            rng.integers(105, 111, size=n),
            rng.integers(40, 91, size=n),
            np.minimum(62 + rng.exponential(11.0, size=n).astype(np.int64), 104),
            rng.integers(25, 66, size=n),
            rng.integers(18, 96, size=n),
        ],
        default=rng.integers(18, 91, size=n),
    )
    days_old = ((age + rng.random(n) * 0.99) * _YEAR).astype(np.int64)
    return cal.WINDOW_START - days_old


def _death_days(
    rng: np.random.Generator, role: np.ndarray, program: np.ndarray, born: np.ndarray
) -> np.ndarray:
    n = len(role)
    draw = rng.random(n)
    early_month = rng.integers(1, 12, size=n)
    late_month = rng.integers(0, 10, size=n)
    adult = born + int(18 * _YEAR)
    in_window_months = [cal.day(cal.WINDOW_YEAR, m + 1, 1) for m in range(cal.WINDOW_MONTHS)]
    month_starts = np.array(in_window_months, dtype=np.int64)
    background = role == Role.BACKGROUND
    return np.select(
        [
            role == Role.PAID_AFTER_DEATH,
            role == Role.DIES_EARLY_IN_MONTH,
            role == Role.REFUND_AFTER_DEATH,
            role == Role.FINAL_RETURN,
            background & (program != NOT_BENEFICIARY) & (draw < 0.03),
            background & (program == NOT_BENEFICIARY) & (draw < 0.01),
        ],
        [
            month_starts[late_month] + rng.integers(0, 28, size=n),
            month_starts[early_month] + rng.integers(0, 2, size=n),
            cal.uniform_days(rng, cal.day(2019), cal.TAX_YEAR_START - 1, n),
            cal.uniform_days(rng, cal.TAX_YEAR_START, cal.WINDOW_START - 1, n),
            cal.uniform_days(rng, cal.TAX_YEAR_START, cal.WINDOW_END, n),
            np.maximum(cal.uniform_days(rng, cal.day(2015), cal.WINDOW_END, n), adult),
        ],
        default=cal.NO_DATE,
    )


def _benefits(rng: np.random.Generator, program: np.ndarray) -> np.ndarray:
    """Whole-dollar monthly benefits (SSA rounds benefits down to the dollar)."""
    n = len(program)
    dollars = np.select(
        [program == RSI, program == SSDI, program == SSI],
        [
            np.clip(rng.normal(1900, 450, n), 600, 4800),
            np.clip(rng.normal(1550, 400, n), 400, 3800),
            np.clip(rng.normal(700, 180, n), 50, 943),
        ],
        default=0,
    )
    return dollars.astype(np.int64)


def _entitlement_days(
    rng: np.random.Generator, role: np.ndarray, program: np.ndarray, born: np.ndarray
) -> np.ndarray:
    """Entitlement after the program's minimum age; planted beneficiaries before the window."""
    min_age = np.select([program == RSI, program == SSDI], [62, 22], default=18)
    planted = np.isin(
        role, [Role.PAID_AFTER_DEATH, Role.DIES_EARLY_IN_MONTH, Role.TOO_OLD, Role.VERY_OLD]
    )
    latest = np.where(planted, cal.WINDOW_START - 1, cal.day(cal.WINDOW_YEAR, 10, 31))
    earliest = np.minimum(
        np.maximum(born + (min_age * _YEAR).astype(np.int64), cal.day(1980)), latest
    )
    return np.asarray(earliest + (rng.random(len(role)) * (latest - earliest + 1)).astype(np.int64))


def _account_keys(
    first: int, index: np.ndarray, partner: np.ndarray, ring: np.ndarray
) -> np.ndarray:
    """Own account; a couple uses the first partner's; a ring member the ring's account."""
    owner = np.where(partner >= 0, np.minimum(index, first + partner), index)
    return np.where(ring >= 0, 3 * (first + ring) + RING_ACCOUNT, 3 * owner + PERSON_ACCOUNT)


def _files_return(
    rng: np.random.Generator, role: np.ndarray, died: np.ndarray, second_of_couple: np.ndarray
) -> np.ndarray:
    """Living adults file for the tax year (a couple jointly, under the first partner's SSN)."""
    alive_in_tax_year = died >= cal.TAX_YEAR_START
    files = (rng.random(len(role)) < 0.6) & alive_in_tax_year & ~second_of_couple
    forced = np.isin(role, [Role.RING_MEMBER, Role.REFUND_AFTER_DEATH, Role.FINAL_RETURN])
    return np.asarray(files | forced)
