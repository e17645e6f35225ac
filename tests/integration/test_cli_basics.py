from __future__ import annotations

from tests.conftest import run_cli


def test_help_lists_commands() -> None:
    result = run_cli("--help")
    assert result.status == 0
    assert "synth" in result.stdout


def test_unknown_command_exits_2_with_one_line() -> None:
    result = run_cli("no-such-command")
    assert result.status == 2
    assert result.stderr.strip().count("\n") == 0
    assert "Traceback" not in result.stderr
