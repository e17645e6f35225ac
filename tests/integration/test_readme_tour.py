"""The README's five-minute tour runs as written (smaller) and ends with a verified log."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _block(readme: str, heading: str) -> str:
    section = readme.split(heading, 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    assert block, f"the shell block under {heading!r} is missing from README.md"
    return block.group(1)


def _tour_script() -> str:
    """The tour, then the independent verification, as a reader runs them one after the other
    (from the repository's root: the verification names src/custodiet/ledger/replay.py)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    tour = _block(readme, "## A five-minute tour").replace("--people 50000", "--people 2000")
    verify = _block(readme, "## Verifying the ledger independently")
    return tour + verify.replace("src/custodiet/", f"{ROOT}/src/custodiet/")


def test_readme_tour_runs_and_its_refusal_is_on_the_ledger(tmp_path: Path) -> None:
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = {k: v for k, v in os.environ.items() if k != "CUSTODIET_WORKSPACE"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _tour_script()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "refused: column 'payments.payee_name' is denied" in proc.stderr
    assert "exit 3" in proc.stdout
    assert "Traceback" not in proc.stderr
    entries = subprocess.run(
        [sys.executable, "-m", "custodiet", "ledger", "entries"],
        cwd=tmp_path,
        env={**env, "CUSTODIET_WORKSPACE": "ws"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert '"action":"refusal"' in entries and "payee_name" in entries
    assert "entries verified against root" in proc.stdout
    assert "every access was authorized" in proc.stdout  # custodiet ledger audit
    assert "entries replayed, every access authorized" in proc.stdout  # the standalone replay
    assert "VERIFIED by-program.csv" in proc.stdout and "(from --vkey)" in proc.stdout
