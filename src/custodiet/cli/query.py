"""`custodiet query`: run one SQL query under an agreement; print the released result.

The gateway (checker, engine, ledger) is imported only when the command runs, so `--help` and
the other commands do not pay for sqlglot and DuckDB.
"""

from __future__ import annotations

import csv
import json
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from custodiet.cli.app import err_console, out_console, reports_errors
from custodiet.cli.backend import call
from custodiet.cli.options import Actor, KeyPath, WorkspacePath, runtime, signed

if TYPE_CHECKING:
    from custodiet.gateway.service import QueryResult


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def register(app: typer.Typer) -> None:
    @app.command("query")
    @reports_errors
    def query(
        sql: Annotated[str, typer.Argument(help="One SELECT query over the agreement's datasets.")],
        agreement: Annotated[
            str, typer.Option("--agreement", help="The agreement to query under.")
        ],
        as_: Actor,
        output: Annotated[
            OutputFormat, typer.Option("--format", help="Output: table, json or csv.")
        ] = OutputFormat.TABLE,
        key: KeyPath = None,
        workspace: WorkspacePath = None,
    ) -> None:
        """Run SQL under an agreement; the request is on the ledger before any result is shown."""
        from custodiet.gateway.service import run_query

        with runtime(workspace) as rt:
            request = signed(rt, as_, key, "query", {"agreement": agreement, "sql": sql})
            result = call(rt, run_query, request)
        if output is OutputFormat.JSON:
            print_json(result)
        elif output is OutputFormat.CSV:
            print_csv(result)
        else:
            print_table(result)


def print_json(result: QueryResult) -> None:
    from custodiet.api.documents import query

    sys.stdout.write(json.dumps(query(result), ensure_ascii=False) + "\n")


def print_csv(result: QueryResult) -> None:
    from custodiet.gateway.release import json_value

    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(result.columns)
    writer.writerows([_text(json_value(v)) for v in row] for row in result.rows)
    _print_notices(result)


def print_table(result: QueryResult) -> None:
    from rich.table import Table

    from custodiet.gateway.release import json_value

    table = Table(*result.columns, show_lines=False)
    for row in result.rows:
        table.add_row(*(_text(json_value(v)) for v in row))
    out_console().print(table, markup=False)
    _print_notices(result)


def _print_notices(result: QueryResult) -> None:
    for notice in result.notices:
        err_console().print(f"note: {notice}", markup=False)
    err_console().print(
        f"{len(result.rows)} row(s); ledger entry {result.ledger_index}", markup=False
    )


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
