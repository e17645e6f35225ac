"""A served workspace for the API tests: custodians ana and ben (K = 2), and a signed caller."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx

from custodiet.api.app import create_app
from custodiet.api.limits import Limits
from custodiet.identity import SignedRequest, sign_request
from custodiet.workspace import Workspace
from tests.kit import Kit, private_key, public_key

ROUTES = {
    "principal.add": "/v1/principals/add",
    "principal.remove": "/v1/principals/remove",
    "dataset.add": "/v1/datasets/add",
    "dataset.update": "/v1/datasets/update",
    "agreement.propose": "/v1/agreements/propose",
    "agreement.approve": "/v1/agreements/approve",
    "agreement.revoke": "/v1/agreements/revoke",
    "agreement.build": "/v1/agreements/build",
    "query": "/v1/query",
    "screen.run": "/v1/screens/run",
    "reid.request": "/v1/reid/request",
    "reid.approve": "/v1/reid/approve",
    "reid.deny": "/v1/reid/deny",
    "reid.show": "/v1/reid/show",
    "monitor": "/v1/monitor",
    "case.set": "/v1/cases/set",
    "case.read": "/v1/cases/read",
}


class Client:
    """A synchronous httpx client on the ASGI app, in-process (the app's lifespan runs)."""

    def __init__(self, portal: Any, client: httpx.AsyncClient) -> None:
        self._portal, self._client = portal, client

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response: httpx.Response = self._portal.call(
            partial(self._client.request, method, url, **kwargs)
        )
        return response

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)


@contextmanager
def asgi_client(app: Any) -> Iterator[Client]:
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
    ):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        client = httpx.AsyncClient(transport=transport, base_url="http://custodiet.test")
        try:
            yield Client(portal, client)
        finally:
            portal.call(client.aclose)


@dataclass
class Caller:
    client: Client
    origin: str
    data: dict[str, Path] = field(default_factory=dict)

    def sign(
        self,
        name: str,
        action: str,
        args: Mapping[str, Any],
        *,
        key_of: str | None = None,
        now: dt.datetime | None = None,
        origin: str | None = None,
    ) -> SignedRequest:
        return sign_request(
            private_key(key_of or name), name, origin or self.origin, action, args, now=now
        )

    def post(self, signed: SignedRequest | Mapping[str, Any], route: str | None = None) -> Any:
        doc = signed.document() if isinstance(signed, SignedRequest) else dict(signed)
        action = doc.get("request", {}).get("action", "")
        return self.client.post(route or ROUTES[action], json=doc)

    def act(self, signer: str, action: str, /, **args: Any) -> dict[str, Any]:
        """``name``'s signed ``action``; asserts 200 and returns the JSON result."""
        response = self.post(self.sign(signer, action, args))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def entries(self) -> list[dict[str, Any]]:
        response = self.client.get("/v1/entries")
        assert response.status_code == 200
        return [json.loads(line) for line in response.text.splitlines() if line]

    def last_entry(self) -> dict[str, Any]:
        return self.entries()[-1]


@contextmanager
def served(
    root: Path, limits: Limits | None = None, workspace: Workspace | None = None
) -> Iterator[Caller]:
    """``workspace`` (else a new one under ``root``: custodians ana, ben) served in-process."""
    ws = workspace or Kit(root).init(root / "ws")
    generous = Limits(rate=10_000, burst=10_000)  # the limits have their own tests
    with asgi_client(create_app(ws.root, limits or generous)) as client:
        info = client.get("/v1/info").json()
        yield Caller(client, info["origin"])


def add_people(caller: Caller) -> None:
    """rae (reviewer) and otto (overseer), each signed by ana."""
    for name, role in (("rae", "reviewer"), ("otto", "overseer")):
        caller.act("ana", "principal.add", name=name, role=role, pubkey=public_key(name))
