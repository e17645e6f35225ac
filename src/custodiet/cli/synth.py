"""`custodiet synth`: write synthetic federal tables with planted, labelled improper records."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from custodiet.cli.app import out_console, reports_errors

if TYPE_CHECKING:
    from rich.table import Table

    from custodiet.synth import Summary


class Profile(StrEnum):
    STRESS = "stress"
    REALISTIC = "realistic"


def register(app: typer.Typer) -> None:
    @app.command("synth")
    @reports_errors
    def synth(
        out: Annotated[
            Path,
            typer.Option(
                "--out",
                metavar="DIR",
                help="Directory to write the tables into (created if its parent exists).",
                show_default=False,
            ),
        ],
        people: Annotated[
            int, typer.Option("--people", metavar="N", help="Number of people.")
        ] = 50_000,
        seed: Annotated[
            int, typer.Option("--seed", metavar="N", help="Random seed: same seed, same bytes.")
        ] = 0,
        profile: Annotated[
            Profile,
            typer.Option(
                "--profile",
                metavar="stress|realistic",
                help="stress: every pattern has many cases; realistic: about ten times rarer.",
            ),
        ] = Profile.STRESS,
        months: Annotated[
            int | None,
            typer.Option(
                "--months",
                metavar="N",
                help="Also split the dated tables (payments, tax_refunds, deaths) by month: the "
                "last N months of the window each in DIR/month=YYYY-MM/, earlier rows in DIR; "
                "truth.parquet then names each planted record's month.",
                show_default=False,
            ),
        ] = None,
    ) -> None:
        """Write the canonical federal tables (Parquet) and truth.parquet, the planted cases."""
        from custodiet.synth import generate  # numpy and pyarrow load only when needed
        from custodiet.synth.months import check_months, split_months

        if months is not None:
            check_months(months)
        from custodiet.cli.progress import bars

        with bars() as bar:
            task = bar.add_task("generating people", total=max(people, 1))
            summary = generate(
                out, people, seed, profile.value, progress=lambda done: bar.advance(task, done)
            )
        out_console().print(_summary_table(summary))
        if months is not None:
            written = split_months(out, months)
            out_console().print(_months_table(written))


def _summary_table(summary: Summary) -> Table:
    from rich.table import Table

    from custodiet.synth import PATTERNS

    table = Table(title=f"synthetic data written to {summary.out}")
    table.add_column("file")
    table.add_column("rows", justify="right")
    for name, rows in summary.rows.items():
        table.add_row(f"{name}.parquet", f"{rows:,}")
    table.add_section()
    for pattern in PATTERNS:
        table.add_row(f"truth: {pattern}", f"{summary.patterns[pattern]:,}")
    return table


def _months_table(written: dict[str, int]) -> Table:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="split by month")
    table.add_column("file")
    table.add_column("rows", justify="right")
    for name, rows in written.items():
        table.add_row(escape(name), f"{rows:,}")
    return table
