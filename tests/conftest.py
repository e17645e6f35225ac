"""Shared fixtures: run the CLI in-process and capture exit status and both streams."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class CliResult:
    status: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> CliResult:
    """Run ``custodiet ARGS`` in a fresh interpreter, exactly as a user would."""
    proc = subprocess.run(
        [sys.executable, "-m", "custodiet", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli() -> type[CliResult]:
    return CliResult
