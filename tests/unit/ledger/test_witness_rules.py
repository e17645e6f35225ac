"""The witness's cosigning rule and the log's witness list, without HTTP: N of M cosignatures
in the standalone verifier, two requests racing on one witness, the list's checks, a witness
that is down, and the CLI's refusals of unusable keys and URLs."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from custodiet.cli import commands
from custodiet.cli.app import app
from custodiet.errors import InputError
from custodiet.ledger import note
from custodiet.ledger.cosigning import Cosigner, add_witness, load_witnesses, remove_witness
from custodiet.ledger.verify import COSIGNATURE_TYPE, cosigned_message, key_id, main
from custodiet.ledger.witness import STATE_FILE, Witness, WitnessRefusal
from tests.api.test_witness_protocol import make_log

if not any(group.name == "witness" for group in app.registered_groups):
    commands.register(app)

ORIGIN = "log.test/witnessed"


def cosign(body: str, name: str, key: Ed25519PrivateKey, timestamp: int = 1_700_000_000) -> str:
    signature = key.sign(cosigned_message(body, timestamp))
    kid = key_id(name, COSIGNATURE_TYPE, note.raw_public(key))
    return note.signature_line(name, kid, timestamp.to_bytes(8, "big") + signature)


def test_standalone_verifier_counts_n_of_m_witnesses(tmp_path: Path) -> None:
    log, w1, w2 = (Ed25519PrivateKey.generate() for _ in range(3))
    body = note.checkpoint_body(ORIGIN, 1, bytes(32))
    (tmp_path / "cp.txt").write_text(note.sign(body, ORIGIN, log) + cosign(body, "w.test/1", w1))
    keys = [
        note.vkey("w.test/1", w1, COSIGNATURE_TYPE),
        note.vkey("w.test/2", w2, COSIGNATURE_TYPE),
    ]
    args = ["checkpoint", str(tmp_path / "cp.txt"), "--vkey", note.vkey(ORIGIN, log)]
    args += [arg for k in keys for arg in ("--witness", k)]
    assert main(args) == 1  # default: every witness given
    assert main([*args, "--witnesses-required", "1"]) == 0
    assert main([*args, "--witnesses-required", "2"]) == 1
    assert main([*args, "--witnesses-required", "3"]) == 2
    only_second = [*args[:4], "--witness", keys[1], "--witnesses-required", "1"]
    assert main(only_second) == 1


def test_two_requests_racing_from_the_same_size_never_roll_the_witness_back(
    tmp_path: Path,
) -> None:
    """Both claim old 3: the one for size 3 must not undo the one for size 8, whichever of
    the two (each its own Witness, as two processes) checks and saves first."""
    key = tmp_path / "log.ed25519"
    note.write_private_key(key)
    log = make_log(tmp_path / "log", key, ["a", "b", "c"])
    try:
        at_three = log.signed_checkpoint()[1]
        for text in "defgh":
            log.append({"action": "test", "text": text})
        jobs = [([], at_three), (log.consistency_proof(3, 8).proof, log.signed_checkpoint()[1])]
        for trial in range(8):
            directory = tmp_path / f"w{trial}"
            witness = Witness.open_or_create(directory, "w.test/1")
            witness.pin_log(log.vkey())
            witness.add_checkpoint(0, [], at_three)
            results: dict[int, str] = {}

            def submit(job: int, directory: Path = directory) -> None:
                proof, cp = jobs[job]
                try:
                    Witness(directory).add_checkpoint(3, proof, cp)
                    results[job] = "ok"
                except WitnessRefusal as exc:
                    results[job] = exc.code

            threads = [threading.Thread(target=submit, args=(job,)) for job in (0, 1)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert results[1] == "ok" and results[0] in ("ok", "CUST623")
            assert json.loads((directory / STATE_FILE).read_text())["size"] == 8
    finally:
        log.close()


def test_the_witness_list_checks_keys_and_urls(tmp_path: Path) -> None:
    path = tmp_path / "witnesses.json"
    witness = Ed25519PrivateKey.generate()
    vkey = note.vkey("w.test/1", witness, COSIGNATURE_TYPE)
    for bad_key, url in (
        (note.vkey("w.test/1", witness), "http://127.0.0.1:1"),  # a log key (0x01)
        ("w.test/1+00000000+AAAA", "http://127.0.0.1:1"),
        (vkey, "ftp://w.example"),
        (vkey, "https://w.example/?q=1"),
        (vkey, "w.example"),
    ):
        with pytest.raises(InputError) as caught:
            add_witness(path, bad_key, url)
        assert caught.value.code == "CUST292"
    assert not path.exists()
    add_witness(path, vkey, "http://127.0.0.1:1/")
    add_witness(path, vkey, "http://127.0.0.1:2")  # the same witness moved: replaced
    assert [(w.name, w.url) for w in load_witnesses(path)] == [("w.test/1", "http://127.0.0.1:2")]
    assert path.stat().st_mode & 0o077 == 0
    with pytest.raises(InputError):
        remove_witness(path, "w.test/unknown")
    remove_witness(path, "w.test/1")
    assert load_witnesses(path) == []
    path.write_text("{not json")
    with pytest.raises(InputError) as caught:
        load_witnesses(path)
    assert caught.value.code == "CUST292"


def test_a_witness_that_is_down_is_reported_not_raised(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    key = tmp_path / "log.ed25519"
    note.write_private_key(key)
    log = make_log(tmp_path / "log", key, ["a"])
    try:
        path = tmp_path / "witnesses.json"
        vkey = note.vkey("w.test/down", Ed25519PrivateKey.generate(), COSIGNATURE_TYPE)
        add_witness(path, vkey, f"http://127.0.0.1:{port}")
        outcome = Cosigner(lambda: log, path, timeout=2).round()
        assert outcome == {"w.test/down": "unreachable"}
        assert log.store.cosignatures(1) == []
    finally:
        log.close()


def test_witness_cli_refuses_a_missing_or_other_log_key(tmp_path: Path) -> None:
    runner = CliRunner()
    log_a = note.vkey(ORIGIN, Ed25519PrivateKey.generate())
    log_b = note.vkey(ORIGIN, Ed25519PrivateKey.generate())
    directory = str(tmp_path / "w")
    no_key = runner.invoke(app, ["witness", "serve", "--dir", directory, "--port", "0"])
    assert no_key.exit_code == 2 and "--log-vkey" in no_key.stderr
    made = runner.invoke(app, ["witness", "init", "--dir", directory, "--log-vkey", log_a])
    assert made.exit_code == 0 and made.stdout.startswith("witness.local/w+")
    other = runner.invoke(app, ["witness", "init", "--dir", directory, "--log-vkey", log_b])
    assert other.exit_code == 2 and "another log key" in other.stderr
    garbage = runner.invoke(app, ["witness", "init", "--dir", directory, "--log-vkey", "x"])
    assert garbage.exit_code == 2
    witness_key = note.vkey(ORIGIN, Ed25519PrivateKey.generate(), COSIGNATURE_TYPE)
    fresh = ["witness", "init", "--dir", str(tmp_path / "w2"), "--log-vkey", witness_key]
    assert runner.invoke(app, fresh).exit_code == 2  # a witness key is not a log key
    shown = runner.invoke(app, ["witness", "key", "--dir", directory])
    assert shown.stdout == made.stdout
    missing = runner.invoke(app, ["witness", "key", "--dir", str(tmp_path / "none")])
    assert missing.exit_code == 2
