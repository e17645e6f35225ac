"""Help that reads as English, for every command at once.

Typer prints a type placeholder beside each parameter (``<str>``, ``<bool>``, ``<path>``), shows a
required argument as ``{name}`` in the usage line, and keeps the single line breaks of a
docstring's later paragraphs, so a help text wrapped at 100 columns breaks mid-sentence at 80.
The root group is built with ``cls=RootGroup``, which tidies the whole command tree once, when
it is built: ``--help`` and docs/cli.md (generated from the same objects) then say the same.

- an argument shows its metavar (its name in capitals when it has none) and no type;
- an option shows its metavar, else a word for its type (``N``, ``PATH``, ``[a|b]``); a flag
  shows nothing;
- an option's ``envvar`` is shown in help but never read by the CLI: the environment is read in
  one place (``settings``, ``identity``), which keeps "option, else environment, else default";
- each paragraph of a help text is one line (Rich wraps it to the terminal), unless it starts
  with ``\\b`` (Click's "keep these lines").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from typer import _click
from typer._display import describe_number_range
from typer.core import TyperArgument, TyperGroup, TyperOption


class PlainArgument(TyperArgument):
    """An argument shown by its metavar alone: ``ID``, ``[NAME]...``."""

    def display_type_rich(self, ctx: _click.Context) -> str | None:
        return None

    def _get_number_range_help_str(self) -> str | None:
        return number_range(self)

    def get_usage_pieces(self, ctx: _click.Context) -> list[str]:
        name = self.display_name_raw + ("..." if self.nargs != 1 else "")
        return [name if self.required else f"[{name}]"]


class PlainOption(TyperOption):
    """An option shown by its metavar (``--as NAME``); a flag by its name alone."""

    def display_type_rich(self, ctx: _click.Context) -> str | None:
        if self.is_flag or self.count:
            return None
        return self.metavar or type_word(self)

    def resolve_envvar_value(self, ctx: _click.Context) -> str | None:
        return None  # shown in help only; settings.py and identity.py read the environment

    def _get_number_range_help_str(self) -> str | None:
        return number_range(self)


def number_range(param: TyperArgument | TyperOption) -> str | None:
    """A range worth showing: a bound that only guards against overflow (2**53) is not."""
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if high is not None and high >= 2**31:
        high = None
    return describe_number_range(low, high) if low is not None or high is not None else None


def type_word(option: TyperOption) -> str:
    """A metavar for an option that has none: its choices, else a word for its type."""
    desc = option.type_descriptor
    if desc.is_choice and desc.choices is not None:
        return "[" + "|".join(str(getattr(c, "value", c)) for c in desc.choices) + "]"
    if desc.is_path:
        return "PATH"
    annotation: Any = desc.annotation
    if annotation in (int, float):
        return "N"
    return (option.name or "value").upper().replace("_", "-")


def reflow(text: str | None) -> str | None:
    """Each paragraph on one line; a paragraph starting with ``\\b`` is kept as written."""
    if not text:
        return text
    paragraphs = text.split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split()) for p in paragraphs)


def commands(command: _click.Command) -> Iterator[_click.Command]:
    """``command`` and every command below it."""
    yield command
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            yield from commands(sub)


def tidy(command: _click.Command, help_names: list[str]) -> None:
    """Make ``command``'s help, and that of every command below it, read as English."""
    for cmd in commands(command):
        cmd.help = reflow(cmd.help)
        cmd.short_help = reflow(cmd.short_help)
        # Click makes the --help option on first use and keeps it: make it now, to tidy it too
        help_option = cmd.get_help_option(_click.Context(cmd, help_option_names=help_names))
        for param in [*cmd.params, *([help_option] if help_option else [])]:
            if isinstance(param, TyperArgument) and not isinstance(param, PlainArgument):
                param.__class__ = PlainArgument
                if param.metavar is None and param.name:
                    param.metavar = param.name.rstrip("_").upper().replace("_", "-")
            elif isinstance(param, TyperOption) and not isinstance(param, PlainOption):
                param.__class__ = PlainOption
            if isinstance(param, TyperArgument | TyperOption):
                param.help = reflow(param.help)


class RootGroup(TyperGroup):
    """The root group: it tidies the help of the whole tree it is built with."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        tidy(self, self.context_settings.get("help_option_names", ["--help"]))
