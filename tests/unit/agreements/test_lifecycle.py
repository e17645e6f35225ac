from __future__ import annotations

import hashlib
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from custodiet.agreements import lifecycle
from custodiet.agreements.lifecycle import (
    AgreementVersion,
    ApprovalStatus,
    active_agreement,
    list_agreements,
    require_active,
    show_agreement,
)
from custodiet.agreements.load import load_agreement
from custodiet.agreements.store import agreement_document
from custodiet.errors import InputError, RefusedError
from custodiet.ledger.replay import State
from custodiet.runtime import opened
from custodiet.workspace import Workspace
from tests.catalog_data import (
    ledger_entries,
    registered_workspace,
    write_agreement,
)
from tests.kit import Kit

ID = "ssa-deceased-payees"
FUTURE = "2099-12-31"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return registered_workspace(tmp_path_factory.mktemp("lifecycle")).root


@pytest.fixture
def ws(template: Path, tmp_path: Path) -> Workspace:
    return Workspace(Path(shutil.copytree(template, tmp_path / "ws")))


KIT = Kit()  # signs in memory as any name


@pytest.fixture
def yaml_path(tmp_path: Path) -> Path:
    return write_agreement(tmp_path / "a.yaml", expires=FUTURE)


def state(ws: Workspace) -> State:
    return KIT.state(ws)


def apply_agreement(ws: Workspace, path: Path, by: str) -> AgreementVersion:
    """``by`` proposes the agreement file (signed)."""
    result: AgreementVersion = KIT.apply(ws, path, by)
    return result


def approve(
    ws: Workspace,
    agreement_id: str,
    by: str,
    version: int | None = None,
    sha256: str | None = None,
    now: datetime | None = None,
) -> ApprovalStatus:
    """``by``'s signed approval of exactly the pending version (or of ``version``/``sha256``),
    at ``now`` (the runtime's clock and the request's time)."""
    with opened(ws) as rt:
        if now is not None:
            rt.now = lambda: now  # type: ignore[method-assign]
        record = rt.state.agreements.get(agreement_id)
        args = {
            "agreement": agreement_id,
            "version": version if version is not None else (record.latest.number if record else 1),
            "sha256": sha256 if sha256 is not None else (record.latest.sha256 if record else ""),
        }
        return lifecycle.approve(rt, KIT.sign(rt, by, "agreement.approve", args, now=now))


def revoke(ws: Workspace, agreement_id: str, by: str) -> AgreementVersion:
    return KIT.call(ws, lifecycle.revoke, by, "agreement.revoke", agreement=agreement_id)


def last_entry(ws: Workspace) -> dict[str, Any]:
    return ledger_entries(ws)[-1]


def refusal(call: Any, *args: Any, **kwargs: Any) -> RefusedError:
    with pytest.raises(RefusedError) as caught:
        call(*args, **kwargs)
    assert caught.value.exit_status == 3
    return caught.value


def assert_refusal_recorded(ws: Workspace, error: RefusedError, attempted: str) -> None:
    entry = last_entry(ws)
    assert entry["action"] == "refusal"
    assert entry["reason"] == error.rule
    assert entry["code"] == error.code
    assert entry["attempted"] == attempted


def approved(ws: Workspace, yaml_path: Path) -> None:
    """Proposed by bob (its reviewer), approved by alice and carol (K = 2)."""
    apply_agreement(ws, yaml_path, "bob")
    approve(ws, ID, "alice")
    approve(ws, ID, "carol")


def test_apply_creates_version_one_and_records_it(ws: Workspace, yaml_path: Path) -> None:
    result = apply_agreement(ws, yaml_path, "alice")
    assert (result.id, result.version, result.is_new) == (ID, 1, True)
    entry = last_entry(ws)
    assert entry["action"] == "agreement.propose"
    assert (entry["agreement"], entry["agreement_version"]) == (ID, 1)
    assert entry["agreement_sha256"] == result.sha256


def test_sha256_is_of_the_canonical_json_of_the_validated_agreement(
    ws: Workspace, yaml_path: Path
) -> None:
    result = apply_agreement(ws, yaml_path, "alice")
    document = show_agreement(state(ws), ID).document
    assert document["datasets"]["deaths"]["columns"]["date_of_birth"] == "generalize:year"
    assert document["expires"] == FUTURE
    assert result.sha256 == hashlib.sha256(rfc8785.dumps(document)).hexdigest()
    assert document == agreement_document(load_agreement(yaml_path))


