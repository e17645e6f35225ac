"""The audit with its signatures checked ahead in worker processes (``audit_lines`` with
``jobs`` > 1) reaches the verdict, the index and the code the one-process replay reaches: a
forged signature deep in a log of several chunks, a signature under a key its signer no longer
has, and a clean log, where the replay itself then verifies no signature."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pytest

from custodiet.ledger import replay
from tests.kit import public_key
from tests.signed_log import GOVERNANCE, history, intent, numbered, outcome, signed

NOW = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)
ORIGIN = "test.local/audit"
SIZE = 3 * replay.CHUNK + 101  # several chunks, the last one partial


@pytest.fixture(scope="module")
def clean() -> list[dict[str, Any]]:
    return history(SIZE, ORIGIN, NOW)


def _audits(lines: list[bytes]) -> replay.AuditResult:
    """The result with one job, after checking two jobs give exactly the same."""
    _, one = replay.audit_lines(lines, 1)
    _, two = replay.audit_lines(lines, 2)
    assert one == two
    return two


def test_a_clean_log_is_checked_ahead_by_the_workers(
    clean: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = numbered(clean, NOW)
    calls: list[object] = []
    original = replay.signature_valid

    def counted(*args: Any) -> bool:
        calls.append(args)
        return original(*args)

    monkeypatch.setattr(replay, "signature_valid", counted)
    _, one = replay.audit_lines(lines, 1)
    assert len(calls) == (SIZE - GOVERNANCE) // 2 + 5  # every intent and governance request
    calls.clear()
    state, two = replay.audit_lines(lines, 2)
    assert one == two
    assert (two.violation, two.entries) == (None, SIZE)
    assert calls == []  # the workers verified every signature; the replay none again
    assert state.checked is None  # the verdicts do not outlive the audit


@pytest.mark.parametrize("signer", ["ben", "mallory"])  # a registered custodian's key, a stranger's
def test_a_forged_signature_deep_in_the_log_is_named(
    clean: list[dict[str, Any]], signer: str
) -> None:
    index = GOVERNANCE + 2 * (replay.CHUNK + 7)  # an intent in the third chunk
    entries = list(clean)
    entries[index] = intent(ORIGIN, NOW, signer=signer)
    result = _audits(numbered(entries, NOW))
    assert result.violation == (
        index,
        "CUST502",
        "the signature does not verify under the key registered for 'rae'",
    )
    assert result.entries == index + 1


def _rekeyed(entries: list[dict[str, Any]], at: int, stale: bool) -> list[dict[str, Any]]:
    """``entries[:at]``, then K custodians remove rae and ana adds her back with a new key,
    then rae's intents signed with the new key (one with the old key when ``stale``)."""
    out = entries[:at]
    for votes, custodian in enumerate(("ana", "ben"), start=1):
        request = signed(custodian, ORIGIN, "principal.remove", {"name": "rae"}, NOW)
        out.append({"action": "principal.remove", "principal": "rae", "votes": votes,
                    "effective": votes == 2, **request})  # fmt: skip
    args = {"name": "rae", "role": "reviewer", "pubkey": public_key("rae-new")}
    out.append({"action": "principal.add", "principal": "rae", "role": "reviewer", "votes": 1,
                "required": 1, "effective": True,
                **signed("ana", ORIGIN, "principal.add", args, NOW)})  # fmt: skip
    for n in range(300):
        out.append(intent(ORIGIN, NOW, signer="rae" if stale and n == 250 else "rae-new"))
        out.append(outcome(len(out) - 1))
    return out


def test_a_principal_added_again_signs_with_the_new_key_only(
    clean: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = GOVERNANCE + 2 * (replay.CHUNK - 50)  # the new key arrives late in the first chunk
    rekeyed = numbered(_rekeyed(clean, at, stale=False), NOW)
    assert _audits(rekeyed).violation is None
    monkeypatch.setattr(replay, "signature_valid", lambda *args: pytest.fail("verified here"))
    assert replay.audit_lines(rekeyed, 2)[1].violation is None  # both keys checked ahead
    monkeypatch.undo()
    result = _audits(numbered(_rekeyed(clean, at, stale=True), NOW))
    assert result.violation == (
        at + 3 + 2 * 250,
        "CUST502",
        "the signature does not verify under the key registered for 'rae'",
    )


class _DeadPool:
    """A pool whose every worker dies: each chunk's verdicts are an exception."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def submit(self, *args: Any) -> Future[frozenset[int]]:
        future: Future[frozenset[int]] = Future()
        future.set_exception(BrokenProcessPool("a worker died"))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass


def test_without_workers_the_replay_verifies_every_signature_itself(
    clean: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    index = GOVERNANCE + 2 * (replay.CHUNK + 11)
    entries = list(clean)
    entries[index] = intent(ORIGIN, NOW, signer="ben")
    monkeypatch.setattr(replay, "ProcessPoolExecutor", _DeadPool)
    calls: list[object] = []
    original = replay.signature_valid

    def counted(*args: Any) -> bool:
        calls.append(args)
        return original(*args)

    monkeypatch.setattr(replay, "signature_valid", counted)
    _, result = replay.audit_lines(numbered(entries, NOW), 2)
    assert result.violation is not None
    assert result.violation[:2] == (index, "CUST502")
    assert len(calls) == (index - GOVERNANCE) // 2 + 1 + 5  # each one, up to the forgery
