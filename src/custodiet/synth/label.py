"""The improper-payment rules, applied to one chunk: what ``truth.parquet`` records.

Truth is not "what was planted" but what the rules find, accidental hits included, so a
screen that implements the rules can reach full precision and recall. A record gets one
truth row per rule it breaks (e.g. a duplicated payment into a ring's account is both
``duplicate_payment`` and ``shared_account``). Every rule joins on identifiers that live in
a single chunk (a person, a vendor or an account), so labelling chunk by chunk equals
labelling the whole. Payments by CHECK and paper refunds have no routing or account number
(null) and never count towards ``shared_account``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from custodiet.synth import calendar as cal
from custodiet.synth.people import People
from custodiet.synth.tables import SSA, Exclusions, Payments, Refunds

PATTERNS = (
    "paid_after_death",
    "duplicate_payment",
    "shared_account",
    "excluded_payee",
    "implausible_age",
    "refund_to_deceased",
    "amount_outlier",
)
MAX_PAYEES_PER_ACCOUNT = 3
IMPLAUSIBLE_AGE = 115
OUTLIER_Z = 3.5  # the defaults of screens/amount_outlier.py (agreements/screening.py)
OUTLIER_MIN_PAYMENTS = 6
OUTLIER_FLOOR = float(np.log(1.1))


# How well a death record agrees with its payee (gateway/match_quality.py), by truth code
MATCH_CATEGORIES = ("exact", "ssn_name", "ssn_dob", "ssn_only")
DEATH_PATTERNS = ("paid_after_death", "refund_to_deceased")
NAME_MISSPELT, BIRTH_DATE_OFF = 1, 2  # bits of a death record's flaws


@dataclass(frozen=True)
class Labels:
    """Per pattern: a boolean mask over the chunk's payments, or over its refunds; per person,
    the flaws of their death record (``NAME_MISSPELT | BIRTH_DATE_OFF``; 0 for most)."""

    payments: dict[str, np.ndarray]
    refunds: dict[str, np.ndarray]
    death_flaws: np.ndarray


def labels_of_chunk(
    people: People, payments: Payments, refunds: Refunds, exclusions: Exclusions
) -> Labels:
    codes = 1 + max(
        int(array.max(initial=0)) for array in (payments.payee, refunds.tin, exclusions.tin)
    )  # TIN codes are 0 .. codes-1
    shared = _shared_accounts(payments, refunds, codes)
    dead_paid = paid_after_death(people, payments)
    dead_refunded = refund_to_deceased(people, refunds)
    return Labels(
        death_flaws=death_flaws(people, payments.payee[dead_paid], refunds.tin[dead_refunded]),
        payments={
            "paid_after_death": dead_paid,
            "duplicate_payment": duplicate_payment(payments),
            "shared_account": np.isin(payments.account, shared),
            "excluded_payee": excluded_payee(payments, exclusions, codes),
            "implausible_age": implausible_age(people, payments),
            "amount_outlier": amount_outlier(payments),
        },
        refunds={
            "shared_account": np.isin(refunds.account, shared),
            "refund_to_deceased": dead_refunded,
        },
    )


def _person_column(
    people: People, payee: np.ndarray, column: np.ndarray, missing: int
) -> np.ndarray:
    """``column`` of each payee who is a person of the chunk, ``missing`` for vendors."""
    is_person = payee < len(people.index)
    return np.where(is_person, column[np.where(is_person, payee, 0)], missing)


def paid_after_death(people: People, payments: Payments) -> np.ndarray:
    """Paid in a month later than the payee's month of death."""
    died = _person_column(people, payments.payee, people.died, cal.NO_DATE)
    dead = died != cal.NO_DATE
    return np.asarray(
        dead & (cal.month_number(payments.day) > cal.month_number(np.where(dead, died, 0)))
    )


def duplicate_payment(payments: Payments) -> np.ndarray:
    """Every copy but the first (lowest id = earliest row) of a (payee, amount, date, program)."""
    order = np.lexsort(
        (np.arange(len(payments)), payments.program, payments.day, payments.cents, payments.payee)
    )
    keys = [payments.payee, payments.cents, payments.day, payments.program]
    same = np.ones(len(order) - 1 if len(order) else 0, dtype=bool)
    for key in keys:
        ordered = key[order]
        same &= ordered[1:] == ordered[:-1]
    flagged = np.zeros(len(payments), dtype=bool)
    flagged[order[1:][same]] = True
    return flagged


