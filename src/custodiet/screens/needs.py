"""Whether an agreement grants what a screen reads, and if not, what it must grant.

A screen needs each of its columns with exactly the treatment it declares: identifiers
pseudonymized (so records join on tokens), everything else allowed as stored (a generalized date
or a masked amount would silently change what the rule finds).
"""

from __future__ import annotations

from collections.abc import Mapping

from custodiet.agreements.model import Agreement, Mode, Treatment
from custodiet.errors import RefusedError
from custodiet.screens.model import Screen


def missing_grants(screen: Screen, agreement: Agreement) -> dict[str, Treatment]:
    """``dataset.column`` -> needed treatment, for everything the agreement does not grant so."""
    missing: dict[str, Treatment] = {}
    for dataset, columns in screen.needs.items():
        grant = agreement.datasets.get(dataset)
        for column, treatment in columns.items():
            rule = grant.columns.get(column) if grant is not None else None
            if rule is None or rule.treatment is not treatment or rule.level is not None:
                missing[f"{dataset}.{column}"] = treatment
    return missing


def refusal_for(screen: Screen, agreement: Agreement, version: int) -> RefusedError | None:
    """The refusal naming what the agreement must grant for ``screen``; None if it grants all."""
    named = f"agreement '{agreement.id}' (v{version})"
    if agreement.mode is not Mode.PSEUDONYMOUS:
        return RefusedError(
            f"screen '{screen.name}' needs record-level access; {named} is {agreement.mode.value}",
            hint="screens run under a pseudonymous agreement that grants the columns they read "
            "(see `custodiet screen list`)",
            code="CUST420",
        )
    missing = missing_grants(screen, agreement)
    if not missing:
        return None
    first_dataset = next(iter(missing)).split(".", 1)[0]
    hint = f"the agreement must grant {_describe(missing)}"
    if first_dataset not in agreement.datasets:
        return RefusedError(
            f"screen '{screen.name}' needs dataset '{first_dataset}', which {named} does not grant",
            hint=hint,
            code="CUST421",
        )
    column, treatment = next(iter(missing.items()))
    return RefusedError(
        f"screen '{screen.name}' needs column '{column}' ({treatment.value}), "
        f"which {named} does not grant",
        hint=hint,
        code="CUST422",
    )


def _describe(missing: Mapping[str, Treatment]) -> str:
    return ", ".join(f"{column}: {treatment.value}" for column, treatment in missing.items())
