"""Options shared by several commands."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from custodiet.settings import resolve_workspace
from custodiet.workspace import Workspace

# `workspace: WorkspacePath = None`
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


Actor = Annotated[str, typer.Option("--as", help="The principal acting.")]


class TableOrJson(StrEnum):
    TABLE = "table"
    JSON = "json"
