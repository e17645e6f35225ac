"""Every `--help` reads as English at 80 columns: no Typer placeholders (`<str>`, `<bool>`,
`{id_}`), no line broken before it is full, no word cut in two.

Each help is rendered as a user sees it at 80 columns (COLUMNS=80), in one fresh interpreter
for all of them. The commands are found by walking the command tree.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
import typer.main
from typer import _click
from typer.core import TyperGroup, TyperOption

from custodiet.cli.app import app
from custodiet.cli.commands import register
from custodiet.cli.helptext import number_range, type_word

WIDTH = 80
PLACEHOLDER = re.compile(r"<(bool|str|int|float|path|list|text|[a-z]+ range)[^>]*>", re.IGNORECASE)
RICH_TAG = re.compile(r"\[[a-z#/@][^\[\]]*\]")
BOX = "│┃╭╮╰╯─━┏┓┗┛┡┩╇┳┻┣┫╋┃"
BOILERPLATE = "Usage: OPTIONS COMMAND ARGS... Arguments Options Commands default: required env var:"


def _root() -> _click.Command:
    if not app.registered_commands:
        register(app)
    return typer.main.get_command(app)


def _walk(command: _click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            yield from _walk(sub, (*path, name))


def _command(path: tuple[str, ...]) -> _click.Command:
    command = _root()
    for name in path:
        assert isinstance(command, TyperGroup)
        command = command.commands[name]
    return command


PATHS = list(_walk(_root()))


RENDER = """
import contextlib, io, json, sys
from custodiet.cli.app import app
from custodiet.cli.commands import register
from custodiet.cli.helptext import type_word
register(app)
helps = {}
for path in json.loads(sys.argv[1]):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            app([*path, "--help"], prog_name="custodiet", standalone_mode=False)
        except SystemExit:
            pass
    helps[" ".join(path)] = out.getvalue()
print(json.dumps(helps))
"""


def _render_all(paths: list[tuple[str, ...]]) -> dict[tuple[str, ...], str]:
    """Each path's help, rendered in one fresh interpreter at 80 columns."""
    env = {**os.environ, "COLUMNS": str(WIDTH), "TERM": "dumb", "NO_COLOR": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", RENDER, json.dumps(paths)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rendered = json.loads(proc.stdout)
    return {path: rendered[" ".join(path)] for path in paths}


def _words(text: str) -> set[str]:
    """Words as they appear in help: split on spaces and box lines, outer punctuation dropped."""
    cleaned = text.translate({ord(c): " " for c in BOX})
    return {w.strip("()[]{},.;:'\"`*!?") for w in cleaned.split()} - {""}


def _sources(path: tuple[str, ...]) -> set[str]:
    """Every word the help of ``path`` may show: its texts, names, metavars and defaults."""
    command = _command(path)
    texts = [BOILERPLATE, *path, command.help or "", command.short_help or ""]
    for param in command.params:
        texts += [
            *param.opts,
            *param.secondary_opts,
            param.help or "" if hasattr(param, "help") else "",
        ]
        texts += [str(getattr(param, "metavar", "") or ""), str(param.default), str(param.envvar)]
        if isinstance(param, TyperOption):
            texts.append(type_word(param))
        desc = getattr(param, "type_descriptor", None)
        choices = (desc.choices or ()) if desc is not None and desc.is_choice else ()
        texts += [str(getattr(c, "value", c)) for c in choices]
        texts += [str(getattr(param, "min", "")), str(getattr(param, "max", ""))]
        if isinstance(param, TyperOption):
            texts.append(number_range(param) or "")  # as help shows it: x>=1024, 0<=x<=65535
    texts += ["-h --help Show this message and exit.", "custodiet", "x>=0", "x>=1", "x>=100"]
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            texts += [sub.name or "", sub.help or "", sub.short_help or ""]
    words = _words(" ".join(texts))
    # a default or range may print differently (0..9007199254740991, 50000 as 50000)
    return words | {w for t in texts for w in re.findall(r"[A-Za-z0-9_.=>-]+", t)}


@pytest.fixture(scope="module")
def helps() -> dict[tuple[str, ...], str]:
    return _render_all(PATHS)


def test_the_tree_has_every_command() -> None:
    names = {" ".join(p) for p in PATHS}
    assert {"", "query", "agreement show", "screen run", "reid list", "ledger audit"} <= names


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "custodiet")
def test_help_has_no_type_placeholders(
    helps: dict[tuple[str, ...], str], path: tuple[str, ...]
) -> None:
    text = helps[path]
    assert not PLACEHOLDER.search(text), PLACEHOLDER.search(text)
    assert "_}" not in text
    # `{` only opens a JSON shape in a help text ({"columns": ...}), never a metavar ({ID})
    assert not re.search(r"\{(?![\"}])", text), text


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "custodiet")
def test_help_texts_have_no_rich_markup_tags(path: tuple[str, ...]) -> None:
    """Rich reads `[word]` in a help text as a style tag and drops it from the output."""
    command = _command(path)
    texts = [command.help or "", *(getattr(p, "help", None) or "" for p in command.params)]
    for text in texts:
        assert not RICH_TAG.search(text), f"{RICH_TAG.search(text)} vanishes from --help"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "custodiet")
def test_help_fits_80_columns_without_cut_words(
    helps: dict[tuple[str, ...], str], path: tuple[str, ...]
) -> None:
    text = helps[path]
    assert max(len(line) for line in text.splitlines()) <= WIDTH
    unknown = _words(text) - _sources(path)
    assert not unknown, f"words cut or invented in `custodiet {' '.join(path)} --help`: {unknown}"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "custodiet")
def test_help_paragraphs_fill_their_lines(
    helps: dict[tuple[str, ...], str], path: tuple[str, ...]
) -> None:
    """A line of the description ends early only where its paragraph ends."""
    description = helps[path].split("╭")[0].splitlines()
    lines = [line.rstrip() for line in description if not line.strip().startswith("Usage:")]
    for line, following in itertools.pairwise(lines):
        if line.strip() and following.strip():
            next_word = following.split()[0]
            assert len(line) + 1 + len(next_word) > WIDTH - 2, (
                f"`custodiet {' '.join(path)} --help` breaks a line early:\n{line}\n{following}"
            )
