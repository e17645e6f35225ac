"""`custodiet demo` end to end at a small size: every step runs and the ledger verifies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from custodiet.screens import SCREENS
from custodiet.workspace import Workspace
from tests.conftest import CliResult, run_cli


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[CliResult, Path]:
    root = tmp_path_factory.mktemp("demo") / "demo"
    result = run_cli("demo", "--people", "3000", "--seed", "7", "--workspace", str(root))
    return result, root / "workspace"


def test_demo_runs_every_step(demo: tuple[CliResult, Path]) -> None:
    result, root = demo
    assert result.status == 0, result.stderr
    out = result.stdout
    assert out.count("proved:") == 10
    assert "refused: column 'payments.payee_name' is denied" in out
    assert "Released to rae only" in out
    assert "rae approves her own agreement: refused:" in out
    assert "the audit stops at entry" in out and "[CUST502]" in out
    assert f"export CUSTODIET_WORKSPACE={root}" in out
    assert "Traceback" not in result.stderr


def test_demo_finds_the_planted_records(demo: tuple[CliResult, Path]) -> None:
    result, _ = demo
    scores = [line for line in result.stdout.splitlines() if line.count("│") == 7]
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in scores]
    recall = {row[0]: (row[3], row[4]) for row in rows if row[0] != "pattern"}
    assert len(recall) == len(SCREENS)
    assert all(pair == ("1.000", "1.000") for pair in recall.values()), recall


def test_demo_ledger_verifies_and_holds_every_step(demo: tuple[CliResult, Path]) -> None:
    _, root = demo
    verified = run_cli("ledger", "verify", "--workspace", str(root))
    assert verified.status == 0, verified.stderr
    ledger = Workspace(root).ledger()
    try:
        entries = [json.loads(data) for _, data in ledger.entries()]
    finally:
        ledger.close()
    actions = [e["action"] for e in entries]
    assert actions.count("query") == len(SCREENS)
    for action in ("dataset.add", "agreement.approve", "reid.request", "reid.release"):
        assert action in actions
    assert actions.count("reid.approve") == 2
    reasons = [e.get("reason", "") for e in entries if e["action"] == "refusal"]
    assert any("payee_name" in r for r in reasons)
    assert actions[0] == "genesis" and actions.count("intent") == 2  # the screen run, the release
    audited = run_cli("ledger", "audit", "--workspace", str(root))
    assert audited.status == 0, audited.stderr
    assert "every access was authorized" in audited.stdout