def test_identical_content_makes_no_new_version(ws: Workspace, yaml_path: Path) -> None:
    first = apply_agreement(ws, yaml_path, "alice")
    size = len(ledger_entries(ws))
    reordered = yaml_path.parent / "b.yaml"
    reordered.write_text("# same agreement, keys reordered\n" + yaml_path.read_text())
    again = apply_agreement(ws, reordered, "bob")
    assert (again.version, again.sha256, again.is_new) == (1, first.sha256, False)
    assert len(ledger_entries(ws)) == size


def test_changed_agreement_is_a_new_version_that_needs_fresh_approvals(
    ws: Workspace, yaml_path: Path
) -> None:
    approved(ws, yaml_path)
    assert require_active(state(ws), ID, "bob").version == 1
    changed = write_agreement(yaml_path.parent / "c.yaml", expires=FUTURE, **{"11": "20"})
    assert apply_agreement(ws, changed, "bob").version == 2
    # v1's approvals do not carry over: v1 stays the active version until v2 has its own K
    pending = show_agreement(state(ws), ID)
    assert (pending.version, pending.status, pending.approvals) == (2, "pending", ())
    assert pending.active_version == 1
    assert require_active(state(ws), ID, "bob").agreement.limits.min_group_size == 11
    assert approve(ws, ID, "alice").active is False
    assert require_active(state(ws), ID, "bob").version == 1
    status = approve(ws, ID, "carol")
    assert (status.version, status.approvals, status.active) == (2, 2, True)
    assert require_active(state(ws), ID, "bob").agreement.limits.min_group_size == 20


def test_reviewer_may_propose_but_overseer_may_not(ws: Workspace, yaml_path: Path) -> None:
    error = refusal(apply_agreement, ws, yaml_path, "olga")
    assert "may not propose" in error.rule
    assert_refusal_recorded(ws, error, "agreement.propose")
    assert apply_agreement(ws, yaml_path, "bob").version == 1


def test_unknown_actor_is_refused_and_recorded(ws: Workspace, yaml_path: Path) -> None:
    error = refusal(apply_agreement, ws, yaml_path, "mallory")
    assert error.rule == "unknown principal 'mallory'"
    assert_refusal_recorded(ws, error, "agreement.propose")


def test_reviewer_must_be_a_registered_reviewer(ws: Workspace, tmp_path: Path) -> None:
    path = write_agreement(
        tmp_path / "x.yaml", expires=FUTURE, **{"reviewer: bob": "reviewer: carol"}
    )
    error = refusal(apply_agreement, ws, path, "alice")
    assert (error.rule, error.code) == ("'carol' is not a registered reviewer", "CUST249")
    assert_refusal_recorded(ws, error, "agreement.propose")


def test_unapproved_and_half_approved_are_refused(ws: Workspace, yaml_path: Path) -> None:
    apply_agreement(ws, yaml_path, "bob")
    assert "(0 of 2 approvals)" in refusal(require_active, state(ws), ID, "bob").rule
    status = approve(ws, ID, "alice")
    assert (status.approvals, status.required, status.active) == (1, 2, False)
    assert refusal(require_active, state(ws), ID, "bob").rule == (
        f"agreement '{ID}' is not approved (1 of 2 approvals)"
    )


def test_two_distinct_custodians_make_it_active(ws: Workspace, yaml_path: Path) -> None:
    approved(ws, yaml_path)
    active = require_active(state(ws), ID, "bob")
    assert (active.agreement.id, active.version) == (ID, 1)
    entry = last_entry(ws)
    assert (entry["action"], entry["approvals"], entry["active"]) == ("agreement.approve", 2, True)


def test_double_approval_is_refused_and_counts_once(ws: Workspace, yaml_path: Path) -> None:
    apply_agreement(ws, yaml_path, "bob")
    approve(ws, ID, "alice")
    error = refusal(approve, ws, ID, "alice")
    assert "already approved" in error.rule
    assert_refusal_recorded(ws, error, "agreement.approve")
    assert show_agreement(state(ws), ID).approvals == ("alice",)


def test_reviewer_cannot_approve_own_agreement(ws: Workspace, yaml_path: Path) -> None:
    apply_agreement(ws, yaml_path, "bob")
    error = refusal(approve, ws, ID, "bob")
    assert (
        error.rule == f"principal 'bob' is the reviewer of agreement '{ID}' and may not approve it"
    )
    assert_refusal_recorded(ws, error, "agreement.approve")


