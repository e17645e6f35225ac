"""`custodiet query`: run one SQL query under an agreement; print the released result.

The gateway (checker, engine, ledger) is imported only when the command runs, so `--help` and
the other commands do not pay for sqlglot and DuckDB.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from custodiet.cli.app import err_console, out_console, reports_errors
from custodiet.cli.backend import call
from custodiet.cli.options import (
    Actor,
    KeyPath,
    OutputFormat,
    WorkspacePath,
    rows_format,
    runtime,
    signed,
)

if TYPE_CHECKING:
    from custodiet.gateway.service import QueryResult

DISPLAY_ROWS = 100


def register(app: typer.Typer) -> None:
    @app.command("query")
    @reports_errors
    def query(
        sql: Annotated[
            str,
            typer.Argument(help="One SELECT query over the agreement's datasets.", metavar="SQL"),
        ],
        agreement: Annotated[
            str, typer.Option("--agreement", metavar="ID", help="The agreement to query under.")
        ],
        as_: Actor,
        format_: Annotated[
            OutputFormat | None,
            typer.Option(
                "--format",
                metavar="table|json|csv|parquet",
                help="table for people; json (one document), csv or parquet (needs --out) for "
                "programs. Default: table.",
                show_default=False,
            ),
        ] = None,
        out: Annotated[
            Path | None,
            typer.Option(
                "--out",
                metavar="FILE",
                help="Write the rows to FILE (format from --format, else from its suffix: "
                ".json, .parquet, else csv) and its receipt to FILE.receipt.json.",
                show_default=False,
            ),
        ] = None,
        limit_display: Annotated[
            int,
            typer.Option(
                "--limit-display",
                metavar="N",
                min=0,
                help="Rows shown in table format (0: all); the other formats write every row.",
            ),
        ] = DISPLAY_ROWS,
        key: KeyPath = None,
        workspace: WorkspacePath = None,
        dry_run: Annotated[
            bool,
            typer.Option(
                "--dry-run", help="Check the query and show its privacy cost; run nothing."
            ),
        ] = False,
    ) -> None:
        """Run SQL under an agreement; the request is on the ledger before any result is shown.

        JSON is one document: {"columns": ["NAME", ...], "types": ["TYPE", ...], "rows": [[...]],
        "ledger_index": N, "notices": [...]}. Integers and floats are numbers (an integer beyond
        2**53 is a string); a decimal column is numbers when every value has at most 15
        significant digits (a 64-bit float then gives back the same decimal), else strings with
        the exact digits; dates are ISO 8601 text. A type is one of string, integer, double,
        decimal, boolean, date, timestamp, time, interval, uuid, blob (base64), list, struct, or
        null when every value is null.

        With --out FILE the gateway renders the file itself and records its sha256 in the
        ledger entry that releases it; FILE (as JSON, the document above without
        "ledger_index") is written with FILE.receipt.json: {"ledger_index": N, "notices": [...],
        the entry, its inclusion proof and the signed checkpoint}, so anyone can check it with
        `custodiet verify-result FILE`. Notices and "ledger entry N" are printed on stderr in
        every format.
        """
        chosen = rows_format(format_, out)
        from custodiet.gateway.service import run_query

        with runtime(workspace) as rt:
            args = {"agreement": agreement, "sql": sql, **({"dry_run": True} if dry_run else {})}
            if out is not None:
                args["output"] = chosen.value
            result = call(rt, run_query, signed(rt, as_, key, "query", args))
            if out is not None:
                from custodiet.cli.receipt import write_with_receipt

                link = {"ledger_index": result.ledger_index, "notices": list(result.notices)}
                write_with_receipt(rt, out, chosen.value, result.output, link)
        if chosen is OutputFormat.TABLE:
            print_table(result, limit_display)
        elif out is None:
            sys.stdout.write(json_text(result) if chosen is OutputFormat.JSON else csv_text(result))
        _print_notices(result)


def json_text(result: QueryResult) -> str:
    from custodiet.api.documents import query

    return json.dumps(query(result), ensure_ascii=False) + "\n"


def csv_text(result: QueryResult) -> str:
    from custodiet.gateway.rendering import rows_csv

    return rows_csv(result.columns, result.rows)


def print_table(result: QueryResult, limit: int) -> None:
    from rich.table import Table

    from custodiet.cli.output import grouped, table_cell
    from custodiet.gateway.rendering import NUMERIC, column_types

    types = column_types(result.columns, result.rows)
    table = Table(show_lines=False)
    for name, kind in zip(result.columns, types, strict=True):
        right = kind in NUMERIC
        table.add_column(
            name, justify="right" if right else "left", min_width=len(name), overflow="fold"
        )
    separators = [grouped(n, k) for n, k in zip(result.columns, types, strict=True)]
    shown = result.rows if not limit else result.rows[:limit]
    for row in shown:
        table.add_row(*(table_cell(v, s) for v, s in zip(row, separators, strict=True)))
    out_console().print(table, markup=False)
    if len(shown) < len(result.rows):
        err_console().print(
            f"showing {len(shown):,} of {len(result.rows):,} rows; for all of them use "
            "--format csv or json (or --out FILE), or --limit-display 0",
            markup=False,
        )


def _print_notices(result: QueryResult) -> None:
    for notice in result.notices:
        err_console().print(f"note: {notice}", markup=False)
    err_console().print(
        f"{len(result.rows):,} row(s); ledger entry {result.ledger_index}", markup=False
    )
