"""Edges of the copied-out replay: RFC 8785 key order beyond ASCII, the public-key parser's
refusals, and the audit script's own exits (a genesis that is not the one given, a checkpoint
without its key)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import rfc8785

from custodiet.errors import RefusedError
from custodiet.ledger import replay
from custodiet.principals import Role, add_principal, remove_principal
from tests.kit import Kit, public_key


@pytest.mark.parametrize(
    "document",
    [
        {"\U0001f600": 1, "\uffff": 2, "a": 3},  # UTF-16 order: the surrogate pair comes first
        {"é": 1, "e": 2, "z": 3, "\u20ac": 4},
        {"b": [{"\u00e9": None, "a": True}], "a": "x"},
    ],
)
def test_canonical_orders_keys_by_utf16_code_units_as_rfc8785_does(document: object) -> None:
    assert replay.canonical(document) == rfc8785.dumps(document)


def _blob(*fields: bytes) -> str:
    raw = b"".join(len(f).to_bytes(4, "big") + f for f in fields)
    return "ssh-ed25519 " + base64.b64encode(raw).decode()


def test_a_well_formed_key_gives_its_32_bytes() -> None:
    assert replay.ssh_ed25519_key(_blob(b"ssh-ed25519", b"k" * 32) + " ana") == b"k" * 32


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ssh-rsa AAAA", "not an OpenSSH ssh-ed25519 public key"),
        ("ssh-ed25519", "not an OpenSSH ssh-ed25519 public key"),
        ("ssh-ed25519 !!!!", "public key is not valid base64"),
        (_blob(b"ssh-ed25519", b"k" * 31), "malformed ssh-ed25519 public key"),
        (_blob(b"ssh-ed25519", b"k" * 32, b"x"), "malformed ssh-ed25519 public key"),
        (_blob(b"ssh-ed25518", b"k" * 32), "malformed ssh-ed25519 public key"),
    ],
)
def test_a_malformed_key_is_refused_with_its_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        replay.ssh_ed25519_key(text)
    assert str(caught.value) == message


def test_the_script_refuses_a_checkpoint_without_its_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = tmp_path / "entries.jsonl"
    entries.write_text(json.dumps({"index": 0}) + "\n")
    code = replay.main(["--entries", str(entries), "--checkpoint", str(tmp_path / "c")])
    assert code == 2
    assert capsys.readouterr().err == "error: --checkpoint needs --vkey\n"


def test_the_script_refuses_a_genesis_other_than_the_one_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = tmp_path / "entries.jsonl"
    entries.write_text(json.dumps({"index": 0, "action": "genesis"}) + "\n")
    code = replay.main(["--entries", str(entries), "--genesis-sha256", "AB" * 32])
    assert code == 1
    assert capsys.readouterr().err == "NOT AUTHORIZED: entry 0 is not the genesis you were given\n"


def test_a_custodian_may_be_removed_while_k_custodians_remain(tmp_path: Path) -> None:
    kit = Kit()
    ws = kit.init(tmp_path / "ws")  # custodians ana and ben, K = 2
    for by in ("ana", "ben"):
        kit.call(ws, add_principal, by, "principal.add", name="cat", role=Role.CUSTODIAN.value,
                 pubkey=public_key("cat"))  # fmt: skip
    assert kit.state(ws).principals["cat"].role == "custodian"
    for by in ("ana", "ben"):
        kit.call(ws, remove_principal, by, "principal.remove", name="cat")
    assert "cat" not in kit.state(ws).principals  # two custodians remain: exactly K
    with pytest.raises(RefusedError) as caught:
        kit.call(ws, remove_principal, "ana", "principal.remove", name="ben")
    assert caught.value.code == "CUST518"


@pytest.mark.parametrize(
    "line",
    [
        b'{"a":1,"b":[true,null,"\xc3\xa9"]}',
        b'{"a":1} ',
        b' {"a":1}',
        b'{"a":1}x',
        b'{"a":1}{}',
        b'{"a":',
        b"{",
        b"{}",
        b"[1]",
        b'"x"',
        b'{"a":NaN,"a":2}',
        b'{"a":"\\ud800"}',
        b'{"a":"\xff"}',
        b'\xef\xbb\xbf{"a":1}',
        '{"a":1}'.encode("utf-16-le"),
        '{"a":1}'.encode("utf-16"),
        '{"a":1}'.encode("utf-32-be"),
    ],
)
def test_parse_line_reads_what_json_loads_reads(line: bytes) -> None:
    """The replay's line reader skips json.loads' encoding detection and whitespace scans
    only where they change nothing: same value, or the same kind of error."""
    try:
        expected: object = repr(json.loads(line))
    except ValueError as exc:
        expected = type(exc)
    try:
        got: object = repr(replay.parse_line(line))
    except ValueError as exc:
        got = type(exc)
    assert got == expected
