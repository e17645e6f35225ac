"""The root Typer app and the one place errors become exit statuses.

Consoles are built on first use: `--help`, JSON output and most errors never need both.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import cache, wraps
from typing import TYPE_CHECKING, Annotated, ParamSpec, TypeVar

import typer
from typer._click.exceptions import NoArgsIsHelpError

from custodiet.cli.helptext import RootGroup
from custodiet.cli.options import (
    GlobalOptions,
    KeyPath,
    OutputFormat,
    WorkspacePath,
    global_options,
)
from custodiet.errors import CustodietError
from custodiet.settings import SERVER_ENV

if TYPE_CHECKING:
    from rich.console import Console

P = ParamSpec("P")
R = TypeVar("R")


@cache
def err_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


@cache
def out_console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


app = typer.Typer(
    name="custodiet",
    help=(
        "Review federal payments for improper ones without seeing anyone's identity, "
        "and prove who looked at what.\n\n"
        "-w, --key and --format may also be given after the command, where they take precedence."
    ),
    no_args_is_help=True,
    cls=RootGroup,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def reports_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Wrap a command so a CustodietError prints its message and hint and exits with its status."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except CustodietError as exc:
            if global_options().verbose:
                raise
            err_console().print(exc.render(), markup=False)
            raise typer.Exit(exc.exit_status) from None

    return wrapper


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"custodiet {version('custodiet')}")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Show tracebacks for failures.")
    ] = False,
    workspace: WorkspacePath = None,
    key: KeyPath = None,
    format_: Annotated[
        OutputFormat | None,
        typer.Option(
            "--format",
            metavar="FORMAT",
            help="Output format for every command that shows something: table, json, and for "
            "rows csv or parquet.",
            show_default=False,
        ),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            metavar="URL",
            help="Send the command to a `custodiet serve` at URL; you sign with your own key "
            "and need no access to the workspace.",
            envvar=SERVER_ENV,
            show_envvar=True,
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Keep the options given before the command on the context, for the command to read."""
    ctx.obj = GlobalOptions(
        verbose=verbose, workspace=workspace, key=key, format=format_, server=server
    )


def _register_commands() -> None:
    from custodiet.cli import commands

    commands.register(app, sys.argv[1] if len(sys.argv) > 1 else None)


def main() -> None:
    """Console entry point. Usage errors exit 2 with one line; no traceback reaches a user."""
    _register_commands()
    try:
        status = app(standalone_mode=False, prog_name="custodiet")
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console().print("aborted")
        sys.exit(1)
    except typer.TyperException as exc:
        if isinstance(exc, NoArgsIsHelpError):
            sys.exit(0)
        err_console().print(f"error: {exc.format_message()}", markup=False)
        sys.exit(2)
    except CustodietError as exc:
        err_console().print(exc.render(), markup=False)
        sys.exit(exc.exit_status)
    except KeyboardInterrupt:
        err_console().print("interrupted")
        sys.exit(130)
    sys.exit(status if isinstance(status, int) else 0)
