"""Governance costs, each against a baseline measured in the same run.

    .venv/bin/python bench/governance.py [--entries 1000000] [--queries 200]

1. Signature verification on the in-process query path: the same signed queries run through
   `run_query` on one long-lived runtime, once as shipped and once with the Ed25519 check
   replaced by a constant (benchmark only); the difference per query is what verification adds
   (target <= 0.5 ms), alongside the raw cost of one `cryptography` Ed25519 verify.
2. `ledger audit` (the standalone replay, every signature checked) of a realistic log of
   ENTRIES entries (governance entries, then signed query intents each with its outcome)
   against `ledger verify` (re-hash every entry and tile, check checkpoints) of the same log
   (target <= 2x).

Exit 3 when a target is missed (the figures are still printed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from tests.gateway_data import write_canonical  # noqa: E402
from tests.kit import Kit, private_key, public_key  # noqa: E402

from custodiet.identity import sign_request  # noqa: E402
from custodiet.ledger import replay  # noqa: E402
from custodiet.ledger.audit import audit, log_key  # noqa: E402
from custodiet.runtime import Runtime  # noqa: E402

MISSED = 3
AGREEMENT = "bench-queries"


def _workspace(root: Path) -> tuple[Kit, Any]:
    kit = Kit(root)
    ws = kit.init(root / "ws")
    kit.add_principal(ws, "rae", "reviewer")
    paths = write_canonical(root / "data", people=2000)
    for name, path in paths.items():
        kit.add_dataset(ws, name, path)
    agreement = root / "agreement.yaml"
    agreement.write_text(
        f"id: {AGREEMENT}\npurpose: bench\nreviewer: rae\nexpires: 2099-12-31\n"
        "datasets:\n  payments:\n    columns:\n      payment_id: allow\n"
        "      payee_tin: pseudonymize\n      amount: allow\n      program: allow\n",
        encoding="utf-8",
    )
    kit.apply(ws, agreement, "rae")
    kit.approve_all(ws, AGREEMENT)
    return kit, ws


def _query_path(rt: Runtime, kit: Kit, queries: int) -> float:
    """Median seconds per signed query through run_query on one runtime."""
    from custodiet.gateway.service import run_query

    sql = "SELECT program, count(*) AS n FROM payments GROUP BY program"
    times = []
    for _ in range(queries):
        signed = kit.sign(rt, "rae", "query", {"agreement": AGREEMENT, "sql": sql})
        started = time.perf_counter()
        run_query(rt, signed)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def verification_cost(root: Path, queries: int) -> bool:
    kit, ws = _workspace(root)
    rt = Runtime(ws)
    try:
        _query_path(rt, kit, 10)  # warm: engine open, checker cache
        real = _query_path(rt, kit, queries)
        original = replay.signature_valid
        replay.signature_valid = lambda public_key, request, signature: True
        try:
            unchecked = _query_path(rt, kit, queries)
        finally:
            replay.signature_valid = original
    finally:
        rt.close()
    key = Ed25519PrivateKey.generate()
    message = b"custodiet/request/v1\n" + b"x" * 400
    signature, public = key.sign(message), key.public_key()
    started = time.perf_counter()
    for _ in range(2000):
        public.verify(signature, message)
    one = (time.perf_counter() - started) / 2000
    added = real - unchecked
    print(f"query path, median of {queries}: {real * 1e3:.2f} ms signed and checked, "
          f"{unchecked * 1e3:.2f} ms with the check stubbed")  # fmt: skip
    print(f"signature verification adds {added * 1e3:.3f} ms per query "
          f"(one Ed25519 verify: {one * 1e6:.0f} us)  target <= 0.5 ms: "
          f"{'met' if added <= 0.0005 else 'MISSED'}")  # fmt: skip
    return added <= 0.0005


def _history(size: int) -> list[dict[str, Any]]:
    """A realistic signed log of ``size`` entries: the governance of one agreement, then signed
    query intents each followed by its outcome. Built as entries (the ledger assigns index and
    time when they are appended)."""
    origin = "bench.local/audit"
    now = dt.datetime.now(dt.UTC)
    pub = {n: public_key(n) for n in ("ana", "ben", "rae")}

    def signed(name: str, action: str, args: dict[str, Any]) -> dict[str, Any]:
        s = sign_request(private_key(name), name, origin, action, args, now=now)
        return {"actor": name, "request": s.request, "signature": s.signature}

    document = {"id": AGREEMENT, "purpose": "bench", "reviewer": "rae", "expires": "2099-12-31",
                "mode": "pseudonymous", "approvals_required": 2,
                "datasets": {"payments": {"columns": {"amount": "allow"}, "rows": None,
                                          "allow_quasi_identifiers": False}},
                "limits": {"max_rows": 10000, "min_group_size": 11,
                           "timeout_seconds": "30.0"}}  # fmt: skip
    sha = replay.sha256_hex(document)
    head: list[dict[str, Any]] = [
        {"action": "genesis", "actor": "custodiet init", "origin": origin, "vkey": "",
         "custodians": [{"name": n, "pubkey": pub[n]} for n in ("ana", "ben")],
         "min_approvals": 2},
        {"action": "principal.add", "principal": "rae", "role": "reviewer", "votes": 1,
         "required": 1, "effective": True,
         **signed("ana", "principal.add",
                  {"name": "rae", "role": "reviewer", "pubkey": pub["rae"]})},
        {"action": "dataset.add", "dataset": "payments", "file_sha256": "0" * 64, "rows": 1,
         "columns": {"amount": "amount"}, "inferred": {"amount": "amount"},
         "identifiers_by_value": [], "lowered": [], "votes": 1, "required": 1,
         "effective": True, "path": "/dev/null", "format": "parquet", "table": None,
         "schema": [], **signed("ana", "dataset.add", {"name": "payments"})},
        {"action": "agreement.propose", "agreement": AGREEMENT, "agreement_version": 1,
         "agreement_sha256": sha, **signed("rae", "agreement.propose", {"document": document})},
    ]  # fmt: skip
    for n, custodian in enumerate(("ana", "ben"), start=1):
        head.append({"action": "agreement.approve", "agreement": AGREEMENT,
                     "agreement_version": 1, "agreement_sha256": sha, "approvals": n,
                     "approvals_required": 2, "active": n == 2,
                     **signed(custodian, "agreement.approve",
                              {"agreement": AGREEMENT, "version": 1, "sha256": sha})})  # fmt: skip
    head.append({"action": "projection.build", "actor": "custodiet", "agreement": AGREEMENT,
                 "agreement_version": 1, "sources": {"payments": "0" * 64},
                 "decision": "allowed"})  # fmt: skip
    entries = list(head)
    sql = "SELECT count(*) FROM payments"
    while len(entries) + 2 <= size:
        intent_index = len(entries)
        entries.append(
            {
                "action": "intent",
                "attempted": "query",
                "agreement": AGREEMENT,
                "agreement_version": 1,
                "sql": sql,
                **signed("rae", "query", {"agreement": AGREEMENT, "sql": sql}),
            }
        )
        entries.append({"action": "query", "intent": intent_index, "actor": "rae",
                        "agreement": AGREEMENT, "agreement_version": 1, "decision": "allowed",
                        "sql": sql, "rows_returned": 1, "result_sha256": "0" * 64,
                        "epsilon_spent": 0})  # fmt: skip
    return entries


def audit_against_verify(root: Path, size: int) -> bool:
    from custodiet.ledger import note
    from custodiet.ledger.writer import open_ledger

    started = time.perf_counter()
    history = _history(size)
    key_path = root / "log.key"
    note.write_private_key(key_path)
    ledger = open_ledger(
        f"sqlite:///{root / 'ledger.db'}", "bench.local/audit", key_path, create=True
    )
    history[0]["vkey"] = ledger.vkey()
    for at in range(0, len(history), 20_000):
        ledger.append_many(history[at : at + 20_000])
    ledger.checkpoint()
    print(f"built a {ledger.size():,}-entry signed log in {time.perf_counter() - started:.0f} s")
    import json
    import os

    started = time.perf_counter()
    report = audit(ledger, log_key(ledger.vkey()), jobs=os.cpu_count() or 1)
    verify_seconds = time.perf_counter() - started
    started = time.perf_counter()
    _, result = replay.audit_entries(json.loads(d) for _, d in ledger.entries())
    audit_seconds = time.perf_counter() - started
    ledger.close()
    assert result.violation is None, result.violation
    assert report.size == result.entries
    ratio = audit_seconds / verify_seconds
    signatures = (size - len(_history(10))) // 2
    print(f"ledger verify: {verify_seconds:.2f} s; ledger audit: {audit_seconds:.2f} s "
          f"({signatures:,} signatures checked) = {ratio:.2f}x  target <= 2x: "
          f"{'met' if ratio <= 2 else 'MISSED'}")  # fmt: skip
    return ratio <= 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="custodiet-bench-governance-"))
    try:
        met = verification_cost(root / "query", args.queries)
        met &= audit_against_verify(root, args.entries)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if met else MISSED


if __name__ == "__main__":
    sys.exit(main())
