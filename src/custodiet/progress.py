"""How long work reports how far it got: a ``Progress`` is called with (steps done, steps in
all) after each step (a projection's table, a screen, a chunk of ledger entries).

Services take one as an optional keyword argument (None: nothing is reported); the CLI shows it
with Rich on a terminal's stderr (cli/progress.py); the server never passes one. A report carries
counts only, never a value from the data.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int, int], None]
