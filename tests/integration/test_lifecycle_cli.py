"""The agreement lifecycle through the real CLI: every refusal exits 3 and is on the ledger."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from custodiet.workspace import Workspace
from tests.catalog_data import (
    ledger_entries,
    registered_workspace,
    write_agreement,
    write_table,
)
from tests.conftest import CliResult, run_cli
from tests.kit import Kit, public_key

ID = "ssa-deceased-payees"
FUTURE = "2099-12-31"
COUNT = "SELECT count(*) AS n FROM payments"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return registered_workspace(tmp_path_factory.mktemp("lifecycle-cli")).root


@pytest.fixture
def ws(template: Path, tmp_path: Path) -> Workspace:
    return Workspace(Path(shutil.copytree(template, tmp_path / "ws")))


@pytest.fixture
def kit(tmp_path: Path) -> Kit:
    return Kit(tmp_path)


def cli(ws: Workspace, *args: str) -> CliResult:
    return run_cli(*args, "--workspace", str(ws.root))


def proposed(ws: Workspace, kit: Kit, tmp_path: Path) -> None:
    """bob (the reviewer the agreement names) proposes v1; alice and carol may approve it."""
    kit.apply(ws, write_agreement(tmp_path / "a.yaml", expires=FUTURE), by="bob")


def approve_args(ws: Workspace, kit: Kit, name: str) -> list[str]:
    """`agreement approve ID --version N --sha256 HEX` of the pending version, as ``name``."""
    latest = kit.state(ws).agreements[ID].latest
    return ["agreement", "approve", ID, "--version", str(latest.number),
            "--sha256", latest.sha256, *kit.as_(name)]  # fmt: skip


def assert_refused(ws: Workspace, result: CliResult, rule: str) -> dict[str, Any]:
    """Exit 3, one `refused:` line naming the rule, and a refusal entry with that reason."""
    assert result.status == 3, result.stderr
    assert result.stderr.splitlines()[0] == f"refused: {rule}"
    assert "Traceback" not in result.stderr
    entry = ledger_entries(ws)[-1]
    assert (entry["action"], entry["reason"]) == ("refusal", rule)
    return entry


def test_unapproved_agreement_is_refused(ws: Workspace, kit: Kit, tmp_path: Path) -> None:
    proposed(ws, kit, tmp_path)
    result = cli(ws, "query", "--agreement", ID, *kit.as_("bob"), COUNT)
    entry = assert_refused(ws, result, f"agreement '{ID}' is not approved (0 of 2 approvals)")
    assert entry["actor"] == "bob"
    assert entry["request"]["principal"] == "bob" and entry["signature"]


def test_half_approved_agreement_is_refused(ws: Workspace, kit: Kit, tmp_path: Path) -> None:
    proposed(ws, kit, tmp_path)
    approved = cli(ws, *approve_args(ws, kit, "alice"))
    assert approved.status == 0, approved.stderr
    assert "1 of 2 approvals" in approved.stdout
    assert ledger_entries(ws)[-1]["action"] == "agreement.approve"
    result = cli(ws, "query", "--agreement", ID, *kit.as_("bob"), COUNT)
    assert_refused(ws, result, f"agreement '{ID}' is not approved (1 of 2 approvals)")


def test_self_approval_is_refused(ws: Workspace, kit: Kit, tmp_path: Path) -> None:
    proposed(ws, kit, tmp_path)
    result = cli(ws, *approve_args(ws, kit, "bob"))
    entry = assert_refused(
        ws, result, f"principal 'bob' is the reviewer of agreement '{ID}' and may not approve it"
    )
    assert (entry["attempted"], entry["code"]) == ("agreement.approve", "CUST319")


def test_proposer_may_not_approve_their_own_version(
    ws: Workspace, kit: Kit, tmp_path: Path
) -> None:
    """A custodian who proposes a version is not one of the K who approve it."""
    kit.apply(ws, write_agreement(tmp_path / "a.yaml", expires=FUTURE), by="alice")
    result = cli(ws, *approve_args(ws, kit, "alice"))
    entry = assert_refused(
        ws, result, f"principal 'alice' proposed agreement '{ID}' v1 and may not approve it"
    )
    assert entry["code"] == "CUST523"


def test_double_approval_is_refused(ws: Workspace, kit: Kit, tmp_path: Path) -> None:
    proposed(ws, kit, tmp_path)
    kit.approve(ws, ID, "alice")
    result = cli(ws, *approve_args(ws, kit, "alice"))
    assert_refused(
        ws,
        result,
        f"principal 'alice' already approved agreement '{ID}' v1; an approval counts once",
    )


def test_approval_of_another_version_or_content_is_refused(
    ws: Workspace, kit: Kit, tmp_path: Path
) -> None:
    """An approval names exactly the version and sha256 the custodian reviewed."""
    proposed(ws, kit, tmp_path)
    args = approve_args(ws, kit, "alice")
    wrong_sha = [*args[:6], "0" * 64, *args[7:]]
    result = cli(ws, *wrong_sha)
    assert result.status == 3, result.stderr
    assert ledger_entries(ws)[-1]["code"] == "CUST524"
    wrong_version = [*args[:4], "2", *args[5:]]
    result = cli(ws, *wrong_version)
    assert result.status == 3 and ledger_entries(ws)[-1]["code"] == "CUST524"
    assert kit.state(ws).agreements[ID].latest.approvals == []


def test_expired_agreement_is_refused(ws: Workspace, kit: Kit, tmp_path: Path) -> None:
    """An agreement that has already expired cannot even be proposed (so never approved)."""
    path = write_agreement(tmp_path / "a.yaml", expires="2020-01-01")
    result = cli(ws, "agreement", "apply", str(path), *kit.as_("bob"))
    assert_refused(ws, result, f"agreement '{ID}' expired on 2020-01-01")
    assert ID not in kit.state(ws).agreements


def test_second_approval_activates_and_builds_the_projection(
    ws: Workspace, kit: Kit, tmp_path: Path
) -> None:
    proposed(ws, kit, tmp_path)
    kit.approve(ws, ID, "alice")
    result = cli(ws, *approve_args(ws, kit, "carol"))
    assert result.status == 0, result.stderr
    assert "2 of 2 approvals; active" in result.stdout
    assert list(ws.projections_dir.glob(f"{ID}-v1-*.duckdb"))
    assert ledger_entries(ws)[-1]["action"] == "projection.build"


def test_wrong_principal_and_revoked_agreement_are_refused(
    ws: Workspace, kit: Kit, tmp_path: Path
) -> None:
    proposed(ws, kit, tmp_path)
    kit.approve_all(ws, ID, by=("alice", "carol"))
    result = cli(ws, "query", "--agreement", ID, *kit.as_("carol"), COUNT)
    assert_refused(ws, result, f"principal 'carol' is not the reviewer of agreement '{ID}'")
    revoked = cli(ws, "agreement", "revoke", ID, *kit.as_("alice"))
    assert revoked.status == 0, revoked.stderr
    assert ledger_entries(ws)[-1]["action"] == "agreement.revoke"
    result = cli(ws, "query", "--agreement", ID, *kit.as_("bob"), COUNT)
    assert_refused(ws, result, f"agreement '{ID}' was revoked")


def test_a_request_signed_with_another_key_is_refused(
    ws: Workspace, kit: Kit, tmp_path: Path
) -> None:
    """--as names who acts; only that principal's own key proves it."""
    proposed(ws, kit, tmp_path)
    kit.approve_all(ws, ID, by=("alice", "carol"))
    forged = ["--as", "bob", "--key", str(kit.key_file("mallory"))]
    result = cli(ws, "query", "--agreement", ID, *forged, COUNT)
    assert_refused(ws, result, "the signature does not verify under the key registered for 'bob'")


