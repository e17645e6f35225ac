"""One chunk's frames turned into Arrow tables of the canonical schema."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from custodiet.synth import calendar as cal
from custodiet.synth import names
from custodiet.synth.identifiers import Identifiers, digits, join
from custodiet.synth.label import (
    BIRTH_DATE_OFF,
    DEATH_PATTERNS,
    MATCH_CATEGORIES,
    NAME_MISSPELT,
    PATTERNS,
    Labels,
    match_codes,
)
from custodiet.synth.people import FILING_STATUSES, PROGRAMS, People
from custodiet.synth.schema import MONEY, SCHEMAS
from custodiet.synth.tables import (
    AGENCIES,
    EXCLUSION_SOURCES,
    PAYMENT_PROGRAMS,
    Exclusions,
    Payments,
    Refunds,
    Vendors,
)


@dataclass(frozen=True)
class Chunk:
    """Everything generated for one chunk, with the first payment and refund ids it uses."""

    people: People
    vendors: Vendors
    payments: Payments
    refunds: Refunds
    exclusions: Exclusions
    labels: Labels
    first_payment_id: int
    first_refund_id: int


@dataclass(frozen=True)
class Texts:
    """Identifier and name of every TIN code of a chunk (persons first, then vendors)."""

    tin: pa.Array
    name: pa.Array
    first_name: pa.Array
    last_name: pa.Array


def money(cents: np.ndarray) -> pa.Array:
    """Exact DECIMAL(12,2) from integer cents (a decimal128 is a 16-byte little-endian integer)."""
    words = np.zeros((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = np.where(cents < 0, -1, 0)
    return pa.Array.from_buffers(MONEY, len(cents), [None, pa.py_buffer(words.tobytes())])


def dates(days: np.ndarray) -> pa.Array:
    """DATE values; cal.NO_DATE becomes null."""
    missing = days == cal.NO_DATE
    return pa.array(np.where(missing, 0, days).astype(np.int32), mask=missing).cast(pa.date32())


def labelled(words: tuple[str, ...], codes: np.ndarray) -> pa.Array:
    return pa.array(words).take(pa.array(codes.astype(np.int64)))


def record_ids(prefix: str, first: int, count: int) -> pa.Array:
    number = digits(first + np.arange(count, dtype=np.int64), 12)
    return pc.binary_join_element_wise(prefix, number, "")


def texts_of_chunk(rng: np.random.Generator, ids: Identifiers, chunk: Chunk) -> Texts:
    people, vendors = chunk.people, chunk.vendors
    n = len(people.index)
    first = names.FIRST_NAMES.take(pa.array(rng.integers(0, len(names.FIRST_NAMES), n)))
    last = names.LAST_NAMES.take(pa.array(rng.integers(0, len(names.LAST_NAMES), n)))
    vendor_name = join(
        [
            names.VENDOR_WORDS.take(
                pa.array(rng.integers(0, len(names.VENDOR_WORDS), len(vendors)))
            ),
            names.VENDOR_TRADES.take(
                pa.array(rng.integers(0, len(names.VENDOR_TRADES), len(vendors)))
            ),
            names.VENDOR_FORMS.take(
                pa.array(rng.integers(0, len(names.VENDOR_FORMS), len(vendors)))
            ),
        ],
        " ",
    )
    return Texts(
        tin=pa.concat_arrays([ids.ssn(people.index), ids.ein(vendors.index)]),
        name=pa.concat_arrays([join([first, last], " "), vendor_name]),
        first_name=first,
        last_name=last,
    )


def beneficiaries_table(
    rng: np.random.Generator, ids: Identifiers, chunk: Chunk, texts: Texts
) -> pa.Table:
    people = chunk.people
    who = np.flatnonzero(people.beneficiary)
    pick = pa.array(who)
    state = rng.integers(0, len(names.STATE_ZIP3), len(who))
    zip3_low = np.array([low for _, low, _ in names.STATE_ZIP3])[state]
    zip3_high = np.array([high for _, _, high in names.STATE_ZIP3])[state]
    zip3 = zip3_low + (rng.random(len(who)) * (zip3_high - zip3_low + 1)).astype(np.int64)
    address = join(
        [
            pc.cast(pa.array(rng.integers(1, 10000, len(who))), pa.string()),
            names.STREETS.take(pa.array(rng.integers(0, len(names.STREETS), len(who)))),
            names.STREET_KINDS.take(pa.array(rng.integers(0, len(names.STREET_KINDS), len(who)))),
        ],
        " ",
    )
    account = np.where(people.paid_by_check[who], -1, people.account[who])
    columns = [
        texts.tin.take(pick),
        texts.first_name.take(pick),
        texts.last_name.take(pick),
        dates(people.born[who]),
        address,
        digits(zip3 * 100 + rng.integers(0, 100, len(who)), 5),
        names.STATES.take(pa.array(state)),
        labelled(PROGRAMS, people.program[who]),
        money(people.benefit_cents[who]),
        dates(people.entitled[who]),
        ids.routing(account),
        ids.account(account),
    ]
    return pa.Table.from_arrays(columns, schema=SCHEMAS["beneficiaries"])


def payments_table(ids: Identifiers, chunk: Chunk, texts: Texts) -> pa.Table:
    paid = chunk.payments
    payee = pa.array(paid.payee)
    columns = [
        record_ids("P", chunk.first_payment_id, len(paid)),
        texts.tin.take(payee),
        texts.name.take(payee),
        labelled(AGENCIES, paid.agency),
        labelled(PAYMENT_PROGRAMS, paid.program),
        money(paid.cents),
        dates(paid.day),
        ids.routing(paid.account),
        ids.account(paid.account),
        labelled(("ACH", "CHECK"), (paid.account < 0).astype(np.int8)),
    ]
    return pa.Table.from_arrays(columns, schema=SCHEMAS["payments"])


def deaths_table(chunk: Chunk, texts: Texts) -> pa.Table:
    people = chunk.people
    who = np.flatnonzero(people.died != cal.NO_DATE)
    pick = pa.array(who)
    flaws = chunk.labels.death_flaws[who]
    last_name = texts.last_name.take(pick)
    misspelt = pa.array(flaws & NAME_MISSPELT != 0)
    born = people.born[who] + (flaws & BIRTH_DATE_OFF != 0)
    columns = [
        texts.tin.take(pick),
        texts.first_name.take(pick),
        pc.if_else(misspelt, pc.utf8_slice_codeunits(last_name, 0, -1), last_name),
        dates(np.where(people.born[who] == cal.NO_DATE, cal.NO_DATE, born)),
        dates(people.died[who]),
    ]
    return pa.Table.from_arrays(columns, schema=SCHEMAS["deaths"])


def exclusions_table(chunk: Chunk, texts: Texts) -> pa.Table:
    excluded = chunk.exclusions
    tin = pa.array(excluded.tin)
    columns = [
        texts.tin.take(tin),
        texts.name.take(tin),
        labelled(EXCLUSION_SOURCES, excluded.source),
        dates(excluded.start),
        dates(excluded.end),
    ]
    return pa.Table.from_arrays(columns, schema=SCHEMAS["exclusions"])


def tax_refunds_table(ids: Identifiers, chunk: Chunk, texts: Texts) -> pa.Table:
    refunds = chunk.refunds
    columns = [
        record_ids("R", chunk.first_refund_id, len(refunds)),
        texts.tin.take(pa.array(refunds.tin)),
        pa.array(np.full(len(refunds), cal.TAX_YEAR, dtype=np.int32)),
        labelled(FILING_STATUSES, refunds.filing_status),
        money(refunds.cents),
        dates(refunds.day),
        ids.routing(refunds.account),
        ids.account(refunds.account),
    ]
    return pa.Table.from_arrays(columns, schema=SCHEMAS["tax_refunds"])


def truth_table(chunk: Chunk) -> pa.Table:
    """One row per (record, pattern): payments pattern by pattern, then refunds."""
    parts = []
    for table, masks, prefix, first, cents, payee in (
        ("payments", chunk.labels.payments, "P", chunk.first_payment_id, chunk.payments.cents,
         chunk.payments.payee),
        ("tax_refunds", chunk.labels.refunds, "R", chunk.first_refund_id, chunk.refunds.cents,
         chunk.refunds.tin),
    ):  # fmt: skip
        for pattern in PATTERNS:
            if pattern not in masks:
                continue
            rows = np.flatnonzero(masks[pattern])
            match = pa.nulls(len(rows), pa.string())
            if pattern in DEATH_PATTERNS:
                codes = match_codes(
                    chunk.people, chunk.labels.death_flaws, payee[rows], table == "payments"
                )
                match = pa.array(MATCH_CATEGORIES).take(pa.array(codes))
            parts.append(
                pa.Table.from_arrays(
                    [
                        pa.array([table] * len(rows), pa.string()),
                        pc.binary_join_element_wise(prefix, digits(first + rows, 12), ""),
                        pa.array([pattern] * len(rows), pa.string()),
                        money(cents[rows]),
                        match,
                    ],
                    schema=SCHEMAS["truth"],
                )
            )
    return pa.concat_tables(parts)
