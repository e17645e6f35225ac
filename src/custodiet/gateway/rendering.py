"""Released rows as files: typed JSON, CSV and Parquet, rendered by the gateway itself.

A request may name ``args.output`` (csv, json or parquet). The gateway then renders the released
rows as exactly the bytes of that file and records their SHA-256 in the outcome entry
(``output_format``, ``output_sha256``) before anything leaves; the CLI writes those bytes
unchanged, so the file is bound to its ledger entry and a receipt proves it
(custodiet.ledger.receipts). The CLI and the API print rows with the same functions.

JSON numbers. Integers and floats are JSON numbers (an integer beyond 2**53 is a string, as the
gateway's ``json_value`` writes it). A decimal column is written as JSON numbers when every
value in it has at most 15 significant digits, so that any reader's 64-bit float gives back the
same decimal; otherwise the whole column is strings holding the exact digits. ``types`` names
each column's type, whatever its JSON form.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import hashlib
import io
import json
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from custodiet.errors import InputError
from custodiet.gateway.release import json_value

if TYPE_CHECKING:
    from custodiet.identity import SignedRequest
    from custodiet.runtime import Runtime

FILE_FORMATS = ("csv", "json", "parquet")

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
    shown = json_value(value)
    if shown is None:
        return ""
    if isinstance(shown, list | dict):
        return json.dumps(shown, ensure_ascii=False)
    return str(shown)


def rows_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A header line, then one line per row (``cell_text`` of each value)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([cell_text(v) for v in row] for row in rows)
    return buffer.getvalue()


def parquet_bytes(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """Rows as a Parquet file's bytes, each column typed from its Python values."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = list(rows)
    arrays = [pa.array([row[i] for row in data]) for i in range(len(columns))]
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_arrays(arrays, names=list(columns)), sink)
    return bytes(sink.getvalue().to_pybytes())


def file_bytes(
    kind: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], document: Any
) -> bytes:
    """The exact bytes of an output file: ``rows`` as csv or parquet, or ``document`` as one
    JSON document (UTF-8, one line)."""
    if kind == "parquet":
        return parquet_bytes(columns, rows)
    if kind == "json":
        return (json.dumps(document, ensure_ascii=False) + "\n").encode("utf-8")
    if kind == "csv":
        return rows_csv(columns, rows).encode("utf-8")
    raise ValueError(f"unknown file format {kind!r}")


def requested_output(rt: Runtime, signed: SignedRequest) -> str | None:
    """The request's ``output`` format, or None; any other value is refused on the ledger."""
    kind = signed.args.get("output")
    if kind is None or kind in FILE_FORMATS:
        return kind if isinstance(kind, str) else None
    rt.refuse(
        InputError(
            f"the request's output must be one of {', '.join(FILE_FORMATS)}",
            hint="check the command line",
            code="CUST530",
        ),
        attempted=signed.action,
        actor=signed.principal,
        signed=signed,
    )


def rows_document(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], notices: Sequence[str]
) -> dict[str, Any]:
    """Rows as typed JSON: ``types`` names each column's type. The document a query's
    ``--out FILE.json`` holds (its receipt names the ledger entry)."""
    types = column_types(columns, rows)
    return {
        "columns": list(columns),
        "types": types,
        "rows": json_rows(columns, rows, types),
        "notices": list(notices),
    }


def rows_file(
    kind: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], notices: Sequence[str]
) -> bytes:
    """A query's released rows as the bytes of a csv, json or parquet file."""
    return file_bytes(kind, columns, rows, rows_document(columns, rows, notices))


def recorded(kind: str, data: bytes) -> dict[str, str]:
    """What the outcome entry records of the rendered file."""
    return {"output_format": kind, "output_sha256": hashlib.sha256(data).hexdigest()}
