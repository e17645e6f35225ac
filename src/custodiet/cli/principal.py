"""`custodiet principal add | list`: who may act in this workspace, and in which role."""

from __future__ import annotations

from typing import Annotated

import typer

from custodiet.cli.app import out_console, reports_errors
from custodiet.cli.options import WorkspacePath, workspace_from
from custodiet.principals import Role, add_principal, list_principals


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Add and list principals (custodians, reviewers, overseers).")
    app.add_typer(group, name="principal")

    @group.command("add")
    @reports_errors
    def add(
        name: Annotated[str, typer.Argument(help="Principal name, e.g. reviewer-1.")],
        role: Annotated[Role, typer.Option("--role", help="The principal's role.")],
        workspace: WorkspacePath = None,
    ) -> None:
        """Add a principal and print its API token (shown once; only its hash is kept)."""
        token = add_principal(workspace_from(workspace), name, role)
        out_console().print(f"added {role.value} {name}", markup=False)
        out_console().print(f"token: {token}", markup=False)
        out_console().print("store it now: it is not shown again", markup=False)

    @group.command("list")
    @reports_errors
    def list_(workspace: WorkspacePath = None) -> None:
        """List the principals and their roles."""
        from rich.markup import escape
        from rich.table import Table

        table = Table("name", "role")
        for principal in list_principals(workspace_from(workspace)):
            table.add_row(escape(principal.name), principal.role.value)
        out_console().print(table)
