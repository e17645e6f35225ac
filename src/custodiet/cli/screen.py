"""`custodiet screen list | run`: improper-payment screens through the gateway."""

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
    FormatOption,
    KeyPath,
    OutputFormat,
    TableOrJson,
    WorkspacePath,
    output_format,
    runtime,
    signed,
)

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
        format_: CasesFormat = None,
        out: Annotated[
            Path | None,
            typer.Option(
                "--out",
                metavar="FILE",
                help="Write the cases to FILE (csv, json or parquet) and the screens' ledger "
                "entries to FILE.ledger.json.",
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
        """
        chosen = output_format(format_, OutputFormat)
        if chosen is OutputFormat.PARQUET and out is None:
            raise typer.BadParameter(
                "parquet is written to a file: add --out FILE", param_hint="'--format'"
            )
        if chosen is OutputFormat.TABLE and out is not None:
            raise typer.BadParameter("a table is for the terminal", param_hint="'--out'")
        from custodiet.screens.render import cases_table, report_document, summary_table
        from custodiet.screens.run import run_screens

        with runtime(workspace) as rt:
            request = signed(
                rt, as_, key, "screen.run", {"agreement": agreement, "screens": list(names or ())}
            )
            report = call(rt, run_screens, request)  # fmt: skip
        if out is not None:
            _write_cases(report, chosen, out)
        elif chosen is OutputFormat.JSON:
            sys.stdout.write(json.dumps(report_document(report), ensure_ascii=False) + "\n")
        elif chosen is OutputFormat.CSV:
            sys.stdout.write(_cases_csv(report))
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


def case_rows(report: Report) -> tuple[list[str], list[list[object]]]:
    """The cases flat: one row per (record, pattern), the evidence keys as columns."""
    keys = sorted({k for case in report.cases for f in case.findings for k in f.evidence})
    columns = ["record_table", "record_id", "pattern", "payee", "amount_at_risk", *keys]
    rows = [
        [case.record_table, case.record_id, finding.pattern, case.payee, case.amount_at_risk,
         *(finding.evidence.get(k) for k in keys)]
        for case in report.cases
        for finding in case.findings
    ]  # fmt: skip
    return columns, rows


def _cases_csv(report: Report) -> str:
    import csv
    import io

    from custodiet.cli.output import cell_text

    columns, rows = case_rows(report)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([cell_text(v) for v in row] for row in rows)
    return buffer.getvalue()


def _write_cases(report: Report, chosen: OutputFormat, out: Path) -> None:
    """The cases in FILE, and FILE.ledger.json naming the ledger entry of each screen."""
    from custodiet.cli.output import write_parquet
    from custodiet.screens.render import report_document

    if chosen is OutputFormat.PARQUET:
        write_parquet(out, *case_rows(report))
    elif chosen is OutputFormat.JSON:
        out.write_text(json.dumps(report_document(report), ensure_ascii=False) + "\n")
    else:
        out.write_text(_cases_csv(report), encoding="utf-8")
    link = {s.screen: s.ledger_index for s in report.summaries}
    sidecar = out.with_name(out.name + ".ledger.json")
    sidecar.write_text(json.dumps({"ledger_index": link}) + "\n", encoding="utf-8")
    err_console().print(f"wrote {out} and {sidecar.name}", markup=False)
