"""What the reviewer's engine holds for one agreement version: the checker's only view of the world.

The projection builder produces a ``Policy`` from an active agreement and the catalog; the checker
accepts a query only if every table and column it reaches is in ``Policy.tables``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from custodiet.agreements.model import Mode
from custodiet.catalog.classes import ColumnClass

# In a dp projection, each row's rank among its person's rows (a fixed pseudorandom order set at
# build), so that cutting a person's rows is a filter rather than a window over every row. It is
# not a column of the Policy: the checker refuses it like any column the agreement does not grant.
ROW_NUMBER_COLUMN = "_custodiet_rn"
# In a pseudonymous projection, the dataset version each row came from (set at build, and at
# each extension for the rows it appends), so that a monitor run can look at the new rows only
# (cases/scope.py). Not a column of the Policy either: reviewers can neither select nor filter it.
VERSION_COLUMN = "_custodiet_version"


class ColumnKind(StrEnum):
    VALUE = "value"  # released as stored (allow)
    TOKEN = "token"  # noqa: S105 -- identifier replaced by a keyed token (pseudonymize)
    GENERALIZED = "generalized"  # coarsened (generalize:<level>)
    MASKED = "masked"  # constant mask; carries no information


@dataclass(frozen=True)
class ColumnView:
    name: str
    kind: ColumnKind
    column_class: ColumnClass
    sql_type: str  # DuckDB type of the projected column, e.g. VARCHAR, DATE, DECIMAL(12,2)


@dataclass(frozen=True)
class TableView:
    name: str
    columns: Mapping[str, ColumnView]
    person_column: str | None  # the token column whose distinct values count persons
    denied: frozenset[str] = field(default_factory=frozenset)  # for precise refusal messages
    ranked: bool = False  # the table stores ROW_NUMBER_COLUMN (dp mode, with a person column)


@dataclass(frozen=True)
class Policy:
    agreement_id: str
    version: int
    mode: Mode
    tables: Mapping[str, TableView]
    max_rows: int
    min_group_size: int

    def describe_allowed(self, table: str) -> str:
        """One line listing what a table releases, for refusal hints."""
        view = self.tables[table]
        return ", ".join(
            f"{c.name} ({c.kind.value})" if c.kind is not ColumnKind.VALUE else c.name
            for c in view.columns.values()
        )
