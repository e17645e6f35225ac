"""`custodiet init DIR`: a new workspace, its keys, its ledger and the genesis."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from custodiet.cli.app import out_console, reports_errors
from custodiet.errors import InputError


def register(app: typer.Typer) -> None:
    @app.command("init")
    @reports_errors
    def init(
        directory: Annotated[
            Path, typer.Argument(help="Directory to create (new or empty).", metavar="DIR")
        ],
        custodian: Annotated[
            list[str],
            typer.Option(
                "--custodian",
                metavar="NAME=PUBFILE",
                help="A first custodian as NAME=PUBFILE (an OpenSSH ed25519 .pub); at least two.",
            ),
        ],
        min_approvals: Annotated[
            int,
            typer.Option(
                "--min-approvals",
                metavar="K",
                help="K: distinct custodians every approval needs (at least 2).",
            ),
        ] = 2,
        ledger_store: Annotated[
            str | None,
            typer.Option(
                "--ledger-store",
                metavar="URL",
                help="Ledger store URL, e.g. postgresql://user@host/db (default: SQLite in DIR).",
                show_default=False,
            ),
        ] = None,
    ) -> None:
        """Create a workspace: signing key, secret, ledger, and the genesis naming the first
        custodians and K. Whoever runs init holds no power afterwards."""
        from custodiet.identity import load_public_key
        from custodiet.workspace import init_workspace

        custodians: dict[str, str] = {}
        for item in custodian:
            name, sep, path = item.partition("=")
            if not sep or not name or not path:
                raise InputError(f"--custodian {item!r}: expected NAME=PUBFILE", code="CUST535")
            if name in custodians:
                raise InputError(f"--custodian {name!r} is given twice", code="CUST535")
            custodians[name] = load_public_key(Path(path))
        workspace = init_workspace(
            directory, ledger_store, custodians=custodians, min_approvals=min_approvals
        )
        ledger = workspace.ledger()
        try:
            vkey, store = ledger.vkey(), workspace.ledger_store_url
        finally:
            ledger.close()
        for line in (
            f"created workspace {workspace.root}",
            f"  origin        {workspace.origin}",
            f"  ledger        {store.split('@')[-1] if '@' in store else store}",
            f"  custodians    {', '.join(sorted(custodians))} (K = {min_approvals})",
            f"  signing key   {workspace.log_key_path} (mode 0600, never printed)",
            f"  secret        {workspace.secret_path} (mode 0600)",
            f"verifier key: {vkey}",
        ):
            out_console().print(line, markup=False)
