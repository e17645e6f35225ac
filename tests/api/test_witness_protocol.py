"""C2SP tlog-witness add-checkpoint against `custodiet witness serve`'s app (in-process, httpx):
every status the spec gives, and the witness's state unchanged by every refusal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodiet.api.witness import create_witness_app
from custodiet.ledger import note
from custodiet.ledger.verify import (
    b64,
    cosignature_valid,
    parse_checkpoint,
    parse_vkey,
    split_note,
    tree_hash,
)
from custodiet.ledger.witness import STATE_FILE, Witness, request_body
from custodiet.ledger.writer import Ledger, open_ledger
from tests.api.world import Client, asgi_client

ORIGIN = "log.test/witnessed"
WITNESS = "witness.test/w1"


def make_log(directory: Path, key: Path, entries: list[str]) -> Ledger:
    """A ledger signed with ``key`` holding ``entries`` (appended one checkpoint each)."""
    directory.mkdir()
    ledger = open_ledger(f"sqlite:///{directory / 'ledger.db'}", ORIGIN, key, create=True)
    for text in entries:
        ledger.append({"action": "test", "text": text})
    return ledger


@dataclass
class Setup:
    log: Ledger
    fork: Ledger  # the same key, another history
    dir: Path
    client: Client
    vkey: str

    def post(self, body: bytes) -> tuple[int, str, str]:
        response = self.client.post("/add-checkpoint", content=body)
        return response.status_code, response.headers.get("content-type", ""), response.text

    def state(self) -> dict[str, object]:
        loaded: dict[str, object] = json.loads((self.dir / STATE_FILE).read_text())
        return loaded


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    key = tmp_path / "log.ed25519"
    note.write_private_key(key)
    log = make_log(tmp_path / "log", key, ["a", "b", "c"])
    fork = make_log(tmp_path / "fork", key, ["a", "b", "x", "y", "z", "w"])
    witness = Witness.open_or_create(tmp_path / "witness", WITNESS)
    witness.pin_log(log.vkey())
    try:
        with asgi_client(create_witness_app(tmp_path / "witness")) as client:
            yield Setup(log, fork, tmp_path / "witness", client, witness.vkey)
    finally:
        log.close()
        fork.close()


def checkpoint(ledger: Ledger) -> str:
    return ledger.signed_checkpoint()[1]


def test_cosigns_from_zero_then_with_a_consistency_proof(setup: Setup) -> None:
    first = checkpoint(setup.log)
    status, _, line = setup.post(request_body(0, [], first))
    body = split_note(first)[0]
    assert status == 200 and cosignature_valid(body, line, parse_vkey(setup.vkey))
    assert setup.state()["size"] == 3
    setup.log.append({"action": "test", "text": "d"})
    setup.log.append({"action": "test", "text": "e"})
    second = checkpoint(setup.log)
    proof = setup.log.consistency_proof(3, 5).proof
    status, _, line = setup.post(request_body(3, proof, second))
    assert status == 200 and cosignature_valid(split_note(second)[0], line, parse_vkey(setup.vkey))
    assert line.startswith(f"\u2014 {WITNESS} ") and line.endswith("\n")
    assert setup.state()["size"] == 5
    # the same checkpoint again (old = its size, same root) is cosigned again
    assert setup.post(request_body(5, [], second))[0] == 200


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"old 0\n",  # no blank line, no checkpoint
        b"old 00\n\n{cp}",  # leading zero
        b"old -1\n\n{cp}",
        b"new 0\n\n{cp}",
        b"old 0 \n\n{cp}",
        b"old 3\nnot base64!\n\n{cp}",
        b"old 3\nAAAA\n\n{cp}",  # base64, but not a 32-byte hash
        b"old 3\n" + b"".join([b64(bytes(32)).encode() + b"\n"] * 64) + b"\n{cp}",  # > 63 lines
        b"old 0\n\n\xff\xfe",  # not UTF-8
        b"old 0\n\nlog.test/witnessed\n3\nnot a root\n\n\xe2\x80\x94 x AAAAAAA=\n",
        b"old 0\n\nno signatures at all\n",
        b"old 9\n\n{cp}",  # old larger than the checkpoint
        b"old 0\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n{cp}",  # proof from size 0
    ],
)
def test_malformed_bodies_are_400_and_change_nothing(setup: Setup, body: bytes) -> None:
    before = setup.state()
    status, _, text = setup.post(body.replace(b"{cp}", checkpoint(setup.log).encode()))
    assert status == 400 and text.startswith("CUST620")
    assert setup.state() == before


def test_wrong_old_size_is_409_with_the_witness_size(setup: Setup) -> None:
    assert setup.post(request_body(0, [], checkpoint(setup.log)))[0] == 200
    setup.log.append({"action": "test", "text": "d"})
    again = setup.post(request_body(0, [], checkpoint(setup.log)))
    assert again == (409, "text/x.tlog.size", "3\n")
    assert setup.state()["size"] == 3


def test_same_size_with_another_root_is_409(setup: Setup) -> None:
    assert setup.post(request_body(0, [], checkpoint(setup.log)))[0] == 200
    # the log's key signs another tree of size 3
    forged_body = note.checkpoint_body(ORIGIN, 3, tree_hash([bytes(32)] * 3))
    forged = note.sign(forged_body, ORIGIN, note.load_private_key(setup.dir.parent / "log.ed25519"))
    assert setup.post(request_body(3, [], forged)) == (409, "text/x.tlog.size", "3\n")
    assert setup.state()["size"] == 3


def test_a_fork_with_the_same_key_is_422_and_the_state_is_kept(setup: Setup) -> None:
    assert setup.post(request_body(0, [], checkpoint(setup.log)))[0] == 200
    before = setup.state()
    forked = checkpoint(setup.fork)  # size 6, signed by the same key, another history
    proof = setup.fork.consistency_proof(3, 6).proof  # the fork's own, valid for its tree
    status, _, text = setup.post(request_body(3, proof, forked))
    assert status == 422 and text.startswith("CUST624")
    assert setup.state() == before


def test_a_tampered_proof_is_422(setup: Setup) -> None:
    assert setup.post(request_body(0, [], checkpoint(setup.log)))[0] == 200
    for text in "defgh":
        setup.log.append({"action": "test", "text": text})
    proof = setup.log.consistency_proof(3, 8).proof
    bad = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]]
    assert setup.post(request_body(3, bad, checkpoint(setup.log)))[0] == 422
    assert setup.post(request_body(3, proof[:-1], checkpoint(setup.log)))[0] == 422
    assert setup.state()["size"] == 3
    assert setup.post(request_body(3, proof, checkpoint(setup.log)))[0] == 200


def test_a_bad_log_signature_is_403_and_an_unknown_log_404(setup: Setup) -> None:
    body = split_note(checkpoint(setup.log))[0]
    stranger = Ed25519PrivateKey.generate()
    by_stranger = note.sign(body, ORIGIN, stranger)  # the log's name, another key: ignored
    status, _, text = setup.post(request_body(0, [], by_stranger))
    assert status == 403 and text.startswith("CUST622")
    genuine = checkpoint(setup.log)
    signature = genuine[len(body) + 1 :]
    flipped = signature[:-6] + ("A" if signature[-6] != "A" else "B") + signature[-5:]
    assert setup.post(request_body(0, [], body + "\n" + flipped))[0] == 403
    other_body = note.checkpoint_body("log.test/other", 3, parse_checkpoint(body).root)
    other = note.sign(other_body, "log.test/other", stranger)
    status, _, text = setup.post(request_body(0, [], other))
    assert status == 404 and text.startswith("CUST621")
    assert setup.state()["size"] == 0


def test_an_oversized_body_is_413(setup: Setup) -> None:
    assert setup.post(b"old 0\n" + b"A" * (1 << 17))[0] == 413
