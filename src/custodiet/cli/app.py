"""The root Typer app and the one place errors become exit statuses.

Consoles are built on first use: `--help`, JSON output and most errors never need both.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import cache, wraps
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import typer
from typer._click.exceptions import NoArgsIsHelpError

from custodiet.errors import CustodietError

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
        "and prove who looked at what."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_verbose = {"on": False}


def reports_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Wrap a command so a CustodietError prints its message and hint and exits with its status."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except CustodietError as exc:
            if _verbose["on"]:
                raise
            err_console().print(exc.render(), markup=False)
            raise typer.Exit(exc.exit_status) from None

    return wrapper


@app.callback()
def root(
    ctx: typer.Context,
    verbose: bool = typer.Option(False, "--verbose", help="Show tracebacks for failures."),
    server: str | None = typer.Option(
        None,
        "--server",
        help="Send the command to a `custodiet serve` at URL (else $CUSTODIET_SERVER); "
        "you sign with your own key and need no access to the workspace.",
        show_default=False,
        metavar="URL",
    ),
) -> None:
    """custodiet: improper-payment screens on pseudonymized data, every access on a ledger."""
    _verbose["on"] = verbose
    if server:
        from custodiet.cli.options import SERVER_META

        ctx.meta[SERVER_META] = server


def _register_commands() -> None:
    from custodiet.cli import commands

    commands.register(app, sys.argv[1] if len(sys.argv) > 1 else None)


def main() -> None:
    """Console entry point. Usage errors exit 2 with one line; no traceback reaches a user."""
    _register_commands()
    try:
        status = app(standalone_mode=False)
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
