"""Improper-payment screens: one rule per module, each a read query over the gateway.

``SCREENS`` maps each screen's name to its definition, in the order reports list them.
``select_screens`` turns the names a user typed into screens (all of them when none is given).
"""

from __future__ import annotations

from collections.abc import Sequence

from custodiet.agreements.screening import CustomScreen
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


def select_screens(names: Sequence[str], custom: Sequence[CustomScreen] = ()) -> tuple[Screen, ...]:
    """The named screens in registry order (then the agreement's ``custom`` screens), once
    each; every screen when ``names`` is empty."""
    shadowing = [c.name for c in custom if c.name in SCREENS]
    if shadowing:
        raise InputError(
            f"the agreement's custom screen {shadowing[0]!r} has the name of a built-in screen",
            hint="the reviewer proposes a version that renames it",
            code="CUST721",
        )
    registry = {**SCREENS, **{c.name: Screen.from_agreement(c) for c in custom}}
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise InputError(
            f"unknown screen {unknown[0]!r}",
            hint=f"choose from {', '.join(registry)} (see `custodiet screen list`)",
            code="CUST400",
        )
    wanted = set(names) or set(registry)
    return tuple(screen for name, screen in registry.items() if name in wanted)


__all__ = ["SCREENS", "Screen", "select_screens"]
