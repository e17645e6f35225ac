"""Improper-payment screens: one rule per module, each a read query over the gateway.

``SCREENS`` maps each screen's name to its definition, in the order reports list them.
``select_screens`` turns the names a user typed into screens (all of them when none is given).
"""

from __future__ import annotations

from collections.abc import Sequence

from custodiet.errors import InputError
from custodiet.screens import (
    amount_outlier,
    duplicate_payment,
    excluded_payee,
    implausible_age,
    other_agency_after_death,
    paid_after_death,
    refund_to_deceased,
    shared_account,
)
from custodiet.screens.model import Screen

SCREENS: dict[str, Screen] = {
    module.SCREEN.name: module.SCREEN
    for module in (
        paid_after_death,
        duplicate_payment,
        shared_account,
        excluded_payee,
        implausible_age,
        refund_to_deceased,
        other_agency_after_death,
        amount_outlier,
    )
}


def select_screens(names: Sequence[str]) -> tuple[Screen, ...]:
    """The named screens in registry order, once each; every screen when ``names`` is empty."""
    unknown = [n for n in names if n not in SCREENS]
    if unknown:
        raise InputError(
            f"unknown screen {unknown[0]!r}",
            hint=f"choose from {', '.join(SCREENS)} (see `custodiet screen list`)",
            code="CUST400",
        )
    wanted = set(names) or set(SCREENS)
    return tuple(screen for name, screen in SCREENS.items() if name in wanted)


__all__ = ["SCREENS", "Screen", "select_screens"]
