"""`custodiet monitor | case list | case set | case show | report`: continuous monitoring and
the adjudication of the cases it opens."""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
from custodiet.errors import InputError

if TYPE_CHECKING:
    from custodiet.cases.model import CaseView

Agreement = Annotated[str, typer.Option("--agreement", metavar="ID", help="The agreement.")]
RowsFormat = Annotated[
    OutputFormat | None,
    typer.Option(
        "--format",
        metavar="table|json|csv|parquet",
        help="table for people; json (one document), csv (stdout or --out) or parquet (--out). "
        "Default: table, or from --out FILE's suffix.",
        show_default=False,
    ),
]
OutFile = Annotated[
    Path | None,
    typer.Option("--out", metavar="FILE", help="Write the rows to FILE.", show_default=False),
]


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Cases that monitoring opened, and their adjudication by the reviewer.",
        no_args_is_help=True,
    )
    app.add_typer(group, name="case")

    @app.command("monitor")
    @reports_errors
    def monitor_(
        agreement: Agreement,
        as_: Actor,
        format_: RowsFormat = None,
        out: Annotated[
            Path | None,
            typer.Option(
                "--out",
                metavar="FILE",
                help="Write the new cases to FILE (csv, json or parquet) and its receipt to "
                "FILE.receipt.json (check it with `custodiet verify-result FILE`).",
                show_default=False,
            ),
        ] = None,
        key: KeyPath = None,
        workspace: WorkspacePath = None,
    ) -> None:
        """Run the agreement's screens and report only the cases no earlier run saw.

        The run is on the ledger (its queries, and a `monitor` entry naming the new cases by
        id); the new cases are stored as open. When neither the agreement version, its sources
        nor the screens changed since the last run, no screen runs: nothing can be new.

        JSON: {"agreement", "agreement_version", "cases": [{"id", "screen", "record_table",
        "record_id", "payee", "amount", "program", "month", "evidence"}], "screens",
        "refused", "unchanged_since", "ledger_index"}."""
        from custodiet.cases.monitor import monitor

        chosen = rows_format(format_, out)
        with runtime(workspace) as rt:
            args = {"agreement": agreement,
                    **({"output": chosen.value} if out is not None else {})}  # fmt: skip
            request = signed(rt, as_, key, "monitor", args)
            shown = local(rt) and chosen is not OutputFormat.JSON
            with progress(f"monitoring {agreement}: screens", shown=shown) as step:
                run = call(rt, partial(monitor, progress=step), request)
            if out is not None:
                from custodiet.cli.receipt import write_with_receipt

                link = {"ledger_index": run.ledger_index}
                write_with_receipt(rt, out, chosen.value, run.output, link)
        if out is None:
            from custodiet.cases.monitor import case_rows, run_document

            if chosen is OutputFormat.JSON:
                document = {k: v for k, v in run_document(run).items() if k != "output"}
                sys.stdout.write(json.dumps(document, ensure_ascii=False) + "\n")
            elif chosen is OutputFormat.CSV:
                from custodiet.gateway.rendering import rows_csv

                sys.stdout.write(rows_csv(*case_rows(run.cases)))
            else:
                _print_rows("new cases", *case_rows(run.cases))
        if run.unchanged_since is not None:
            err_console().print(
                f"nothing changed since monitor run {run.unchanged_since}: no screen ran",
                markup=False,
            )
        else:
            err_console().print(f"{len(run.cases)} new cases (ledger entry {run.ledger_index})",
                                markup=False)  # fmt: skip
        for screen in run.refused:
            err_console().print(f"refused: screen {screen} (the agreement lacks what it reads)",
                                markup=False)  # fmt: skip

    @group.command("list")
    @reports_errors
    def list_(
        agreement: Agreement,
        as_: Actor,
        state: Annotated[
            str | None,
            typer.Option(
                "--state", metavar="S", help="open, confirmed, not_improper or recovered."
            ),
        ] = None,
        screen: Annotated[
            str | None, typer.Option("--screen", metavar="X", help="Only this screen's cases.")
        ] = None,
        match: Annotated[
            str | None,
            typer.Option(
                "--match",
                metavar="M[,M]",
                help="Only death matches of these categories, comma-separated: exact, ssn_name, "
                "ssn_dob, ssn_only (cases of screens that report no match are left out).",
            ),
        ] = None,
        format_: RowsFormat = None,
        out: OutFile = None,
        key: KeyPath = None,
        workspace: WorkspacePath = None,
    ) -> None:
        """List an agreement's cases with their state, from the case store and the ledger
        (its reviewer, a custodian or an overseer; signed, on the ledger, filters included).
        With --out FILE the gateway renders the file and FILE.receipt.json proves it is what
        the ledger says was released (`custodiet verify-result FILE`).

        JSON: a list of {"id", "screen", "record_table", "record_id", "payee", "amount",
        "program", "month", "evidence", "agreement", "state", "recovered", "history":
        [{"index", "time", "actor", "state", "amount", "note"}]}."""
        from custodiet.cases.model import CASE_COLUMNS, STATES
        from custodiet.cases.read import read_cases
        from custodiet.gateway.match_quality import CATEGORIES

        if state is not None and state not in STATES:
            raise typer.BadParameter(f"choose from {', '.join(STATES)}", param_hint="'--state'")
        matches = None if match is None else {m.strip() for m in match.split(",") if m.strip()}
        if matches is not None and (not matches or not matches <= set(CATEGORIES)):
            raise typer.BadParameter(f"choose from {', '.join(CATEGORIES)}", param_hint="'--match'")
        chosen = rows_format(format_, out)
        args: dict[str, Any] = {"agreement": agreement, "state": state, "screen": screen,
                                "match": None if matches is None else sorted(matches),
                                "output": None if out is None else chosen.value}  # fmt: skip
        with runtime(workspace) as rt:
            args = {k: v for k, v in args.items() if v is not None}
            read = call(rt, read_cases, signed(rt, as_, key, "case.read", args))
            if out is not None:
                from custodiet.cli.receipt import write_with_receipt

                link = {"ledger_index": read.ledger_index}
                write_with_receipt(rt, out, chosen.value, read.output, link)
                return
        rows = [v.row() for v in read.cases]
        if chosen is OutputFormat.TABLE:
            _print_rows("cases", list(CASE_COLUMNS), rows)
            return
        from custodiet.gateway.rendering import file_bytes

        data = file_bytes(chosen.value, CASE_COLUMNS, rows, [v.document() for v in read.cases])
        sys.stdout.write(data.decode("utf-8"))

    @group.command("show")
    @reports_errors
    def show(
        case: Annotated[
            str, typer.Argument(metavar="CASE_ID", help="The case's id (8+ leading digits).")
        ],
        as_: Actor,
        agreement: Annotated[
            str | None,
            typer.Option(
                "--agreement",
                metavar="ID",
                help="The case's agreement (default: the one the ledger names for the case).",
            ),
        ] = None,
        format_: FormatOption = None,
        key: KeyPath = None,
        workspace: WorkspacePath = None,
    ) -> None:
        """Show one case and its history, entry by entry, from the ledger (JSON: as `case
        list` shows each case); signed and on the ledger, as `case list`."""
        from custodiet.cases.read import read_cases

        args = {"case": case.lower(), **({"agreement": agreement} if agreement else {})}
        with runtime(workspace) as rt:
            read = call(rt, read_cases, signed(rt, as_, key, "case.read", args))
        found = _only(read.cases, case)
        if output_format(format_, TableOrJson) is TableOrJson.JSON:
            sys.stdout.write(json.dumps(found.document(), ensure_ascii=False) + "\n")
            return
        f = found.facts
        lines = [f"case {f.id}", f"  screen {f.screen}; {f.record_table} {f.record_id}; "
                 f"payee {f.payee}; ${f.amount:,.2f} at risk; program {f.program}; "
                 f"month {f.month or '-'}", f"  state {found.state}"]  # fmt: skip
        for step in found.history:
            amount = f" ${step.amount}" if step.amount else ""
            note = f" ({step.note})" if step.note else ""
            lines.append(f"  #{step.index} {step.time} {step.actor}: {step.state}{amount}{note}")
        out_console().print("\n".join(lines), markup=False)

    @group.command("set")
    @reports_errors
    def set_(
        case: Annotated[
            str, typer.Argument(metavar="CASE_ID", help="The case's id (8+ leading digits).")
        ],
        state: Annotated[
            str, typer.Option("--state", metavar="S", help="confirmed, not_improper or recovered.")
        ],
        as_: Actor,
        amount: Annotated[
            str | None,
            typer.Option("--amount", metavar="N", help="Dollars recovered (with recovered)."),
        ] = None,
        note: Annotated[
            str | None,
            typer.Option(
                "--note",
                metavar="TEXT",
                help="A note for the ledger (public to auditors: no identities).",
            ),
        ] = None,
        format_: FormatOption = None,
        key: KeyPath = None,
        workspace: WorkspacePath = None,
    ) -> None:
        """Record a case's adjudication (the agreement's reviewer only); signed, on the ledger.

        open -> confirmed | not_improper; confirmed -> recovered | not_improper;
        not_improper -> confirmed. recovered needs --amount."""
        from custodiet.cases.adjudicate import set_case
        from custodiet.cases.model import SET_STATES

        if state not in SET_STATES:
            raise typer.BadParameter(f"choose from {', '.join(SET_STATES)}", param_hint="'--state'")
        with runtime(workspace) as rt:
            from custodiet.client import Remote

            if not isinstance(rt, Remote):
                case = _full_id(rt, case)
            args = {"case": case, "state": state,
                    **({"amount": amount} if amount is not None else {}),
                    **({"note": note} if note is not None else {})}  # fmt: skip
            change = call(rt, set_case, signed(rt, as_, key, "case.set", args))
        if output_format(format_, TableOrJson) is TableOrJson.JSON:
            sys.stdout.write(json.dumps(change.document()) + "\n")
            return
        out_console().print(
            f"case {change.case[:16]}: {change.previous} -> {change.state} "
            f"(ledger entry {change.ledger_index})",
            markup=False,
        )

    @app.command("report")
    @reports_errors
    def report(
        agreement: Agreement,
        month: Annotated[str, typer.Option("--month", metavar="YYYY-MM", help="The month.")],
        out: Annotated[
            Path,
            typer.Option("--out", metavar="FILE", help="report.html (with charts) or report.csv"),
        ],
        as_: Actor,
        key: KeyPath = None,
        workspace: WorkspacePath = None,
    ) -> None:
        """The monthly adjudication report: counts and dollars by screen, program, state and
        payment month, with case states as the ledger recorded them at the month's end
        (its reviewer, a custodian or an overseer; signed, on the ledger)."""
        from custodiet.cases.read import read_cases
        from custodiet.cases.report import month_end, report_csv, report_html

        month_end(month)
        suffix = out.suffix.lower()
        if suffix not in (".html", ".csv"):
            raise typer.BadParameter("FILE ends in .html or .csv", param_hint="'--out'")
        args = {"agreement": agreement, "month": month}
        with runtime(workspace) as rt:
            read = call(rt, read_cases, signed(rt, as_, key, "case.read", args))
        rows = list(read.report or ())
        text = report_csv(rows) if suffix == ".csv" else report_html(agreement, month, rows)
        out.write_text(text, encoding="utf-8")
        err_console().print(f"wrote {out} ({len(rows)} rows)", markup=False)


