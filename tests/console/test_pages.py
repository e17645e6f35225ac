"""The console's pages as the API serves them (no browser): the layout, the security headers,
the static modules, and that the console adds no route to the API's contract."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from custodiet.api.app import create_app
from custodiet.console.pages import PAGES, POLICY
from tests.api.world import Client, asgi_client
from tests.kit import Kit


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    ws = Kit().init(tmp_path_factory.mktemp("pages") / "ws")
    with asgi_client(create_app(ws.root)) as served:
        yield served


@pytest.mark.parametrize("page", sorted(PAGES))
def test_each_page_is_html_with_a_strict_policy_and_its_own_module(
    client: Client, page: str
) -> None:
    response = client.get(f"/{page}")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == POLICY
    assert "script-src 'self'" in POLICY and "frame-ancestors 'none'" in POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    html = response.text
    assert f'<script type="module" src="/console/static/{page}.js"></script>' in html
    assert f"<h1>{PAGES[page]}</h1>" in html and '<html lang="en">' in html
    assert "{{" not in html  # every placeholder filled
    assert "http://" not in html and "https://" not in html  # nothing from another origin


def test_the_root_leads_to_the_explorer_and_modules_are_served_as_javascript(
    client: Client,
) -> None:
    home = client.get("/", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"] == "/ledger"
    module = client.get("/console/static/merkle.js")
    assert module.status_code == 200
    assert "javascript" in module.headers["content-type"]
    assert "export async function verifyInclusion" in module.text
    missing = client.get("/console/static/nope.js")
    assert missing.status_code == 404 and missing.json()["error"]["code"].startswith("CUST")


def test_the_console_adds_nothing_to_the_api_contract(client: Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not any(p in paths for p in ("/", "/ledger", "/desk", "/workbench"))
    assert not any(p.startswith("/console") for p in paths)
