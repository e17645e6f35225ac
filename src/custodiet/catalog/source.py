"""Where a dataset's rows come from, and the DuckDB relation that reads them.

``PATH.parquet``, ``PATH.csv`` or ``PATH.duckdb::table``. Both the catalog (at registration) and
the projection builder (custodian side) read raw data through ``relation_sql``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from custodiet.catalog.model import Format
from custodiet.errors import InputError

if TYPE_CHECKING:
    import duckdb

    from custodiet.catalog.model import Dataset

_SUFFIXES: dict[str, Format] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".gz": "csv",
}


@dataclass(frozen=True)
class Source:
    path: Path  # absolute
    format: Format
    table: str | None = None


def parse_source(location: str) -> Source:
    """``Source`` for ``PATH`` or ``PATH.duckdb::table``; ``InputError`` naming what to fix."""
    text, sep, table = location.partition("::")
    path = Path(text).expanduser().resolve()
    if sep:
        if not table:
            raise InputError(
                f"{location}: no table after '::'",
                hint="write PATH.duckdb::TABLE",
                code="CUST232",
            )
        fmt: Format | None = "duckdb"
    else:
        fmt = _SUFFIXES.get(path.suffix.lower())
        if path.suffix.lower() in {".duckdb", ".db"}:
            raise InputError(
                f"{location}: a DuckDB file needs a table name",
                hint="write PATH.duckdb::TABLE",
                code="CUST232",
            )
    if fmt is None:
        raise InputError(
            f"{location}: unknown file format {path.suffix!r}",
            hint="register a .parquet or .csv file, or PATH.duckdb::TABLE",
            code="CUST233",
        )
    if not path.is_file():
        raise InputError(
            f"{path}: no such file",
            hint="check the path; it is resolved from the current directory",
            code="CUST234",
        )
    return Source(path, fmt, table or None)


def source_of(dataset: Dataset) -> Source:
    return Source(Path(dataset.path), dataset.format, dataset.table)


def relation_sql(con: duckdb.DuckDBPyConnection, source: Source, alias: str = "src") -> str:
    """A FROM-clause expression reading ``source`` (a DuckDB file is attached read-only)."""
    literal = _string_literal(str(source.path))
    if source.format == "parquet":
        return f"read_parquet({literal})"
    if source.format == "csv":
        return f"read_csv({literal}, auto_detect = true)"
    con.execute(f"ATTACH {literal} AS {_identifier(alias)} (READ_ONLY)")
    return f"{_identifier(alias)}.main.{_identifier(source.table or '')}"


def _string_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identifier(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'
