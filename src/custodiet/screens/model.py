"""What a screen is, and what running screens produces.

A screen is one improper-payment rule written as one read query over the reviewer's protected
projection (one table per dataset, identifiers replaced by tokens). Every screen's query returns
the same four leading columns -- ``record_table``, ``record_id``, ``payee``, ``amount`` -- followed
by its evidence columns, so the runner can merge findings per record without knowing the rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from custodiet.agreements.model import Treatment
from custodiet.agreements.screening import CustomScreen, ScreenSettings

CASE_COLUMNS = ("record_table", "record_id", "payee", "amount")


@dataclass(frozen=True)
class Screen:
    name: str
    rule: str  # one sentence a reviewer reads in `screen list` (thresholds as ``{name}``)
    needs: Mapping[str, Mapping[str, Treatment]]  # dataset -> column -> the treatment it must have
    sql: str  # the query, its thresholds as ``{name}`` placeholders (``ScreenSettings``)
    # its last column is ``match``, the death record's match category (gateway/match_quality.py)
    reports_match: bool = False
    custom: bool = False  # from the agreement's custom_screens, approved with it

    @classmethod
    def from_agreement(cls, screen: CustomScreen) -> Screen:
        """A custom screen: its SQL is checked against the projection on each run."""
        return cls(screen.name, screen.rule, {}, screen.sql, custom=True)

    def thresholds(self, settings: ScreenSettings) -> dict[str, Any]:
        """This screen's thresholds under ``settings`` (the agreement's ``screens:``)."""
        own = None if self.custom else getattr(settings, self.name, None)
        return {} if own is None else own.model_dump()

    def sql_for(self, settings: ScreenSettings) -> str:
        """The query with the agreement's thresholds filled in (validated numbers only)."""
        thresholds = self.thresholds(settings)
        return self.sql.format(**thresholds) if thresholds else self.sql

    def rule_for(self, settings: ScreenSettings) -> str:
        thresholds = self.thresholds(settings)
        return self.rule.format(**thresholds) if thresholds else self.rule

    @property
    def default_rule(self) -> str:
        return self.rule_for(ScreenSettings())

    def needed_columns(self) -> tuple[str, ...]:
        """``dataset.column`` for everything this screen reads, sorted."""
        return tuple(sorted(f"{d}.{c}" for d, cols in self.needs.items() for c in cols))


@dataclass(frozen=True)
class Finding:
    """One screen's reason to flag a record, with the evidence its query returned."""

    pattern: str
    evidence: Mapping[str, Any]


@dataclass(frozen=True)
class Case:
    """One flagged record with every pattern that flagged it."""

    record_table: str
    record_id: str
    payee: str  # the payee's token under this agreement
    amount_at_risk: Decimal
    findings: tuple[Finding, ...]

    @property
    def patterns(self) -> tuple[str, ...]:
        return tuple(sorted({f.pattern for f in self.findings}))


@dataclass(frozen=True)
class ScreenSummary:
    screen: str
    cases: int
    amount_at_risk: Decimal
    ledger_index: int
    truncated: bool


@dataclass(frozen=True)
class ScreenRefusal:
    screen: str
    rule: str
    hint: str
    ledger_index: int


@dataclass(frozen=True)
class Report:
    agreement_id: str
    agreement_version: int
    cases: tuple[Case, ...]
    summaries: tuple[ScreenSummary, ...]
    refusals: tuple[ScreenRefusal, ...] = field(default_factory=tuple)
    ledger_index: int = -1  # the run's ``screen.run`` outcome entry
    output: bytes | None = None  # the cases file asked for (args.output), as that entry records it

    @property
    def total_cases(self) -> int:
        return len(self.cases)

    @property
    def total_amount_at_risk(self) -> Decimal:
        """Each record's amount counted once, however many patterns flagged it."""
        return sum((c.amount_at_risk for c in self.cases), Decimal(0))
