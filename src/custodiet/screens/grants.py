"""The agreement a set of screens needs: exactly the columns they read, everything else denied."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from custodiet.agreements.model import Treatment
from custodiet.catalog.classes import ColumnClass
from custodiet.catalog.model import Dataset
from custodiet.screens.model import Screen


def needed_grants(screens: Iterable[Screen]) -> dict[str, dict[str, Treatment]]:
    """dataset -> column -> treatment, the union of what ``screens`` read."""
    grants: dict[str, dict[str, Treatment]] = {}
    for screen in screens:
        for dataset, columns in screen.needs.items():
            grants.setdefault(dataset, {}).update(columns)
    return grants


def agreement_document(
    *,
    agreement_id: str,
    reviewer: str,
    expires: dt.date,
    screens: Iterable[Screen],
    datasets: Mapping[str, Dataset],
    max_rows: int = 1_000_000,
    purpose: str = "Screen federal payments for improper ones (Do-Not-Pay-style screens)",
) -> dict[str, Any]:
    """An agreement (docs/agreements.md; a YAML-ready mapping) granting exactly what screens read.

    Every other column of a granted dataset is listed as ``deny`` so the file says so in words.
    A dataset whose needed columns include a quasi-identifier (a beneficiary's date of birth, for
    the age rule) carries ``allow_quasi_identifiers: true``: the custodians see that and decide.
    """
    documents: dict[str, Any] = {}
    for name, needed in needed_grants(screens).items():
        dataset = datasets[name]
        columns = {
            column: needed[column].value if column in needed else Treatment.DENY.value
            for column in dataset.columns
        }
        grant: dict[str, Any] = {"columns": columns}
        if any(
            dataset.columns[c].column_class is ColumnClass.QUASI_IDENTIFIER and t is Treatment.ALLOW
            for c, t in needed.items()
        ):
            grant["allow_quasi_identifiers"] = True
        documents[name] = grant
    return {
        "id": agreement_id,
        "purpose": purpose,
        "reviewer": reviewer,
        "expires": expires.isoformat(),
        "mode": "pseudonymous",
        "datasets": documents,
        "limits": {"max_rows": max_rows},
        "approvals_required": 2,
    }
