"""`custodiet serve` under 32 concurrent clients on loopback, against the in-process query path
measured in the same run.

    .venv/bin/python bench/serve.py [--clients 32] [--seconds 20] [--people 2000]

1. Baseline: the same small signed query through `run_query` on one long-lived runtime
   (in-process), p50 over QUERIES runs.
2. Served: `custodiet serve` in its own process; CLIENTS threads, each with its own HTTP
   connection, sign and POST that query for SECONDS (one client in eight reads /checkpoint
   between queries). Reported: p50/p99 latency of a signed query over HTTP, signed queries per
   second, errors other than intended refusals (target 0), and every served result's ledger
   entry checked to be on the ledger afterwards.

Targets (from the issue): p50 over HTTP <= in-process p50 + 5 ms; >= 150 signed queries/s.
Exit 3 when a target is missed (the figures are still printed).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.gateway_data import write_canonical  # noqa: E402
from tests.kit import Kit, private_key  # noqa: E402

from custodiet.identity import sign_request  # noqa: E402
from custodiet.runtime import Runtime  # noqa: E402

MISSED = 3
AGREEMENT = "bench-serve"
SQL = "SELECT program, count(*) AS n FROM payments GROUP BY program ORDER BY program"
QUERIES = 200


def _workspace(root: Path, people: int) -> Path:
    kit = Kit(root)
    ws = kit.init(root / "ws")
    kit.add_principal(ws, "rae", "reviewer")
    for name, path in write_canonical(root / "data", people=people).items():
        kit.add_dataset(ws, name, path)
    agreement = root / "agreement.yaml"
    agreement.write_text(
        f"id: {AGREEMENT}\npurpose: bench\nreviewer: rae\nexpires: 2099-12-31\n"
        "datasets:\n  payments:\n    columns:\n      payment_id: allow\n"
        "      amount: allow\n      program: allow\n",
        encoding="utf-8",
    )
    kit.apply(ws, agreement, "rae")
    kit.approve_all(ws, AGREEMENT)
    return ws.root


def _in_process(ws: Path) -> float:
    from custodiet.gateway.service import run_query
    from custodiet.workspace import Workspace

    rt = Runtime(Workspace(ws))
    try:
        times = []
        key = private_key("rae")
        for _ in range(QUERIES):
            signed = sign_request(
                key, "rae", rt.state.origin, "query", {"agreement": AGREEMENT, "sql": SQL}
            )
            start = time.perf_counter()
            run_query(rt, signed)
            times.append(time.perf_counter() - start)
    finally:
        rt.close()
    return statistics.median(times)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(ws: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "custodiet",
            "serve",
            "--workspace",
            str(ws),
            "--port",
            str(port),
            "--max-in-flight",
            "1000",
            "--rate",
            "1000000",
        ],
        env={k: v for k, v in os.environ.items() if k != "CUSTODIET_WORKSPACE"},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/info", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


def _client(url: str, origin: str, until: float, reads: bool, out: dict[str, list]) -> None:
    key = private_key("rae")
    with httpx.Client(base_url=url, timeout=60) as http:
        while time.monotonic() < until:
            signed = sign_request(key, "rae", origin, "query", {"agreement": AGREEMENT, "sql": SQL})
            start = time.perf_counter()
            response = http.post("/v1/query", json=signed.document())
            elapsed = time.perf_counter() - start
            if response.status_code == 200:
                out["latency"].append(elapsed)
                out["indexes"].append(response.json()["ledger_index"])
            else:
                out["errors"].append(response.text[:200])
            if reads and http.get("/checkpoint").status_code != 200:
                out["errors"].append("checkpoint")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--people", type=int, default=2000)
    args = parser.parse_args()
    os.umask(0o077)  # the workspace stays private (serve refuses one that is not)
    with tempfile.TemporaryDirectory() as tmp:
        ws = _workspace(Path(tmp), args.people)
        baseline = _in_process(ws)
        port = _free_port()
        proc = _serve(ws, port)
        url = f"http://127.0.0.1:{port}"
        try:
            origin = httpx.get(f"{url}/v1/info").json()["origin"]
            out: dict[str, list] = {"latency": [], "indexes": [], "errors": []}
            until = time.monotonic() + args.seconds
            threads = [
                threading.Thread(target=_client, args=(url, origin, until, i % 8 == 0, out))
                for i in range(args.clients)
            ]
            started = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.monotonic() - started
            entries = httpx.get(
                f"{url}/v1/entries", params={"from": min(out["indexes"] or [0])}, timeout=120
            ).text.splitlines()
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    on_ledger = {json.loads(e)["index"] for e in entries}
    missing = [i for i in out["indexes"] if i not in on_ledger]
    lat = sorted(out["latency"])
    p50 = statistics.median(lat) if lat else float("nan")
    p99 = lat[int(len(lat) * 0.99) - 1] if lat else float("nan")
    rate = len(lat) / wall
    print(f"in-process run_query p50:        {baseline * 1e3:8.2f} ms ({QUERIES} queries)")
    print(
        f"served query p50 / p99:          {p50 * 1e3:8.2f} / {p99 * 1e3:.2f} ms "
        f"({args.clients} clients, {args.seconds:g} s, loopback)"
    )
    print(f"signed queries per second:       {rate:8.1f}")
    print(f"p50 over HTTP minus in-process:  {(p50 - baseline) * 1e3:8.2f} ms (target <= 5)")
    print(f"errors: {len(out['errors'])}; served results not on the ledger: {len(missing)}")
    if out["errors"]:
        print("first error:", out["errors"][0])
    met = not out["errors"] and not missing and p50 - baseline <= 0.005 and rate >= 150
    return 0 if met else MISSED


if __name__ == "__main__":
    sys.exit(main())
