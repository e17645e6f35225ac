"""Streaming Parquet output: one writer per table, temp names until everything is written.

Files are written as ``.NAME.parquet.partial`` and renamed to ``NAME.parquet`` only after
every table is complete, so a failed or interrupted run never leaves a half-written file
under a final name. Fixed writer settings make the bytes depend on the data alone.
"""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import Self

import pyarrow as pa
import pyarrow.parquet as pq

from custodiet.errors import SystemFailure
from custodiet.synth.schema import SCHEMAS

PARQUET_SETTINGS = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
    "write_statistics": True,
    "version": "2.6",
    "data_page_version": "1.0",
}


def final_path(out: Path, table: str) -> Path:
    return out / f"{table}.parquet"


def partial_path(out: Path, table: str) -> Path:
    return out / f".{table}.parquet.partial"


class TableWriters:
    """Append chunks to every table; on a clean exit publish them, otherwise delete them."""

    def __init__(self, out: Path) -> None:
        self._out = out
        self._writers: dict[str, pq.ParquetWriter] = {}
        self.rows = dict.fromkeys(SCHEMAS, 0)

    def __enter__(self) -> Self:
        try:
            for table, schema in SCHEMAS.items():
                self._writers[table] = pq.ParquetWriter(
                    partial_path(self._out, table), schema, **PARQUET_SETTINGS
                )
        except OSError as exc:
            self._discard()
            raise _write_failure(self._out) from exc
        return self

    def write(self, tables: dict[str, pa.Table]) -> None:
        try:
            for name, table in tables.items():
                self._writers[name].write_table(table)
                self.rows[name] += table.num_rows
        except OSError as exc:
            raise _write_failure(self._out) from exc

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is not None:
            self._discard()
            return
        try:
            for writer in self._writers.values():
                writer.close()
            for table in SCHEMAS:
                partial_path(self._out, table).replace(final_path(self._out, table))
        except OSError as exc:
            self._discard()
            raise _write_failure(self._out) from exc

    def _discard(self) -> None:
        for writer in self._writers.values():
            with suppress(OSError):
                writer.close()
        for table in SCHEMAS:
            partial_path(self._out, table).unlink(missing_ok=True)


def _write_failure(out: Path) -> SystemFailure:
    return SystemFailure(
        f"could not write the synthetic tables into '{out}'",
        hint="check that the directory is writable and the disk has free space",
        code="CUST219",
    )
