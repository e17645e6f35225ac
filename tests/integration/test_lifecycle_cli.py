"""The agreement lifecycle through the real CLI: every refusal exits 3 and is on the ledger."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from custodiet.agreements.lifecycle import apply_agreement, approve
from custodiet.workspace import Workspace
from tests.catalog_data import (
    ledger_entries,
    registered_workspace,
    write_agreement,
    write_table,
)
from tests.conftest import CliResult, run_cli

ID = "ssa-deceased-payees"
FUTURE = "2099-12-31"
COUNT = "SELECT count(*) AS n FROM payments"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return registered_workspace(tmp_path_factory.mktemp("lifecycle-cli")).root


@pytest.fixture
def ws(template: Path, tmp_path: Path) -> Workspace:
    return Workspace(Path(shutil.copytree(template, tmp_path / "ws")))


def cli(ws: Workspace, *args: str) -> CliResult:
    return run_cli(*args, "--workspace", str(ws.root))


def proposed(ws: Workspace, tmp_path: Path, expires: str = FUTURE) -> None:
    apply_agreement(ws, write_agreement(tmp_path / "a.yaml", expires=expires), "alice")


def assert_refused(ws: Workspace, result: CliResult, rule: str) -> dict[str, Any]:
    """Exit 3, one `refused:` line naming the rule, and a refusal entry with that reason."""
    assert result.status == 3, result.stderr
    assert result.stderr.splitlines()[0] == f"refused: {rule}"
    assert "Traceback" not in result.stderr
    entry = ledger_entries(ws)[-1]
    assert (entry["action"], entry["reason"]) == ("refusal", rule)
    return entry


def test_unapproved_agreement_is_refused(ws: Workspace, tmp_path: Path) -> None:
    proposed(ws, tmp_path)
    result = cli(ws, "query", "--agreement", ID, "--as", "bob", COUNT)
    entry = assert_refused(ws, result, f"agreement '{ID}' is not approved (0 of 2 approvals)")
    assert entry["actor"] == "bob"


def test_half_approved_agreement_is_refused(ws: Workspace, tmp_path: Path) -> None:
    proposed(ws, tmp_path)
    approved = cli(ws, "agreement", "approve", ID, "--as", "alice")
    assert approved.status == 0, approved.stderr
    assert "1 of 2 approvals" in approved.stdout
    assert ledger_entries(ws)[-1]["action"] == "agreement.approve"
    result = cli(ws, "query", "--agreement", ID, "--as", "bob", COUNT)
    assert_refused(ws, result, f"agreement '{ID}' is not approved (1 of 2 approvals)")


def test_self_approval_is_refused(ws: Workspace, tmp_path: Path) -> None:
    proposed(ws, tmp_path)
    result = cli(ws, "agreement", "approve", ID, "--as", "bob")
    entry = assert_refused(
        ws, result, f"principal 'bob' is the reviewer of agreement '{ID}' and may not approve it"
    )
    assert (entry["attempted"], entry["agreement_version"]) == ("agreement.approve", 1)


def test_double_approval_is_refused(ws: Workspace, tmp_path: Path) -> None:
    proposed(ws, tmp_path)
    approve(ws, ID, "alice")
    result = cli(ws, "agreement", "approve", ID, "--as", "alice")
    assert_refused(
        ws,
        result,
        f"principal 'alice' already approved agreement '{ID}' v1; an approval counts once",
    )


def test_expired_agreement_is_refused(ws: Workspace, tmp_path: Path) -> None:
    proposed(ws, tmp_path, expires="2020-01-01")
    result = cli(ws, "agreement", "approve", ID, "--as", "carol")
    assert_refused(ws, result, f"agreement '{ID}' expired on 2020-01-01")


def test_second_approval_activates_and_builds_the_projection(ws: Workspace, tmp_path: Path) -> None:
    proposed(ws, tmp_path)
    approve(ws, ID, "alice")
    result = cli(ws, "agreement", "approve", ID, "--as", "carol")
    assert result.status == 0, result.stderr
    assert "2 of 2 approvals; active" in result.stdout
    assert list(ws.projections_dir.glob(f"{ID}-v1-*.duckdb"))


def test_wrong_principal_and_revoked_agreement_are_refused(ws: Workspace, tmp_path: Path) -> None:
    proposed(ws, tmp_path)
    approve(ws, ID, "alice")
    approve(ws, ID, "carol")
    result = cli(ws, "query", "--agreement", ID, "--as", "carol", COUNT)
    assert_refused(ws, result, f"principal 'carol' is not the reviewer of agreement '{ID}'")
    revoked = cli(ws, "agreement", "revoke", ID, "--as", "alice")
    assert revoked.status == 0, revoked.stderr
    assert ledger_entries(ws)[-1]["action"] == "agreement.revoke"
    result = cli(ws, "query", "--agreement", ID, "--as", "bob", COUNT)
    assert_refused(ws, result, f"agreement '{ID}' was revoked")


def test_apply_reports_yaml_errors_with_file_line_and_field(ws: Workspace, tmp_path: Path) -> None:
    path = write_agreement(tmp_path / "bad.yaml", **{"payee_name: deny": "payee_name: allow"})
    result = cli(ws, "agreement", "apply", str(path), "--as", "alice")
    assert result.status == 2
    line = next(n for n, t in enumerate(path.read_text().splitlines(), 1) if "payee_name" in t)
    assert result.stderr.startswith(f"{path}:{line}: datasets.payments.columns.payee_name: ")


def test_apply_then_show(ws: Workspace, tmp_path: Path) -> None:
    path = write_agreement(tmp_path / "a.yaml", expires=FUTURE)
    applied = cli(ws, "agreement", "apply", str(path), "--as", "bob")
    assert applied.status == 0 and f"proposed {ID} v1" in applied.stdout
    shown = cli(ws, "agreement", "show", ID)
    assert shown.status == 0 and "pending" in shown.stdout
    assert '"payee_tin": "pseudonymize"' in shown.stdout


def test_principal_add_prints_token_once_and_records_it(ws: Workspace) -> None:
    result = cli(ws, "principal", "add", "dave", "--role", "reviewer")
    assert result.status == 0, result.stderr
    token = next(w for w in result.stdout.split() if w.startswith("cdt_"))
    entry = ledger_entries(ws)[-1]
    assert (entry["action"], entry["principal"]) == ("principal.add", "dave")
    assert token not in str(entry)


def test_dataset_add_prints_classes_and_rejects_bad_classify(ws: Workspace, tmp_path: Path) -> None:
    path = write_table(
        tmp_path / "refs.parquet", {"ref": "VARCHAR"}, [("078-05-1121",), ("219-09-9999",)] * 5
    )
    bad = cli(ws, "dataset", "add", "refs", str(path), "--classify", "ref=secret")
    assert bad.status == 2 and "--classify 'ref=secret'" in bad.stderr
    good = cli(ws, "dataset", "add", "refs", str(path), "--classify", "ref=identifier")
    assert good.status == 0, good.stderr
    assert "identifier" in good.stdout
    entry = ledger_entries(ws)[-1]
    assert (entry["action"], entry["columns"]) == ("dataset.add", {"ref": "identifier"})
    shown = cli(ws, "dataset", "show", "refs")
    assert shown.status == 0 and "identifier" in shown.stdout and str(path) in shown.stdout
