"""A page on which the console's ES modules load without a server: requests to ``ORIGIN`` are
answered from the package's static files (localhost is a secure context, so WebCrypto works)."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

ORIGIN = "http://localhost:9"
STATIC = files("custodiet.console") / "static"
TYPES = {"js": "text/javascript", "css": "text/css"}


def module_page(browser: Any) -> Any:
    page = browser.new_page()

    def answer(route: Any) -> None:
        path = route.request.url.removeprefix(ORIGIN)
        if path.startswith("/console/static/"):
            name = path.removeprefix("/console/static/")
            item = STATIC / name
            if item.is_file():
                kind = TYPES.get(name.rsplit(".", 1)[-1], "application/octet-stream")
                route.fulfill(body=item.read_bytes(), content_type=kind)
                return
            route.fulfill(status=404, body="")
            return
        route.fulfill(body="<!doctype html><title>verifier</title>", content_type="text/html")

    page.route(f"{ORIGIN}/**", answer)
    page.goto(f"{ORIGIN}/")
    return page
