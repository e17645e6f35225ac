"""`custodiet screen list | run`: improper-payment screens through the gateway."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from custodiet.cli.app import err_console, out_console, reports_errors
from custodiet.cli.backend import call
from custodiet.cli.options import Actor, KeyPath, TableOrJson, WorkspacePath, runtime, signed


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Improper-payment screens, run through the gateway on pseudonymized data.",
        no_args_is_help=True,
    )
    app.add_typer(group, name="screen")

    @group.command("list")
    @reports_errors
    def list_() -> None:
        """List the screens, the rule each applies and what an agreement must grant for it."""
        from custodiet.screens.render import screens_text

        out_console().print(screens_text(), markup=False)

    @group.command("run")
    @reports_errors
    def run(
        agreement: Annotated[str, typer.Option("--agreement", help="Agreement to run under.")],
        as_: Actor,
        names: Annotated[
            list[str] | None,
            typer.Argument(
                help="Screens to run (default: all; see `screen list`).", metavar="NAME"
            ),
        ] = None,
        format_: Annotated[
            TableOrJson, typer.Option("--format", help="table for people, json for scripts.")
        ] = TableOrJson.TABLE,
        show: Annotated[
            int, typer.Option("--show", min=0, help="Cases listed in table format (json: all).")
        ] = 20,
        key: KeyPath = None,
        workspace: WorkspacePath = None,
    ) -> None:
        """Run screens under an agreement; every query they make is on the ledger.

        Exit 3 when a screen is refused because the agreement lacks what it reads (the others
        still run and are reported).
        """
        from custodiet.screens.render import cases_table, report_document, summary_table
        from custodiet.screens.run import run_screens

        with runtime(workspace) as rt:
            request = signed(
                rt, as_, key, "screen.run", {"agreement": agreement, "screens": list(names or ())}
            )
            report = call(rt, run_screens, request)  # fmt: skip
        if format_ is TableOrJson.JSON:
            out_console().print(json.dumps(report_document(report)), markup=False)
        else:
            out_console().print(summary_table(report))
            if show and report.cases:
                out_console().print(cases_table(report, show))
        for s in report.summaries:
            if s.truncated:
                err_console().print(
                    f"notice: {s.screen} stopped at the agreement's max_rows; cases are missing",
                    markup=False,
                )
        for refusal in report.refusals:
            err_console().print(f"refused: {refusal.rule}\nhint: {refusal.hint}", markup=False)
        if report.refusals:
            raise typer.Exit(3)
