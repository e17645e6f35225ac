"""Console benchmark (bounded): time to first render of the workbench and of a 1,000-row
result, and the ledger explorer verifying 1,000 inclusion proofs in Chromium (proofs computed
from the public tiles, WebCrypto hashing) against the Python verifier on the same entries, in
the same run.

    .venv/bin/python bench/console.py [--people 1000] [--runs 3]

A demo workspace (tests/console/world.py) with the example agreement approved and 600 queries
recorded (1,200+ entries) is served by `custodiet serve`; Debian's Chromium drives the pages.
The Python figures: `custodiet.ledger.verify.verify_inclusion` on each entry's leaf hash with the
proof read over HTTP from /v1/proof (fetch + verify), and verify alone on proofs already fetched.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.console.world import AGREEMENT, build_workspace, chromium, served

from custodiet.gateway.service import run_query
from custodiet.ledger.verify import leaf_hash, verify_inclusion
from custodiet.runtime import opened
from custodiet.workspace import Workspace

PROOFS = 1000


def prepare(root: Path, people: int) -> Path:
    path, kit = build_workspace(root, people)
    ws = Workspace(path)
    old = os.umask(0o077)  # `serve` refuses a workspace others can read
    try:
        kit.approve_all(ws, AGREEMENT, by=("carol", "dave"))
        with opened(ws) as rt:
            for i in range(600):
                sql = f"SELECT program, count(*) AS n FROM payments WHERE amount > {i} GROUP BY 1"
                run_query(rt, kit.sign(rt, "rita", "query", {"agreement": AGREEMENT, "sql": sql}))
    finally:
        os.umask(old)
    return path


def python_verify(url: str) -> tuple[float, float]:
    """(seconds to fetch and verify PROOFS proofs, seconds to verify them alone)."""
    with httpx.Client(base_url=url, timeout=60) as http:
        started = time.perf_counter()
        lines = http.get("/v1/entries", params={"from": 0, "to": PROOFS - 1}).content.splitlines()
        proofs = [http.get(f"/v1/proof/{i}").json() for i in range(PROOFS)]
        fetched = time.perf_counter()
        for i, (line, p) in enumerate(zip(lines, proofs, strict=True)):
            verify_inclusion(
                i,
                p["tree_size"],
                leaf_hash(line),
                [base64.b64decode(h) for h in p["proof"]],
                base64.b64decode(p["root_hash"]),
            )
        done = time.perf_counter()
    return done - started, done - fetched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="console-bench-"))
    ws = prepare(root, args.people)
    keys = root / "keys"
    with served(ws) as url, chromium() as browser:
        first, result, browser_verify, py_total, py_verify = [], [], [], [], []
        for _ in range(args.runs):
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            started = time.perf_counter()
            page.goto(f"{url}/workbench")
            page.wait_for_selector("body[data-ready]")
            first.append(time.perf_counter() - started)
            page.set_input_files("#keyfile", str(keys / "rita"))
            page.wait_for_selector("#whoami.ok")
            page.fill("#sql", "SELECT payment_id, program, amount FROM payments LIMIT 1000")
            started = time.perf_counter()
            page.click("#run")
            page.wait_for_selector("#query-out.ok, #query-out.bad", timeout=120_000)
            result.append(time.perf_counter() - started)
            rows = page.evaluate("document.querySelector('#r-page').textContent")
            page.goto(f"{url}/ledger")
            page.wait_for_selector("body[data-ready]", timeout=120_000)
            browser_verify.append(
                page.evaluate(
                    """async (n) => { const t = performance.now();
                       for (let i = 0; i < n; i++) await window.custodietLedger.verifyEntry(i);
                       return (performance.now() - t) / 1000; }""",
                    PROOFS,
                )
            )
            page.context.close()
            total, alone = python_verify(url)
            py_total.append(total)
            py_verify.append(alone)
    med = statistics.median
    print(f"workbench first render: {med(first) * 1000:.0f} ms (median of {args.runs})")
    print(f"1,000-row result ({rows}): {med(result) * 1000:.0f} ms from Run to the table")
    print(f"browser: {PROOFS} inclusion proofs from tiles, verified: {med(browser_verify):.2f} s")
    print(f"python: {PROOFS} proofs fetched from /v1/proof and verified: {med(py_total):.2f} s")
    print(f"python: verify only (proofs in hand): {med(py_verify):.3f} s")
    print(f"ratio browser / python (fetch + verify): {med(browser_verify) / med(py_total):.2f}x")
    print(f"ratio browser / python (verify only): {med(browser_verify) / med(py_verify):.1f}x")


if __name__ == "__main__":
    main()
