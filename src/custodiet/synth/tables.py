"""Payments, refunds, exclusions and vendors of one chunk, as integer-coded numpy frames.

A payee (or TIN) is a *code*: person ``i`` of the chunk is ``i``, vendor ``j`` is
``people + j``. Codes become SSNs, EINs and names only when written (see ``writer``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Self

import numpy as np

from custodiet.synth import calendar as cal
from custodiet.synth.identifiers import VENDOR_ACCOUNT
from custodiet.synth.people import People
from custodiet.synth.plant import Plan, Role

AGENCIES = ("SSA", "CMS", "DOD", "VA", "OPM")
PAYMENT_PROGRAMS = (
    "RSI",
    "SSDI",
    "SSI",
    "MEDICARE_B",
    "MEDICAID",
    "CONTRACTS",
    "COMMUNITY_CARE",
    "FEHB",
)
SSA = 0
_VENDOR_LINES = np.array([(1, 3), (1, 4), (2, 5), (3, 6), (4, 7)])  # (agency, program)
EXCLUSION_SOURCES = ("SAM", "LEIE")
VENDORS_PER_PERSON = 0.01
PAYMENTS_PER_VENDOR = 100
_WINDOW_BUSINESS_DAYS = cal.business_days(cal.WINDOW_START, cal.WINDOW_END)
_FILING_DAYS = cal.business_days(*cal.FILING_SEASON)


class Frame:
    """A dataclass of equally long numpy columns that can be filtered, reordered and stacked."""

    def take(self, rows: np.ndarray) -> Self:
        return type(self)(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})  # type: ignore[arg-type]

    def stacked(self, other: Self) -> Self:
        return type(self)(
            **{
                f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)])
                for f in fields(self)  # type: ignore[arg-type]
            }
        )

    def __len__(self) -> int:
        return len(getattr(self, fields(self)[0].name))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Vendors(Frame):
    index: np.ndarray  # global vendor index (the EIN's key)
    line: np.ndarray  # row of _VENDOR_LINES
    account: np.ndarray
    paid_by_check: np.ndarray
    exclusion: np.ndarray  # 0 none, 1 excluded during the window, 2 lapsed before it


@dataclass(frozen=True)
class Payments(Frame):
    payee: np.ndarray
    agency: np.ndarray
    program: np.ndarray
    cents: np.ndarray
    day: np.ndarray
    account: np.ndarray  # -1: paid by check, no account


@dataclass(frozen=True)
class Refunds(Frame):
    tin: np.ndarray
    cents: np.ndarray
    day: np.ndarray
    account: np.ndarray  # -1: paper check
    filing_status: np.ndarray


@dataclass(frozen=True)
class Exclusions(Frame):
    tin: np.ndarray
    source: np.ndarray
    start: np.ndarray
    end: np.ndarray  # cal.NO_DATE: open-ended


def vendors_of_chunk(rng: np.random.Generator, first: int, people: int, plan: Plan) -> Vendors:
    """Vendors numbered from ``first``; the planted excluded and lapsed ones come last."""
    ordinary = max(1, round(people * VENDORS_PER_PERSON))
    n = ordinary + plan.excluded_vendors + plan.lapsed_vendors
    index = first + np.arange(n, dtype=np.int64)
    exclusion = np.repeat([0, 1, 2], [ordinary, plan.excluded_vendors, plan.lapsed_vendors])
    return Vendors(
        index=index,
        line=rng.integers(0, len(_VENDOR_LINES), size=n),
        account=3 * index + VENDOR_ACCOUNT,
        paid_by_check=rng.random(n) < 0.05,
        exclusion=exclusion.astype(np.int8),
    )


def payments_of_chunk(
    rng: np.random.Generator, people: People, vendors: Vendors, duplicates: int
) -> Payments:
    """Benefits and vendor payments in date order, then the planted duplicate copies."""
    paid = benefit_payments(people).stacked(vendor_payments(rng, len(people.index), vendors))
    paid = paid.take(np.lexsort((paid.payee, paid.day)))
    return paid.stacked(paid.take(_duplicated_rows(rng, paid, duplicates)))


def benefit_payments(people: People) -> Payments:
    """One payment on the 3rd of each month from the month after entitlement to the month of
    death (plus the planted extra months)."""
    who = np.flatnonzero(people.beneficiary)
    died = np.minimum(people.died[who], cal.WINDOW_END + 366)
    first = np.maximum(cal.window_month(people.entitled[who]) + 1, 0)
    last_alive = np.where(
        people.died[who] == cal.NO_DATE, cal.WINDOW_MONTHS - 1, cal.window_month(died)
    )
    last = np.minimum(last_alive + people.months_paid_after_death[who], cal.WINDOW_MONTHS - 1)
    count = np.maximum(last - first + 1, 0)
    payee = np.repeat(who, count)
    starts = np.cumsum(count) - count
    month = np.repeat(first, count) + np.arange(int(count.sum())) - np.repeat(starts, count)
    check = people.paid_by_check[payee]
    return Payments(
        payee=payee.astype(np.int64),
        agency=np.full(len(payee), SSA, dtype=np.int8),
        program=people.program[payee].astype(np.int8),
        cents=people.benefit_cents[payee],
        day=cal.BENEFIT_DAYS[month],
        account=np.where(check, -1, people.account[payee]),
    )


def vendor_payments(rng: np.random.Generator, people: int, vendors: Vendors) -> Payments:
    """Poisson-many payments per vendor on business days, lognormal amounts ($1 to $50M)."""
    count = rng.poisson(PAYMENTS_PER_VENDOR, size=len(vendors))
    row = np.repeat(np.arange(len(vendors)), count)
    dollars = np.exp(rng.normal(7.6, 1.3, size=len(row)))
    lines = _VENDOR_LINES[vendors.line[row]]
    return Payments(
        payee=people + row,
        agency=lines[:, 0].astype(np.int8),
        program=lines[:, 1].astype(np.int8),
        cents=np.clip(np.round(dollars * 100), 100, 5_000_000_000).astype(np.int64),
        day=rng.choice(_WINDOW_BUSINESS_DAYS, size=len(row)),
        account=np.where(vendors.paid_by_check[row], -1, vendors.account[row]),
    )


def _duplicated_rows(rng: np.random.Generator, paid: Payments, copies: int) -> np.ndarray:
    """Rows to pay twice: half benefits, half vendor payments (as far as there are any)."""
    benefit = np.flatnonzero(paid.agency == SSA)
    vendor = np.flatnonzero(paid.agency != SSA)
    half = copies // 2
    picks = [
        rng.choice(benefit, size=min(half, len(benefit)), replace=False),
        rng.choice(vendor, size=min(copies - half, len(vendor)), replace=False),
    ]
    return np.sort(np.concatenate(picks))


def refunds_of_chunk(rng: np.random.Generator, people: People) -> Refunds:
    """Refunds for the tax year, issued on business days of the filing season."""
    who = np.flatnonzero(people.files_return)
    dollars = np.exp(rng.normal(7.8, 0.8, size=len(who)))
    return Refunds(
        tin=who.astype(np.int64),
        cents=np.clip(np.round(dollars * 100), 100, 50_000_000).astype(np.int64),
        day=rng.choice(_FILING_DAYS, size=len(who)),
        account=np.where(people.refund_by_deposit[who], people.account[who], -1),
        filing_status=people.filing_status[who],
    )


def exclusions_of_chunk(rng: np.random.Generator, people: People, vendors: Vendors) -> Exclusions:
    """SAM exclusions of planted vendors (active or lapsed) and LEIE exclusions of individuals."""
    excluded = np.flatnonzero(vendors.exclusion == 1)
    lapsed = np.flatnonzero(vendors.exclusion == 2)
    persons = np.flatnonzero(people.role == Role.EXCLUDED_PERSON)
    n_people = len(people.index)
    active_start = cal.uniform_days(rng, cal.day(2023), cal.day(2024, 9, 30), len(excluded))
    active_end = np.where(
        rng.random(len(excluded)) < 0.5,
        cal.NO_DATE,
        active_start + rng.integers(365, 1096, len(excluded)),
    )
    person_start = cal.uniform_days(rng, cal.day(2010), cal.WINDOW_END, len(persons))
    person_end = np.where(
        rng.random(len(persons)) < 0.7,
        cal.NO_DATE,
        person_start + rng.integers(365, 1826, len(persons)),
    )
    return Exclusions(
        tin=np.concatenate([n_people + excluded, n_people + lapsed, persons]).astype(np.int64),
        source=np.repeat([0, 0, 1], [len(excluded), len(lapsed), len(persons)]).astype(np.int8),
        start=np.concatenate(
            [
                active_start,
                cal.uniform_days(rng, cal.day(2019), cal.day(2021, 12, 31), len(lapsed)),
                person_start,
            ]
        ),
        end=np.concatenate(
            [
                active_end,
                cal.uniform_days(rng, cal.day(2023), cal.day(2023, 12, 31), len(lapsed)),
                person_end,
            ]
        ),
    )
