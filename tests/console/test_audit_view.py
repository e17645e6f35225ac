"""The explorer shows the server's `ledger audit` verdict: authorized on a clean log, and on a
log with an entry written past the gateway (no principal signed it) the entry's index and the
rule it breaks, as `custodiet ledger audit` names them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from custodiet.ledger.replay import audit_entries
from tests.console.world import chromium, serious_violations, served
from tests.kit import Kit

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def _verdict(browser: Any, url: str) -> Any:
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/ledger")
    page.wait_for_selector("body[data-ready=true]", timeout=60_000)
    assert errors == []
    return page


def test_the_explorer_shows_the_servers_audit_verdict(browser: Any, tmp_path: Path) -> None:
    ws = Kit(tmp_path).init(tmp_path / "ws")
    with served(ws.root) as url:
        page = _verdict(browser, url)
        audit = page.locator("#audit")
        assert audit.get_attribute("class") == "ok" and audit.get_attribute("data-verdict") == "ok"
        assert "The server's audit: authorized" in audit.inner_text()
        page.context.close()
    ledger = ws.ledger()
    try:  # an approval no one signed, written straight into the store
        forged = ledger.append({"action": "agreement.approve", "actor": "ana", "agreement": "x"})
        entries = [json.loads(data) for _, data in ledger.entries()]
    finally:
        ledger.close()
    _, expected = audit_entries(entries)
    assert expected.violation is not None and expected.violation[0] == forged
    _, code, _ = expected.violation
    with served(ws.root) as url:
        page = _verdict(browser, url)
        audit = page.locator("#audit")
        assert audit.get_attribute("class") == "bad"
        assert (audit.get_attribute("data-index"), audit.get_attribute("data-code")) == (
            str(forged),
            code,
        )
        assert "NOT authorized" in audit.inner_text() and f"rule {code}" in audit.inner_text()
        assert "src/custodiet/ledger/replay.py" in page.inner_text("main")
        assert serious_violations(page) == []
        page.context.close()
