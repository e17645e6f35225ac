"""Issue 9, the ledger's side, end to end: a lost ledger is never a new one, the log never signs
what its stored tree does not give, a swapped key signs nothing, and bad input exits 2. Each
test asserts the exit status, the message, and that nothing was signed or acknowledged."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from custodiet.errors import SystemFailure, TamperedError
from custodiet.ledger import pin as pin_module
from custodiet.ledger.pin import LogPin
from custodiet.ledger.serving import checked_inclusion_proof
from custodiet.ledger.verify import leaf_hash, parse_vkey, verify_checkpoint
from custodiet.ledger.witness import Witness
from custodiet.ledger.writer import open_ledger
from custodiet.workspace import Workspace, sweep_temporary_files
from tests.conftest import run_cli
from tests.integration import ledger_faults as faults
from tests.integration.ledger_faults import Site, make_site
from tests.unit.ledger.conftest import postgres_base_url

RESTORE = "Restoring from a backup"


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path / "ws", "sqlite")


@pytest.fixture
def pg_site(tmp_path: Path) -> Iterator[Site]:
    made = make_site(tmp_path / "pg", "postgres")
    yield made
    faults.drop_site(made)


def test_init_pins_the_log_outside_the_store(site: Site) -> None:
    path = site.ws.log_pin_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    pinned = json.loads(path.read_text())
    assert set(pinned) == {"origin", "genesis", "vkey", "checkpoint", "keys"}
    assert pinned["keys"] == [{"vkey": pinned["vkey"], "from_size": 1}]
    assert pinned["origin"] == site.ws.origin
    key = parse_vkey(pinned["vkey"])
    assert verify_checkpoint(pinned["checkpoint"], key).size == 20  # advanced at close
    ledger = site.ws.ledger()
    try:
        assert pinned["genesis"] == pin_module.b64(leaf_hash(ledger.entry(0)))
        assert pinned["vkey"] == ledger.vkey()
    finally:
        ledger.close()


def test_deleted_ledger_db_is_fatal_and_never_recreated(site: Site) -> None:
    faults.delete_store(site)
    result = run_cli("ledger", "verify", "--workspace", str(site.ws.root))
    assert result.status == 1 and result.stdout == ""
    assert "ledger.db is missing" in result.stderr and RESTORE in result.stderr
    assert "Traceback" not in result.stderr
    assert not (site.ws.root / "ledger.db").exists()


def test_emptied_ledger_db_is_fatal_and_stays_empty(site: Site) -> None:
    faults.empty_store(site)
    for args in (("verify",), ("checkpoint",), ("entries",)):
        result = site.ledger_cli(*args)
        assert result.status == 1 and result.stdout == "", args
        assert "holds no ledger tables" in result.stderr and RESTORE in result.stderr
    assert (site.ws.root / "ledger.db").stat().st_size == 0 or site.checkpoint_count() is None


@pytest.mark.postgres
def test_dropped_postgresql_schema_is_fatal_and_never_recreated(pg_site: Site) -> None:
    faults.delete_store(pg_site)
    result = pg_site.ledger_cli("verify")
    assert result.status == 1 and result.stdout == ""
    assert "is missing or holds no ledger tables" in result.stderr and RESTORE in result.stderr
    schema = pg_site.ws.ledger_store_url.rsplit("schema=", 1)[1]
    with psycopg.connect(postgres_base_url()) as con:
        rows = con.execute(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (schema,)
        ).fetchall()
    assert rows == []


def test_flipped_tile_bit_refuses_checkpoint_and_the_next_append(site: Site) -> None:
    faults.flip_partial_tile(site)
    signed = site.checkpoint_count()
    result = site.ledger_cli("checkpoint")
    assert result.status == 1 and result.stdout == ""
    assert "not the pinned checkpoint's" in result.stderr and RESTORE in result.stderr
    # the writer itself, reached without the workspace's pin check, refuses to sign
    raw = open_ledger(site.ws.ledger_store_url, site.ws.origin, site.ws.log_key_path)
    try:
        with pytest.raises(TamperedError) as caught:
            raw.append({"actor": "reviewer-1", "action": "query"})
        assert caught.value.code == "CUST125"
        assert "nothing was signed or appended" in caught.value.message
        assert raw.size() == 20
    finally:
        raw.close()
    assert site.checkpoint_count() == signed


def test_swapped_signing_key_is_refused_and_never_printed(site: Site) -> None:
    signed = site.checkpoint_count()
    faults.swap_key(site)
    for args in (("key",), ("checkpoint",), ("verify",)):
        result = site.ledger_cli(*args)
        assert result.status == 1 and result.stdout == "", args
        assert "not the log's pinned key" in result.stderr
    with pytest.raises(TamperedError) as caught:
        site.ws.ledger()
    assert caught.value.code == "CUST127"
    assert site.checkpoint_count() == signed


@pytest.mark.parametrize("name", ["bad name", "bad+name", ""])
def test_witness_name_with_space_or_plus_exits_2(site: Site, tmp_path: Path, name: str) -> None:
    result = site.ledger_cli("witness", "--dir", str(tmp_path / "w"), "--name", name)
    assert result.status == 2 and "--name" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "w").exists()
    with site.connection() as run:
        assert run("SELECT count(*) FROM cosignatures")[0][0] == 0


def test_witness_dir_on_a_regular_file_exits_2(site: Site, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = site.ledger_cli("witness", "--dir", str(blocker))
    assert result.status == 2 and "not a directory" in result.stderr
    assert blocker.read_text() == "x"


def test_witness_stores_its_vkey(site: Site, tmp_path: Path) -> None:
    result = site.ledger_cli("witness", "--dir", str(tmp_path / "w"), "--name", "w.test/1")
    assert result.status == 0, result.stderr
    state = json.loads((tmp_path / "w" / "witness.json").read_text())
    assert state["vkey"] == result.stdout.split(" as ")[1].strip()
    assert parse_vkey(state["vkey"]).name == "w.test/1"


def test_witness_on_a_full_disk_leaves_no_key_and_names_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pin_module.os, "write", full)
    with pytest.raises(SystemFailure) as caught:
        Witness.open_or_create(tmp_path / "w", "w.test/1")
    assert caught.value.code == "CUST137"
    assert "disk holding it is full" in caught.value.message
    assert str(tmp_path / "w") in caught.value.message
    assert not (tmp_path / "w").exists()


def test_witness_refuses_a_rollback_with_exit_1(site: Site, tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    shutil.copytree(site.ws.root, backup)
    ledger = site.ws.ledger()
    try:
        ledger.append({"actor": "reviewer-1", "action": "query"})
    finally:
        ledger.close()
    assert site.ledger_cli("witness", "--dir", str(tmp_path / "w")).status == 0
    shutil.rmtree(site.ws.root)
    shutil.copytree(backup, site.ws.root)  # store and log.json restored together, but older
    result = site.ledger_cli("witness", "--dir", str(tmp_path / "w"))
    assert result.status == 1 and "witness refuses" in result.stderr
    assert "smaller" in result.stderr


def test_entries_with_to_before_from_exits_2(site: Site) -> None:
    result = site.ledger_cli("entries", "--from", "10", "--to", "3")
    assert result.status == 2 and "--to" in result.stderr and result.stdout == ""


def test_verify_refuses_an_empty_from_checkpoint_file(site: Site, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    result = site.ledger_cli("verify", "--from-checkpoint", str(empty))
    assert result.status == 2 and "is empty" in result.stderr


def test_verify_fails_on_a_log_shorter_than_a_given_checkpoint(site: Site, tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    shutil.copytree(site.ws.root, backup)
    ledger = site.ws.ledger()
    try:
        ledger.append({"actor": "reviewer-1", "action": "query"})
    finally:
        ledger.close()
    kept = tmp_path / "kept.txt"
    kept.write_text(site.ledger_cli("checkpoint").stdout)
    shutil.rmtree(site.ws.root)
    shutil.copytree(backup, site.ws.root)
    result = site.ledger_cli("verify", "--from-checkpoint", str(kept))
    assert result.status == 1 and "size 21" in result.stderr


def test_verify_fails_on_a_log_shorter_than_the_pinned_checkpoint(site: Site) -> None:
    faults.truncate_log(site)
    result = site.ledger_cli("verify")
    assert result.status == 1 and "fewer than the 20" in result.stderr and RESTORE in result.stderr


def test_pin_advances_at_most_every_interval_and_at_close(site: Site) -> None:
    pinned = LogPin(site.ws.log_pin_path)
    key = parse_vkey(pinned.read().vkey)
    ledger = site.ws.ledger(pin_interval=3600)
    try:
        ledger.append({"actor": "reviewer-1", "action": "query"})
        assert pinned.read().signed(key).size == 20
    finally:
        ledger.close()
    assert pinned.read().signed(key).size == 21
    eager = site.ws.ledger(pin_interval=0)
    try:
        eager.append({"actor": "reviewer-1", "action": "query"})
        assert pinned.read().signed(key).size == 22
    finally:
        eager.close()


def test_missing_pin_file_is_fatal(site: Site) -> None:
    site.ws.log_pin_path.unlink()
    result = site.ledger_cli("checkpoint")
    assert result.status == 1 and "log.json" in result.stderr and RESTORE in result.stderr


def test_unfinished_temporary_files_are_swept_at_the_next_command(site: Site) -> None:
    projections = site.ws.projections_dir
    old = [
        projections / ".a.duckdb.0123456789ab.tmp",
        projections / ".a.duckdb.0123456789ab.tmp.wal",
        site.ws.root / ".log.json.abcdefabcdef.tmp",
    ]
    fresh = projections / ".b.duckdb.ba9876543210.tmp"
    others = [projections / "a.duckdb", projections / "notes.tmp", site.ws.root / "keep.tmp"]
    for path in [*old, fresh, *others]:
        path.write_bytes(b"x")
    stale = time.time() - 3600
    for path in [*old, *others]:
        os.utime(path, (stale, stale))
    assert site.ledger_cli("key").status == 0  # in process: this process started long before
    assert not any(path.exists() for path in old)
    assert fresh.exists() and all(path.exists() for path in others)
    assert sweep_temporary_files(Workspace(site.ws.root)) == []


@pytest.mark.parametrize(("index", "code"), [(0, "CUST122"), (5, "CUST129")])
def test_a_deleted_entry_is_a_fault_not_bad_input(site: Site, index: int, code: str) -> None:
    with site.connection() as run:
        run("DELETE FROM entries WHERE idx = ?", index)
    result = site.ledger_cli("proof", str(index))
    assert result.status == 1 and result.stdout == "", result.stderr
    with pytest.raises(TamperedError) as caught:
        ledger = site.ws.ledger()
        try:
            checked_inclusion_proof(ledger, index, None)
        finally:
            ledger.close()
    assert caught.value.code == code
