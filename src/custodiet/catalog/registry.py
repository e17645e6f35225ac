"""The catalog: register a file as a dataset, classify its columns, and look datasets up.

Registration reads the schema and the row count with DuckDB (the catalog is one of the two places
that import it); distinct counts and the values validated come from the first PREFIX_ROWS rows
only, so registering 10M rows costs about as much as registering 100k. The column classes go on
the ledger (``dataset.add``), never a value.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from custodiet.catalog.classes import ColumnClass
from custodiet.catalog.classify import INTEGER_TYPES, ColumnStats, classify_column
from custodiet.catalog.model import ColumnInfo, Dataset, IdentifierKind
from custodiet.catalog.source import Source, parse_source, relation_sql
from custodiet.errors import InputError
from custodiet.state import opened, record, transaction
from custodiet.workspace import Workspace

if TYPE_CHECKING:
    import duckdb

__all__ = ["ColumnInfo", "Dataset", "add_dataset", "get_dataset", "list_datasets"]

DATASET_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
PREFIX_ROWS = 100_000  # rows that classification looks at
SAMPLE_ROWS = 2_000  # of those, rows whose values are validated
FALLBACK_KIND: IdentifierKind = "account"  # an opaque identifier: tokenized as a plain string


def add_dataset(
    ws: Workspace,
    name: str,
    path: str | Path,
    overrides: Mapping[str, ColumnClass],
    actor: str,
) -> Dataset:
    """Register ``path`` as ``name`` with classes inferred, then overridden by the custodian."""
    if not DATASET_NAME.match(name):
        raise InputError(
            f"dataset name {name!r} is not valid",
            hint="use a lowercase letter, then lowercase letters, digits or _ (at most 64)",
            code="CUST235",
        )
    source = parse_source(str(path))
    columns, rows = _inspect(source)
    columns = _apply_overrides(columns, overrides)
    dataset = Dataset(
        name=name,
        path=str(source.path),
        format=source.format,
        columns=columns,
        sha256=_file_sha256(source.path),
        rows=rows,
        table=source.table,
    )
    with opened(ws) as con, transaction(con):
        if con.execute("SELECT 1 FROM datasets WHERE name = ?", (name,)).fetchone():
            raise InputError(
                f"dataset {name!r} is already registered",
                hint="choose another name; `custodiet dataset list` shows the taken ones",
                code="CUST236",
            )
        con.execute(
            "INSERT INTO datasets (name, document, created) VALUES (?, ?, ?)",
            (name, json.dumps(dataset.document()), datetime.now(UTC).isoformat()),
        )
        record(ws, _ledger_entry(dataset, actor))
    return dataset


def get_dataset(ws: Workspace, name: str) -> Dataset:
    with opened(ws) as con:
        row = con.execute("SELECT document FROM datasets WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise InputError(
            f"unknown dataset {name!r}",
            hint="`custodiet dataset list` shows the registered datasets",
            code="CUST237",
        )
    return Dataset.from_document(json.loads(row["document"]))


def list_datasets(ws: Workspace) -> list[Dataset]:
    with opened(ws) as con:
        rows = con.execute("SELECT document FROM datasets ORDER BY name").fetchall()
    return [Dataset.from_document(json.loads(row["document"])) for row in rows]


def _ledger_entry(dataset: Dataset, actor: str) -> dict[str, object]:
    return {
        "actor": actor,
        "action": "dataset.add",
        "dataset": dataset.name,
        "format": dataset.format,
        "file_sha256": dataset.sha256,
        "rows": dataset.rows,
        "columns": {c.name: c.column_class.value for c in dataset.columns.values()},
    }


def _apply_overrides(
    columns: dict[str, ColumnInfo], overrides: Mapping[str, ColumnClass]
) -> dict[str, ColumnInfo]:
    unknown = sorted(set(overrides) - set(columns))
    if unknown:
        raise InputError(
            f"--classify names unknown column {unknown[0]!r}",
            hint=f"the file's columns are: {', '.join(columns)}",
            code="CUST238",
        )
    result = dict(columns)
    for name, cls in overrides.items():
        info = columns[name]
        kind = (info.identifier_kind or FALLBACK_KIND) if cls is ColumnClass.IDENTIFIER else None
        result[name] = ColumnInfo(name, info.sql_type, cls, kind)
    return result


def _inspect(source: Source) -> tuple[dict[str, ColumnInfo], int]:
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        relation = relation_sql(con, source)
        schema = [
            (str(r[0]), str(r[1]))
            for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
        ]
        rows = _row_count(con, relation)
        prefix = f"(SELECT * FROM {relation} LIMIT {PREFIX_ROWS})"
        counted = [n for n, t in schema if t == "VARCHAR" or t in INTEGER_TYPES]
        distinct, non_null = _counts(con, prefix, counted)
        samples = _samples(con, prefix, [n for n, t in schema if t == "VARCHAR"])
    except duckdb.Error as exc:
        raise InputError(
            f"{source.path}: cannot read it as {source.format} ({type(exc).__name__})",
            hint="check that the file is a valid, readable " + source.format + " file",
            code="CUST239",
        ) from None
    finally:
        con.close()
    columns = {
        name: classify_column(
            name,
            sql_type,
            ColumnStats(samples.get(name, ()), distinct.get(name, 0), non_null.get(name, 0)),
        )
        for name, sql_type in schema
    }
    return columns, rows


def _row_count(con: duckdb.DuckDBPyConnection, relation: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {relation}").fetchone()
    return int(row[0]) if row else 0


def _counts(
    con: duckdb.DuckDBPyConnection, relation: str, names: list[str]
) -> tuple[dict[str, int], dict[str, int]]:
    """Distinct and non-null counts per column of ``relation``."""
    if not names:
        return {}, {}
    parts = [f"count(DISTINCT {_quote(n)}), count({_quote(n)})" for n in names]
    row = con.execute(f"SELECT {', '.join(parts)} FROM {relation}").fetchone()
    assert row is not None
    distinct = {n: int(row[2 * i]) for i, n in enumerate(names)}
    non_null = {n: int(row[2 * i + 1]) for i, n in enumerate(names)}
    return distinct, non_null


def _samples(
    con: duckdb.DuckDBPyConnection, relation: str, names: list[str]
) -> dict[str, list[str]]:
    """Non-null values per string column from a repeatable sample of SAMPLE_ROWS rows."""
    if not names:
        return {}
    select = ", ".join(_quote(n) for n in names)
    rows = con.execute(
        f"SELECT {select} FROM {relation} USING SAMPLE reservoir({SAMPLE_ROWS} ROWS) REPEATABLE (7)"
    ).fetchall()
    return {n: [r[i] for r in rows if r[i] is not None] for i, n in enumerate(names)}


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
