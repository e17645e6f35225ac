"""Options shared by several commands, and how a command acts as a principal."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, TypeVar

import typer
from typer._click.globals import get_current_context

from custodiet.settings import SERVER_ENV, WORKSPACE_ENV, resolve_workspace
from custodiet.workspace import Workspace

if TYPE_CHECKING:
    from custodiet.client import Remote
    from custodiet.identity import SignedRequest
    from custodiet.runtime import Runtime

    Session: TypeAlias = Runtime | Remote  # where a command's actions run: here, or a server

KEY_ENV = "CUSTODIET_KEY"  # read by custodiet.identity.resolve_key_path, shown here in help

# `workspace: WorkspacePath = None`. The envvar is shown in help; settings.resolve_workspace reads
# it (helptext.PlainOption never does), so the order is: option, else environment, else default.
WorkspacePath = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        metavar="DIR",
        help="Workspace directory (default: ./custodiet-workspace).",
        envvar=WORKSPACE_ENV,
        show_envvar=True,
        show_default=False,
    ),
]

Actor = Annotated[
    str, typer.Option("--as", metavar="NAME", help="The principal acting (sign with their --key).")
]

KeyPath = Annotated[
    Path | None,
    typer.Option(
        "--key",
        metavar="FILE",
        help="That principal's private key: OpenSSH or PEM Ed25519. It never enters the workspace.",
        envvar=KEY_ENV,
        show_envvar=True,
        show_default=False,
    ),
]


class OutputFormat(StrEnum):
    """Every output format; each command accepts the ones it can show (see `output_format`)."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    PARQUET = "parquet"


# `--out FILE` without --format: the format from FILE's suffix, else csv
FILE_SUFFIXES = {".json": OutputFormat.JSON, ".parquet": OutputFormat.PARQUET}


@dataclass(frozen=True)
class GlobalOptions:
    """Options given before the subcommand (`custodiet -w ws principal list`); the same option
    given after it takes precedence. Kept on the Typer context object of the root command."""

    verbose: bool = False
    workspace: Path | None = None
    key: Path | None = None
    format: OutputFormat | None = None
    server: str | None = None


def global_options() -> GlobalOptions:
    """The root command's options, or the defaults outside a command line (tests, the API)."""
    ctx = get_current_context(silent=True)
    found = ctx.find_object(GlobalOptions) if ctx is not None else None
    return found or GlobalOptions()


F = TypeVar("F", bound=StrEnum)


def output_format(option: F | None, accepted: type[F]) -> F:
    """The command's --format, else the global one, else table; a format the command cannot
    show is a usage error (exit 2)."""
    if option is not None:
        return option
    chosen = global_options().format
    if chosen is None:
        return accepted("table")
    try:
        return accepted(chosen.value)
    except ValueError:
        names = ", ".join(f.value for f in accepted)
        raise typer.BadParameter(
            f"{chosen.value!r}: this command shows {names}", param_hint="'--format'"
        ) from None


def rows_format(option: OutputFormat | None, out: Path | None) -> OutputFormat:
    """The format of a command that releases rows: --format (or the global one), else with
    ``--out FILE`` the format FILE's suffix names (csv when it names none). Parquet is written
    to a file and a table is for the terminal: either mismatch is a usage error (exit 2)."""
    chosen = output_format(option, OutputFormat)
    if out is not None and option is None and global_options().format is None:
        chosen = FILE_SUFFIXES.get(out.suffix.lower(), OutputFormat.CSV)
    if chosen is OutputFormat.TABLE and out is not None:
        raise typer.BadParameter("a table is for the terminal", param_hint="'--out'")
    if chosen is OutputFormat.PARQUET and out is None:
        raise typer.BadParameter(
            "parquet is written to a file: add --out FILE", param_hint="'--format'"
        )
    return chosen


def workspace_from(option: Path | None) -> Workspace:
    return Workspace(resolve_workspace(option or global_options().workspace))


def server_url() -> str | None:
    """``--server URL``, else ``$CUSTODIET_SERVER``, else None (run on a local workspace)."""
    return global_options().server or os.environ.get(SERVER_ENV) or None


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

    private = load_private_key(resolve_key_path(key or global_options().key))
    return sign_request(private, principal, rt.state.origin, action, args)


class TableOrJson(StrEnum):
    TABLE = "table"
    JSON = "json"


# `format_: FormatOption = None`, resolved with `output_format(format_, TableOrJson)`
FormatOption = Annotated[
    TableOrJson | None,
    typer.Option(
        "--format",
        metavar="table|json",
        help="table for people, json (one document on stdout) for programs. Default: table.",
        show_default=False,
    ),
]
