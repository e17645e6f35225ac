"""A small demo workspace served by a real ``custodiet serve`` process, a proxy in front of it
that can tamper with hash tiles, and one headless Chromium (Debian's, never a downloaded one)
for the console's browser tests.

Custodians carol and dave (K = 2), reviewer rita, the synthetic tables registered, and the
example agreement proposed by rita and not yet approved."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.kit import Kit
from tests.needs import unavailable
from tests.processes import free_port, running

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CUSTODIET_CHROMIUM", "/usr/bin/chromium"))
TABLES = ("beneficiaries", "payments", "deaths", "exclusions", "tax_refunds")
CUSTODIANS = ("carol", "dave")
AGREEMENT = "improper-payments"


def require_chromium() -> None:
    """Chromium is a test dependency (Makefile DEBIAN_PACKAGES): missing is a failure under CI."""
    if CHROMIUM.exists():
        return
    unavailable(f"{CHROMIUM} not found", "install Debian's chromium (make system-deps)")


def build_workspace(root: Path, people: int = 300) -> tuple[Path, Kit]:
    """The demo workspace under ``root`` (keys in root/keys); returns (workspace, kit)."""
    from custodiet.synth import generate

    kit = Kit(root)
    for who in (*CUSTODIANS, "rita"):
        kit.key_file(who)
    old = os.umask(0o077)
    try:
        generate(root / "data", people, 7, "stress")
        ws = kit.init(root / "ws", custodians=CUSTODIANS, k=2)
        kit.add_principal(ws, "rita", "reviewer", by=("carol",))
        for table in TABLES:
            kit.add_dataset(ws, table, root / "data" / f"{table}.parquet", by=("carol",))
        kit.apply(ws, ROOT / "examples" / "improper-payments.yaml", by="rita")
    finally:
        os.umask(old)
    return root / "ws", kit


@contextmanager
def served(workspace: Path) -> Iterator[str]:
    """``custodiet serve --workspace WORKSPACE`` in its own process; yields its URL."""
    port = free_port()
    with running(("serve", "--workspace", str(workspace), "--port", str(port)), port):
        yield f"http://127.0.0.1:{port}"


@dataclass
class Proxy:
    """Forwards every request to ``upstream``; while ``tamper`` is set, flips one bit of every
    level-0 hash tile it serves, and while ``rename`` is set, /v1/info names that log origin
    instead (what a compromised server or mirror could do)."""

    upstream: str
    tamper: bool = False
    rename: str | None = None
    url: str = ""
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)

    def start(self) -> Proxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self, method: str) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() in ("content-type", "accept")
                }
                reply = httpx.request(
                    method, proxy.upstream + self.path, content=body, headers=headers, timeout=60
                )
                content = reply.content
                if proxy.tamper and self.path.startswith("/tile/0/") and content:
                    content = bytes([content[0] ^ 1]) + content[1:]
                if proxy.rename and self.path == "/v1/info":
                    content = json.dumps({**json.loads(content), "origin": proxy.rename}).encode()
                self.send_response(reply.status_code)
                for name, value in reply.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def do_GET(self) -> None:
                self._forward("GET")

            def do_POST(self) -> None:
                self._forward("POST")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@contextmanager
def chromium() -> Iterator[Any]:
    """One headless Debian Chromium for a test module."""
    from playwright.sync_api import sync_playwright

    require_chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            browser.close()


def serious_violations(page: Any) -> list[tuple[str, str]]:
    """axe-core's serious and critical violations on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    return [(v["id"], v["impact"]) for v in found if v["impact"] in ("serious", "critical")]