def test_only_custodians_approve(ws: Workspace, yaml_path: Path) -> None:
    apply_agreement(ws, yaml_path, "alice")
    error = refusal(approve, ws, ID, "olga")
    assert error.rule == "principal 'olga' is a overseer; only custodians approve"
    assert error.code == "CUST318"
    assert_refusal_recorded(ws, error, "agreement.approve")


def test_expiry_is_checked_at_execution_time(ws: Workspace, yaml_path: Path) -> None:
    approved(ws, yaml_path)
    last_day = datetime(2099, 12, 31, 23, 59, tzinfo=UTC)
    assert require_active(state(ws), ID, "bob", now=last_day).version == 1
    error = refusal(require_active, state(ws), ID, "bob", now=datetime(2100, 1, 1, tzinfo=UTC))
    assert error.rule == f"agreement '{ID}' expired on {FUTURE}"


def test_expired_agreement_cannot_be_approved(ws: Workspace, tmp_path: Path) -> None:
    """A version proposed in time but approved after its expiry is refused at approval."""
    apply_agreement(ws, write_agreement(tmp_path / "old.yaml", expires="2098-12-31"), "bob")
    later = datetime(2099, 1, 1, 12, tzinfo=UTC)
    error = refusal(approve, ws, ID, "alice", now=later)
    assert error.rule == f"agreement '{ID}' expired on 2098-12-31"
    assert_refusal_recorded(ws, error, "agreement.approve")
    assert show_agreement(state(ws), ID).approvals == ()


def test_an_expired_agreement_cannot_be_proposed(ws: Workspace, tmp_path: Path) -> None:
    error = refusal(
        apply_agreement, ws, write_agreement(tmp_path / "old.yaml", expires="2020-01-01"), "bob"
    )
    assert (error.rule, error.code) == (f"agreement '{ID}' expired on 2020-01-01", "CUST314")
    assert_refusal_recorded(ws, error, "agreement.propose")


def test_revocation_takes_effect_at_once(ws: Workspace, yaml_path: Path) -> None:
    approved(ws, yaml_path)
    require_active(state(ws), ID, "bob")
    revoke(ws, ID, "carol")
    assert last_entry(ws)["action"] == "agreement.revoke"
    assert refusal(require_active, state(ws), ID, "bob").rule == f"agreement '{ID}' was revoked"
    assert refusal(approve, ws, ID, "alice").rule == f"agreement '{ID}' was revoked"
    assert [a.status for a in list_agreements(state(ws))] == ["revoked"]


def test_only_custodians_revoke_and_only_once(ws: Workspace, yaml_path: Path) -> None:
    approved(ws, yaml_path)
    error = refusal(revoke, ws, ID, "bob")
    assert_refusal_recorded(ws, error, "agreement.revoke")
    revoke(ws, ID, "alice")
    error = refusal(revoke, ws, ID, "carol")
    assert "already revoked" in error.rule
    assert_refusal_recorded(ws, error, "agreement.revoke")


def test_wrong_principal_is_refused(ws: Workspace, yaml_path: Path) -> None:
    approved(ws, yaml_path)
    error = refusal(require_active, state(ws), ID, "alice")
    assert error.rule == f"principal 'alice' is not the reviewer of agreement '{ID}'"


def test_unknown_agreement_is_refused(ws: Workspace) -> None:
    assert refusal(require_active, state(ws), "nope", "bob").rule == "unknown agreement 'nope'"
    with pytest.raises(InputError) as caught:  # an unknown id on approve is exit 2 (CUST250)
        approve(ws, "nope", "alice")
    assert (caught.value.exit_status, caught.value.code) == (2, "CUST250")
    entry = last_entry(ws)
    assert (entry["action"], entry["decision"], entry["attempted"]) == (
        "refusal",
        "malformed",
        "agreement.approve",
    )
    assert (entry["reason"], entry["code"]) == ("unknown agreement 'nope'", "CUST250")


def test_require_active_writes_nothing_to_the_ledger(ws: Workspace, yaml_path: Path) -> None:
    apply_agreement(ws, yaml_path, "alice")
    size = len(ledger_entries(ws))
    refusal(require_active, state(ws), ID, "bob")
    refusal(require_active, state(ws), ID, "alice")
    assert len(ledger_entries(ws)) == size


