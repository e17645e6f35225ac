"""`custodiet init DIR`: a new workspace with its keys and its ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from custodiet.cli.app import out_console, reports_errors
from custodiet.workspace import init_workspace


def register(app: typer.Typer) -> None:
    @app.command("init")
    @reports_errors
    def init(
        directory: Annotated[Path, typer.Argument(help="Directory to create (new or empty).")],
        ledger_store: Annotated[
            str | None,
            typer.Option(
                "--ledger-store",
                help="Ledger store URL, e.g. postgresql://user@host/db (default: SQLite in DIR).",
                show_default=False,
            ),
        ] = None,
    ) -> None:
        """Create a workspace: configuration, signing key, secret, ledger and its first entry."""
        workspace = init_workspace(directory, ledger_store)
        ledger = workspace.ledger()
        try:
            vkey, store = ledger.vkey(), workspace.ledger_store_url
        finally:
            ledger.close()
        for line in (
            f"created workspace {workspace.root}",
            f"  origin        {workspace.origin}",
            f"  ledger        {store.split('@')[-1] if '@' in store else store}",
            f"  signing key   {workspace.log_key_path} (mode 0600, never printed)",
            f"  secret        {workspace.secret_path} (mode 0600)",
            f"  projections   {workspace.projections_dir}",
            f"verifier key: {vkey}",
        ):
            out_console().print(line, markup=False)
