"""Property: any sequence of signed actions, run through the gateway's own services, leaves the
gateway acting on exactly the state an audit replays from the ledger alone, and every decision
the gateway took is the replay's: what it allowed replays without a violation, what it refused
is on the ledger as a refusal with the same code.

Each example starts from a copy of one small workspace (custodians ana and ben, K = 2; reviewers
rae and rob; a 12-row dataset ``pay``) and runs up to nine steps drawn from: principal adds by
custodians, a second dataset, proposals by reviewers or custodians, approvals (exact or stale),
revocations and queries, each by any principal, so refusals happen too.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from custodiet.agreements.lifecycle import apply_agreement, revoke
from custodiet.agreements.model import Agreement
from custodiet.agreements.store import agreement_document
from custodiet.catalog.registry import add_dataset
from custodiet.errors import CustodietError
from custodiet.gateway.activation import approve_and_activate
from custodiet.gateway.service import run_query
from custodiet.identity import SignedRequest
from custodiet.ledger.replay import audit_entries, state_document
from custodiet.principals import add_principal
from custodiet.runtime import Runtime, opened
from custodiet.workspace import Workspace
from tests.kit import Kit, public_key

PRINCIPALS = ("ana", "ben", "rae", "rob", "cara", "ola")
AGREEMENTS = ("a1", "a2")


@dataclass(frozen=True)
class Base:
    kit: Kit
    root: Path  # the workspace every example copies
    data: Path


def write_pay(path: Path, people: int = 12) -> Path:
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT printf('%03d%02d%04d', 101 + i, 12, 1000 + i) AS tin, "
        f"CAST(100 + i AS DECIMAL(10,2)) AS amount, "
        f"CASE WHEN i % 2 = 0 THEN 'A' ELSE 'B' END AS program "
        f"FROM range({people}) r(i)) TO '{path}' (FORMAT parquet)"
    )
    con.close()
    return path


def act(
    rt: Runtime, kit: Kit, service: Callable[[Runtime, SignedRequest], Any], signer: str,
    action: str, **args: Any,
) -> Any:  # fmt: skip
    return service(rt, kit.sign(rt, signer, action, args))


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    root = tmp_path_factory.mktemp("replay-base")
    kit = Kit(root)
    ws = kit.init(root / "ws")
    data = write_pay(root / "pay.parquet")
    with opened(ws) as rt:
        for name in ("rae", "rob"):
            act(rt, kit, add_principal, "ana", "principal.add", name=name, role="reviewer",
                pubkey=public_key(name))  # fmt: skip
        act(rt, kit, add_dataset, "ana", "dataset.add", name="pay", path=str(data), classify={})
    return Base(kit, ws.root, data)


def document(agreement_id: str, reviewer: str, wide: bool) -> dict[str, Any]:
    columns = {"tin": "pseudonymize", "amount": "allow"}
    if wide:
        columns["program"] = "allow"
    raw = {
        "id": agreement_id,
        "purpose": "property test",
        "reviewer": reviewer,
        "expires": "2030-06-30",
        "mode": "pseudonymous",
        "datasets": {"pay": {"columns": columns}},
        "limits": {"max_rows": 100, "min_group_size": 2, "timeout_seconds": 30},
    }
    return agreement_document(Agreement.model_validate(raw))


names = st.sampled_from(PRINCIPALS)
agreements = st.sampled_from(AGREEMENTS)
custodians_mostly = st.sampled_from(["ana", "ben", "ana", "ben", "cara", "rae", "ola"])
reviewers_mostly = st.sampled_from(["rae", "rob", "rae", "rob", "ana"])
single_steps = st.one_of(
    st.tuples(
        st.just("principal"),
        names,
        st.sampled_from(["reviewer", "overseer", "custodian"]),
        st.sampled_from(["ana", "ben", "rae"]),
    ),
    st.tuples(st.just("dataset"), st.sampled_from(["ana", "ben", "rob"])),
    st.tuples(
        st.just("propose"), agreements, st.sampled_from(["rae", "rob"]), names, st.booleans()
    ),
    st.tuples(st.just("approve"), agreements, custodians_mostly, st.booleans()),
    st.tuples(st.just("revoke"), agreements, custodians_mostly),
    st.tuples(st.just("query"), agreements, reviewers_mostly),
).map(lambda step: [step])
# the usual way to an active version: its reviewer proposes, both custodians approve exactly
# it, and the reviewer queries
activations = st.tuples(agreements, st.sampled_from(["rae", "rob"]), st.booleans()).map(
    lambda a: [
        ("propose", a[0], a[1], a[1], a[2]),
        ("approve", a[0], "ana", True),
        ("approve", a[0], "ben", True),
        ("query", a[0], a[1]),
    ]
)
sequences = st.lists(st.one_of(activations, single_steps), min_size=1, max_size=5).map(
    lambda blocks: [step for block in blocks for step in block][:9]
)


def run_step(rt: Runtime, kit: Kit, base: Base, step: tuple[Any, ...]) -> None:
    kind = step[0]
    if kind == "principal":
        _, name, role, signer = step
        act(rt, kit, add_principal, signer, "principal.add", name=name, role=role,
            pubkey=public_key(name))  # fmt: skip
    elif kind == "dataset":
        act(rt, kit, add_dataset, step[1], "dataset.add", name="pay2", path=str(base.data),
            classify={})  # fmt: skip
    elif kind == "propose":
        _, agreement_id, reviewer, signer, wide = step
        act(rt, kit, apply_agreement, signer, "agreement.propose",
            document=document(agreement_id, reviewer, wide))  # fmt: skip
    elif kind == "approve":
        _, agreement_id, signer, exact = step
        record = rt.state.agreements.get(agreement_id)
        version, sha = (record.latest.number, record.latest.sha256) if record else (1, "0" * 64)
        act(rt, kit, approve_and_activate, signer, "agreement.approve", agreement=agreement_id,
            version=version if exact else version + 1, sha256=sha)  # fmt: skip
    elif kind == "revoke":
        act(rt, kit, revoke, step[2], "agreement.revoke", agreement=step[1])
    else:
        _, agreement_id, signer = step
        act(
            rt,
            kit,
            run_query,
            signer,
            "query",
            agreement=agreement_id,
            sql="SELECT count(*) AS n, sum(amount) AS total FROM pay",
        )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequences)
def test_signed_actions_replay_to_the_state_the_gateway_acts_on(
    base: Base, actions: list[tuple[Any, ...]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        shutil.copytree(base.root, ws.root)
        decisions: list[tuple[int, int, str | None]] = []  # entries [from, to) and refusal code
        with opened(ws) as rt:
            for step in actions:
                before, code = rt.ledger.size(), None
                try:
                    run_step(rt, base.kit, base, step)
                except CustodietError as exc:
                    code = exc.code
                decisions.append((before, rt.ledger.size(), code))
                event(f"{step[0]} {'refused ' + code if code else 'allowed'}")
            acting = state_document(rt.state)
            assert rt.violations == []
            entries = [json.loads(data) for _, data in rt.ledger.entries()]
        replayed, result = audit_entries(entries)
        assert result.violation is None, (result.violation, actions)
        assert result.unfinished == ()
        assert state_document(replayed) == acting
        with opened(ws) as again:  # from the authenticated cache, as the next command starts
            assert state_document(again.state) == acting
        for (start, end, code), step in zip(decisions, actions, strict=True):
            made = entries[start:end]
            if code is None:  # allowed: its entries replayed above, none of them a refusal
                assert all(e["action"] != "refusal" for e in made), (step, made)
                assert made or step[0] == "propose"  # only an unchanged proposal adds nothing
            else:  # refused: on the ledger as a refusal with the same code, carrying the request
                assert made and made[-1]["action"] == "refusal", (step, made)
                assert made[-1]["code"] == code and made[-1]["request"]["action"]
                assert all(e["action"] != "refusal" for e in made[:-1])
