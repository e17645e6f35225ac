"""A case: one record one screen flagged under one agreement, with a stable id.

The id is an HMAC of the agreement, the screen and the record's table and key, under a key
derived from the workspace secret: the same finding has the same id in every run, and the
ledger names cases by id only; without the secret an id cannot be matched to a record, even by
trying every record key.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

STATES = ("open", "confirmed", "not_improper", "recovered")
SET_STATES = ("confirmed", "not_improper", "recovered")  # what `case set` may ask for
CASE_COLUMNS = (
    "case_id", "screen", "state", "record_table", "record_id", "payee", "amount_at_risk",
    "program", "month", "recovered", "opened_by",
)  # fmt: skip


def case_key(secret: bytes, agreement_id: str) -> bytes:
    """The key of an agreement's case ids, derived from the workspace secret."""
    return hmac.new(secret, b"custodiet/case-id/v1\n" + agreement_id.encode(), "sha256").digest()


def case_id(key: bytes, screen: str, record_table: str, record_id: str) -> str:
    text = f"{screen}\n{record_table}\n{record_id}"
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class CaseFacts:
    """What a monitor run saw of a case (custodian side: the ledger holds only its id)."""

    id: str
    screen: str
    record_table: str
    record_id: str
    payee: str  # the payee's token under the agreement
    amount: Decimal
    program: str
    month: str  # YYYY-MM of the payment, "" when the agreement grants no date for it
    evidence: dict[str, Any]

    def document(self) -> dict[str, Any]:
        return {
            "id": self.id, "screen": self.screen, "record_table": self.record_table,
            "record_id": self.record_id, "payee": self.payee, "amount": str(self.amount),
            "program": self.program, "month": self.month, "evidence": self.evidence,
        }  # fmt: skip

    @staticmethod
    def from_document(doc: dict[str, Any]) -> CaseFacts:
        return CaseFacts(
            doc["id"], doc["screen"], doc["record_table"], doc["record_id"], doc["payee"],
            Decimal(doc["amount"]), doc["program"], doc["month"], dict(doc["evidence"]),
        )  # fmt: skip


@dataclass(frozen=True)
class Step:
    """One ledger entry in a case's history."""

    index: int
    time: str
    actor: str
    state: str
    amount: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class CaseView:
    """A case as the case table holds it: its facts, its state and its history."""

    facts: CaseFacts
    agreement: str
    state: str
    recovered: Decimal | None
    history: tuple[Step, ...] = field(default_factory=tuple)

    @property
    def opened_by(self) -> int:
        return self.history[0].index

    def row(self) -> list[Any]:
        f = self.facts
        return [f.id, f.screen, self.state, f.record_table, f.record_id, f.payee, f.amount,
                f.program, f.month, self.recovered, self.opened_by]  # fmt: skip

    def document(self) -> dict[str, Any]:
        return {
            **self.facts.document(),
            "agreement": self.agreement,
            "state": self.state,
            "recovered": None if self.recovered is None else str(self.recovered),
            "history": [s.__dict__ for s in self.history],
        }
