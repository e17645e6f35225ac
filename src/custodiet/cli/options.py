"""Options shared by several commands, and how a command acts as a principal."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

import typer

from custodiet.settings import resolve_workspace
from custodiet.workspace import Workspace

if TYPE_CHECKING:
    from custodiet.client import Remote
    from custodiet.identity import SignedRequest
    from custodiet.runtime import Runtime

    Session: TypeAlias = Runtime | Remote  # where a command's actions run: here, or a server

SERVER_META = "custodiet.server"  # the root's --server, in the command line's context

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


def server_url() -> str | None:
    """``--server URL``, else ``$CUSTODIET_SERVER``, else None (run on a local workspace)."""
    from typer._click.globals import get_current_context

    context = get_current_context(silent=True)
    url = context.meta.get(SERVER_META) if context is not None else None
    return str(url or os.environ.get("CUSTODIET_SERVER") or "") or None


@contextmanager
def runtime(option: Path | None) -> Iterator[Session]:
    """Where this one command runs: the workspace's runtime (ledger and replayed state), or,
    with ``--server``, a client of that server (which holds only the principal's key)."""
    url = server_url()
    if url is not None:
        from custodiet.client import Remote

        remote = Remote(url)
        try:
            yield remote
        finally:
            remote.close()
        return
    from custodiet.runtime import opened

    os.umask(0o077)  # what this command writes in the workspace stays its owner's alone
    with opened(workspace_from(option)) as rt:
        yield rt


def signed(
    rt: Session, principal: str, key: Path | None, action: str, args: Mapping[str, Any]
) -> SignedRequest:
    """``principal``'s request to do ``action``, signed here with their private key."""
    from custodiet.identity import load_private_key, resolve_key_path, sign_request

    private = load_private_key(resolve_key_path(key))
    return sign_request(private, principal, rt.state.origin, action, args)


class TableOrJson(StrEnum):
    TABLE = "table"
    JSON = "json"
