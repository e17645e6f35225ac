"""The agreement as the rest of custodiet sees it: frozen, validated, hashed (docs/agreements.md).

``load`` (in ``agreements.load``) turns YAML into this; the gateway compiles it into a protected
projection; the ledger records its id, version and hash.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool

from custodiet.agreements.screening import CustomScreen, ScreenSettings

IDENT = r"^[a-z][a-z0-9_]*$"
AGREEMENT_ID = r"^[a-z0-9][a-z0-9-]{0,63}$"


class Mode(StrEnum):
    PSEUDONYMOUS = "pseudonymous"
    AGGREGATE = "aggregate"
    DP = "dp"  # differential privacy: noisy aggregates under a hard zCDP budget (gateway/dp.py)


class Treatment(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    PSEUDONYMIZE = "pseudonymize"
    GENERALIZE = "generalize"
    MASK = "mask"


GENERALIZATIONS = ("year", "month", "decade", "zip3", "state", "age_band")
_TREATMENT = re.compile(r"^(allow|deny|pseudonymize|mask|generalize:(?P<level>[a-z0-9_]+))$")


class ColumnRule(BaseModel):
    """One column's treatment. ``generalize`` carries its level (``generalize:year`` -> year)."""

    model_config = ConfigDict(frozen=True)

    treatment: Treatment
    level: str | None = None

    @classmethod
    def parse(cls, text: str) -> ColumnRule:
        match = _TREATMENT.match(text.strip())
        if not match:
            raise ValueError(
                f"unknown treatment {text!r}; use allow, deny, pseudonymize, mask "
                f"or generalize:<{'|'.join(GENERALIZATIONS)}>"
            )
        level = match.group("level")
        if level is not None:
            if level not in GENERALIZATIONS:
                raise ValueError(
                    f"unknown generalization {level!r}; use one of {', '.join(GENERALIZATIONS)}"
                )
            return cls(treatment=Treatment.GENERALIZE, level=level)
        return cls(treatment=Treatment(match.group(1)))

    def __str__(self) -> str:
        return f"generalize:{self.level}" if self.level else self.treatment.value


def _parse_rule(value: object) -> object:
    return ColumnRule.parse(value) if isinstance(value, str) else value


# parsed per value, so a bad treatment's error location names its column
Rule = Annotated[ColumnRule, BeforeValidator(_parse_rule)]


Bound = Annotated[float, Field(ge=-1e12, le=1e12, allow_inf_nan=False)]
KeyValue = Annotated[str, Field(min_length=1, max_length=200)]


class DatasetGrant(BaseModel):
    """One dataset's grant. ``max_contributions``, ``bounds``, ``keys`` and ``select_keys`` are
    for ``mode: dp`` only (the validator refuses them elsewhere): rows kept per person, clamping
    bounds of summed columns, the public key set of each column a dp query may GROUP BY, and the
    columns whose groups are released by private key selection (a noisy threshold) instead."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rows: str | None = None
    follow: StrictBool = False  # extend the projection with each new version of the dataset
    columns: dict[Annotated[str, Field(pattern=IDENT)], Rule]
    allow_quasi_identifiers: bool = False
    max_contributions: int | None = Field(None, ge=1, le=1000)
    bounds: dict[Annotated[str, Field(pattern=IDENT)], tuple[Bound, Bound]] | None = None
    keys: (
        dict[
            Annotated[str, Field(pattern=IDENT)],
            Annotated[list[KeyValue], Field(min_length=1, max_length=1000)],
        ]
        | None
    ) = None
    select_keys: (
        Annotated[list[Annotated[str, Field(pattern=IDENT)]], Field(min_length=1, max_length=100)]
        | None
    ) = None


DP_DATASET_FIELDS = ("max_contributions", "bounds", "keys", "select_keys")
DP_LIMIT_FIELDS = ("epsilon", "delta", "rho", "queries")


class Limits(BaseModel):
    """``max_rows`` and ``timeout_seconds`` hold in every mode, ``min_group_size`` in aggregate
    mode; ``epsilon`` (with ``delta``) or ``rho`` is dp mode's hard total budget, spent in
    ``queries`` equal parts; ``delta`` is required when a grant has ``select_keys`` (a noisy
    threshold is only approximately private) (the validator refuses each field in a mode that
    does not use it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_rows: int = Field(10_000, ge=1, le=1_000_000)
    min_group_size: int = Field(11, ge=2, le=10_000)
    epsilon: float | None = Field(None, gt=0, le=100)
    delta: float | None = Field(None, gt=0, le=1e-3)
    rho: float | None = Field(None, gt=0, le=100)
    queries: int | None = Field(None, ge=1, le=100_000)
    timeout_seconds: float = Field(30.0, gt=0, le=3600)


class Agreement(BaseModel):
    """A proposed agreement as written by its author. Versions and approvals live in the store."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Annotated[str, Field(pattern=AGREEMENT_ID)]
    purpose: Annotated[str, Field(min_length=1, max_length=2000)]
    reviewer: Annotated[str, Field(min_length=1)]
    expires: dt.date
    mode: Mode = Mode.PSEUDONYMOUS
    datasets: dict[Annotated[str, Field(pattern=IDENT)], DatasetGrant] = Field(min_length=1)
    limits: Limits = Limits()
    approvals_required: int = Field(2, ge=1, le=10)
    screens: ScreenSettings = ScreenSettings()
    custom_screens: list[CustomScreen] = Field(default_factory=list, max_length=50)
