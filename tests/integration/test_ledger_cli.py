"""`custodiet init` and `custodiet ledger ...` as a user runs them: output, files, exit statuses."""

from __future__ import annotations

import json
import sqlite3
import stat
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from custodiet.cli import commands
from custodiet.cli.app import app
from custodiet.ledger.verify import (
    parse_vkey,
    verify_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from custodiet.workspace import Workspace, init_workspace
from tests.conftest import CliResult, run_cli
from tests.unit.ledger.conftest import postgres_base_url

if not any(group.name == "ledger" for group in app.registered_groups):
    commands.register(app)


FORGE = (
    "UPDATE entries SET data = CAST(replace(data, 'reviewer-1', '{new}') AS BLOB) WHERE idx = {idx}"
)


def invoke(*args: str) -> CliResult:
    """In-process, for speed; the subprocess path is covered by the init and verify tests."""
    result = CliRunner().invoke(app, list(args))
    return CliResult(result.exit_code, result.stdout, result.stderr)


def ledger_cli(ws: Path, *args: str) -> CliResult:
    return invoke("ledger", *args, "--workspace", str(ws))


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = init_workspace(tmp_path / "ws")
    ledger = ws.ledger()
    try:
        for n in range(6):
            ledger.append({"actor": "reviewer-1", "action": "query", "rows_returned": n})
    finally:
        ledger.close()
    return ws.root


def test_init_makes_private_keys_and_a_first_entry_and_prints_only_the_vkey(tmp_path) -> None:
    result = run_cli("init", str(tmp_path / "new"))
    assert result.status == 0, result.stderr
    ws = Workspace(tmp_path / "new")
    for secret in (ws.log_key_path, ws.secret_path):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert len(ws.secret_path.read_bytes()) == 32
    assert ws.projections_dir.is_dir()
    assert ws.origin.startswith("custodiet.local/new-")
    assert "PRIVATE KEY" not in result.stdout
    assert ws.log_key_path.read_text() not in result.stdout
    ledger = ws.ledger()
    try:
        vkey = ledger.vkey()
        first = json.loads(ledger.entry(0))
    finally:
        ledger.close()
    assert vkey in result.stdout
    assert (first["action"], first["origin"], first["key_id"]) == (
        "workspace.init",
        ws.origin,
        vkey.split("+")[1],
    )


def test_init_refuses_a_non_empty_directory(tmp_path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    result = invoke("init", str(tmp_path / "busy"))
    assert result.status == 2
    assert "not an empty directory" in result.stderr and "Traceback" not in result.stderr


def test_init_that_cannot_reach_its_store_leaves_nothing_behind(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = invoke("init", str(tmp_path / "ws"), "--ledger-store", f"sqlite:///{blocker}/l.db")
    assert result.status == 1 and "cannot open the ledger" in result.stderr
    assert not (tmp_path / "ws").exists()


def test_checkpoint_key_and_proofs_verify_independently(workspace: Path) -> None:
    vkey = ledger_cli(workspace, "key").stdout.strip()
    checkpoint = ledger_cli(workspace, "checkpoint")
    assert checkpoint.status == 0
    cp = verify_checkpoint(checkpoint.stdout, parse_vkey(vkey))
    assert cp.size == 7
    proof = json.loads(ledger_cli(workspace, "proof", "3").stdout)
    assert set(proof) == {"index", "tree_size", "leaf_hash", "proof", "root_hash"}
    verify_inclusion(3, 7, *_decoded(proof["leaf_hash"], proof["proof"], proof["root_hash"]))
    cons = json.loads(ledger_cli(workspace, "consistency", "2", "7").stdout)
    assert set(cons) == {"old_size", "new_size", "proof", "old_root", "new_root"}
    old_root, hashes, new_root = _decoded(cons["old_root"], cons["proof"], cons["new_root"])
    verify_consistency(2, 7, hashes, old_root, new_root)
    assert new_root == cp.root


def _decoded(first: str, middle: list[str], last: str):
    import base64

    return base64.b64decode(first), [base64.b64decode(h) for h in middle], base64.b64decode(last)


def test_entries_prints_the_exact_canonical_leaf_data(workspace: Path) -> None:
    result = ledger_cli(workspace, "entries", "--from", "2", "--to", "4")
    lines = result.stdout.encode().splitlines()
    ledger = Workspace(workspace).ledger()
    try:
        assert lines == [ledger.entry(i) for i in (2, 3, 4)]
    finally:
        ledger.close()


@pytest.mark.parametrize(
    "args", [("proof", "99"), ("consistency", "5", "2"), ("verify", "--from-checkpoint", "nope")]
)
def test_bad_arguments_exit_2_with_a_hint(workspace: Path, args) -> None:
    result = ledger_cli(workspace, *args)
    assert result.status == 2
    assert "hint:" in result.stderr and "Traceback" not in result.stderr


def test_verify_exits_1_naming_the_first_bad_index_with_both_hashes(workspace: Path) -> None:
    assert ledger_cli(workspace, "verify").status == 0
    with closing(sqlite3.connect(workspace / "ledger.db")) as con, con:
        con.execute(FORGE.format(new="reviewer-2", idx=4))
    result = run_cli("ledger", "verify", "--workspace", str(workspace))
    assert result.status == 1
    assert "ledger entry 4" in result.stderr
    assert "expected " in result.stderr and "computed " in result.stderr


def test_verify_with_one_or_two_jobs_names_the_same_bad_index_and_hashes(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    ledger = ws.ledger()
    try:
        ledger.append_many([{"actor": "reviewer-1", "rows_returned": n} for n in range(99)])
    finally:
        ledger.close()
    verdicts = [
        run_cli("ledger", "verify", "--jobs", jobs, "--workspace", str(ws.root))
        for jobs in ("1", "2")
    ]
    assert [v.status for v in verdicts] == [0, 0]
    assert verdicts[0].stdout == verdicts[1].stdout
    with closing(sqlite3.connect(ws.root / "ledger.db")) as con, con:
        con.execute(FORGE.format(new="reviewer-2", idx=70))
    one, two = (
        run_cli("ledger", "verify", "--jobs", jobs, "--workspace", str(ws.root))
        for jobs in ("1", "2")
    )
    assert one.status == two.status == 1
    assert "ledger entry 70" in one.stderr and "expected " in one.stderr
    assert two.stderr == one.stderr


def test_verify_refuses_zero_jobs(workspace: Path) -> None:
    result = ledger_cli(workspace, "verify", "--jobs", "0")
    assert result.status == 2 and "--jobs" in result.stderr


def test_store_failure_exits_1(workspace: Path) -> None:
    manifest = json.loads((workspace / "workspace.json").read_text())
    manifest["ledger_store"] = f"sqlite:///{workspace / 'workspace.json'}/ledger.db"
    (workspace / "workspace.json").write_text(json.dumps(manifest))
    result = ledger_cli(workspace, "entries")
    assert result.status == 1
    assert "CUST" not in result.stdout and "is missing" in result.stderr
    assert "Restoring from a backup" in result.stderr


def test_witness_cosigns_growth_and_refuses_a_fork(workspace: Path, tmp_path: Path) -> None:
    witness_dir = tmp_path / "witness"
    first = ledger_cli(workspace, "witness", "--dir", str(witness_dir))
    assert first.status == 0, first.stderr
    witness_vkey = first.stdout.split(" as ")[1].strip()
    note = ledger_cli(workspace, "checkpoint").stdout
    key = parse_vkey(ledger_cli(workspace, "key").stdout.strip())
    assert verify_checkpoint(note, key, [parse_vkey(witness_vkey)]).size == 7
    with closing(sqlite3.connect(workspace / "ledger.db")) as con, con:
        con.execute(FORGE.format(new="mallory", idx=6))
        con.execute("DELETE FROM checkpoints")
    _rebuild_nodes(workspace)
    pinned = ledger_cli(workspace, "witness", "--dir", str(witness_dir))
    assert pinned.status == 1 and "pinned checkpoint" in pinned.stderr
    _forge_checkpoint(workspace, 7)  # an operator with the key re-signs and re-pins the fork
    refused = ledger_cli(workspace, "witness", "--dir", str(witness_dir))
    assert refused.status == 1
    assert "witness refuses" in refused.stderr


def _rebuild_nodes(workspace: Path) -> None:
    from tests.unit.ledger.test_audit import rebuild_tree

    rebuild_tree(workspace / "ledger.db")


def _forge_checkpoint(workspace: Path, size: int) -> None:
    """Sign the stored tree at ``size`` with the log key, store it and pin it in log.json."""
    from custodiet.ledger import note
    from custodiet.ledger.writer import open_ledger

    ws = Workspace(workspace)
    raw = open_ledger(ws.ledger_store_url, ws.origin, ws.log_key_path)
    try:
        body = note.checkpoint_body(ws.origin, size, raw.root(size))
        signed = note.sign(body, ws.origin, raw._signing_key())
    finally:
        raw.close()
    with closing(sqlite3.connect(workspace / "ledger.db")) as con, con:
        con.execute("DELETE FROM checkpoints WHERE size >= ?", (size,))
        con.execute("INSERT INTO checkpoints VALUES (?, ?)", (size, signed))
    pin = json.loads(ws.log_pin_path.read_text())
    pin["checkpoint"] = signed
    ws.log_pin_path.write_text(json.dumps(pin))


@pytest.mark.postgres
def test_init_on_postgresql_store_verifies(tmp_path: Path) -> None:
    import uuid

    import psycopg

    base = postgres_base_url()
    schema = f"ledger_cli_{uuid.uuid4().hex[:12]}"
    try:
        url = f"{base}?schema={schema}"
        assert invoke("init", str(tmp_path / "pg"), "--ledger-store", url).status == 0
        result = ledger_cli(tmp_path / "pg", "verify")
        assert result.status == 0 and "verified: 1 entries" in result.stdout
        assert not (tmp_path / "pg" / "ledger.db").exists()
        again = invoke("init", str(tmp_path / "pg2"), "--ledger-store", url)
        assert again.status == 2 and "already holds another log" in again.stderr
        assert not (tmp_path / "pg2").exists()
    finally:
        with psycopg.connect(base, autocommit=True) as con:
            con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())
