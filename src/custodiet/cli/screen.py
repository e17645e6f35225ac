"""`custodiet screen list | run`: improper-payment screens through the gateway."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from custodiet.cli.app import err_console, out_console, reports_errors
from custodiet.cli.backend import call
from custodiet.cli.options import (
    Actor,
    FormatOption,
    KeyPath,
    TableOrJson,
    WorkspacePath,
    output_format,
    runtime,
    signed,
)


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Improper-payment screens, run through the gateway on pseudonymized data.",
        no_args_is_help=True,
    )
    app.add_typer(group, name="screen")

    @group.command("list")
    @reports_errors
    def list_(format_: FormatOption = None) -> None:
        """List the screens, the rule each applies and what an agreement must grant for it.

        JSON: a list of {"name", "rule", "needs": {"DATASET": {"COLUMN": "TREATMENT"}}}."""
        if output_format(format_, TableOrJson) is TableOrJson.JSON:
            from custodiet.screens import SCREENS

            document = [
                {"name": s.name, "rule": s.rule,
                 "needs": {d: {c: t.value for c, t in cols.items()} for d, cols in s.needs.items()}}
                for s in SCREENS.values()
            ]  # fmt: skip
            sys.stdout.write(json.dumps(document, ensure_ascii=False) + "\n")
            return
        from custodiet.screens.render import screens_text

        out_console().print(screens_text(), markup=False)

    @group.command("run")
    @reports_errors
    def run(
        agreement: Annotated[
            str, typer.Option("--agreement", metavar="ID", help="Agreement to run under.")
        ],
        as_: Actor,
        names: Annotated[
            list[str] | None,
            typer.Argument(
                help="Screens to run (default: all; see `screen list`).", metavar="NAME"
            ),
        ] = None,
        format_: FormatOption = None,
        show: Annotated[
            int,
            typer.Option(
                "--show", metavar="N", min=0, help="Cases listed in table format (json: all)."
            ),
        ] = 20,
        wide: Annotated[
            bool,
            typer.Option("--wide", help="Show each case's full evidence (default: one line each)."),
        ] = False,
        key: KeyPath = None,
        workspace: WorkspacePath = None,
    ) -> None:
        """Run screens under an agreement; every query they make is on the ledger.

        Exit 3 when a screen is refused because the agreement lacks what it reads (the others
        still run and are reported).

        JSON: {"agreement", "agreement_version", "cases": [{"record_table", "record_id",
        "patterns", "payee", "amount_at_risk", "evidence"}], "summary": [{"screen", "cases",
        "amount_at_risk", "ledger_index", "truncated"}], "total": {"cases", "amount_at_risk"},
        "refused": [{"screen", "rule", "hint", "ledger_index"}]}; amounts are numbers.
        """
        chosen = output_format(format_, TableOrJson)
        from custodiet.screens.render import cases_table, report_document, summary_table
        from custodiet.screens.run import run_screens

        with runtime(workspace) as rt:
            request = signed(
                rt, as_, key, "screen.run", {"agreement": agreement, "screens": list(names or ())}
            )
            report = call(rt, run_screens, request)  # fmt: skip
        if chosen is TableOrJson.JSON:
            sys.stdout.write(json.dumps(report_document(report), ensure_ascii=False) + "\n")
        else:
            out_console().print(summary_table(report))
            if show and report.cases:
                out_console().print(
                    cases_table(report, show, None if wide else out_console().width)
                )
                if not wide:
                    err_console().print(
                        "one line per case: --wide shows the full evidence, --format json all "
                        "of it for every case",
                        markup=False,
                    )
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
