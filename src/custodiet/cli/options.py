"""Options shared by several commands, and how a command acts as a principal."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from custodiet.settings import resolve_workspace
from custodiet.workspace import Workspace

if TYPE_CHECKING:
    from custodiet.identity import SignedRequest
    from custodiet.runtime import Runtime

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

Actor = Annotated[str, typer.Option("--as", help="The principal acting (sign with their --key).")]

KeyPath = Annotated[
    Path | None,
    typer.Option(
        "--key",
        help="That principal's private key: OpenSSH or PEM Ed25519 (else $CUSTODIET_KEY). "
        "It never enters the workspace.",
        show_default=False,
    ),
]


def workspace_from(option: Path | None) -> Workspace:
    return Workspace(resolve_workspace(option))


@contextmanager
def runtime(option: Path | None) -> Iterator[Runtime]:
    """The workspace's runtime for this one command (ledger and replayed state)."""
    from custodiet.runtime import opened

    with opened(workspace_from(option)) as rt:
        yield rt


def signed(
    rt: Runtime, principal: str, key: Path | None, action: str, args: Mapping[str, Any]
) -> SignedRequest:
    """``principal``'s request to do ``action``, signed here with their private key."""
    from custodiet.identity import load_private_key, resolve_key_path, sign_request

    private = load_private_key(resolve_key_path(key))
    return sign_request(private, principal, rt.state.origin, action, args)


class TableOrJson(StrEnum):
    TABLE = "table"
    JSON = "json"
