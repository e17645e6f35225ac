"""The catalog: register a file as a dataset, classify its columns, and look datasets up.

Registration reads the schema and the row count with DuckDB (the catalog is one of the two places
that import it); distinct counts and the values validated come from the first PREFIX_ROWS rows
only, so registering 10M rows costs about as much as registering 100k. The column classes go on
the ledger (``dataset.add``), never a value.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from custodiet import entries
from custodiet.catalog.classes import ColumnClass
from custodiet.catalog.classify import (
    INTEGER_TYPES,
    ColumnStats,
    classify_column,
    identifier_kind_from_values,
)
from custodiet.catalog.model import ColumnInfo, Dataset, IdentifierKind
from custodiet.catalog.source import Source, parse_source, relation_sql
from custodiet.errors import InputError, RefusedError
from custodiet.identity import SignedRequest
from custodiet.ledger.replay import (
    State,
    dataset_files,
    dataset_versions,
    files_digest,
    granting,
)
from custodiet.runtime import Runtime

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "ColumnInfo",
    "Dataset",
    "Registration",
    "add_dataset",
    "get_dataset",
    "list_datasets",
    "update_dataset",
]

DATASET_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
PREFIX_ROWS = 100_000  # rows that classification looks at
SAMPLE_ROWS = 2_000  # of those, rows whose values are validated
FALLBACK_KIND: IdentifierKind = "account"  # an opaque identifier: tokenized as a plain string


@dataclass(frozen=True)
class Registration:
    """What one custodian's signed ``dataset add`` did."""

    dataset: Dataset
    lowered: tuple[str, ...]  # columns classified below what was inferred (need K signatures)
    votes: int
    required: int
    effective: bool
    ledger_index: int


def add_dataset(rt: Runtime, signed: SignedRequest) -> Registration:
    """Register ``args.path`` as ``args.name``: classes inferred, then ``args.classify``
    overrides. Raising protection needs one custodian; lowering any class needs K (each runs the
    same command); a column whose values are identifiers stays one whatever is asked."""
    args = signed.args
    try:
        name, path, overrides = _registration_args(args)
        source = parse_source(path)
        columns, rows, by_value = _inspect(source)
        final = _apply_overrides(columns, overrides)
    except InputError as exc:
        rt.refuse(exc, attempted=signed.action, actor=signed.principal, signed=signed)
    files = digests_of(source)
    dataset = Dataset(
        name=name,
        path=str(source.path),
        format=source.format,
        columns=final,
        sha256=files_digest(files),
        rows=rows,
        table=source.table,
        files=tuple((f["path"], f["sha256"]) for f in files),
    )
    entry = entries.action(
        signed,
        dataset=name,
        path=dataset.path,
        format=dataset.format,
        table=dataset.table,
        file_sha256=dataset.sha256,
        files=files,
        rows=rows,
        columns={c.name: c.column_class.value for c in final.values()},
        inferred={c.name: c.column_class.value for c in columns.values()},
        identifiers_by_value=sorted(by_value),
        schema=[c.document() for c in final.values()],
    )
    committed = rt.commit(entry, refuse_as=signed)
    filled = committed.entry
    return Registration(
        dataset,
        tuple(filled["lowered"]),
        filled["votes"],
        filled["required"],
        filled["effective"],
        committed.index,
    )


def digests_of(source: Source) -> list[dict[str, str]]:
    """``{"path", "sha256"}`` of each file ``source`` reads, in order."""
    return [{"path": str(p), "sha256": file_sha256(p)} for p in source.paths]


def update_dataset(rt: Runtime, signed: SignedRequest) -> Registration:
    """Add the files of ``args.path`` that the dataset does not hold yet as its next version.

    Files it already holds must be byte for byte what was registered (a swapped file is
    refused); a column whose new values are identifiers must already be classified an
    identifier. The new files may add columns (classified as at registration; no agreement
    grants them until a new version that does is approved); they may drop or retype a column
    only when no active agreement grants it."""
    args = signed.args
    try:
        _custodian_only(rt, signed)
        name, path, _ = _registration_args({**args, "classify": {}})
        current = get_dataset(rt.refresh(), name)
        source = parse_source(path)
        added = _new_files(current, source)
        columns, rows, by_value = _inspect(added)
        _no_granted_column_changes(rt, current, columns)
    except (InputError, RefusedError) as exc:
        rt.refuse(exc, attempted=signed.action, actor=signed.principal, signed=signed)
    leaked = sorted(
        c
        for c in by_value
        if c in current.columns and current.columns[c].column_class is not ColumnClass.IDENTIFIER
    )
    if leaked:
        rt.refuse(
            RefusedError(
                f"the new files of {name!r} hold identifiers in column {leaked[0]!r}, "
                "which is not classified an identifier",
                hint="register the data under a new dataset name with its own classification",
                code="CUST519",
            ),
            attempted=signed.action, actor=signed.principal, signed=signed,
        )  # fmt: skip
    entry = entries.action(
        signed,
        dataset=name,
        path=str(source.path),
        files=digests_of(added),
        rows=rows,
        schema=[{"name": c.name, "sql_type": c.sql_type} for c in columns.values()],
        columns_added=[c.document() for c in columns.values() if c.name not in current.columns],
        identifiers_by_value=sorted(c for c in by_value if c not in current.columns),
    )
    committed = rt.commit(entry, refuse_as=signed)
    return Registration(get_dataset(rt.state, name), (), 1, 1, True, committed.index)


