"""`custodiet demo`: the whole story end to end, on synthetic data, in a fresh workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from custodiet.cli.app import out_console, reports_errors


def register(app: typer.Typer) -> None:
    @app.command("demo")
    @reports_errors
    def demo(
        people: Annotated[
            int,
            typer.Option(
                "--people",
                metavar="N",
                min=100,
                help="People to generate (about 10 payments each).",
            ),
        ] = 50_000,
        seed: Annotated[
            int, typer.Option("--seed", metavar="N", min=0, help="Seed of the synthetic data.")
        ] = 0,
        workspace: Annotated[
            Path | None,
            typer.Option(
                "--workspace",
                "-w",
                metavar="DIR",
                help="New workspace directory to create (default: a fresh temporary one).",
                show_default=False,
            ),
        ] = None,
    ) -> None:
        """The whole story end to end: data, agreement, screens, a refusal, break-glass, ledger."""
        from custodiet.demo import run_demo

        run_demo(out_console(), workspace, people, seed)
