"""Every command group, registered on the root app in the order ``--help`` shows them."""

from __future__ import annotations

from importlib import import_module

import typer

MODULES = (
    "custodiet.cli.demo",
    "custodiet.cli.keys",
    "custodiet.cli.workspace",
    "custodiet.cli.synth",
    "custodiet.cli.principal",
    "custodiet.cli.dataset",
    "custodiet.cli.agreement",
    "custodiet.cli.query",
    "custodiet.cli.screen",
    "custodiet.cli.cases",
    "custodiet.cli.receipt",
    "custodiet.cli.reid",
    "custodiet.cli.ledger",
    "custodiet.cli.serve",
    "custodiet.cli.witness",
)


ALIASES = {
    "key": "keys",
    "init": "workspace",
    "doctor": "serve",
    "verify-result": "receipt",
    "monitor": "cases",
    "case": "cases",
    "report": "cases",
}


def register(app: typer.Typer, command: str | None = None) -> None:
    """Register every group; or only ``command``'s module, when it is the one a command line names.

    A user running one command does not pay for building the others (about 40 ms); anything
    else (root options, `--help`, an unknown or misspelt command) registers them all.
    """
    module = f"custodiet.cli.{ALIASES.get(command or '', command)}"
    for name in (module,) if module in MODULES else MODULES:
        import_module(name).register(app)
