"""End to end: `custodiet serve` in its own process owns the workspace; the README's tour runs
through `custodiet --server URL` (in-process, as the console entry point runs it; one call in a
fresh interpreter) from a directory with no workspace, holding only keys; the log is then read
over HTTP by a tlog-tiles client written from the spec, and its checkpoint verified."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from custodiet.cli.app import app
from custodiet.cli.commands import register
from custodiet.ledger.verify import parse_vkey, verify_checkpoint
from tests.api import tlog_client
from tests.kit import Kit, public_key
from tests.processes import clean_env, free_port, running

ROOT = Path(__file__).resolve().parents[2]
TABLES = ("beneficiaries", "payments", "deaths", "exclusions", "tax_refunds")


def _run(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "custodiet", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """The vault's side (workspace, data) served by `custodiet serve` in its own process, and a
    client directory holding only the principals' keys."""
    from custodiet.synth import generate
    from custodiet.workspace import init_workspace

    vault, client = tmp_path / "vault", tmp_path / "client"
    vault.mkdir()
    client.mkdir()
    kit = Kit(client)  # client/keys/NAME (0600) and NAME.pub
    for who in ("carol", "dave", "rita"):
        kit.key_file(who)
    generate(vault / "data", 300, 7, "stress")
    custodians = {"carol": public_key("carol"), "dave": public_key("dave")}
    init_workspace(vault / "ws", custodians=custodians, min_approvals=2)
    port = free_port()
    with running(("serve", "--workspace", "ws", "--port", str(port)), port, cwd=vault):
        yield f"http://127.0.0.1:{port}", vault, client


@pytest.mark.slow
def test_readme_tour_runs_against_a_server_and_the_log_verifies_over_http(
    server: tuple[str, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, vault, client = server
    (client / "examples").symlink_to(ROOT / "examples")
    for name in ("CUSTODIET_WORKSPACE", "CUSTODIET_KEY", "CUSTODIET_SERVER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(client)
    register(app)
    runner = CliRunner()

    def cli(*args: str, key: str | None = None) -> Any:
        extra = ["--key", f"keys/{key}"] if key else []
        return runner.invoke(app, ["--server", url, *args, *extra])

    def ok(*args: str, key: str | None = None) -> str:
        done = cli(*args, key=key)
        assert done.exit_code == 0, (args, done.stderr, done.exception)
        return str(done.stdout)

    assert _run("--server", url, "principal", "list", cwd=client, env=clean_env()).returncode == 0

    ok(
        "principal",
        "add",
        "rita",
        "--role",
        "reviewer",
        "--pubkey",
        "keys/rita.pub",
        "--as",
        "carol",
        key="carol",
    )
    for table in TABLES:
        ok(
            "dataset",
            "add",
            table,
            str(vault / "data" / f"{table}.parquet"),
            "--as",
            "carol",
            key="carol",
        )
    ok("agreement", "apply", "examples/improper-payments.yaml", "--as", "rita", key="rita")
    assert "improper-payments" in ok("agreement", "show", "improper-payments")
    sha = json.loads(ok("agreement", "show", "improper-payments", "--format", "json"))["sha256"]
    for custodian in ("carol", "dave"):
        ok(
            "agreement",
            "approve",
            "improper-payments",
            "--version",
            "1",
            "--sha256",
            sha,
            "--as",
            custodian,
            key=custodian,
        )
    listed = json.loads(ok("agreement", "list", "--format", "json"))
    assert listed[0]["status"] == "active"
    principals = json.loads(ok("principal", "list", "--format", "json"))
    assert {p["name"] for p in principals} == {"carol", "dave", "rita"}
    report = json.loads(
        ok(
            "screen",
            "run",
            "--agreement",
            "improper-payments",
            "--as",
            "rita",
            "--format",
            "json",
            key="rita",
        )
    )
    assert report["agreement"] == "improper-payments" and report["summary"]
    result = json.loads(
        ok(
            "query",
            "--agreement",
            "improper-payments",
            "--as",
            "rita",
            "--format",
            "json",
            "SELECT program, count(*) AS n FROM payments GROUP BY program ORDER BY program",
            key="rita",
        )
    )
    assert result["columns"] == ["program", "n"] and result["rows"]
    denied = cli(
        "query",
        "--agreement",
        "improper-payments",
        "--as",
        "rita",
        "SELECT payee_name FROM payments",
        key="rita",
    )
    assert denied.exit_code == 3
    assert "refused: column 'payments.payee_name' is denied" in denied.stderr
    impostor = cli(
        "query", "--agreement", "improper-payments", "--as", "carol", "SELECT 1", key="rita"
    )
    assert impostor.exit_code == 3 and "refused:" in impostor.stderr
    assert not (client / "ws").exists() and not (client / "custodiet-workspace").exists()

    # the log over HTTP, read from the spec alone
    with httpx.Client(base_url=url) as http:

        def get(path: str) -> bytes:
            response = http.get("/" + path)
            assert response.status_code == 200, (path, response.text)
            return response.content

        vkey = http.get("/v1/info").json()["vkey"]
        checkpoint = verify_checkpoint(get("checkpoint").decode(), parse_vkey(vkey))
        assert tlog_client.root_from_tiles(get, checkpoint.size) == checkpoint.root
        entries = [json.loads(e) for e in tlog_client.read_entries(get, checkpoint.size)]
    assert entries[0]["action"] == "genesis"
    refusals = [e for e in entries if e["action"] == "refusal"]
    assert any("payee_name" in e["reason"] for e in refusals)
    assert any(e["code"] == "CUST502" and e["attempted"] == "query" for e in refusals)
    assert any(e["action"] == "query" and e["actor"] == "rita" for e in entries)