def test_apply_reports_yaml_errors_with_file_line_and_field(
    ws: Workspace, kit: Kit, tmp_path: Path
) -> None:
    path = write_agreement(tmp_path / "bad.yaml", **{"payee_name: deny": "payee_name: allow"})
    result = cli(ws, "agreement", "apply", str(path), *kit.as_("alice"))
    assert result.status == 2
    line = next(n for n, t in enumerate(path.read_text().splitlines(), 1) if "payee_name" in t)
    assert result.stderr.startswith(f"{path}:{line}: datasets.payments.columns.payee_name: ")


def test_apply_then_show(ws: Workspace, kit: Kit, tmp_path: Path) -> None:
    path = write_agreement(tmp_path / "a.yaml", expires=FUTURE)
    applied = cli(ws, "agreement", "apply", str(path), *kit.as_("bob"))
    assert applied.status == 0 and f"proposed {ID} v1" in applied.stdout
    shown = cli(ws, "agreement", "show", ID)
    assert shown.status == 0 and "pending" in shown.stdout
    sha = kit.state(ws).agreements[ID].latest.sha256
    assert f"--version 1 --sha256 {sha}" in shown.stdout
    as_json = cli(ws, "agreement", "show", ID, "--format", "json")
    assert as_json.status == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert (document["version"], document["sha256"], document["status"]) == (1, sha, "pending")
    assert document["document"]["datasets"]["payments"]["columns"]["payee_tin"] == "pseudonymize"


