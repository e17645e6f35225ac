"""verify.py on its own: notes, keys, checkpoints, entries and its command line, every branch."""

from __future__ import annotations

import json
import runpy
import sys
import warnings
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodiet.ledger import note
from custodiet.ledger.verify import (
    COSIGNATURE_TYPE,
    SIGNATURE_PREFIX,
    Checkpoint,
    VerificationError,
    b64,
    cosigned_message,
    key_id,
    leaf_hash,
    main,
    parse_vkey,
    split_note,
    tree_hash,
    unb64,
    verify_checkpoint,
    verify_entries,
)

ORIGIN = "custodiet.test/verify"
KEY = Ed25519PrivateKey.generate()
VKEY = note.vkey(ORIGIN, KEY)
ENTRIES = [b'{"action":"query","index":%d}' % i for i in range(5)]
ROOT = tree_hash([leaf_hash(e) for e in ENTRIES])
BODY = note.checkpoint_body(ORIGIN, len(ENTRIES), ROOT)
SIGNED = note.sign(BODY, ORIGIN, KEY)


def test_signed_checkpoint_verifies() -> None:
    cp = verify_checkpoint(SIGNED, parse_vkey(VKEY))
    assert (cp.origin, cp.size, cp.root, cp.body) == (ORIGIN, 5, ROOT, BODY)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("\u00e9t\u00e9", "not valid base64"),
        ("abc", "not valid base64"),
    ],
)
def test_rejects_bad_base64(text: str, words: str) -> None:
    with pytest.raises(VerificationError, match=words):
        unb64(text, "x")


@pytest.mark.parametrize(
    ("vkey", "words"),
    [
        ("only+two", "not name\\+keyid\\+key"),
        ("bad name+" + VKEY.split("+", 1)[1], "whitespace"),
        (VKEY.split("+")[0] + "+" + VKEY.split("+")[1] + "+" + b64(b"\x02" + bytes(32)), "Ed25519"),
        (VKEY.split("+")[0] + "+00000000+" + VKEY.split("+", 2)[2], "does not match"),
    ],
)
def test_rejects_malformed_vkeys(vkey: str, words: str) -> None:
    with pytest.raises(VerificationError, match=words):
        parse_vkey(vkey)


def _signature_of(text: str) -> str:
    return text.split(SIGNATURE_PREFIX)[1].split(" ")[1].strip()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (BODY, "no blank line"),
        (SIGNED.rstrip("\n"), "no blank line"),
        (SIGNED.replace(SIGNATURE_PREFIX, "- "), "malformed"),
        (SIGNED + f"{SIGNATURE_PREFIX}x AAAA\n", "too short"),
        (
            SIGNED.replace(_signature_of(SIGNED), b64(unb64(_signature_of(SIGNED), "s")[:-1])),
            "wrong length",
        ),
        (SIGNED.replace(f"\n{len(ENTRIES)}\n", "\n6\n"), "invalid signature"),
        (note.sign(f"{ORIGIN}\n05\n{b64(ROOT)}\n", ORIGIN, KEY), "not origin, size, root"),
        (note.sign(f"{ORIGIN}\n5\n", ORIGIN, KEY), "not origin, size, root"),
        (note.sign(f"{ORIGIN}\n\u00b2\n{b64(ROOT)}\n", ORIGIN, KEY), "not origin, size, root"),
        (note.sign(note.checkpoint_body("elsewhere", 5, ROOT), "elsewhere", KEY), "origin"),
    ],
    ids=[
        "no-signatures",
        "no-final-newline",
        "no-dash",
        "short",
        "length",
        "forged",
        "zero",
        "lines",
        "superscript-digit",
        "origin",
    ],
)
def test_rejects_bad_notes(text: str, words: str) -> None:
    with pytest.raises(VerificationError, match=words):
        verify_checkpoint(text, parse_vkey(VKEY))


UNKNOWN_SIGNATURE = f"{SIGNATURE_PREFIX}someone.else {b64(bytes(8))}\n"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (SIGNED.replace(ORIGIN, ORIGIN + "\t", 1), "control character"),
        (SIGNED + UNKNOWN_SIGNATURE * 100, "more than 100 signature lines"),
        (SIGNED + f"{SIGNATURE_PREFIX}bad+name {b64(bytes(8))}\n", "'\\+' or whitespace"),
        (SIGNED + f"{SIGNATURE_PREFIX}bad\u00a0name {b64(bytes(8))}\n", "whitespace"),
        (SIGNED + "\n", "no blank line"),
    ],
    ids=["control", "101-lines", "plus-name", "nbsp-name", "empty-signature-block"],
)
def test_rejects_notes_c2sp_forbids(text: str, words: str) -> None:
    with pytest.raises(VerificationError, match=words):
        verify_checkpoint(text, parse_vkey(VKEY))


def test_accepts_exactly_100_signature_lines() -> None:
    text = SIGNED + UNKNOWN_SIGNATURE * 99
    assert verify_checkpoint(text, parse_vkey(VKEY)).size == len(ENTRIES)


