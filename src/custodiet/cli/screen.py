"""`custodiet screen list | run`: improper-payment screens through the gateway."""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from custodiet.cli.app import err_console, out_console, reports_errors
from custodiet.cli.backend import call, local
from custodiet.cli.options import (
    Actor,
    FormatOption,
    KeyPath,
    OutputFormat,
    TableOrJson,
    WorkspacePath,
    output_format,
    rows_format,
    runtime,
    signed,
)
from custodiet.cli.progress import progress

if TYPE_CHECKING:
    from custodiet.screens.model import Report

CasesFormat = Annotated[
    OutputFormat | None,
    typer.Option(
        "--format",
        metavar="table|json|csv|parquet",
        help="table for people; json (one document), or the cases as flat rows, one per record "
        "and pattern with the evidence in columns: csv (stdout or --out) or parquet (--out). "
        "Default: table.",
        show_default=False,
    ),
]


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
                {"name": s.name, "rule": s.default_rule,
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
        format_: CasesFormat = None,
        out: Annotated[
            Path | None,
            typer.Option(
                "--out",
                metavar="FILE",
                help="Write the cases to FILE (csv, json or parquet; from --format, else from "
                "its suffix) and its receipt to FILE.receipt.json.",
                show_default=False,
            ),
        ] = None,
        match: Annotated[
            str | None,
            typer.Option(
                "--match",
                metavar="CATEGORIES",
                help="Keep only the death matches of these categories, comma-separated: exact, "
                "ssn_name, ssn_dob, ssn_only (screens that report a match; others unaffected).",
                show_default=False,
            ),
        ] = None,
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

        With --out FILE the gateway renders the cases file itself and records its sha256 in the
        run's screen.run entry; FILE.receipt.json holds {"ledger_index": N (that entry),
        "screens": {"SCREEN": N}, the entry, its inclusion proof and the signed checkpoint}:
        check it with `custodiet verify-result FILE`.
        """
        chosen = rows_format(format_, out)
        from custodiet.screens.render import cases_table, report_document, summary_table
        from custodiet.screens.run import run_screens

        with runtime(workspace) as rt:
            args = {"agreement": agreement, "screens": list(names or ()),
                    **({"output": chosen.value} if out is not None else {}),
                    **({"match": _categories(match)} if match is not None else {})}  # fmt: skip
            request = signed(rt, as_, key, "screen.run", args)
            shown = local(rt) and chosen is not OutputFormat.JSON
            with progress(f"screening {agreement}", shown=shown) as step:
                report = call(rt, partial(run_screens, progress=step), request)
            if out is not None:
                from custodiet.cli.receipt import write_with_receipt

                screens = {s.screen: s.ledger_index for s in report.summaries}
                link = {"ledger_index": report.ledger_index, "screens": screens}
                write_with_receipt(rt, out, chosen.value, report.output, link)
        if chosen is OutputFormat.JSON and out is None:
            sys.stdout.write(json.dumps(report_document(report), ensure_ascii=False) + "\n")
        elif chosen is OutputFormat.CSV and out is None:
            sys.stdout.write(_cases_csv(report))
        elif chosen is OutputFormat.TABLE:
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


def _categories(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _cases_csv(report: Report) -> str:
    from custodiet.gateway.rendering import rows_csv
    from custodiet.screens.render import case_rows

    return rows_csv(*case_rows(report))
