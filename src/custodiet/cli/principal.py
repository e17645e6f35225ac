"""`custodiet principal add | remove | list`: who may act, in which role, with which key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from custodiet.cli import backend
from custodiet.cli.app import out_console, reports_errors
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
from custodiet.principals import Role


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Add, remove and list principals (custodians, reviewers, overseers).")
    app.add_typer(group, name="principal")

    @group.command("add")
    @reports_errors
    def add(
        name: Annotated[str, typer.Argument(help="Principal name, e.g. reviewer-1.")],
        role: Annotated[
            Role,
            typer.Option("--role", metavar="ROLE", help="custodian, reviewer or overseer."),
        ],
        pubkey: Annotated[
            Path,
            typer.Option(
                "--pubkey", metavar="PUBFILE", help="Their OpenSSH ed25519 public key (.pub)."
            ),
        ],
        as_: Actor,
        key: KeyPath = None,
        workspace: WorkspacePath = None,
    ) -> None:
        """Register a principal, signed by a custodian. A reviewer or overseer needs one
        custodian; a new custodian needs K, each running this same command."""
        from custodiet.identity import load_public_key
        from custodiet.principals import add_principal

        public = load_public_key(pubkey)
        with runtime(workspace) as rt:
            request = signed(rt, as_, key, "principal.add",
                             {"name": name, "role": role.value, "pubkey": public})  # fmt: skip
            change = call(rt, add_principal, request)
        state = "registered" if change.effective else "not registered yet"
        out_console().print(
            f"{role.value} {name}: signed by {as_} ({change.votes} of {change.required}); "
            f"{state}; ledger entry {change.ledger_index}",
            markup=False,
        )

    @group.command("remove")
    @reports_errors
    def remove(
        name: Annotated[str, typer.Argument(help="Principal to remove.")],
        as_: Actor,
        key: KeyPath = None,
        workspace: WorkspacePath = None,
    ) -> None:
        """Remove a principal: K custodians each run this same command."""
        from custodiet.principals import remove_principal

        with runtime(workspace) as rt:
            request = signed(rt, as_, key, "principal.remove", {"name": name})
            change = call(rt, remove_principal, request)
        state = "removed" if change.effective else "not removed yet"
        out_console().print(
            f"{name}: removal signed by {as_} ({change.votes} of {change.required}); {state}",
            markup=False,
        )

    @group.command("list")
    @reports_errors
    def list_(
        format_: FormatOption = None,
        workspace: WorkspacePath = None,
    ) -> None:
        """List the principals the ledger registers, with their roles and keys."""
        from rich.markup import escape
        from rich.table import Table

        with runtime(workspace) as rt:
            principals = backend.principals(rt)
        if output_format(format_, TableOrJson) is TableOrJson.JSON:
            from custodiet.api.documents import principal

            typer.echo(json.dumps([principal(p) for p in principals]))
            return
        from custodiet.identity import fingerprint

        table = Table("name", "role", "key fingerprint")
        for p in principals:
            table.add_row(escape(p.name), p.role.value, fingerprint(p.pubkey))
        out_console().print(table)
