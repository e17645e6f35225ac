"""How well a screens report matches the planted truth (``truth.parquet``, held by the custodian).

Compared by record id only, so scoring never needs anyone's identity. A flagged decoy counts
against precision; a missed planted record against recall and dollar recall.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq

from custodiet.screens.model import Case


@dataclass(frozen=True)
class PatternScore:
    pattern: str
    planted: int
    flagged: int
    found: int  # flagged and planted
    planted_dollars: Decimal
    found_dollars: Decimal

    @property
    def precision(self) -> float:
        return self.found / self.flagged if self.flagged else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.planted if self.planted else 1.0

    @property
    def dollar_recall(self) -> float:
        return float(self.found_dollars / self.planted_dollars) if self.planted_dollars else 1.0


def read_truth(path: Path) -> dict[str, dict[str, Decimal]]:
    """pattern -> record id -> amount at risk, from ``truth.parquet``."""
    table = pq.read_table(path, columns=["record_id", "pattern", "amount_at_risk"])
    truth: dict[str, dict[str, Decimal]] = {}
    for record_id, pattern, amount in zip(
        table.column("record_id").to_pylist(),
        table.column("pattern").to_pylist(),
        table.column("amount_at_risk").to_pylist(),
        strict=True,
    ):
        truth.setdefault(str(pattern), {})[str(record_id)] = Decimal(amount)
    return truth


def score(
    cases: Iterable[Case], truth: dict[str, dict[str, Decimal]], patterns: Iterable[str]
) -> list[PatternScore]:
    """One score per pattern in ``patterns`` (the screens that ran)."""
    flagged: dict[str, set[str]] = {}
    for case in cases:
        for pattern in case.patterns:
            flagged.setdefault(pattern, set()).add(case.record_id)
    scores = []
    for pattern in patterns:
        planted = truth.get(pattern, {})
        mine = flagged.get(pattern, set())
        hits = mine & planted.keys()
        scores.append(
            PatternScore(
                pattern=pattern,
                planted=len(planted),
                flagged=len(mine),
                found=len(hits),
                planted_dollars=sum(planted.values(), Decimal(0)),
                found_dollars=sum((planted[r] for r in hits), Decimal(0)),
            )
        )
    return scores
