"""The screens' thresholds as an agreement sets them (``screens:``; docs/agreements.md).

Every threshold has today's constant as its default, so an agreement that says nothing screens
exactly as before; the custodians approve whatever it says like every other field.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SharedAccount(_Settings):
    payees: int = Field(3, ge=1, le=1000)  # more distinct payees than this into one account


class ImplausibleAge(_Settings):
    years: int = Field(115, ge=90, le=150)  # aged this or more on the payment date


class PaidAfterDeath(_Settings):
    months_behind: int = Field(1, ge=0, le=12)  # SSA pays this many months behind


class OtherAgencyAfterDeath(_Settings):
    grace_days: int = Field(0, ge=0, le=366)  # payments dated up to this long after death pass


class AmountOutlier(_Settings):
    z: float = Field(3.5, ge=2, le=100, allow_inf_nan=False)  # robust z-score above this
    min_payments: int = Field(6, ge=3, le=1_000_000)  # programs with fewer are not screened


class ScreenSettings(_Settings):
    """Per screen, its thresholds; a screen without thresholds has no entry."""

    shared_account: SharedAccount = SharedAccount()
    implausible_age: ImplausibleAge = ImplausibleAge()
    paid_after_death: PaidAfterDeath = PaidAfterDeath()
    other_agency_after_death: OtherAgencyAfterDeath = OtherAgencyAfterDeath()
    amount_outlier: AmountOutlier = AmountOutlier()


class CustomScreen(_Settings):
    """A screen the custodians approve with the agreement: one query over its released tables,
    returning ``record_table``, ``record_id``, ``payee``, ``amount`` first, like every screen."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
    rule: Annotated[str, Field(min_length=1, max_length=500)]
    sql: Annotated[str, Field(min_length=1, max_length=20_000)]
