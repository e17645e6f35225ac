"""Every command group, registered on the root app in the order ``--help`` shows them."""

from __future__ import annotations

from importlib import import_module

import typer

MODULES = (
    "custodiet.cli.demo",
    "custodiet.cli.workspace",
    "custodiet.cli.synth",
    "custodiet.cli.principal",
    "custodiet.cli.dataset",
    "custodiet.cli.agreement",
    "custodiet.cli.query",
    "custodiet.cli.screen",
    "custodiet.cli.reid",
    "custodiet.cli.ledger",
)


def register(app: typer.Typer) -> None:
    for name in MODULES:
        import_module(name).register(app)
