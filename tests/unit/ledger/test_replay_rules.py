"""Replay rules that the gateway's own checks would otherwise hide: each is attacked with a
signed entry the service would never build, checked by the same rules the audit applies."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodiet import entries
from custodiet.errors import RefusedError
from custodiet.gateway.activation import rebuild
from custodiet.gateway.service import run_query
from custodiet.identity import SignedRequest
from custodiet.ledger.replay import (
    State,
    Violation,
    request_message,
    state_document,
    state_from_document,
)
from custodiet.reid import request_reid
from custodiet.runtime import Runtime, opened
from tests.gateway_data import make_world
from tests.kit import Kit, private_key


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return make_world(tmp_path_factory.mktemp("replay-rules"), people=40)


def _signed(rt: Runtime, name: str, action: str, args: dict[str, Any], **request: Any) -> Any:
    """``name``'s request with some fields replaced, signed with their own key."""
    body = {**Kit().sign(rt, name, action, args).request, **request}
    key: Ed25519PrivateKey = private_key(name)
    signature = base64.b64encode(key.sign(request_message(body))).decode()
    return SignedRequest(body, signature)


def _violation(state: State, entry: dict[str, Any], rt: Runtime) -> Violation:
    with pytest.raises(Violation) as caught:
        state.check(entry, rt.now())
    return caught.value


def test_a_request_with_a_short_nonce_is_refused(world: Any) -> None:
    with opened(world.ws) as rt:
        signed = _signed(
            rt, "rev", "query", {"agreement": "ssa-deceased", "sql": "SELECT 1"}, nonce="abc"
        )
        with pytest.raises(RefusedError) as caught:
            run_query(rt, signed)
    assert caught.value.code == "CUST504"


def test_a_reviewer_cannot_have_a_projection_rebuilt(world: Any) -> None:
    with opened(world.ws) as rt:
        signed = Kit().sign(rt, "rev", "agreement.build", {"agreement": "ssa-deceased"})
        with pytest.raises(RefusedError) as caught:
            rebuild(rt, signed)
    assert caught.value.code == "CUST318"


def _token(rt: Runtime) -> str:
    sql = "SELECT payee_tin FROM payments WHERE payee_tin IS NOT NULL LIMIT 1"
    rows = run_query(rt, Kit().sign(rt, "rev", "query", {"agreement": "ssa-deceased", "sql": sql}))
    return str(rows.rows[0][0])


def test_a_denial_without_a_reason_breaks_a_rule(world: Any) -> None:
    with opened(world.ws) as rt:
        args = {"agreement": "ssa-deceased", "tokens": [_token(rt)], "fields": ["name"],
                "reason": "check"}  # fmt: skip
        filed = request_reid(rt, Kit().sign(rt, "rev", "reid.request", args))
        for reason in ("", "   ", None):
            signed = Kit().sign(rt, "cust1", "reid.deny", {"request": filed.id, "reason": reason})
            entry = entries.action(signed, request_id=filed.id)
            assert _violation(rt.state, entry, rt).code == "CUST402"


def test_a_reid_request_without_fields_or_reason_breaks_a_rule(world: Any) -> None:
    with opened(world.ws) as rt:
        token = _token(rt)
        for fields, reason in ((["name"], ""), ([], "why"), (None, "why")):
            args = {"agreement": "ssa-deceased", "tokens": [token], "fields": fields,
                    "reason": reason}  # fmt: skip
            entry = entries.action(Kit().sign(rt, "rev", "reid.request", args))
            violation = _violation(rt.state, entry, rt)
            assert violation.code == "CUST514"
            assert violation.rule == "a request names its fields and a reason"


def test_a_revocation_survives_the_state_cache(tmp_path: Path) -> None:
    world = make_world(tmp_path, people=20)
    kit = Kit(tmp_path)
    from custodiet.agreements.lifecycle import revoke

    kit.call(world.ws, revoke, "cust1", "agreement.revoke", agreement="ssa-deceased")
    with opened(world.ws) as rt:
        through = rt.state.agreements["ssa-deceased"].revoked_through
        copied = state_from_document(state_document(rt.state))
    assert through == 1
    assert copied.agreements["ssa-deceased"].revoked_through == 1
    with opened(world.ws) as rt:  # the cache written above is what this runtime starts from
        assert rt.state.agreements["ssa-deceased"].revoked_through == 1
