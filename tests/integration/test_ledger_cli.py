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
from custodiet.workspace import Workspace
from tests.conftest import CliResult, run_cli
from tests.kit import Kit, public_key
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


def init_workspace(root: Path) -> Workspace:
    """A workspace whose genesis names custodians ana and ben (K = 2)."""
    return Kit().init(root)


def custodian_args(kit: Kit, *names: str) -> list[str]:
    return [arg for name in names for arg in ("--custodian", f"{name}={kit.pub_file(name)}")]


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
    kit = Kit(tmp_path)
    result = run_cli("init", str(tmp_path / "new"), *custodian_args(kit, "ana", "ben", "cy"),
                     "--min-approvals", "2")  # fmt: skip
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
        "genesis",
        ws.origin,
        vkey.split("+")[1],
    )
    # the genesis names the first custodians and K; whoever ran init holds no power
    assert first["custodians"] == [
        {"name": n, "pubkey": public_key(n)} for n in ("ana", "ben", "cy")
    ]
    assert first["min_approvals"] == 2
    assert "custodians    ana, ben, cy (K = 2)" in result.stdout


@pytest.mark.parametrize(
    ("names", "k", "message"),
    [
        (("ana",), "2", "at least two custodians"),
        (("ana", "ben"), "1", "--min-approvals 1: must be at least 2"),
        (("ana", "ben"), "3", "at most the number of custodians (2)"),
    ],
)
def test_init_needs_two_custodians_and_k_of_at_least_two(
    tmp_path: Path, names: tuple[str, ...], k: str, message: str
) -> None:
    kit = Kit(tmp_path)
    result = invoke("init", str(tmp_path / "ws"), *custodian_args(kit, *names),
                    "--min-approvals", k)  # fmt: skip
    assert result.status == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "ws").exists()


def test_init_refuses_one_key_for_two_custodians(tmp_path: Path) -> None:
    kit = Kit(tmp_path)
    twice = [
        "--custodian",
        f"ana={kit.pub_file('ana')}",
        "--custodian",
        f"ben={kit.pub_file('ana')}",
    ]
    result = invoke("init", str(tmp_path / "ws"), *twice)
    assert result.status == 2 and "share one public key" in result.stderr


def test_audit_replays_the_governance_and_names_the_first_unauthorized_entry(
    tmp_path: Path,
) -> None:
    kit = Kit()
    ws = kit.init(tmp_path / "ws")
    kit.add_principal(ws, "rae", "reviewer")
    audited = ledger_cli(ws.root, "audit")
    assert audited.status == 0, audited.stderr
    assert "authorized: 2 entries replayed" in audited.stdout
    ledger = ws.ledger()
    try:  # an entry appended behind the gateway's back: a query nobody signed
        ledger.append({"actor": "rae", "action": "query", "rows_returned": 1})
    finally:
        ledger.close()
    forged = ledger_cli(ws.root, "audit")
    assert forged.status == 1
    assert "not authorized: ledger entry 2:" in forged.stderr


def test_init_refuses_a_non_empty_directory(tmp_path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    result = invoke("init", str(tmp_path / "busy"), *custodian_args(Kit(tmp_path), "ana", "ben"))
    assert result.status == 2
    assert "not an empty directory" in result.stderr and "Traceback" not in result.stderr


def test_init_that_cannot_reach_its_store_leaves_nothing_behind(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = invoke("init", str(tmp_path / "ws"), *custodian_args(Kit(tmp_path), "ana", "ben"),
                    "--ledger-store", f"sqlite:///{blocker}/l.db")  # fmt: skip
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
        people = custodian_args(Kit(tmp_path), "ana", "ben")
        assert invoke("init", str(tmp_path / "pg"), *people, "--ledger-store", url).status == 0
        result = ledger_cli(tmp_path / "pg", "verify")
        assert result.status == 0 and "verified: 1 entries" in result.stdout
        assert not (tmp_path / "pg" / "ledger.db").exists()
        again = invoke("init", str(tmp_path / "pg2"), *people, "--ledger-store", url)
        assert again.status == 2 and "already holds another log" in again.stderr
        assert not (tmp_path / "pg2").exists()
    finally:
        with psycopg.connect(base, autocommit=True) as con:
            con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())
