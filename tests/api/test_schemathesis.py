"""Schemathesis against the committed OpenAPI document (the staleness test keeps it equal to
the app's): no server errors, no response outside the schema, no action reachable unsigned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from custodiet.api.app import create_app
from custodiet.api.limits import Limits
from tests.kit import Kit

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _operations(tmp_path: Path) -> list[Any]:
    ws = Kit(tmp_path).init(tmp_path / "ws")
    app = create_app(ws.root, Limits(rate=1e6, burst=1e6))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def test_api_holds_its_schema_and_acts_only_on_signatures(tmp_path: Path) -> None:
    operations = _operations(tmp_path)
    assert len(operations) == 30
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=8,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def holds(case: Any) -> None:
            response = case.call()
            case.validate_response(response, checks=CHECKS)
            if case.method.upper() == "POST":  # no signature it generates verifies
                assert response.status_code != 200, response.text
                assert response.json()["error"]["status"] == response.status_code

        holds()
