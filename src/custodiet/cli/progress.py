"""Progress bars on stderr, the way `custodiet synth` shows its own: only when stderr is a
terminal and the output is for people (never with JSON output, never when piped), and only for
work done here (a ``--server`` command's work is the server's: nothing to show).

A bar appears on the first report (``custodiet.progress.Progress``), so a command whose long
step does not happen (an approval that does not yet activate) shows nothing; bars are
transient: the terminal keeps only the command's output.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from custodiet.cli.app import err_console

if TYPE_CHECKING:
    from rich.progress import Progress as Bars
    from rich.progress import TaskID

    from custodiet.progress import Progress


def bars() -> Bars:
    """A transient Rich progress display on stderr (disabled when stderr is not a terminal)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.progress import (
        Progress as Bars,
    )

    console = err_console()
    return Bars(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        redirect_stdout=False,  # stdout stays the command's output, byte for byte
        disable=not console.is_terminal,
    )


class _Bar:
    def __init__(self, display: Bars, description: str) -> None:
        self._display = display
        self._description = description
        self._task: TaskID | None = None

    def __call__(self, done: int, total: int) -> None:
        if self._task is None:
            self._task = self._display.add_task(self._description, total=total)
        self._display.update(self._task, completed=done, total=total)


@contextmanager
def progress(description: str, *, shown: bool = True) -> Iterator[Progress | None]:
    """A ``Progress`` that draws a bar named ``description`` while the block runs, or None
    (nothing to report to) when not ``shown`` or stderr is not a terminal."""
    from custodiet.cli.options import OutputFormat, global_options

    json_out = global_options().format is OutputFormat.JSON
    if not shown or json_out or not err_console().is_terminal:
        yield None
        return
    with bars() as display:
        yield _Bar(display, description)