def _full_id(rt: Any, case: str) -> str:
    """The id of the one case whose id starts with ``case`` (the tables show 16 digits); a
    whole id is taken as it is (the ledger refuses one no run opened)."""
    if len(case) == 64:
        return case
    ids: list[str] = list(rt.state.cases)
    found = [i for i in ids if i.startswith(case.lower())] if len(case) >= 8 else []
    if len(found) != 1:
        raise InputError(
            f"{'no' if not found else 'more than one'} case id starting with {case[:64]!r}",
            hint="give at least 8 hex digits of an id `custodiet case list` shows",
            code="CUST751",
        )
    return found[0]


def _only(views: tuple[CaseView, ...], case: str) -> CaseView:
    if len(views) != 1:
        raise InputError(
            f"no case {case[:64]!r} under this agreement",
            hint="see `custodiet case list --agreement ID`",
            code="CUST751",
        )
    return views[0]


def _print_rows(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.table import Table

    from custodiet.cli.output import table_cell

    table = Table(title=f"{len(rows)} {title}")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:  # ids shortened to 16 digits: `case show` and `case set` take a prefix
        table.add_row(*(table_cell(v, False)[:16] if i == 0 else table_cell(v, False)
                        for i, v in enumerate(row)))  # fmt: skip
    out_console().print(table)
