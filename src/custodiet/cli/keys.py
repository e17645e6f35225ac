"""`custodiet key new`: an Ed25519 key pair for a principal, in OpenSSH format."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from custodiet.cli.app import out_console, reports_errors


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Principals' own keys (kept by them, never by the workspace).")
    app.add_typer(group, name="key")

    @group.command("new")
    @reports_errors
    def new(
        out: Annotated[
            Path,
            typer.Option(
                "--out", metavar="FILE", help="Private key file to write (mode 0600); FILE.pub too."
            ),
        ],
        comment: Annotated[
            str, typer.Option("--comment", metavar="TEXT", help="Comment in the public key line.")
        ] = "custodiet",
    ) -> None:
        """Make an Ed25519 key pair: FILE (OpenSSH private key, 0600) and FILE.pub.

        Keys from `ssh-keygen -t ed25519` work as well. Give FILE.pub to a custodian to be
        registered; keep FILE to yourself and pass it as --key (or $CUSTODIET_KEY).
        """
        from custodiet.identity import new_key

        line = new_key(out, comment)
        out_console().print(f"wrote {out} (private, mode 0600) and {out}.pub", markup=False)
        out_console().print(line, markup=False)