def test_splits_a_note_at_its_last_blank_line() -> None:
    text = note.sign("first\n\nsecond\n", ORIGIN, KEY)
    body, signatures = split_note(text)
    assert body == "first\n\nsecond\n" and [name for name, _ in signatures] == [ORIGIN]


def _cosignature(body: str, key: Ed25519PrivateKey, name: str, timestamp: int) -> str:
    kid = key_id(name, COSIGNATURE_TYPE, note.raw_public(key))
    stamp = timestamp.to_bytes(8, "big")
    return note.signature_line(name, kid, stamp + key.sign(cosigned_message(body, timestamp)))


@pytest.mark.parametrize(("timestamp", "ok"), [((1 << 63) - 1, True), (1 << 63, False)])
def test_cosignature_timestamps_must_be_below_2_to_the_63(timestamp: int, ok: bool) -> None:
    witness = Ed25519PrivateKey.generate()
    wkey = parse_vkey(note.vkey("witness.test/w", witness, COSIGNATURE_TYPE))
    text = SIGNED + _cosignature(BODY, witness, "witness.test/w", timestamp)
    if ok:
        assert verify_checkpoint(text, parse_vkey(VKEY), [wkey]).size == len(ENTRIES)
    else:
        with pytest.raises(VerificationError, match="2\\^63"):
            verify_checkpoint(text, parse_vkey(VKEY), [wkey])


def test_entry_that_is_not_an_object_is_named() -> None:
    cp = Checkpoint(ORIGIN, 1, ROOT, BODY)
    with pytest.raises(VerificationError, match="entry 0 is not a JSON object"):
        verify_entries([b"[1]\n"], cp)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "cp.txt").write_text(SIGNED, encoding="utf-8")
    (tmp_path / "entry.json").write_bytes(ENTRIES[2] + b"\n")
    proof = {"index": 2, "tree_size": 5, "leaf_hash": b64(bytes(32)), "root_hash": b64(ROOT)}
    proof["proof"] = [
        b64(leaf_hash(ENTRIES[3])),
        b64(tree_hash([leaf_hash(e) for e in ENTRIES[:2]])),
        b64(leaf_hash(ENTRIES[4])),
    ]
    (tmp_path / "inclusion.json").write_text(json.dumps(proof), encoding="utf-8")
    old_root = tree_hash([leaf_hash(e) for e in ENTRIES[:4]])
    consistency = {"old_size": 4, "new_size": 5, "old_root": b64(old_root), "new_root": b64(ROOT)}
    consistency["proof"] = [b64(leaf_hash(ENTRIES[4]))]
    (tmp_path / "consistency.json").write_text(json.dumps(consistency), encoding="utf-8")
    (tmp_path / "array.json").write_text("[]", encoding="utf-8")
    (tmp_path / "noproof.json").write_text(json.dumps({"proof": "x"}), encoding="utf-8")
    other = {**consistency, "new_size": 4, "new_root": b64(old_root), "proof": []}
    (tmp_path / "other.json").write_text(json.dumps(other), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("args", "status", "words"),
    [
        (["inclusion", "inclusion.json", "--entry", "entry.json"], 0, "inclusion proof verified"),
        (["inclusion", "inclusion.json"], 1, "does not lead to the root"),
        (
            ["consistency", "consistency.json", "--checkpoint", "cp.txt", "--vkey", VKEY],
            0,
            "size 5",
        ),
        (
            ["consistency", "other.json", "--checkpoint", "cp.txt", "--vkey", VKEY],
            1,
            "another tree",
        ),
        (["consistency", "array.json"], 1, "not a proof"),
        (["consistency", "noproof.json"], 1, "not a proof"),
        (["consistency", "consistency.json", "--checkpoint", "cp.txt"], 2, "needs --vkey"),
        (["entries", "entries.jsonl", "--vkey", VKEY], 2, "needs --checkpoint"),
        (["checkpoint", "missing.txt", "--vkey", VKEY], 2, "cannot read input"),
        (["inclusion", "consistency.json"], 2, "cannot read input"),
    ],
)
def test_command_line_verdicts(files: Path, monkeypatch, capsys, args, status, words) -> None:
    monkeypatch.chdir(files)
    assert main(args) == status
    out, err = capsys.readouterr()
    assert words in out + err


def test_runs_as_a_module(files: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(files)
    monkeypatch.setattr(sys, "argv", ["verify", "checkpoint", "cp.txt", "--vkey", VKEY])
    with warnings.catch_warnings(), pytest.raises(SystemExit) as caught:
        warnings.simplefilter("ignore", RuntimeWarning)
        runpy.run_module("custodiet.ledger.verify", run_name="__main__")
    assert caught.value.code == 0
    assert "checkpoint verified" in capsys.readouterr().out


def test_empty_tree_hash_is_sha256_of_nothing() -> None:
    import hashlib

    assert tree_hash([]) == hashlib.sha256(b"").digest()
