"""A realistic signed log built in memory: the governance of one agreement (custodians ana and
ben, K = 2; reviewer rae), then signed query intents each followed by its outcome. The entries
carry no index or time (the ledger assigns them when they are appended; ``numbered`` does it
for a log that is never stored). Used by the audit's tests and by bench/governance.py."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

from custodiet.identity import sign_request
from custodiet.ledger import replay
from tests.kit import private_key, public_key

AGREEMENT = "bench-queries"
SQL = "SELECT count(*) FROM payments"
GOVERNANCE = 7  # entries before the first intent


def signed(name: str, origin: str, action: str, args: dict[str, Any], now: dt.datetime) -> Any:
    """The ``actor``, ``request`` and ``signature`` members of an entry ``name`` caused."""
    s = sign_request(private_key(name), name, origin, action, args, now=now)
    return {"actor": name, "request": s.request, "signature": s.signature}


def history(size: int, origin: str, now: dt.datetime) -> list[dict[str, Any]]:
    """The genesis, the governance of AGREEMENT, then intent/outcome pairs up to ``size``."""
    pub = {n: public_key(n) for n in ("ana", "ben", "rae")}
    document = {"id": AGREEMENT, "purpose": "bench", "reviewer": "rae", "expires": "2099-12-31",
                "mode": "pseudonymous", "approvals_required": 2,
                "datasets": {"payments": {"columns": {"amount": "allow"}, "rows": None,
                                          "allow_quasi_identifiers": False}},
                "limits": {"max_rows": 10000, "min_group_size": 11,
                           "timeout_seconds": "30.0"}}  # fmt: skip
    sha = replay.sha256_hex(document)
    entries: list[dict[str, Any]] = [
        {"action": "genesis", "actor": "custodiet init", "origin": origin, "vkey": "",
         "custodians": [{"name": n, "pubkey": pub[n]} for n in ("ana", "ben")],
         "min_approvals": 2},
        {"action": "principal.add", "principal": "rae", "role": "reviewer", "votes": 1,
         "required": 1, "effective": True,
         **signed("ana", origin, "principal.add",
                  {"name": "rae", "role": "reviewer", "pubkey": pub["rae"]}, now)},
        {"action": "dataset.add", "dataset": "payments", "file_sha256": "0" * 64, "rows": 1,
         "columns": {"amount": "amount"}, "inferred": {"amount": "amount"},
         "identifiers_by_value": [], "lowered": [], "votes": 1, "required": 1,
         "effective": True, "path": "/dev/null", "format": "parquet", "table": None,
         "schema": [], **signed("ana", origin, "dataset.add", {"name": "payments"}, now)},
        {"action": "agreement.propose", "agreement": AGREEMENT, "agreement_version": 1,
         "agreement_sha256": sha,
         **signed("rae", origin, "agreement.propose", {"document": document}, now)},
    ]  # fmt: skip
    for n, custodian in enumerate(("ana", "ben"), start=1):
        entries.append({"action": "agreement.approve", "agreement": AGREEMENT,
                        "agreement_version": 1, "agreement_sha256": sha, "approvals": n,
                        "approvals_required": 2, "active": n == 2,
                        **signed(custodian, origin, "agreement.approve",
                                 {"agreement": AGREEMENT, "version": 1, "sha256": sha},
                                 now)})  # fmt: skip
    entries.append({"action": "projection.build", "actor": "custodiet", "agreement": AGREEMENT,
                    "agreement_version": 1, "sources": {"payments": "0" * 64},
                    "decision": "allowed"})  # fmt: skip
    assert len(entries) == GOVERNANCE
    while len(entries) + 2 <= size:
        entries.append(intent(origin, now))
        entries.append(outcome(len(entries) - 1))
    return entries


def intent(origin: str, now: dt.datetime, signer: str = "rae") -> dict[str, Any]:
    """rae's signed query intent; signed with ``signer``'s key instead, a forgery."""
    args = {"agreement": AGREEMENT, "sql": SQL}
    entry = {
        "action": "intent",
        "attempted": "query",
        "agreement": AGREEMENT,
        "agreement_version": 1,
        "sql": SQL,
        **signed("rae", origin, "query", args, now),
    }
    if signer != "rae":
        message = replay.request_message(entry["request"])
        entry["signature"] = base64.b64encode(private_key(signer).sign(message)).decode()
    return entry


def outcome(intent_index: int) -> dict[str, Any]:
    return {"action": "query", "intent": intent_index, "actor": "rae", "agreement": AGREEMENT,
            "agreement_version": 1, "decision": "allowed", "sql": SQL, "rows_returned": 1,
            "result_sha256": "0" * 64, "epsilon_spent": 0}  # fmt: skip


def numbered(entries: list[dict[str, Any]], now: dt.datetime) -> list[bytes]:
    """The entries as a ledger would store them: each with its index and time, one JSON line."""
    time = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return [
        json.dumps({**entry, "index": index, "time": time}, sort_keys=True).encode()
        for index, entry in enumerate(entries)
    ]
