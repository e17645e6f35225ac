"""``GET /v1/audit``: the governance replay's verdict up to the served checkpoint, the same as
``custodiet ledger audit`` gives, computed once per checkpoint size."""

from __future__ import annotations

import json
from pathlib import Path

from custodiet.api.app import create_app
from custodiet.api.limits import Limits
from custodiet.ledger.replay import audit_entries
from tests.api.world import Caller, add_people, asgi_client
from tests.kit import Kit


def test_the_verdict_is_the_replays_and_is_computed_once_per_checkpoint(tmp_path: Path) -> None:
    ws = Kit(tmp_path).init(tmp_path / "ws")
    app = create_app(ws.root, Limits(rate=10_000, burst=10_000))
    with asgi_client(app) as client:
        caller = Caller(client, client.get("/v1/info").json()["origin"])
        add_people(caller)
        size = len(caller.entries())
        first = client.get("/v1/audit")
        assert first.status_code == 200
        assert first.json() == {
            "checkpoint_size": size,
            "verdict": "ok",
            "violation": None,
            "unfinished": [],
            "replayed_by": "custodiet ledger audit (src/custodiet/ledger/replay.py)",
        }
        cache = app.state.audit
        assert cache.replayed == size
        assert client.get("/v1/audit").json() == first.json()
        assert cache.replayed == size  # the same checkpoint: not replayed again
        # an entry no principal signed, written past the gateway (what a forger with the
        # store's credentials could do)
        ledger = app.state.server.runtime.ledger
        forged = ledger.append({"action": "agreement.approve", "actor": "otto", "agreement": "x"})
        verdict = client.get("/v1/audit").json()
        entries = [json.loads(data) for _, data in ledger.entries()]
        _, expected = audit_entries(entries)
        assert expected.violation is not None
        index, code, rule = expected.violation
        assert index == forged == size
        assert verdict["checkpoint_size"] == size + 1 and verdict["verdict"] == "violation"
        assert verdict["violation"] == {"index": index, "code": code, "rule": rule}
        assert cache.replayed == size + 1  # only the new entry was replayed
        assert client.get("/v1/audit").json() == verdict  # a violation is final
