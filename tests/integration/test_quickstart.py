"""docs/quickstart.md is one continuous path: its shell blocks run in order, as written
(smaller), in a fresh directory, with no error the text does not announce."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def quickstart_script() -> str:
    text = (ROOT / "docs" / "quickstart.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) >= 8, "the quickstart's shell blocks are missing"
    script = "\n".join(blocks[1:])  # the first block sets up the environment (make env)
    return script.replace("--people 20000", "--people 2000")


def test_quickstart_runs_as_one_path(tmp_path: Path) -> None:
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = {k: v for k, v in os.environ.items() if k not in ("CUSTODIET_WORKSPACE", "CUSTODIET_KEY")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", quickstart_script()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    out = proc.stdout
    assert "custodian erin: signed by carol (1 of 2); not registered yet" in out
    assert "custodian erin: signed by dave (2 of 2); registered" in out
    assert "improper-payments v1: 2 of 2 approvals; active" in out
    assert "authorized:" in out and "every access was authorized" in out
    assert "released " in out and "record(s)" in out
    verified = [line for line in out.splitlines() if line.startswith("VERIFIED by-program.csv")]
    assert len(verified) == 2, out  # the reviewer's check, then the outsider's
    assert "(from --vkey)" in out and "pinned in workspace ws" in out
