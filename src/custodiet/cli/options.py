"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from custodiet.settings import resolve_workspace
from custodiet.workspace import Workspace

WorkspaceOption = typer.Option(
    None,
    "--workspace",
    "-w",
    help="Workspace directory (else $CUSTODIET_WORKSPACE, else ./custodiet-workspace).",
    show_default=False,
)

# the same option for Annotated-style parameters: `workspace: WorkspacePath = None`
WorkspacePath = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        help="Workspace directory (else $CUSTODIET_WORKSPACE, else ./custodiet-workspace).",
        show_default=False,
    ),
]


def workspace_from(option: Path | None) -> Workspace:
    return Workspace(resolve_workspace(option))
