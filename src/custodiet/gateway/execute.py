"""The reviewer's engine: a locked-down, read-only DuckDB on one projection file.

Second wall behind the checker: even a query the checker wrongly let through finds no files, no
network, no extensions, no Python objects and no settings to change; a deadline interrupts it, at
most ``row_limit`` rows are fetched, and they are fetched in chunks whose size is counted as they
come: a result that grows past ``max_bytes`` is refused (CUST376) before the next chunk.

This module is **the one boundary where engine errors become ours**: a DuckDB message can quote
a value from the data, so it is never shown, logged or recorded; only the error's class decides
our message.

A query that outlives the deadline is *refused* (exit 3, ``refused: query exceeded the time
limit …``): the limit is the agreement's (``limits.timeout_seconds``), the refusal goes on the
ledger, and only that query's cursor is interrupted: the engine keeps serving the next one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from custodiet.errors import CustodietError, InputError, RefusedError, SystemFailure
from custodiet.gateway.release import rows_bytes
from custodiet.workspace import DEFAULT_MAX_RESULT_BYTES

if TYPE_CHECKING:
    import duckdb


@dataclass(frozen=True)
class EngineLimits:
    threads: int = max(1, min(4, os.cpu_count() or 1))
    memory_limit: str = "4GB"
    max_temp_directory_size: str = "4GB"


@dataclass(frozen=True)
class Executed:
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]


def engine_config(limits: EngineLimits) -> dict[str, Any]:
    """Connection settings; ``lock_configuration`` last so nothing can loosen them afterwards."""
    return {
        "enable_external_access": False,
        "autoload_known_extensions": False,
        "autoinstall_known_extensions": False,
        "allow_community_extensions": False,
        "allow_unsigned_extensions": False,
        "python_enable_replacements": False,
        "threads": limits.threads,
        "memory_limit": limits.memory_limit,
        "max_temp_directory_size": limits.max_temp_directory_size,
        "lock_configuration": True,
    }


def open_engine(projection: Path, limits: EngineLimits | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only, locked connection on the projection file."""
    import duckdb

    try:
        return duckdb.connect(
            str(projection), read_only=True, config=engine_config(limits or EngineLimits())
        )
    except duckdb.Error as exc:
        raise SystemFailure(
            f"{projection}: cannot open the agreement's projection ({type(exc).__name__})",
            hint="ask a custodian to rebuild it (delete the file; it is rebuilt on next use)",
            code="CUST144",
        ) from None


CHUNK_VALUES = 1 << 16  # values fetched from the engine at a time (rows: this / columns)


def execute(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    *,
    row_limit: int,
    timeout_seconds: float,
    max_bytes: int = DEFAULT_MAX_RESULT_BYTES,
    time_limit: float | None = None,
) -> Executed:
    """Run ``sql`` with a wall-clock deadline ``timeout_seconds`` away; fetch at most
    ``row_limit`` rows and at most ``max_bytes`` (``release.rows_bytes``). ``time_limit`` is the
    limit a timeout names (default ``timeout_seconds``; the whole limit when part of it was
    spent before, checking the query or running its other statements)."""
    import duckdb

    limit = timeout_seconds if time_limit is None else time_limit
    if timeout_seconds <= 0:
        raise _timeout(limit)
    timed_out = threading.Event()

    def interrupt() -> None:
        timed_out.set()
        con.interrupt()

    timer = threading.Timer(timeout_seconds, interrupt)
    timer.daemon = True
    timer.start()
    try:
        cursor = con.execute(sql)
        columns = tuple(d[0] for d in cursor.description or ())
        rows = _fetched(cursor, row_limit, max(len(columns), 1), max_bytes)
    except duckdb.Error as exc:
        raise translate(exc, timed_out=timed_out.is_set(), timeout_seconds=limit) from None
    finally:
        timer.cancel()
    if timed_out.is_set():
        raise _timeout(limit)
    return Executed(columns, rows)


def _fetched(
    cursor: duckdb.DuckDBPyConnection, row_limit: int, width: int, max_bytes: int
) -> list[tuple[Any, ...]]:
    """At most ``row_limit`` rows, chunk by chunk, counting their bytes as they come."""
    rows: list[tuple[Any, ...]] = []
    size = 0
    chunk = max(1, CHUNK_VALUES // width)
    while len(rows) < row_limit:
        got = cursor.fetchmany(min(chunk, row_limit - len(rows)))
        size += rows_bytes(got)
        if size > max_bytes:
            raise result_too_large(max_bytes)
        rows.extend(got)
        if len(got) < chunk:
            break
    return rows


def result_too_large(max_bytes: int) -> RefusedError:
    return RefusedError(
        f"the result is larger than this vault's limit of {max_bytes:,} bytes; nothing released",
        hint="select fewer columns or rows, or aggregate (the limit is the workspace's "
        "max_result_bytes)",
        code="CUST376",
    )


def _timeout(seconds: float) -> RefusedError:
    return RefusedError(
        f"query exceeded the time limit of {seconds:g} s",
        hint="narrow the query (filters, fewer joins) or ask for a larger limits.timeout_seconds",
        code="CUST370",
    )


# DuckDB exception class name -> our error, matched in this order against the class and its bases.
_TRANSLATIONS: tuple[tuple[str, Callable[[], CustodietError]], ...] = (
    (
        "InterruptException",
        lambda: SystemFailure("the query was interrupted", hint="run it again", code="CUST145"),
    ),
    (
        "OutOfMemoryException",
        lambda: RefusedError(
            "query exceeded the memory limit of the reviewer's engine",
            hint="aggregate or filter earlier, or select fewer columns",
            code="CUST371",
        ),
    ),
    (
        "PermissionException",
        lambda: RefusedError(
            "the engine refused an operation outside the agreement's projection",
            hint="query only the agreement's datasets",
            code="CUST372",
        ),
    ),
    (
        "ConversionException",
        lambda: InputError(
            "query failed: a value could not be converted to the requested type",
            hint="use TRY_CAST, which yields NULL instead of failing",
            code="CUST283",
        ),
    ),
    (
        "OutOfRangeException",
        lambda: InputError(
            "query failed: a value was out of range for its type",
            hint="cast to a wider type (BIGINT, DOUBLE) before the arithmetic",
            code="CUST284",
        ),
    ),
    (
        "BinderException",
        lambda: InputError(
            "query failed: a function or operator does not accept these argument types",
            hint="check the argument types; CAST where needed",
            code="CUST285",
        ),
    ),
    (
        "CatalogException",
        lambda: InputError(
            "query failed: it names a table, column or function the projection does not have",
            hint="use only the datasets and columns of the agreement",
            code="CUST286",
        ),
    ),
    (
        "InvalidInputException",
        lambda: InputError(
            "query failed: invalid input to a function or operator (e.g. division by zero)",
            hint="guard the expression (NULLIF, CASE) so it cannot fail",
            code="CUST287",
        ),
    ),
    (
        "ParserException",
        lambda: InputError(
            "query failed: the engine could not parse the checked query",
            hint="simplify the query",
            code="CUST288",
        ),
    ),
)


def translate(exc: Exception, *, timed_out: bool = False, timeout_seconds: float = 0) -> Exception:
    """Our error for an engine error; its text is never used (it can hold data values)."""
    if timed_out:
        return _timeout(timeout_seconds)
    names = {cls.__name__ for cls in type(exc).__mro__}
    for name, ours in _TRANSLATIONS:
        if name in names:
            return ours()
    return SystemFailure(
        f"the query engine failed ({type(exc).__name__})",
        hint="try again; if it persists, tell a custodian",
        code="CUST146",
    )
