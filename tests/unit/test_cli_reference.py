"""docs/cli.md is the reference users read: it must say exactly what the commands say."""

from __future__ import annotations

from pathlib import Path

from tests.cli_reference import cli_reference

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_cli_reference_matches_the_commands() -> None:
    assert DOC.read_text(encoding="utf-8") == cli_reference(), (
        "docs/cli.md is stale: regenerate it with"
        " `.venv/bin/python -m tests.cli_reference > docs/cli.md`"
    )


def test_every_command_has_help_text() -> None:
    reference = cli_reference()
    sections = reference.split("\n## ")[1:]
    assert sections, "no command sections"
    for section in sections:
        heading, _, body = section.partition("\n")
        first_paragraph = body.strip().split("\n", 1)[0]
        assert not first_paragraph.startswith("**Usage**"), f"{heading} has no help text"
