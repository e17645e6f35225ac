"""Journeys through the console on a demo workspace served by a real `custodiet serve`:
two custodians approve an agreement by signing in the browser, the reviewer runs the screens and
exports the cases, and an overseer verifies entries in the browser, then sees verification fail
on a tampered tile and the alarm for a checkpoint inconsistent with one seen before. The tests
run in file order on one workspace (each builds on the previous one's ledger); screenshots go to
the module's temporary directory."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from custodiet.identity import sign_request
from tests.console.world import (
    AGREEMENT,
    Proxy,
    build_workspace,
    chromium,
    serious_violations,
    served,
)
from tests.kit import Kit, private_key

pytestmark = pytest.mark.slow


@dataclass
class World:
    url: str
    proxy: Proxy
    kit: Kit
    browser: Any
    shots: Path

    def page(self, path: str, via_proxy: bool = False) -> Any:
        page = self.browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.errors = errors
        page.goto((self.proxy.url if via_proxy else self.url) + path)
        page.wait_for_selector("body[data-ready]", timeout=60_000)
        return page

    def load_key(self, page: Any, who: str) -> None:
        page.set_input_files("#keyfile", str(self.kit.key_file(who)))
        page.wait_for_selector("#whoami.ok", timeout=30_000)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("console")
    ws, kit = build_workspace(root)
    with served(ws) as url, chromium() as browser:
        proxy = Proxy(url).start()
        try:
            yield World(url, proxy, kit, browser, root / "screenshots")
        finally:
            proxy.stop()


def _secrets(kit: Kit, who: str) -> list[bytes]:
    """What would betray ``who``'s private key in a request: the file, its base64 body, the seed
    in standard, URL-safe and hex forms."""
    text = kit.key_file(who).read_text()
    body = "".join(line for line in text.splitlines() if "-----" not in line)
    seed = private_key(who).private_bytes_raw()
    return [
        text.encode(),
        body.encode(),
        body[:40].encode(),
        base64.b64encode(seed).rstrip(b"="),
        base64.urlsafe_b64encode(seed).rstrip(b"="),
        seed.hex().encode(),
    ]


def _agreement(url: str) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(f"{url}/v1/agreements/{AGREEMENT}").json()
    return found


def test_two_custodians_sign_the_agreement_in_the_browser_and_it_is_active(world: World) -> None:
    assert _agreement(world.url)["status"] == "pending"
    for who in ("carol", "dave"):
        page = world.page("/desk")
        card = page.locator(f'article[data-agreement="{AGREEMENT}"]')
        assert "payee_tin" in card.inner_text() and "pseudonymize" in card.inner_text()
        signs = card.locator("pre.signs").inner_text()
        assert _agreement(world.url)["sha256"] in signs
        if who == "carol":
            assert serious_violations(page) == []  # the desk with an agreement to review
        sent: list[bytes] = []
        page.on("request", lambda r: sent.append((r.url + (r.post_data or "")).encode()))
        world.load_key(page, who)
        card.locator("button.approve").click()
        page.wait_for_selector("#desk-out.ok")
        assert "agreement.approve" in page.inner_text("#desk-out")
        page.screenshot(path=str(world.shots / f"desk-{who}.png"), full_page=True)
        assert page.errors == []
        assert any(b"/v1/agreements/approve" in s for s in sent)
        assert not any(secret in s for s in sent for secret in _secrets(world.kit, who))
    shown = _agreement(world.url)
    assert shown["status"] == "active" and sorted(shown["approvals"]) == ["carol", "dave"]
    page = world.page("/desk")
    assert f"Active: {AGREEMENT} v1" in page.locator("#agreements-status").inner_text()


def test_a_key_that_is_nobodys_cannot_sign(world: World, tmp_path: Path) -> None:
    page = world.page("/desk")
    stranger = Kit(tmp_path).key_file("mallory")
    page.set_input_files("#keyfile", str(stranger))
    page.wait_for_selector("#whoami.bad")
    assert "not the key of any registered principal" in page.locator("#whoami").inner_text()


def _download(page: Any, button: str) -> bytes:
    with page.expect_download(timeout=120_000) as download:
        page.click(button)
    return Path(download.value.path()).read_bytes()


def _recorded_sha256(url: str, index: int) -> str:
    line = httpx.get(f"{url}/v1/entries", params={"from": index, "to": index}).text
    entry = json.loads(line.splitlines()[0])
    assert entry["output_format"] in ("csv", "json", "parquet")
    return str(entry["output_sha256"])


def _receipt(page: Any, selector: str, data: bytes, url: str) -> None:
    """The receipt beside the download names the ledger entry recording exactly these bytes."""
    page.wait_for_selector(f"{selector}.ok")
    receipt = page.locator(selector)
    digest = hashlib.sha256(data).hexdigest()
    assert receipt.get_attribute("data-sha256") == digest and digest in receipt.inner_text()
    assert _recorded_sha256(url, int(receipt.get_attribute("data-index") or "-1")) == digest


def _shown(page: Any) -> tuple[list[str], list[int], int, int]:
    """The cases table as shown: its records, amounts in cents, and the stated count and total."""
    records = page.locator("#cases tbody tr td:nth-child(2)").all_inner_texts()
    amounts = [int(c) for c in page.locator("#cases tbody td[data-cents]").evaluate_all(
        "tds => tds.map(td => td.dataset.cents)")]  # fmt: skip
    total = page.locator("#cases-total")
    return (
        records,
        amounts,
        int(total.get_attribute("data-cases") or -1),
        int(total.get_attribute("data-cents") or -1),
    )


def _cents(amount: Any) -> int:
    return int((Decimal(str(amount)) * 100).to_integral_value())


def test_the_reviewer_runs_the_screens_and_exports_the_cases(world: World) -> None:
    page = world.page("/workbench")
    world.load_key(page, "rita")
    page.click("#screens")
    page.wait_for_selector("#cases table", timeout=120_000)
    rows = page.locator("#cases tbody tr").count()
    assert rows > 0
    for name in ("screen", "program", "month"):
        for what in ("Cases", "Dollars at risk"):
            chart = page.locator(f'#screens-chart svg[aria-label="{what} by {name}"]')
            assert chart.locator("rect").count() > 0, (what, name)
    data = _download(page, "#cases-csv")  # rendered by the server, recorded on the ledger
    _receipt(page, "#cases-receipt", data, world.url)
    exported = list(csv.reader(io.StringIO(data.decode())))
    assert exported[0][:5] == ["record_table", "record_id", "pattern", "payee", "amount_at_risk"]
    assert len({(r[0], r[1]) for r in exported[1:]}) == rows  # one line per (record, screen)
    report = _download(page, "#cases-json")
    _receipt(page, "#cases-receipt", report, world.url)
    cases = json.loads(report)["cases"]
    assert len(cases) == rows
    page.fill("#sql", "-- caf\u00e9 \U0001f600\nSELECT program,\n       payee_name\nFROM payments")
    page.click("#run")
    page.wait_for_selector("#query-out.bad")
    assert "Refused by rule CUST" in page.locator("#query-out").inner_text()
    marked = page.locator("#sql-view mark.at-fault")
    assert marked.inner_text() == "payee_name"  # the offending identifier, underlined
    assert page.locator("#sql-view").inner_text().endswith("payee_name\nFROM payments")
    page.fill("#sql", "SELECT program, count(*) AS n FROM payments GROUP BY program")
    page.click("#run")
    page.wait_for_selector("#query-out.ok")
    assert page.locator("#results tbody tr").count() > 0
    assert page.locator("#sql-view").is_hidden()  # nothing refused, nothing underlined
    assert serious_violations(page) == []  # the workbench with results, cases and charts
    page.screenshot(path=str(world.shots / "workbench.png"), full_page=True)
    token = page.locator("#cases tbody tr td:nth-child(4)").first.inner_text()
    page.fill("#reid-tokens", token)
    page.fill("#reid-reason", "confirm before referral")
    page.click("#reid")
    page.wait_for_selector("#reid-out.ok")
    pending = httpx.get(f"{world.url}/v1/reid/pending").json()
    assert [(r["requester"], r["tokens"]) for r in pending] == [("rita", [token])]
    assert page.errors == []


def test_the_query_exports_as_parquet_with_its_receipt(world: World) -> None:
    import pyarrow.parquet as pq

    page = world.page("/workbench")
    world.load_key(page, "rita")
    page.fill(
        "#sql", "SELECT program, count(*) AS n FROM payments GROUP BY program ORDER BY program"
    )
    page.click("#run")
    page.wait_for_selector("#query-out.ok")
    shown = page.locator("#results tbody tr td:nth-child(1)").all_inner_texts()
    data = _download(page, "#parquet")
    _receipt(page, "#query-receipt", data, world.url)
    table = pq.read_table(io.BytesIO(data))
    assert table.column_names == ["program", "n"]
    assert [str(v) for v in table.column("program").to_pylist()] == shown
    assert page.errors == []


def test_the_cases_table_sorts_filters_and_totals(world: World) -> None:
    page = world.page("/workbench")
    world.load_key(page, "rita")
    page.click("#screens")
    page.wait_for_selector("#cases table", timeout=120_000)
    cases = json.loads(_download(page, "#cases-json"))["cases"]
    records, amounts, count, total = _shown(page)
    assert count == len(cases) == len(records)
    assert total == sum(amounts) == sum(_cents(c["amount_at_risk"]) for c in cases)
    assert amounts == sorted(amounts, reverse=True)  # largest first
    page.click('#cases th button[data-sort="amount"]')
    assert _shown(page)[1] == sorted(amounts)
    page.click('#cases th button[data-sort="record_id"]')
    by_record = _shown(page)[0]
    natural = sorted(by_record, key=lambda r: (0, int(r), "") if r.isdigit() else (1, 0, r))
    assert by_record == natural
    screens = sorted({s for c in cases for s in c["patterns"]})
    for screen in screens:
        page.select_option("#c-screen", screen)
        wanted = [c for c in cases if screen in c["patterns"]]
        _, amounts, count, total = _shown(page)
        assert count == len(wanted) == len(amounts)
        assert total == sum(amounts) == sum(_cents(c["amount_at_risk"]) for c in wanted)
        column = page.locator("#cases tbody tr td:nth-child(3)").all_inner_texts()
        assert all(screen in cell.split(", ") for cell in column)
    page.select_option("#c-screen", "")
    middle = sorted(_cents(c["amount_at_risk"]) for c in cases)[len(cases) // 2]
    page.fill("#c-min", f"{middle / 100:.2f}")
    _, amounts, count, total = _shown(page)
    wanted = [c for c in cases if _cents(c["amount_at_risk"]) >= middle]
    assert 0 < count == len(wanted) == len(amounts) and min(amounts) >= middle
    assert total == sum(_cents(c["amount_at_risk"]) for c in wanted)
    page.fill("#c-max", "0")
    assert _shown(page)[2:] == (0, 0) and page.locator("#cases tbody tr").count() == 0
    page.fill("#c-min", "")
    page.fill("#c-max", "")
    assert _shown(page)[2] == len(cases)
    assert serious_violations(page) == []
    assert page.errors == []


def test_a_custodian_denies_a_reidentification_with_a_reason(world: World) -> None:
    page = world.page("/desk")
    card = page.locator("article[data-reid]")
    assert card.count() == 1 and "confirm before referral" in card.inner_text()
    world.load_key(page, "carol")
    card.get_by_role("button", name="Deny").click()
    assert "Say why" in card.locator("[role=status]").inner_text()  # no reason, nothing signed
    card.get_by_label("Reason to deny").fill("not enough evidence yet")
    card.get_by_role("button", name="Deny").click()
    page.wait_for_selector("#reid-status:has-text('0 pending')")
    assert httpx.get(f"{world.url}/v1/reid/pending").json() == []
    last = httpx.get(f"{world.url}/v1/entries").text.strip().splitlines()[-1]
    assert '"action":"reid.deny"' in last and '"principal":"carol"' in last


def test_an_overseer_verifies_every_entry_in_the_browser(world: World) -> None:
    page = world.page("/ledger", via_proxy=True)
    assert "Checkpoint verified in this browser" in page.locator("#checkpoint-status").inner_text()
    page.locator("button.verify").first.click()
    page.wait_for_selector("#verdict.ok")
    size = page.evaluate("window.custodietLedger.state.checkpoint.size")
    verdicts = page.evaluate(
        """async (n) => { const out = []; for (let i = 0; i < n; i++) {
             try { await window.custodietLedger.verifyEntry(i); out.push(true); }
             catch { out.push(false); } } return out; }""",
        size,
    )
    assert size > 20 and all(verdicts)
    assert page.locator("#chart svg rect").count() > 0  # the screen run's accesses
    page.select_option("#f-decision", "refused")
    decisions = page.locator("#entries tbody tr td:nth-child(6)").all_inner_texts()
    assert decisions and set(decisions) == {"refused"}  # the denied query, at least
    page.select_option("#f-decision", "")
    page.fill("#f-actor", "dave")
    actions = page.locator("#entries tbody tr td:nth-child(4)").all_inner_texts()
    assert actions == ["agreement.approve"]  # dave did one thing: approve
    page.screenshot(path=str(world.shots / "ledger.png"), full_page=True)
    assert page.errors == []


def test_the_explorer_pages_and_filters_by_time(world: World) -> None:
    page = world.page("/ledger?per=10")
    total = page.evaluate("window.custodietLedger.state.entries.length")
    first = page.locator("#entries tbody tr td:nth-child(1)").all_inner_texts()
    assert first == [str(i) for i in range(total - 1, total - 11, -1)]  # newest first
    assert page.inner_text("#page") == f"Page 1 of {-(-total // 10)}"
    assert page.locator("#prev").is_disabled()
    page.click("#next")
    second = page.locator("#entries tbody tr td:nth-child(1)").all_inner_texts()
    assert second == [str(i) for i in range(total - 11, total - 21, -1)]
    page.fill("#f-from", "2999-01-01T00:00")
    assert page.inner_text("#count") == f"0 of {total} entries match."
    page.fill("#f-from", "2000-01-01T00:00")
    page.fill("#f-to", "2000-01-02T00:00")
    assert page.locator("#entries tbody tr").count() == 0
    page.fill("#f-to", "")
    assert page.inner_text("#count") == f"{total} of {total} entries match."


def test_a_tampered_tile_fails_verification_in_the_browser(world: World) -> None:
    world.proxy.tamper = True
    try:
        page = world.page("/ledger", via_proxy=True)
        page.locator("button.verify").first.click()
        page.wait_for_selector("#verdict.bad")
        assert "NOT verified" in page.locator("#verdict").inner_text()
        page.screenshot(path=str(world.shots / "ledger-tampered.png"), full_page=True)
    finally:
        world.proxy.tamper = False


def _grow(world: World) -> None:
    origin = httpx.get(f"{world.url}/v1/info").json()["origin"]
    signed = sign_request(private_key("rita"), "rita", origin, "query",
                          {"agreement": AGREEMENT, "sql": "SELECT 1 AS one"})  # fmt: skip
    assert httpx.post(f"{world.url}/v1/query", json=signed.document(), timeout=60).is_success


def test_a_checkpoint_inconsistent_with_one_seen_before_raises_the_alarm(world: World) -> None:
    page = world.page("/ledger", via_proxy=True)
    assert page.locator("#alarm").is_hidden()
    _grow(world)  # the log grows: an honest next checkpoint is consistent
    page.reload()
    page.wait_for_selector("body[data-ready]")
    assert "consistent with what this browser saw before" in page.inner_text("#checkpoint-status")
    assert page.locator("#alarm").is_hidden()
    _grow(world)
    world.proxy.tamper = True  # the proof from the old checkpoint is computed from bad tiles
    try:
        page.reload()
        page.wait_for_selector("body[data-ready]")
        alarm = page.locator("#alarm")
        assert alarm.is_visible() and "Inconsistent log" in alarm.inner_text()
        page.screenshot(path=str(world.shots / "ledger-alarm.png"), full_page=True)
    finally:
        world.proxy.tamper = False
    page.evaluate(
        """() => { for (const k of Object.keys(localStorage)) if (k.endsWith('.checkpoint')) {
             const seen = JSON.parse(localStorage.getItem(k)); seen.size += 1000;
             localStorage.setItem(k, JSON.stringify(seen)); } }"""
    )
    page.reload()
    page.wait_for_selector("body[data-ready]")
    assert "Rollback" in page.locator("#alarm").inner_text()


def test_a_server_that_renames_its_log_gets_no_clean_slate(world: World) -> None:
    page = world.page("/ledger", via_proxy=True)
    assert page.locator("#alarm").is_hidden()
    world.proxy.rename = "custodiet.local/another-log"
    try:
        page.reload()
        page.wait_for_selector("body[data-ready]")
        assert "now names another log" in page.locator("#alarm").inner_text()
    finally:
        world.proxy.rename = None


@pytest.mark.parametrize("width,height", [(1280, 800), (390, 844)], ids=["desktop", "phone"])
def test_every_page_passes_axe_and_fits_the_screen(world: World, width: int, height: int) -> None:
    for path in ("/ledger", "/desk", "/workbench"):
        page = world.browser.new_context(viewport={"width": width, "height": height}).new_page()
        page.goto(world.url + path)
        page.wait_for_selector("body[data-ready]", timeout=60_000)
        if path == "/ledger":
            page.locator("button.verify").first.click()
            page.wait_for_selector("#verdict.ok")
        assert serious_violations(page) == [], path
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at {width}px"
        page.screenshot(path=str(world.shots / f"{path[1:]}-{width}.png"), full_page=True)
        page.context.close()


def test_the_explorer_works_from_the_keyboard(world: World) -> None:
    page = world.page("/ledger")
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('verify')"):
            break
    else:
        pytest.fail("no Verify button is reachable with Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector("#verdict.ok")
    assert page.evaluate("document.activeElement.id") == "detail-heading"
