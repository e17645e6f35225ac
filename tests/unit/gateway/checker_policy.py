"""A hand-built Policy over the canonical schema, shared by the checker's tests.

payments and deaths as the docs/agreements.md example agreement (ssa-deceased-payees) projects
them, plus payments.program and payments.agency granted: tokens for identifiers, payee_name,
method and the deaths names denied, date_of_birth generalized; max_rows 100, min_group_size 11.
"""

from __future__ import annotations

from custodiet.agreements.model import Mode
from custodiet.catalog.classes import ColumnClass
from custodiet.gateway.policy import ColumnKind, ColumnView, Policy, TableView

AGREEMENT = "ssa-deceased-payees"
VERSION = 3
MAX_ROWS = 100

_PAYMENTS = {
    "payment_id": (ColumnKind.VALUE, ColumnClass.KEY, "VARCHAR"),
    "payee_tin": (ColumnKind.TOKEN, ColumnClass.IDENTIFIER, "VARCHAR"),
    "amount": (ColumnKind.VALUE, ColumnClass.AMOUNT, "DECIMAL(12,2)"),
    "payment_date": (ColumnKind.VALUE, ColumnClass.DATE, "DATE"),
    "program": (ColumnKind.VALUE, ColumnClass.CATEGORY, "VARCHAR"),
    "agency": (ColumnKind.VALUE, ColumnClass.CATEGORY, "VARCHAR"),
    "routing_number": (ColumnKind.TOKEN, ColumnClass.IDENTIFIER, "VARCHAR"),
    "account_number": (ColumnKind.TOKEN, ColumnClass.IDENTIFIER, "VARCHAR"),
}
_DEATHS = {
    "ssn": (ColumnKind.TOKEN, ColumnClass.IDENTIFIER, "VARCHAR"),
    "date_of_death": (ColumnKind.VALUE, ColumnClass.DATE, "DATE"),
    "date_of_birth": (ColumnKind.GENERALIZED, ColumnClass.QUASI_IDENTIFIER, "INTEGER"),
}
PAYMENTS_DENIED = frozenset({"payee_name", "method"})
DEATHS_DENIED = frozenset({"first_name", "last_name"})


def _view(
    name: str,
    columns: dict[str, tuple[ColumnKind, ColumnClass, str]],
    person: str | None,
    denied: frozenset[str],
) -> TableView:
    return TableView(
        name=name,
        columns={
            c: ColumnView(c, kind, cls, sql_type) for c, (kind, cls, sql_type) in columns.items()
        },
        person_column=person,
        denied=denied,
    )


def sample_policy(mode: Mode = Mode.PSEUDONYMOUS, *, with_persons: bool = True) -> Policy:
    """The sample agreement's policy in ``mode``; without persons, no table has a person column."""
    return Policy(
        agreement_id=AGREEMENT,
        version=VERSION,
        mode=mode,
        tables={
            "payments": _view(
                "payments", _PAYMENTS, "payee_tin" if with_persons else None, PAYMENTS_DENIED
            ),
            "deaths": _view("deaths", _DEATHS, "ssn" if with_persons else None, DEATHS_DENIED),
        },
        max_rows=MAX_ROWS,
        min_group_size=11,
    )


GRANTED = {
    f"{table}.{column}"
    for table, cols in (("payments", _PAYMENTS), ("deaths", _DEATHS))
    for column in cols
}
DENIED = {f"payments.{c}" for c in PAYMENTS_DENIED} | {f"deaths.{c}" for c in DEATHS_DENIED}
