"""`custodiet synth`: placeholder wiring replaced by the synth implementation."""

from __future__ import annotations

from pathlib import Path

import typer

from custodiet.cli.app import reports_errors


def register(app: typer.Typer) -> None:
    @app.command("synth")
    @reports_errors
    def synth(
        out: Path = typer.Option(..., "--out", help="Directory to write the tables into."),
        people: int = typer.Option(100_000, "--people", min=1, help="Number of people."),
    ) -> None:
        """Write synthetic federal tables with planted, labelled improper records."""
        typer.echo(f"{out} {people}")
