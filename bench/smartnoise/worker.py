"""SmartNoise SQL side of ``compare.py``; runs in SmartNoise's own virtual environment.

    <venv>/bin/python bench/smartnoise/worker.py PAYMENTS_PARQUET --reader duckdb|pandas

Reads one line per run on stdin (the query's floor literal, so every run is a new query) and
answers one JSON line: the seconds ``PrivateReader.execute`` took and the rows it released. The
privacy unit is the person (``payee_tin``, ``private_id``), at most ``--max-ids`` rows a person
(SmartNoise keeps a random sample of each person's rows), ``amount`` clamped to [0, 2000]: the
same person-level count and sum as ``bench/dp.py``.

Readers: ``pandas`` is SmartNoise's DataFrame reader (the frame is copied into in-memory SQLite
once, before the first run; that load is reported apart). ``duckdb`` runs SmartNoise's rewritten
SQL on DuckDB over the same Parquet file as the raw baseline, through SmartNoise's Postgres
reader (a DB-API pipe; DuckDB reads that dialect), so both sides use the same engine; the one
change is the order in which each person's rows are sampled (``_Cursor``: DuckDB refuses
``ORDER BY random()`` in a window).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import duckdb
import snsql

SQL = (
    "SELECT program, COUNT(*) AS n, SUM(amount) AS total FROM bench.payments "
    "WHERE amount > {floor} GROUP BY program"
)


def metadata(max_ids: int) -> dict[str, Any]:
    return {
        "bench": {
            "bench": {
                "payments": {
                    "max_ids": max_ids,
                    "row_privacy": False,
                    "payee_tin": {"type": "string", "private_id": True},
                    "program": {"type": "string"},
                    "amount": {"type": "float", "lower": 0, "upper": 2000},
                }
            }
        }
    }


_ROW_HASH = "hash(payee_tin, program, amount)"


class _Cursor:
    """The slice of DB-API that SmartNoise's Postgres reader uses, over a DuckDB cursor."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self.description: Any = None
        self._rows: list[tuple[Any, ...]] = []

    def execute(self, sql: str) -> None:
        # DuckDB refuses a volatile window ORDER BY, and SmartNoise keeps each person's first
        # max_ids rows by ROW_NUMBER() OVER (PARTITION BY person ORDER BY RANDOM()): order them
        # by a hash of the row instead (a fixed pseudo-random sample; the same sort to do)
        result = self._con.execute(sql.replace("RANDOM ( )", _ROW_HASH))
        self.description = result.description
        self._rows = result.fetchall() if result.description else []

    def __iter__(self) -> Any:
        return iter(self._rows)


class _Connection:
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def cursor(self) -> _Cursor:
        return _Cursor(self._con)

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass


def reader(kind: str, payments: str, max_ids: int, privacy: snsql.Privacy) -> Any:
    columns = "payee_tin, program, CAST(amount AS DOUBLE) AS amount"
    if kind == "pandas":
        frame = duckdb.sql(f"SELECT {columns} FROM read_parquet('{payments}')").df()
        return snsql.from_df(frame, privacy=privacy, metadata=metadata(max_ids))
    con = duckdb.connect()
    con.execute("CREATE SCHEMA bench")
    con.execute(f"CREATE VIEW bench.payments AS SELECT {columns} FROM read_parquet('{payments}')")
    return snsql.from_connection(
        _Connection(con), privacy=privacy, metadata=metadata(max_ids), engine="postgres"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("payments")
    parser.add_argument("--reader", choices=("duckdb", "pandas"), default="duckdb")
    parser.add_argument("--max-ids", type=int, default=10)
    parser.add_argument("--epsilon", type=float, default=1.0)
    args = parser.parse_args()
    started = time.perf_counter()
    private = reader(args.reader, args.payments, args.max_ids, snsql.Privacy(args.epsilon, 1e-6))
    print(json.dumps({"load_seconds": time.perf_counter() - started}), flush=True)
    for line in sys.stdin:
        sql = SQL.format(floor=int(line))
        started = time.perf_counter()
        rows = private.execute(sql)
        seconds = time.perf_counter() - started
        print(json.dumps({"seconds": seconds, "rows": len(rows) - 1}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
