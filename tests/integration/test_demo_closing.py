"""The commands `custodiet demo` prints at its end work as printed, pasted in order into a shell
that has neither the venv on PATH nor any CUSTODIET_ variable (as after `make demo`)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_cli

MARK = "__exit_status__"


def _closing_lines(stdout: str) -> list[str]:
    """The lines under the demo's last step, "Explore further", as a user would copy them."""
    tail = stdout.split("Explore further", 1)[1].splitlines()[1:]
    return [line.strip() for line in tail if line.strip()]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], Path]:
    root = tmp_path_factory.mktemp("demo-closing") / "demo"
    result = run_cli("demo", "--people", "2000", "-w", str(root))
    assert result.status == 0, result.stderr
    return _closing_lines(result.stdout), root


def test_demo_prints_path_and_key_exports_and_commands(demo: tuple[list[str], Path]) -> None:
    lines, root = demo
    assert lines[0] == f"export CUSTODIET_WORKSPACE={root / 'workspace'}"
    assert any(line.startswith('export PATH="') for line in lines)
    assert any(line.startswith("export CUSTODIET_KEY=") for line in lines)
    assert sum(line.startswith("custodiet ") for line in lines) >= 5


def test_each_closing_line_runs_in_order_and_exits_0(
    demo: tuple[list[str], Path], tmp_path: Path
) -> None:
    lines, _ = demo
    # one shell, so the exports carry; after each line its exit status, on stdout
    script = "\n".join(f"{line}\necho {MARK} $? {i}" for i, line in enumerate(lines))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODIET_")}
    env["PATH"] = "/usr/bin:/bin"  # the venv is not on PATH until the demo's export puts it there
    proc = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    statuses = {
        int(index): int(status)
        for marker, status, index in (
            line.split() for line in proc.stdout.splitlines() if line.startswith(MARK)
        )
        if marker == MARK
    }
    assert len(statuses) == len(lines), proc.stderr[-2000:]
    failed = {lines[i]: status for i, status in statuses.items() if status != 0}
    assert not failed, (failed, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    assert "authorized:" in proc.stdout and "verified:" in proc.stdout
