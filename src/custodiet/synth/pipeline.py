"""``generate``: write the canonical tables and their truth, chunk by chunk."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

import numpy as np
import pyarrow as pa

from custodiet.errors import InputError
from custodiet.synth import records
from custodiet.synth.identifiers import MAX_PEOPLE, Identifiers
from custodiet.synth.label import PATTERNS, labels_of_chunk
from custodiet.synth.people import people_of_chunk
from custodiet.synth.plant import PROFILES, assign_roles, plan_for
from custodiet.synth.records import Chunk
from custodiet.synth.tables import (
    exclusions_of_chunk,
    payments_of_chunk,
    refunds_of_chunk,
    vendors_of_chunk,
)
from custodiet.synth.writer import TableWriters

CHUNK_PEOPLE = 250_000


class Stream(IntEnum):
    """Independent random streams per chunk, so no part consumes another's numbers."""

    ROLES = 2
    PEOPLE = 3
    VENDORS = 4
    PAYMENTS = 5
    REFUNDS = 6
    EXCLUSIONS = 7
    NAMES = 8
    ADDRESSES = 9


@dataclass(frozen=True)
class Summary:
    """Rows written per table and truth rows per pattern."""

    out: Path
    rows: dict[str, int]
    patterns: dict[str, int]


def generate(
    out: Path,
    people: int = 100_000,
    seed: int = 0,
    profile: str = "stress",
    progress: Callable[[int], None] | None = None,
    *,
    chunk_people: int = CHUNK_PEOPLE,
) -> Summary:
    """Write the five tables and ``truth.parquet`` into ``out``; ``progress`` gets people done.

    The output depends on ``chunk_people`` (planting is per chunk); the CLI never changes it.
    """
    _check_arguments(out, people, seed, profile)
    out.mkdir(exist_ok=True)
    ids = Identifiers(seed)
    patterns = dict.fromkeys(PATTERNS, 0)
    next_payment = next_refund = next_vendor = 1
    with TableWriters(out) as writers:
        for number, first in enumerate(range(0, people, chunk_people)):
            size = min(chunk_people, people - first)
            chunk = chunk_of(
                seed, number, first, size, profile, (next_payment, next_refund, next_vendor)
            )
            writers.write(tables_of(seed, number, ids, chunk))
            for masks in (chunk.labels.payments, chunk.labels.refunds):
                for pattern, mask in masks.items():
                    patterns[pattern] += int(mask.sum())
            next_payment += len(chunk.payments)
            next_refund += len(chunk.refunds)
            next_vendor += len(chunk.vendors)
            if progress is not None:
                progress(size)
    return Summary(out, dict(writers.rows), patterns)


def _rng(seed: int, chunk: int, stream: Stream) -> np.random.Generator:
    return np.random.default_rng([seed, chunk, int(stream)])


def chunk_of(
    seed: int, number: int, first: int, size: int, profile: str, next_ids: tuple[int, int, int]
) -> Chunk:
    """Generate and label chunk ``number`` (people ``first`` .. ``first + size - 1``)."""
    next_payment, next_refund, next_vendor = next_ids
    plan = plan_for(size, profile)
    roles = assign_roles(_rng(seed, number, Stream.ROLES), size, plan)
    people = people_of_chunk(_rng(seed, number, Stream.PEOPLE), first, roles)
    vendors = vendors_of_chunk(_rng(seed, number, Stream.VENDORS), next_vendor, size, plan)
    payments = payments_of_chunk(
        _rng(seed, number, Stream.PAYMENTS), people, vendors, plan.duplicates
    )
    refunds = refunds_of_chunk(_rng(seed, number, Stream.REFUNDS), people)
    exclusions = exclusions_of_chunk(_rng(seed, number, Stream.EXCLUSIONS), people, vendors)
    return Chunk(
        people=people,
        vendors=vendors,
        payments=payments,
        refunds=refunds,
        exclusions=exclusions,
        labels=labels_of_chunk(people, payments, refunds, exclusions),
        first_payment_id=next_payment,
        first_refund_id=next_refund,
    )


def tables_of(seed: int, number: int, ids: Identifiers, chunk: Chunk) -> dict[str, pa.Table]:
    texts = records.texts_of_chunk(_rng(seed, number, Stream.NAMES), ids, chunk)
    return {
        "beneficiaries": records.beneficiaries_table(
            _rng(seed, number, Stream.ADDRESSES), ids, chunk, texts
        ),
        "payments": records.payments_table(ids, chunk, texts),
        "deaths": records.deaths_table(chunk, texts),
        "exclusions": records.exclusions_table(chunk, texts),
        "tax_refunds": records.tax_refunds_table(ids, chunk, texts),
        "truth": records.truth_table(chunk),
    }


def _check_arguments(out: Path, people: int, seed: int, profile: str) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(
            f"--out: '{out}' exists and is not a directory",
            hint="give a directory path (it is created if its parent exists)",
            code="CUST210",
        )
    if not out.parent.is_dir():
        raise InputError(
            f"--out: the parent directory of '{out}' does not exist",
            hint="create the parent directory first, or choose another --out",
            code="CUST211",
        )
    if not 1 <= people <= MAX_PEOPLE:
        raise InputError(
            f"--people must be between 1 and {MAX_PEOPLE:,}",
            hint="pass a positive number of people, e.g. --people 100000",
            code="CUST212",
        )
    if seed < 0:
        raise InputError(
            "--seed must be zero or a positive integer",
            hint="pass e.g. --seed 0",
            code="CUST213",
        )
    if profile not in PROFILES:
        raise InputError(
            f"--profile must be one of {', '.join(PROFILES)}",
            hint="use --profile stress (many planted cases) or --profile realistic",
            code="CUST214",
        )
