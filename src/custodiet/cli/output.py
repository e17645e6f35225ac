"""Rows as people and programs read them: typed JSON, CSV and Parquet files, capped tables.

JSON numbers. Integers and floats are JSON numbers (an integer beyond 2**53 is a string, as the
gateway's ``json_value`` writes it). A decimal column is written as JSON numbers when every
value in it has at most 15 significant digits, so that any reader's 64-bit float gives back the
same decimal; otherwise the whole column is strings holding the exact digits. ``types`` names
each column's type, whatever its JSON form.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

# a decimal with at most this many significant digits survives a trip through a 64-bit float
FLOAT_DIGITS = 15

_TYPES: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "double"),
    (decimal.Decimal, "decimal"),
    (dt.datetime, "timestamp"),
    (dt.date, "date"),
    (dt.time, "time"),
    (dt.timedelta, "interval"),
    (uuid.UUID, "uuid"),
    (str, "string"),
    ((bytes, bytearray, memoryview), "blob"),
    ((list, tuple), "list"),
    (dict, "struct"),
)
NUMERIC = frozenset({"integer", "double", "decimal"})


def value_type(value: Any) -> str:
    for kind, name in _TYPES:
        if isinstance(value, kind):
            return name
    return "string"


def column_types(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Each column's type, from its first non-null value (``null`` when every value is null)."""
    types = []
    for i in range(len(columns)):
        first = next((row[i] for row in rows if row[i] is not None), None)
        types.append("null" if first is None else value_type(first))
    return types


def _fits_float(value: decimal.Decimal) -> bool:
    return value.is_finite() and len(value.as_tuple().digits) <= FLOAT_DIGITS


def json_rows(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], types: Sequence[str]
) -> list[list[Any]]:
    """Rows as JSON-ready values (see the module docstring for numbers)."""
    from custodiet.gateway.release import json_value

    as_numbers = [
        kind == "decimal"
        and all(
            r[i] is None or _fits_float(r[i]) for r in rows if isinstance(r[i], decimal.Decimal)
        )
        for i, kind in enumerate(types)
    ]
    return [
        [
            float(v) if as_numbers[i] and isinstance(v, decimal.Decimal) else json_value(v)
            for i, v in enumerate(row)
        ]
        for row in rows
    ]


def cell_text(value: Any) -> str:
    """A value as CSV or table text: empty for null, JSON for lists and structs."""
    from custodiet.gateway.release import json_value

    shown = json_value(value)
    if shown is None:
        return ""
    if isinstance(shown, list | dict):
        return json.dumps(shown, ensure_ascii=False)
    return str(shown)


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


def write_parquet(path: Path, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Rows as a Parquet file, each column typed from its Python values."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = list(rows)
    arrays = [pa.array([row[i] for row in data]) for i in range(len(columns))]
    pq.write_table(pa.Table.from_arrays(arrays, names=list(columns)), path)