def test_active_agreement_ignores_who_asks_but_not_approvals(
    ws: Workspace, yaml_path: Path
) -> None:
    apply_agreement(ws, yaml_path, "bob")
    refusal(active_agreement, state(ws), ID)
    approve(ws, ID, "alice")
    approve(ws, ID, "carol")
    assert active_agreement(state(ws), ID).sha256 == require_active(state(ws), ID, "bob").sha256


def test_show_of_unknown_agreement_is_an_input_error(ws: Workspace) -> None:
    with pytest.raises(InputError, match="unknown agreement 'nope'"):
        show_agreement(state(ws), "nope")


def test_concurrent_approvals_by_one_custodian_count_once(ws: Workspace, yaml_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    apply_agreement(ws, yaml_path, "bob")

    def attempt(_: int) -> str:
        try:
            approve(ws, ID, "alice")
        except RefusedError:
            return "refused"
        return "approved"

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = sorted(pool.map(attempt, range(6)))
    assert outcomes == ["approved"] + ["refused"] * 5
    assert show_agreement(state(ws), ID).approvals == ("alice",)
    actions = [e["action"] for e in ledger_entries(ws)]
    assert (actions.count("agreement.approve"), actions.count("refusal")) == (1, 5)


# --- rules the signed-request governance added ---------------------------------------------------


def test_one_approval_is_never_enough(ws: Workspace, tmp_path: Path) -> None:
    """`approvals_required: 1` used to activate with one approval; the workspace's K (2) is a
    floor no agreement can lower, so such a version is refused when proposed."""
    path = write_agreement(
        tmp_path / "one.yaml", expires=FUTURE, **{"approvals_required: 2": "approvals_required: 1"}
    )
    error = refusal(apply_agreement, ws, path, "bob")
    assert error.code == "CUST522"
    assert error.rule == "approvals_required must be at least the workspace's 2"
    assert_refusal_recorded(ws, error, "agreement.propose")
    assert ID not in state(ws).agreements


def test_the_proposer_is_not_one_of_the_approvers(ws: Workspace, yaml_path: Path) -> None:
    apply_agreement(ws, yaml_path, "alice")
    error = refusal(approve, ws, ID, "alice")
    assert error.code == "CUST523"
    assert error.rule == f"principal 'alice' proposed agreement '{ID}' v1 and may not approve it"
    assert_refusal_recorded(ws, error, "agreement.approve")
    assert approve(ws, ID, "carol").approvals == 1  # the other custodian's still counts


def test_an_approval_names_exactly_the_pending_version_and_content(
    ws: Workspace, yaml_path: Path
) -> None:
    first = apply_agreement(ws, yaml_path, "bob")
    error = refusal(approve, ws, ID, "alice", sha256="0" * 64)
    assert error.code == "CUST524"
    assert_refusal_recorded(ws, error, "agreement.approve")
    changed = write_agreement(yaml_path.parent / "c.yaml", expires=FUTURE, **{"11": "20"})
    assert apply_agreement(ws, changed, "bob").version == 2
    # an approval of what was reviewed before v2 arrived does not carry over to v2
    stale = refusal(approve, ws, ID, "alice", version=1, sha256=first.sha256)
    assert stale.code == "CUST524"
    assert show_agreement(state(ws), ID).approvals == ()


def test_only_its_reviewer_proposes_later_versions(ws: Workspace, yaml_path: Path) -> None:
    """A custodian could once propose v2 of anyone's agreement; now only its reviewer can."""
    approved(ws, yaml_path)
    changed = write_agreement(yaml_path.parent / "c.yaml", expires=FUTURE, **{"11": "20"})
    error = refusal(apply_agreement, ws, changed, "alice")
    assert error.code == "CUST312"
    assert "own reviewer ('bob')" in error.rule
    assert_refusal_recorded(ws, error, "agreement.propose")
    assert require_active(state(ws), ID, "bob").version == 1


def test_a_change_of_reviewer_is_a_new_agreement(ws: Workspace, yaml_path: Path) -> None:
    approved(ws, yaml_path)
    KIT.add_principal(ws, "dave", "reviewer", by=("alice",))
    moved = write_agreement(
        yaml_path.parent / "d.yaml", expires=FUTURE, **{"reviewer: bob": "reviewer: dave"}
    )
    error = refusal(apply_agreement, ws, moved, "bob")
    assert error.code == "CUST521"
    assert_refusal_recorded(ws, error, "agreement.propose")
