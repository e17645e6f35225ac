"""docs/openapi.json is what the app serves: a test fails when it is stale."""

from __future__ import annotations

import json
from pathlib import Path

from custodiet.api.openapi import openapi_text

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_committed_openapi_matches_the_app() -> None:
    assert DOC.read_text(encoding="utf-8") == openapi_text(), (
        "docs/openapi.json is stale: regenerate it with"
        " `.venv/bin/python -m custodiet.api.openapi > docs/openapi.json`"
    )


def test_every_action_route_takes_a_signed_request_and_documents_its_errors() -> None:
    schema = json.loads(DOC.read_text(encoding="utf-8"))
    posts = {path: ops["post"] for path, ops in schema["paths"].items() if "post" in ops}
    assert len(posts) == 17
    for path, operation in posts.items():
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        assert body["required"] == ["request", "signature"], path
        assert {"400", "401", "403", "404", "409", "413", "429", "500"} <= set(
            operation["responses"]
        ), path
    for ops in schema["paths"].values():
        for operation in ops.values():
            assert "422" not in operation["responses"]
