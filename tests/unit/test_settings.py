from __future__ import annotations

from pathlib import Path

from custodiet.settings import DEFAULT_WORKSPACE, WORKSPACE_ENV, resolve_workspace


def test_explicit_workspace_wins_over_the_environment() -> None:
    assert resolve_workspace(Path("a"), {WORKSPACE_ENV: "b"}) == Path("a")


def test_environment_names_the_workspace_when_no_option_is_given() -> None:
    assert resolve_workspace(None, {WORKSPACE_ENV: "b"}) == Path("b")


def test_default_workspace_is_in_the_current_directory() -> None:
    assert resolve_workspace(None, {}) == DEFAULT_WORKSPACE == Path("custodiet-workspace")
    assert resolve_workspace(None, {WORKSPACE_ENV: ""}) == DEFAULT_WORKSPACE