def _custodian_only(rt: Runtime, signed: SignedRequest) -> None:
    """Refuse anyone but a custodian before any file is read (the replay refuses it too)."""
    found = rt.state.principals.get(signed.principal)
    if found is not None and found.role != "custodian":
        raise RefusedError(
            f"principal {signed.principal!r} is a {found.role}; only custodians update datasets",
            hint="a custodian signs `custodiet dataset update`",
            code="CUST318",
        )


def _new_files(current: Dataset, source: Source) -> Source:
    """The files of ``source`` that ``current`` does not hold (those it holds must be unchanged)."""
    if current.format == "duckdb" or source.format != current.format:
        raise InputError(
            f"dataset {current.name!r} is {current.format}; {source.path} is {source.format}",
            hint="a dataset grows by files of its own format (a DuckDB table does not grow)",
            code="CUST705",
        )
    held = dict(current.file_digests)
    new: list[Path] = []
    for path in source.paths:
        registered = held.get(str(path))
        if registered is None:
            new.append(path)
        elif file_sha256(path) != registered:
            raise RefusedError(
                f"{path} changed since dataset {current.name!r} registered it "
                "(its bytes no longer match the registered sha256)",
                hint="restore the registered file; new data goes into new files",
                code="CUST704",
            )
    if not new:
        raise InputError(
            f"{source.path}: no file that dataset {current.name!r} does not already hold",
            hint="add the new month's files, or a directory or glob that includes them",
            code="CUST708",
        )
    return Source(source.path, source.format, None, tuple(new))


def _no_granted_column_changes(
    rt: Runtime, current: Dataset, columns: Mapping[str, ColumnInfo]
) -> None:
    """Refuse new files that drop or retype a column an active agreement grants (added
    columns are fine: no agreement grants them until a new version is approved)."""
    changed = [
        c.name
        for c in current.columns.values()
        if c.name not in columns or columns[c.name].sql_type != c.sql_type
    ]
    granted = granting(rt.state, current.name, changed, rt.now())
    if granted:
        agreement, column = granted[0].split(".", 1)
        raise RefusedError(
            f"the new files of dataset {current.name!r} drop or change the type of column "
            f"{column!r}, which active agreement {agreement!r} grants",
            hint="keep the column in the new files, or register them as a new dataset with "
            "`custodiet dataset add`",
            code="CUST702",
        )


def _registration_args(args: Mapping[str, Any]) -> tuple[str, str, dict[str, ColumnClass]]:
    name, path, classify = args.get("name"), args.get("path"), args.get("classify") or {}
    if not isinstance(name, str) or not DATASET_NAME.match(name):
        raise InputError(
            f"dataset name {name!r} is not valid",
            hint="use a lowercase letter, then lowercase letters, digits or _ (at most 64)",
            code="CUST235",
        )
    if not isinstance(path, str) or not path:
        raise InputError("the request names no PATH", code="CUST234")
    overrides: dict[str, ColumnClass] = {}
    if not isinstance(classify, dict):
        raise InputError("--classify must map columns to classes", code="CUST251")
    for column, value in classify.items():
        try:
            overrides[str(column)] = ColumnClass(value)
        except ValueError:
            raise InputError(
                f"--classify {column}={value}: unknown class",
                hint="CLASS is one of: " + ", ".join(c.value for c in ColumnClass),
                code="CUST251",
            ) from None
    return name, path, overrides


def get_dataset(state: State, name: str, version: int | None = None) -> Dataset:
    """The registered dataset ``name`` as the ledger says it is (its latest version, or
    ``version``: the files it held then)."""
    found = state.datasets.get(name)
    if found is None:
        raise InputError(
            f"unknown dataset {name!r}",
            hint="`custodiet dataset list` shows the registered datasets",
            code="CUST237",
        )
    return dataset_from_state(found, version)


def list_datasets(state: State) -> list[Dataset]:
    return [dataset_from_state(state.datasets[name]) for name in sorted(state.datasets)]


def dataset_from_state(record: Mapping[str, Any], version: int | None = None) -> Dataset:
    versions = dataset_versions(record)
    at = next((v for v in versions if v["version"] == version), versions[-1])
    return Dataset.from_document(
        {
            "name": record["name"],
            "path": record["path"],
            "format": record["format"],
            "table": record.get("table"),
            "sha256": at["sha256"],
            "rows": at["rows"],
            "columns": record["schema"],
            "version": at["version"],
            "files": dataset_files(record)[: int(at["files"])],
        }
    )


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


def _inspect(source: Source) -> tuple[dict[str, ColumnInfo], int, set[str]]:
    """Classes inferred per column, the row count, and the columns whose sampled values
    validate as identifiers (those stay identifiers whatever an override says)."""
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
    by_value = {n for n, values in samples.items() if identifier_kind_from_values(values)}
    return columns, rows, by_value


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


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
