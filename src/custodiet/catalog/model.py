"""A registered dataset as the rest of custodiet sees it: frozen, with one class per column."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from custodiet.catalog.classes import ColumnClass

Format = Literal["parquet", "csv", "duckdb"]
IdentifierKind = Literal["ssn", "tin", "ein", "name", "routing", "account"]
IDENTIFIER_KINDS: tuple[IdentifierKind, ...] = ("ssn", "tin", "ein", "name", "routing", "account")


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    sql_type: str  # DuckDB type, e.g. VARCHAR, DATE, DECIMAL(12,2)
    column_class: ColumnClass
    identifier_kind: IdentifierKind | None  # how the gateway normalizes and tokenizes it

    def document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sql_type": self.sql_type,
            "column_class": self.column_class.value,
            "identifier_kind": self.identifier_kind,
        }


@dataclass(frozen=True)
class Dataset:
    name: str
    path: str  # absolute path of the file
    format: Format
    columns: Mapping[str, ColumnInfo]
    sha256: str  # of the file's bytes at registration
    rows: int
    table: str | None = None  # the table inside a DuckDB file (format 'duckdb' only)
    version: int = 1  # 1 at registration, then one more per ``dataset update``
    files: tuple[tuple[str, str], ...] = ()  # (absolute path, sha256) of each file read, in order

    @property
    def file_digests(self) -> tuple[tuple[str, str], ...]:
        return self.files or ((self.path, self.sha256),)

    def document(self) -> dict[str, Any]:
        """Plain JSON-able form, as stored in the state and shown by ``dataset show``."""
        return {
            "name": self.name,
            "path": self.path,
            "format": self.format,
            "table": self.table,
            "sha256": self.sha256,
            "rows": self.rows,
            "version": self.version,
            "files": [{"path": p, "sha256": d} for p, d in self.file_digests],
            "columns": [c.document() for c in self.columns.values()],
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Dataset:
        columns = {
            c["name"]: ColumnInfo(
                c["name"], c["sql_type"], ColumnClass(c["column_class"]), c["identifier_kind"]
            )
            for c in doc["columns"]
        }
        return cls(
            name=doc["name"],
            path=doc["path"],
            format=doc["format"],
            columns=columns,
            sha256=doc["sha256"],
            rows=int(doc["rows"]),
            table=doc.get("table"),
            version=int(doc.get("version", 1)),
            files=tuple((str(f["path"]), str(f["sha256"])) for f in doc.get("files") or ()),
        )
