"""Every command group, registered on the root app in the order ``--help`` shows them."""

from __future__ import annotations

from importlib import import_module

import typer

MODULES = ("custodiet.cli.synth",)


def register(app: typer.Typer) -> None:
    for name in MODULES:
        import_module(name).register(app)
