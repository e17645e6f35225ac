"""Row filters through `custodiet agreement apply`: every bad filter exits 2 naming FILE:LINE."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from custodiet.workspace import Workspace
from tests.catalog_data import registered_workspace, write_agreement
from tests.conftest import run_cli
from tests.kit import Kit


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return registered_workspace(tmp_path_factory.mktemp("rowfilter-cli")).root


@pytest.fixture
def ws(template: Path, tmp_path: Path) -> Workspace:
    return Workspace(Path(shutil.copytree(template, tmp_path / "ws")))


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ("payee_tin = '123456789'", "does not release in the clear"),
        ("payee_name = 'Jane Roe'", "does not release in the clear"),
        ("method = 'CHECK'", "does not release in the clear"),
        ("payment_id = 'P0000001'", "does not release in the clear"),
        ("agency = 'SSA", "not valid SQL"),
        ("agency = 'SSA'; SELECT 1", "exactly one expression"),
        ("agency IN (SELECT agency FROM payments)", "is not allowed in a row filter"),
    ],
    ids=["identifier", "denied", "unnamed", "key", "unterminated-quote", "stacked", "subquery"],
)
def test_bad_row_filter_exits_2_naming_file_and_line(
    ws: Workspace, tmp_path: Path, rows: str, problem: str
) -> None:
    path = write_agreement(tmp_path / "bad.yaml", **{"agency = 'SSA'": rows.replace('"', '\\"')})
    result = run_cli(
        "agreement", "apply", str(path), *Kit(tmp_path).as_("alice"), "--workspace", str(ws.root)
    )
    assert result.status == 2, result.stderr
    assert "Traceback" not in result.stderr
    line = next(n for n, t in enumerate(path.read_text().splitlines(), 1) if "rows:" in t)
    assert result.stderr.startswith(f"{path}:{line}: datasets.payments.rows: ")
    assert problem in result.stderr


def test_a_filter_with_a_trailing_comment_applies(ws: Workspace, tmp_path: Path) -> None:
    path = write_agreement(tmp_path / "a.yaml", **{"agency = 'SSA'": "agency = 'SSA' -- SSA only"})
    result = run_cli(
        "agreement", "apply", str(path), *Kit(tmp_path).as_("alice"), "--workspace", str(ws.root)
    )
    assert result.status == 0, result.stderr