def _shared_accounts(payments: Payments, refunds: Refunds, codes: int) -> np.ndarray:
    """Account keys into which more than three distinct payees were paid."""
    accounts = np.concatenate([payments.account, refunds.account])
    payees = np.concatenate([payments.payee, refunds.tin])
    deposited = accounts >= 0
    pairs = np.unique(accounts[deposited] * codes + payees[deposited])
    keys, payee_counts = np.unique(pairs // codes, return_counts=True)
    return keys[payee_counts > MAX_PAYEES_PER_ACCOUNT]


def excluded_payee(payments: Payments, exclusions: Exclusions, codes: int) -> np.ndarray:
    """Paid on a day within the payee's exclusion (start <= day, and day <= end if it ends)."""
    start = np.full(codes, cal.NO_DATE, dtype=np.int64)
    end = np.full(codes, cal.NO_DATE, dtype=np.int64)
    start[exclusions.tin] = exclusions.start
    end[exclusions.tin] = exclusions.end
    starts = start[payments.payee]
    return np.asarray((starts <= payments.day) & (payments.day <= end[payments.payee]))


def implausible_age(people: People, payments: Payments) -> np.ndarray:
    """SSA paid a beneficiary aged 115 or more on the payment day who has no death record."""
    candidate = (payments.agency == SSA) & (payments.payee < len(people.index))
    beneficiary = _person_column(people, payments.payee, people.beneficiary, 0).astype(bool)
    alive = _person_column(people, payments.payee, people.died, 0) == cal.NO_DATE
    born = _person_column(people, payments.payee, people.born, 0)
    return np.asarray(
        candidate & beneficiary & alive & (cal.full_years(born, payments.day) >= IMPLAUSIBLE_AGE)
    )


def refund_to_deceased(people: People, refunds: Refunds) -> np.ndarray:
    """A refund for the tax year claimed by someone who died before the year began."""
    return np.asarray(people.died[refunds.tin] < cal.TAX_YEAR_START)


def amount_outlier(payments: Payments) -> np.ndarray:
    """More than 3.5 robust standard deviations of log amount above the payee's median in the
    program (payees with 6+ payments there; spread = 1.4826 x MAD, at least ln 1.1)."""
    flagged = np.zeros(len(payments), dtype=bool)
    if not len(payments):
        return flagged
    log_amount = np.log(payments.cents / 100)
    group = payments.payee.astype(np.int64) * 256 + payments.program.astype(np.int64)
    usual = _group_median(group, log_amount)
    spread = np.maximum(1.4826 * _group_median(group, np.abs(log_amount - usual)), OUTLIER_FLOOR)
    _, inverse, counts = np.unique(group, return_inverse=True, return_counts=True)
    judged = counts[inverse] >= OUTLIER_MIN_PAYMENTS
    return np.asarray(judged & ((log_amount - usual) / spread > OUTLIER_Z))


def _group_median(group: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each row's group median of ``values`` (the mean of the two middle values when even)."""
    order = np.lexsort((values, group))
    ordered = group[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    counts = np.diff(np.r_[starts, len(order)])
    low = values[order[starts + (counts - 1) // 2]]
    high = values[order[starts + counts // 2]]
    medians = low + (high - low) * 0.5
    per_row = np.empty(len(values))
    per_row[order] = np.repeat(medians, counts)
    return per_row


def death_flaws(people: People, *payees: np.ndarray) -> np.ndarray:
    """Per person: the flaws planted in their death record, cycling through none, a misspelt
    name, a birth date off by a day, and both over the people with a death-pattern case (in
    order), so that every match category occurs; everyone else's record is clean."""
    flaws = np.zeros(len(people.index), dtype=np.int8)
    cases = np.unique(np.concatenate(payees)) if payees else np.zeros(0, dtype=np.int64)
    cases = cases[cases < len(people.index)]
    flaws[cases] = np.arange(len(cases)) % 4
    return flaws


def match_codes(people: People, flaws: np.ndarray, payee: np.ndarray, named: bool) -> np.ndarray:
    """Index into MATCH_CATEGORIES of each record paid to ``payee`` (persons of the chunk):
    the name agrees unless misspelt, and is known from the record itself (``named``: payments)
    or else from a beneficiary record; the birth date is known from a beneficiary record."""
    beneficiary = people.beneficiary[payee].astype(bool)
    flaw = flaws[payee]
    name_ok = (named | beneficiary) & (flaw & NAME_MISSPELT == 0)
    birth_ok = beneficiary & (flaw & BIRTH_DATE_OFF == 0)
    return np.where(name_ok, np.where(birth_ok, 0, 1), np.where(birth_ok, 2, 3)).astype(np.int8)
