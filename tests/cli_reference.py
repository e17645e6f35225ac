"""The CLI reference in docs/cli.md, generated from the commands themselves.

.venv/bin/python -m tests.cli_reference > docs/cli.md
"""

from __future__ import annotations

import typer
import typer.main
from typer.cli import get_docs_for_click

from custodiet.cli.app import app
from custodiet.cli.commands import register


def cli_reference() -> str:
    if not app.registered_commands:
        register(app)
    command = typer.main.get_command(app)
    with typer.Context(command) as ctx:
        body = get_docs_for_click(obj=command, ctx=ctx, name="custodiet", title="CLI reference")
    return body.rstrip() + "\n"


if __name__ == "__main__":
    print(cli_reference(), end="")
