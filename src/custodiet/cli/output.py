"""Rows for people: capped tables with numbers right-aligned and grouped. Rows for programs
(typed JSON, CSV and Parquet files) are rendered by custodiet.gateway.rendering."""

from __future__ import annotations

import decimal
from typing import Any

from custodiet.gateway.rendering import NUMERIC, cell_text


def grouped(column: str, kind: str) -> bool:
    """Whether a numeric column is shown with thousands separators (not years or ids)."""
    name = column.lower()
    return kind in NUMERIC and not (name.endswith("year") or name.endswith("id"))


def table_cell(value: Any, separators: bool) -> str:
    if (
        separators
        and isinstance(value, int | float | decimal.Decimal)
        and not isinstance(value, bool)
    ):
        return f"{value:,}"
    return cell_text(value)
