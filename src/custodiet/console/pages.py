"""The console's routes: three HTML pages and their static modules, served with a strict
content security policy (scripts, styles and connections from this origin only; no framing)."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

PAGES = {
    "ledger": "Ledger explorer",
    "desk": "Custodian desk",
    "workbench": "Reviewer workbench",
}
STATIC = "/console/static"
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@cache
def _template(name: str) -> str:
    return (files("custodiet.console") / "templates" / name).read_text(encoding="utf-8")


def render(page: str) -> str:
    """The page ``page`` in the shared layout (navigation, heading, its own module)."""
    current = ' aria-current="page"'
    nav = "\n".join(
        f'<li><a href="/{name}"{current if name == page else ""}>{title}</a></li>'
        for name, title in PAGES.items()
    )
    return (
        _template("layout.html")
        .replace("{{title}}", PAGES[page])
        .replace("{{nav}}", nav)
        .replace("{{static}}", STATIC)
        .replace("{{page}}", page)
        .replace("{{main}}", _template(f"{page}.html").replace("{{static}}", STATIC))
    )


def add_console(app: FastAPI) -> None:
    static = StaticFiles(directory=str(files("custodiet.console") / "static"))
    app.mount(STATIC, static, name="console-static")

    @app.get("/", include_in_schema=False)
    async def home() -> Response:
        return RedirectResponse("/ledger", status_code=303)

    def page_route(page: str) -> None:
        async def endpoint() -> Response:
            return HTMLResponse(render(page), headers=HEADERS)

        app.add_api_route(f"/{page}", endpoint, methods=["GET"], include_in_schema=False)

    for page in PAGES:
        page_route(page)
