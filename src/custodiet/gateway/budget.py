"""Privacy budgets, derived from the ledger and from nothing else.

Every dp query's ledger entry carries ``rho_spent`` (zCDP, what the budget is kept in) and
``epsilon_spent`` (the same query alone as (epsilon, delta)-DP, for readers; epsilons of several
queries do not add up, rhos do). The spend of an agreement is the sum of ``rho_spent`` over its
entries, and the spend of a dataset the sum over every entry that touched it, whatever the
agreement: there is no separate budget table that could disagree with the ledger. A query that
selects its groups privately (a noisy threshold, approximate zCDP) also carries ``delta_spent``,
summed per agreement the same way. The sums are cached in the runtime's resources (keyed by the
ledger's size: an append invalidates them) and only the new entries are read on the next call.

Budgets are hard: an agreement's total never refreshes (a new version of the agreement is a new
agreement id only if its author names it so; versions of one id share one budget). The cap per
dataset, across all agreements, is the workspace manifest's ``dp_dataset_rho_cap``
(``DEFAULT_DATASET_RHO_CAP`` when absent), set by whoever initialises the workspace.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from custodiet.workspace import Workspace

if TYPE_CHECKING:
    from custodiet.runtime import Runtime

__all__ = [
    "DEFAULT_DATASET_RHO_CAP",
    "Spent",
    "dataset_rho_cap",
    "epsilon_of",
    "ledger_spends",
    "rho_of",
    "spent",
]

DEFAULT_DATASET_RHO_CAP = 1.0  # about epsilon 8.4 at delta 1e-6, over every agreement together


def rho_of(epsilon: float, delta: float) -> float:
    """The largest rho whose zCDP implies (epsilon, delta)-DP: rho + 2 sqrt(rho ln(1/delta))."""
    log = math.log(1 / delta)
    return (math.sqrt(log + epsilon) - math.sqrt(log)) ** 2


def epsilon_of(rho: float, delta: float) -> float:
    """(epsilon, delta)-DP implied by rho-zCDP (Bun and Steinke 2016, Proposition 1.3)."""
    return rho + 2 * math.sqrt(rho * math.log(1 / delta))


@dataclass
class Spent:
    """What the ledger's first ``size`` entries spent, per agreement and per dataset."""

    size: int = 0
    agreements: dict[str, float] = field(default_factory=dict)
    datasets: dict[str, float] = field(default_factory=dict)
    answers: set[tuple[str, int, str, str]] = field(default_factory=set)  # released dp results
    deltas: dict[str, float] = field(default_factory=dict)  # key selection's delta, per agreement

    def copy(self) -> Spent:
        """An independent copy, every sum included (one place to list them)."""
        return Spent(
            self.size,
            dict(self.agreements),
            dict(self.datasets),
            set(self.answers),
            dict(self.deltas),
        )

    def add(self, entry: dict[str, Any]) -> None:
        rho = entry.get("rho_spent")
        if entry.get("action") != "query" or not isinstance(rho, int | float) or rho <= 0:
            return
        agreement = str(entry.get("agreement"))
        self.agreements[agreement] = self.agreements.get(agreement, 0.0) + float(rho)
        delta = entry.get("delta_spent")
        if isinstance(delta, int | float) and delta > 0:
            self.deltas[agreement] = self.deltas.get(agreement, 0.0) + float(delta)
        for dataset in entry.get("datasets") or ():
            self.datasets[str(dataset)] = self.datasets.get(str(dataset), 0.0) + float(rho)
        self.answers.add(
            (
                agreement,
                int(entry.get("agreement_version") or 0),
                str(entry.get("executed_sql")),
                str(entry.get("result_sha256")),
            )
        )


def spent(entries: Iterable[dict[str, Any]], agreement_id: str) -> float:
    """The rho an agreement has spent, summed over ledger entries (decoded JSON objects)."""
    totals = Spent()
    for entry in entries:
        totals.add(entry)
    return totals.agreements.get(agreement_id, 0.0)


def ledger_spends(rt: Runtime) -> Spent:
    """Spends over the runtime's ledger, read incrementally from the size last summed (the
    sums live in the runtime's resources, for as long as it runs)."""
    ledger = rt.ledger
    holder: dict[str, Spent] = rt.resources.setdefault("budget", {})
    with rt.resource_lock:
        cached = holder.get("spent")
        size = ledger.size()
        if cached is None or cached.size > size:  # a shorter ledger: start over
            cached = Spent()
        updated = cached.copy()
        for index, data in ledger.entries(cached.size, size):
            updated.add(json.loads(data))
            updated.size = index + 1
        updated.size = size
        holder["spent"] = updated
        return updated


def dataset_rho_cap(ws: Workspace) -> float:
    """The workspace's cap on the rho spent on one dataset across all agreements."""
    value = ws.manifest().get("dp_dataset_rho_cap", DEFAULT_DATASET_RHO_CAP)
    return float(value) if isinstance(value, int | float) and value > 0 else 0.0
