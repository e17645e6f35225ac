"""Long work shows progress on a terminal's stderr, and only there: each long command run on a
copy of the same workspace, once with stderr a terminal (a Rich console forced to be one) and
once without (as tests and pipes run), prints byte-identical stdout; only the terminal run's
stderr holds the bar."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from custodiet.cli import commands
from custodiet.cli import progress as cli_progress
from custodiet.cli.app import app
from custodiet.workspace import Workspace
from tests.catalog_data import (
    TABLES,
    kit_for,
    table_rows,
    workspace_with_people,
    write_agreement,
    write_table,
)
from tests.conftest import CliResult

if not any(group.name == "ledger" for group in app.registered_groups):
    commands.register(app)

AGREEMENT = "ssa-deceased-payees"


def _invoke(ws: Path, args: tuple[str, ...], who: str | None) -> CliResult:
    signer = [] if who is None else kit_for(Workspace(ws)).as_(who)
    result = CliRunner().invoke(app, [*args, *signer, "--workspace", str(ws)])
    return CliResult(result.exit_code, result.stdout, result.stderr)


def _both(
    monkeypatch: pytest.MonkeyPatch, ws: Workspace, *args: str, who: str | None = "alice",
    status: int = 0,
) -> tuple[CliResult, CliResult]:  # fmt: skip
    """``args`` run without a terminal on ``ws``, then with stderr a terminal on a copy of ``ws``
    as it was (same secret, same ledger): (plain run, terminal run)."""
    copy = ws.root.with_name(ws.root.name + "-tty")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(ws.root, copy)
    plain = _invoke(ws.root, args, who)
    with monkeypatch.context() as patched:
        terminal = Console(stderr=True, force_terminal=True, highlight=False, soft_wrap=True)
        patched.setattr(cli_progress, "err_console", lambda: terminal)
        tty = _invoke(copy, args, who)
    assert plain.status == tty.status == status, plain.stderr
    assert tty.stdout == plain.stdout
    return plain, tty


def _bar(description: str, result: CliResult) -> list[str]:
    """The "done/total" counts the bar named ``description`` showed, in order."""
    assert description in result.stderr
    return re.findall(rf"{re.escape(description)}\S*[^\n]*?(\d+/\d+)", result.stderr)


@pytest.fixture
def world(tmp_path: Path) -> tuple[Workspace, Path]:
    ws = workspace_with_people(tmp_path / "ws")
    data = tmp_path / "data"
    (data / "month=2024-01").mkdir(parents=True)
    columns = dict(TABLES["payments"])
    write_table(data / "month=2024-01" / "payments.parquet", columns,
                table_rows("payments", 60, seed=1))  # fmt: skip
    deaths = write_table(tmp_path / "deaths.parquet", TABLES["deaths"], table_rows("deaths", 60))
    glob = str(data / "month=*" / "payments.parquet")
    assert _invoke(ws.root, ("dataset", "add", "payments", glob), "alice").status == 0
    assert _invoke(ws.root, ("dataset", "add", "deaths", str(deaths)), "alice").status == 0
    follow = "    rows: \"agency = 'SSA'\"\n"
    path = write_agreement(tmp_path / "a.yaml", **{follow: follow + "    follow: true\n"})
    kit = kit_for(ws)
    kit.apply(ws, path, by="bob")
    kit.approve(ws, AGREEMENT, by="alice")
    return ws, data


def test_long_commands_show_progress_on_a_terminal_only(
    world: tuple[Workspace, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, data = world
    latest = kit_for(ws).state(ws).agreements[AGREEMENT].latest
    approve = ("agreement", "approve", AGREEMENT, "--version", str(latest.number),
               "--sha256", latest.sha256)  # fmt: skip
    plain, tty = _both(monkeypatch, ws, *approve, who="carol")
    assert "protected projection ready" in plain.stdout
    assert _bar("building the projection", tty)[-1] == "3/3"  # payments, deaths, death_match
    assert "building the projection" not in plain.stderr

    plain, tty = _both(monkeypatch, ws, "agreement", "build", AGREEMENT)
    assert _bar("building the projection", tty)[-1] == "3/3"
    assert "building" not in plain.stderr

    (data / "month=2024-02").mkdir()
    write_table(data / "month=2024-02" / "payments.parquet", dict(TABLES["payments"]),
                table_rows("payments", 60, seed=2))  # fmt: skip
    glob = str(data / "month=*" / "payments.parquet")
    plain, tty = _both(monkeypatch, ws, "dataset", "update", "payments", glob)
    assert f"projections extended: {AGREEMENT}" in plain.stdout
    assert _bar("extending projections", tty)[-1] == "1/1"
    assert "extending" not in plain.stderr

    screens = ("screen", "run", "paid_after_death", "duplicate_payment", "--agreement", AGREEMENT)
    plain, tty = _both(monkeypatch, ws, *screens, who="bob", status=3)  # one is refused
    assert _bar(f"screening {AGREEMENT}", tty)[-1] == "2/2"
    assert "screening" not in plain.stderr

    plain, tty = _both(monkeypatch, ws, "monitor", "--agreement", AGREEMENT, who="bob")
    counts = _bar(f"monitoring {AGREEMENT}: screens", tty)
    assert counts[-1].split("/")[0] == counts[-1].split("/")[1] != "0"
    assert "monitoring" not in plain.stderr

    plain, tty = _both(monkeypatch, ws, "ledger", "verify", who=None)
    entries = int(re.search(r"verified: (\d+) entries", plain.stdout).group(1))  # type: ignore[union-attr]
    assert _bar("verifying entries", tty)[-1] == f"{entries}/{entries}"
    assert "verifying" not in plain.stderr

    plain, tty = _both(monkeypatch, ws, "ledger", "audit", who=None)
    assert _bar("replaying entries", tty)[-1] == f"{entries}/{entries}"
    assert "replaying" not in plain.stderr


def test_json_output_never_shows_progress(
    world: tuple[Workspace, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, _ = world
    kit_for(ws).approve(ws, AGREEMENT, by="carol")
    json_runs = (
        ("screen", "run", "paid_after_death", "--agreement", AGREEMENT, "--format", "json"),
        ("monitor", "--agreement", AGREEMENT, "--format", "json"),
        ("--format", "json", "ledger", "audit"),
    )
    for args in json_runs:
        plain, tty = _both(monkeypatch, ws, *args, who=None if "ledger" in args else "bob")
        assert tty.stderr == plain.stderr  # no bar drawn


def test_nothing_is_drawn_for_work_done_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``--server`` command passes ``shown=False``: no bar even on a terminal."""
    terminal = Console(stderr=True, force_terminal=True)
    monkeypatch.setattr(cli_progress, "err_console", lambda: terminal)
    with cli_progress.progress("elsewhere", shown=False) as step:
        assert step is None
    with cli_progress.progress("here") as step:
        assert step is not None
