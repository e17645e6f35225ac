"""Where a dataset's rows come from, and the DuckDB relation that reads them.

``PATH.parquet``, ``PATH.csv``, ``PATH.duckdb::table``, a directory (every Parquet or CSV file
under it, one format) or a glob (``data/month=*/payments.parquet``). A directory or a glob is
resolved to its sorted list of files once, when it is registered or updated; from then on the
dataset is that list. Both the catalog (at registration) and the projection builder (custodian
side) read raw data through ``relation_sql``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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


GLOB_CHARACTERS = frozenset("*?[")


@dataclass(frozen=True)
class Source:
    path: Path  # absolute: the file, or the directory or glob as given
    format: Format
    table: str | None = None
    files: tuple[Path, ...] = field(default=())  # the files read, sorted (empty: ``path``)

    @property
    def paths(self) -> tuple[Path, ...]:
        return self.files or (self.path,)


def parse_source(location: str) -> Source:
    """``Source`` for ``PATH``, ``PATH.duckdb::table``, a directory or a glob of Parquet or CSV
    files; ``InputError`` naming what to fix."""
    text, sep, table = location.partition("::")
    if not sep and (GLOB_CHARACTERS & set(text) or Path(text).expanduser().is_dir()):
        return _many(location, text)
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


def _many(location: str, text: str) -> Source:
    """The Parquet or CSV files a directory holds (recursively) or a glob matches, sorted."""
    expanded = str(Path(text).expanduser())
    if Path(expanded).is_dir():
        found = [p for p in Path(expanded).rglob("*") if p.is_file()]
    else:
        pattern = Path(expanded).absolute()
        relative = str(pattern.relative_to(pattern.anchor))
        found = [p for p in Path(pattern.anchor).glob(relative) if p.is_file()]
    files = sorted(
        p.resolve() for p in found if p.suffix.lower() in _SUFFIXES and not p.name.startswith(".")
    )
    if not files:
        raise InputError(
            f"{location}: matches no .parquet or .csv file",
            hint="name a file, a directory holding data files, or a glob such as DIR/*.parquet",
            code="CUST700",
        )
    formats = {_SUFFIXES[p.suffix.lower()] for p in files}
    if len(formats) > 1:
        raise InputError(
            f"{location}: mixes {' and '.join(sorted(formats))} files",
            hint="a dataset's files share one format; name the files of one format",
            code="CUST701",
        )
    root = Path(expanded).resolve() if Path(expanded).is_dir() else Path(expanded).absolute()
    return Source(root, formats.pop(), None, tuple(files))


def source_of(dataset: Dataset) -> Source:
    files = tuple(Path(path) for path, _ in dataset.files) if dataset.format != "duckdb" else ()
    return Source(Path(dataset.path), dataset.format, dataset.table, files)


def relation_sql(con: duckdb.DuckDBPyConnection, source: Source, alias: str = "src") -> str:
    """A FROM-clause expression reading ``source`` (a DuckDB file is attached read-only)."""
    if source.files:
        literal = "[" + ", ".join(_string_literal(str(p)) for p in source.files) + "]"
    else:
        literal = _string_literal(str(source.path))
    # the file's own columns only: no column from a directory named KEY=VALUE (hive layout)
    # files of a grown dataset are matched by column name: a file from before an update that
    # added a column reads as NULL in it
    if source.format == "parquet":
        return f"read_parquet({literal}, hive_partitioning = false, union_by_name = true)"
    if source.format == "csv":
        return (
            f"read_csv({literal}, auto_detect = true, hive_partitioning = false, "
            "union_by_name = true)"
        )
    con.execute(f"ATTACH {literal} AS {_identifier(alias)} (READ_ONLY)")
    return f"{_identifier(alias)}.main.{_identifier(source.table or '')}"


def _string_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identifier(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'
