"""`custodiet ledger audit --jobs N`, end to end: a forged signature deep in a log of a few
thousand signed entries is named with the same entry and rule whatever the number of workers
checking signatures, and the clean part of that log replays."""

from __future__ import annotations

import datetime as dt

import pytest

from custodiet.ledger import replay
from custodiet.workspace import Workspace
from tests.conftest import run_cli
from tests.kit import Kit
from tests.signed_log import GOVERNANCE, history, intent

SIZE = 2 * replay.CHUNK + 501
FORGED = GOVERNANCE + 2 * (replay.CHUNK - 3)  # an intent in the second chunk, rae's in name


@pytest.fixture(scope="module")
def forged_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root = tmp_path_factory.mktemp("audit-jobs")
    kit = Kit(root)
    ws = kit.init(root / "ws")  # the genesis: custodians ana and ben, K = 2
    origin = kit.state(ws).origin
    now = dt.datetime.now(dt.UTC)
    entries = history(SIZE, origin, now)[1:]
    entries[FORGED - 1] = intent(origin, now, signer="ben")  # ben's key, not rae's
    ledger = ws.ledger()
    try:
        ledger.append_many(entries)
    finally:
        ledger.close()
    return ws


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_audit_names_a_forged_signature_deep_in_the_log(forged_ws: Workspace, jobs: str) -> None:
    result = run_cli("ledger", "audit", "--jobs", jobs, "--workspace", str(forged_ws.root))
    assert result.status == 1, result.stdout + result.stderr
    assert (
        f"not authorized: ledger entry {FORGED}: the signature does not verify under the key "
        "registered for 'rae' [CUST502]" in result.stderr
    )
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_audit_refuses_zero_jobs(forged_ws: Workspace) -> None:
    result = run_cli("ledger", "audit", "--jobs", "0", "--workspace", str(forged_ws.root))
    assert result.status == 2, result.stdout + result.stderr
    assert "--jobs" in result.stderr


def test_the_entries_before_the_forgery_replay_with_two_jobs(forged_ws: Workspace) -> None:
    ledger = forged_ws.ledger()
    try:
        lines = [data for _, data in ledger.entries(0, FORGED)]
    finally:
        ledger.close()
    _, result = replay.audit_lines(lines, 2)
    assert (result.violation, result.entries) == (None, FORGED)
