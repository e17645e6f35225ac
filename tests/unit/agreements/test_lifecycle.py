from __future__ import annotations

import hashlib
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from custodiet.agreements.lifecycle import (
    active_agreement,
    apply_agreement,
    approve,
    list_agreements,
    require_active,
    revoke,
    show_agreement,
)
from custodiet.agreements.load import load_agreement
from custodiet.agreements.store import agreement_document
from custodiet.errors import InputError, RefusedError
from custodiet.workspace import Workspace
from tests.catalog_data import (
    ledger_entries,
    registered_workspace,
    write_agreement,
)

ID = "ssa-deceased-payees"
FUTURE = "2099-12-31"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return registered_workspace(tmp_path_factory.mktemp("lifecycle")).root


@pytest.fixture
def ws(template: Path, tmp_path: Path) -> Workspace:
    return Workspace(Path(shutil.copytree(template, tmp_path / "ws")))


@pytest.fixture
def yaml_path(tmp_path: Path) -> Path:
    return write_agreement(tmp_path / "a.yaml", expires=FUTURE)


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
    assert entry["attempted"] == attempted


def approved(ws: Workspace, yaml_path: Path) -> None:
    apply_agreement(ws, yaml_path, "alice")
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
    document = show_agreement(ws, ID).document
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
    assert require_active(ws, ID, "bob").version == 1
    changed = write_agreement(yaml_path.parent / "c.yaml", expires=FUTURE, **{"11": "20"})
    assert apply_agreement(ws, changed, "bob").version == 2
    error = refusal(require_active, ws, ID, "bob")
    assert error.rule == f"agreement '{ID}' is not approved (0 of 2 approvals)"
    approve(ws, ID, "alice")
    status = approve(ws, ID, "carol")
    assert (status.version, status.approvals, status.active) == (2, 2, True)
    assert require_active(ws, ID, "bob").agreement.limits.min_group_size == 20


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
    with pytest.raises(InputError, match=r"x\.yaml:3: reviewer: 'carol' is not a registered"):
        apply_agreement(ws, path, "alice")


def test_unapproved_and_half_approved_are_refused(ws: Workspace, yaml_path: Path) -> None:
    apply_agreement(ws, yaml_path, "alice")
    assert "(0 of 2 approvals)" in refusal(require_active, ws, ID, "bob").rule
    status = approve(ws, ID, "alice")
    assert (status.approvals, status.required, status.active) == (1, 2, False)
    assert refusal(require_active, ws, ID, "bob").rule == (
        f"agreement '{ID}' is not approved (1 of 2 approvals)"
    )


def test_two_distinct_custodians_make_it_active(ws: Workspace, yaml_path: Path) -> None:
    approved(ws, yaml_path)
    active = require_active(ws, ID, "bob")
    assert (active.agreement.id, active.version) == (ID, 1)
    entry = last_entry(ws)
    assert (entry["action"], entry["approvals"], entry["active"]) == ("agreement.approve", 2, True)


def test_double_approval_is_refused_and_counts_once(ws: Workspace, yaml_path: Path) -> None:
    apply_agreement(ws, yaml_path, "alice")
    approve(ws, ID, "alice")
    error = refusal(approve, ws, ID, "alice")
    assert "already approved" in error.rule
    assert_refusal_recorded(ws, error, "agreement.approve")
    assert show_agreement(ws, ID).approvals == ("alice",)


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
    assert "not a custodian" in error.rule
    assert_refusal_recorded(ws, error, "agreement.approve")


def test_expiry_is_checked_at_execution_time(ws: Workspace, yaml_path: Path) -> None:
    approved(ws, yaml_path)
    last_day = datetime(2099, 12, 31, 23, 59, tzinfo=UTC)
    assert require_active(ws, ID, "bob", now=last_day).version == 1
    error = refusal(require_active, ws, ID, "bob", now=datetime(2100, 1, 1, tzinfo=UTC))
    assert error.rule == f"agreement '{ID}' expired on {FUTURE}"


def test_expired_agreement_cannot_be_approved(ws: Workspace, tmp_path: Path) -> None:
    apply_agreement(ws, write_agreement(tmp_path / "old.yaml", expires="2020-01-01"), "alice")
    error = refusal(approve, ws, ID, "alice")
    assert error.rule == f"agreement '{ID}' expired on 2020-01-01"
    assert_refusal_recorded(ws, error, "agreement.approve")


def test_revocation_takes_effect_at_once(ws: Workspace, yaml_path: Path) -> None:
    approved(ws, yaml_path)
    require_active(ws, ID, "bob")
    revoke(ws, ID, "carol")
    assert last_entry(ws)["action"] == "agreement.revoke"
    assert refusal(require_active, ws, ID, "bob").rule == f"agreement '{ID}' was revoked"
    assert refusal(approve, ws, ID, "alice").rule == f"agreement '{ID}' was revoked"
    assert [a.status for a in list_agreements(ws)] == ["revoked"]


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
    error = refusal(require_active, ws, ID, "alice")
    assert error.rule == f"principal 'alice' is not the reviewer of agreement '{ID}'"


def test_unknown_agreement_is_refused(ws: Workspace) -> None:
    assert refusal(require_active, ws, "nope", "bob").rule == "unknown agreement 'nope'"
    error = refusal(approve, ws, "nope", "alice")
    assert_refusal_recorded(ws, error, "agreement.approve")


def test_require_active_writes_nothing_to_the_ledger(ws: Workspace, yaml_path: Path) -> None:
    apply_agreement(ws, yaml_path, "alice")
    size = len(ledger_entries(ws))
    refusal(require_active, ws, ID, "bob")
    refusal(require_active, ws, ID, "alice")
    assert len(ledger_entries(ws)) == size


def test_active_agreement_ignores_who_asks_but_not_approvals(
    ws: Workspace, yaml_path: Path
) -> None:
    apply_agreement(ws, yaml_path, "alice")
    refusal(active_agreement, ws, ID)
    approve(ws, ID, "alice")
    approve(ws, ID, "carol")
    assert active_agreement(ws, ID).sha256 == require_active(ws, ID, "bob").sha256


def test_show_of_unknown_agreement_is_an_input_error(ws: Workspace) -> None:
    with pytest.raises(InputError, match="unknown agreement 'nope'"):
        show_agreement(ws, "nope")


def test_concurrent_approvals_by_one_custodian_count_once(ws: Workspace, yaml_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    apply_agreement(ws, yaml_path, "alice")

    def attempt(_: int) -> str:
        try:
            approve(ws, ID, "alice")
        except RefusedError:
            return "refused"
        return "approved"

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = sorted(pool.map(attempt, range(6)))
    assert outcomes == ["approved"] + ["refused"] * 5
    assert show_agreement(ws, ID).approvals == ("alice",)
    actions = [e["action"] for e in ledger_entries(ws)]
    assert (actions.count("agreement.approve"), actions.count("refusal")) == (1, 5)
