"""The command line: thin. Parse arguments, call the core, render; one ``except CustodietError``.

Each capability adds its own command group from a module in this package.
"""

from __future__ import annotations

from custodiet.cli.app import app, main

__all__ = ["app", "main"]