def test_principal_add_records_the_public_key_and_prints_no_secret(ws: Workspace, kit: Kit) -> None:
    """`principal add` registers the key the principal made; nothing secret is printed or
    recorded (there are no bearer tokens any more)."""
    result = cli(ws, "principal", "add", "dave", "--role", "reviewer",
                 "--pubkey", str(kit.pub_file("dave")), *kit.as_("alice"))  # fmt: skip
    assert result.status == 0, result.stderr
    assert "reviewer dave: signed by alice (1 of 1); registered" in result.stdout
    entry = ledger_entries(ws)[-1]
    assert (entry["action"], entry["principal"], entry["effective"]) == (
        "principal.add", "dave", True,
    )  # fmt: skip
    assert entry["request"]["args"]["pubkey"] == public_key("dave")
    assert "PRIVATE KEY" not in result.stdout + str(entry)
    assert kit.state(ws).principals["dave"].role == "reviewer"


def test_principal_add_by_a_reviewer_is_refused(ws: Workspace, kit: Kit) -> None:
    result = cli(ws, "principal", "add", "dave", "--role", "custodian",
                 "--pubkey", str(kit.pub_file("dave")), *kit.as_("bob"))  # fmt: skip
    entry = assert_refused(
        ws, result, "principal 'bob' is a reviewer; only custodians add principals"
    )
    assert entry["code"] == "CUST318"
    assert "dave" not in kit.state(ws).principals


def test_dataset_add_prints_classes_and_rejects_bad_classify(
    ws: Workspace, kit: Kit, tmp_path: Path
) -> None:
    path = write_table(
        tmp_path / "refs.parquet", {"ref": "VARCHAR"}, [("078-05-1121",), ("219-09-9999",)] * 5
    )
    bad = cli(ws, "dataset", "add", "refs", str(path), "--classify", "ref=secret",
              *kit.as_("alice"))  # fmt: skip
    assert bad.status == 2 and "--classify 'ref=secret'" in bad.stderr
    good = cli(ws, "dataset", "add", "refs", str(path), "--classify", "ref=identifier",
               *kit.as_("alice"))  # fmt: skip
    assert good.status == 0, good.stderr
    assert "identifier" in good.stdout
    entry = ledger_entries(ws)[-1]
    assert (entry["action"], entry["columns"]) == ("dataset.add", {"ref": "identifier"})
    shown = cli(ws, "dataset", "show", "refs")
    assert shown.status == 0 and "identifier" in shown.stdout and str(path) in shown.stdout
