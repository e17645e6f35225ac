"""The verifier checked against values computed independently here (hashlib, cryptography), so a
change to any hash prefix, bound, message or exit status of ``ledger/verify.py`` fails a test.

Nothing here signs or hashes through custodiet's own writer (``note.py`` imports its hashing from
the verifier, so it would change along with a mutant).
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodiet.ledger import verify as v
from custodiet.ledger.verify import VerificationError


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf(data: bytes) -> bytes:
    return sha(b"\x00" + data)


def node(left: bytes, right: bytes) -> bytes:
    return sha(b"\x01" + left + right)


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1, recursively: the split is the largest power of two below n."""
    if not leaves:
        return sha(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node(mth(leaves[:k]), mth(leaves[k:]))


def inclusion_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(m, D[n])."""
    if len(leaves) <= 1:
        return []
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    if index < k:
        return [*inclusion_path(index, leaves[:k]), mth(leaves[k:])]
    return [*inclusion_path(index - k, leaves[k:]), mth(leaves[:k])]


def consistency_path(m: int, leaves: list[bytes], complete: bool = True) -> list[bytes]:
    """RFC 9162 §2.1.4.1 SUBPROOF(m, D[n], b)."""
    n = len(leaves)
    if m == n:
        return [] if complete else [mth(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*consistency_path(m, leaves[:k], complete), mth(leaves[k:])]
    return [*consistency_path(m - k, leaves[k:], False), mth(leaves[:k])]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


DATA = [b'{"index":%d}' % i for i in range(9)]
LEAVES = [leaf(d) for d in DATA]


# ---- hashing -----------------------------------------------------------------------------------


def test_leaf_and_node_hashes_use_the_rfc_prefixes() -> None:
    assert v.leaf_hash(b"") == bytes.fromhex(
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert v.leaf_hash(b"abc") == leaf(b"abc")
    assert v.node_hash(b"L" * 32, b"R" * 32) == node(b"L" * 32, b"R" * 32)
    assert v.leaf_hashes(DATA[:3]) == LEAVES[:3]
    assert v.leaf_hashes([]) == []


def test_next_level_pairs_hashes_and_leaves_out_a_lone_last_one() -> None:
    a, b, c = LEAVES[:3]
    assert v.next_level([a, b, c]) == [node(a, b)]
    assert v.next_level([a, b]) == [node(a, b)]
    assert v.next_level([a]) == []


@pytest.mark.parametrize("size", range(10))
def test_tree_hash_matches_the_recursive_definition(size: int) -> None:
    assert v.tree_hash(LEAVES[:size]) == mth(LEAVES[:size])


def test_b64_and_unb64_round_trip_and_check_the_size() -> None:
    assert v.b64(b"\x00\xff") == "AP8="
    assert v.unb64("AP8=", "x") == b"\x00\xff"
    assert v.unb64("AP8=", "x", 2) == b"\x00\xff"
    with pytest.raises(VerificationError, match=r"^thing is 2 bytes, not 3$"):
        v.unb64("AP8=", "thing", 3)
    with pytest.raises(VerificationError, match=r"^thing is not valid base64$"):
        v.unb64("AP8", "thing")
    with pytest.raises(VerificationError, match=r"^thing is not valid base64$"):
        v.unb64("AP-=", "thing")


# ---- inclusion proofs --------------------------------------------------------------------------


@pytest.mark.parametrize(("index", "size"), [(0, 1), (0, 2), (1, 2), (2, 3), (4, 7), (8, 9)])
def test_inclusion_proofs_from_the_rfc_verify(index: int, size: int) -> None:
    leaves = LEAVES[:size]
    proof = inclusion_path(index, leaves)
    v.verify_inclusion(index, size, leaves[index], proof, mth(leaves))


@pytest.mark.parametrize(("index", "size"), [(0, 2), (2, 3), (4, 7), (8, 9)])
def test_inclusion_proof_for_another_leaf_fails_with_evidence(index: int, size: int) -> None:
    leaves = LEAVES[:size]
    proof = inclusion_path(index, leaves)
    other = leaves[index - 1]
    with pytest.raises(VerificationError) as caught:
        v.verify_inclusion(index, size, other, proof, mth(leaves))
    assert str(caught.value) == f"inclusion proof for index {index} does not lead to the root"
    assert caught.value.expected == mth(leaves)
    assert caught.value.computed is not None and caught.value.computed != mth(leaves)


@pytest.mark.parametrize(("index", "size"), [(-1, 3), (3, 3), (0, 0), (4, 3)])
def test_inclusion_index_outside_the_tree_is_refused(index: int, size: int) -> None:
    with pytest.raises(VerificationError) as caught:
        v.verify_inclusion(index, size, LEAVES[0], [], mth(LEAVES[:1]))
    assert str(caught.value) == f"index {index} is outside a tree of size {size}"


def test_inclusion_proof_of_the_wrong_length_is_refused() -> None:
    leaves = LEAVES[:5]
    proof = inclusion_path(2, leaves)
    with pytest.raises(VerificationError, match=r"^inclusion proof is too long$"):
        v.verify_inclusion(2, 5, leaves[2], [*proof, LEAVES[0]], mth(leaves))
    with pytest.raises(VerificationError, match=r"^inclusion proof is too short$"):
        v.verify_inclusion(2, 5, leaves[2], proof[:-1], mth(leaves))
    with pytest.raises(VerificationError, match=r"^a hash is 31 bytes, not 32$"):
        v.verify_inclusion(2, 5, leaves[2], [proof[0][:31], *proof[1:]], mth(leaves))
    with pytest.raises(VerificationError, match=r"^a hash is 33 bytes, not 32$"):
        v.verify_inclusion(2, 5, leaves[2] + b"x", proof, mth(leaves))


def test_a_single_leaf_tree_needs_an_empty_proof() -> None:
    v.verify_inclusion(0, 1, LEAVES[0], [], LEAVES[0])
    with pytest.raises(VerificationError, match="too long"):
        v.verify_inclusion(0, 1, LEAVES[0], [LEAVES[1]], LEAVES[0])


# ---- consistency proofs ------------------------------------------------------------------------


@pytest.mark.parametrize(("m", "n"), [(1, 2), (1, 9), (2, 3), (3, 7), (4, 8), (4, 9), (6, 8)])
def test_consistency_proofs_from_the_rfc_verify(m: int, n: int) -> None:
    proof = consistency_path(m, LEAVES[:n])
    v.verify_consistency(m, n, proof, mth(LEAVES[:m]), mth(LEAVES[:n]))


@pytest.mark.parametrize(("m", "n"), [(2, 3), (3, 7), (4, 9)])
def test_consistency_with_a_wrong_root_fails_with_evidence(m: int, n: int) -> None:
    proof = consistency_path(m, LEAVES[:n])
    old, new = mth(LEAVES[:m]), mth(LEAVES[:n])
    with pytest.raises(VerificationError, match=r"^new root does not match$") as caught:
        v.verify_consistency(m, n, proof, old, sha(b"other"))
    assert (caught.value.expected, caught.value.computed) == (sha(b"other"), new)
    if m & (m - 1):  # not a power of two: the old root is rebuilt from the proof
        with pytest.raises(VerificationError, match=r"^old root does not match$") as caught:
            v.verify_consistency(m, n, proof, sha(b"other"), new)
        assert (caught.value.expected, caught.value.computed) == (sha(b"other"), old)


def test_consistency_proof_of_a_power_of_two_prefix_starts_from_the_old_root() -> None:
    proof = consistency_path(4, LEAVES[:9])
    assert len(proof) == 2
    with pytest.raises(VerificationError):
        v.verify_consistency(4, 9, proof, mth(LEAVES[:3]), mth(LEAVES[:9]))


@pytest.mark.parametrize(("m", "n"), [(0, 3), (-1, 3), (4, 3), (0, 0)])
def test_consistency_sizes_must_grow_from_one(m: int, n: int) -> None:
    with pytest.raises(VerificationError) as caught:
        v.verify_consistency(m, n, [LEAVES[0]], LEAVES[0], LEAVES[1])
    assert str(caught.value) == f"sizes {m} and {n} are not 0 < old <= new"


def test_equal_sizes_need_an_empty_proof_and_equal_roots() -> None:
    root = mth(LEAVES[:3])
    v.verify_consistency(3, 3, [], root, root)
    message = "^equal sizes need an empty proof and equal roots$"
    with pytest.raises(VerificationError, match=message) as caught:
        v.verify_consistency(3, 3, [], root, LEAVES[0])
    assert (caught.value.expected, caught.value.computed) == (root, LEAVES[0])
    with pytest.raises(VerificationError, match=message):
        v.verify_consistency(3, 3, [LEAVES[0]], root, root)


def test_consistency_proof_of_the_wrong_length_is_refused() -> None:
    proof = consistency_path(3, LEAVES[:7])
    old, new = mth(LEAVES[:3]), mth(LEAVES[:7])
    with pytest.raises(VerificationError, match=r"^consistency proof is empty$"):
        v.verify_consistency(3, 7, [], old, new)
    with pytest.raises(VerificationError, match=r"^consistency proof is too short$"):
        v.verify_consistency(3, 7, proof[:-1], old, new)
    with pytest.raises(VerificationError, match=r"^consistency proof is too long$"):
        v.verify_consistency(3, 7, [*proof, LEAVES[0]], old, new)


# ---- keys and notes ----------------------------------------------------------------------------

LOG_NAME = "example.test/log"
LOG_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
WITNESS_NAME = "witness.test/w1"
WITNESS_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))


def public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def kid(name: str, key_type: int, key: Ed25519PrivateKey) -> bytes:
    return sha(name.encode() + b"\n" + bytes([key_type]) + public(key))[:4]


def vkey(name: str, key: Ed25519PrivateKey, key_type: int = 1) -> str:
    return f"{name}+{kid(name, key_type, key).hex()}+{b64(bytes([key_type]) + public(key))}"


def body(size: int = 5, origin: str = LOG_NAME, root: bytes | None = None) -> str:
    root = mth(LEAVES[:size]) if root is None else root
    return f"{origin}\n{size}\n{b64(root)}\n"


def log_signature(text: str, name: str = LOG_NAME, key: Ed25519PrivateKey = LOG_KEY) -> str:
    raw = kid(name, 1, key) + key.sign(text.encode())
    return f"\u2014 {name} {b64(raw)}\n"


def cosignature(text: str, timestamp: int, signed_time: int | None = None) -> str:
    message = f"cosignature/v1\ntime {timestamp if signed_time is None else signed_time}\n{text}"
    raw = kid(WITNESS_NAME, 4, WITNESS_KEY) + timestamp.to_bytes(8, "big")
    raw += WITNESS_KEY.sign(message.encode())
    return f"\u2014 {WITNESS_NAME} {b64(raw)}\n"


def test_key_id_is_the_first_four_bytes_of_the_c2sp_hash() -> None:
    assert v.key_id(LOG_NAME, 1, public(LOG_KEY)) == kid(LOG_NAME, 1, LOG_KEY)
    assert v.key_id(LOG_NAME, 4, public(LOG_KEY)) == kid(LOG_NAME, 4, LOG_KEY)


def test_parse_vkey_reads_log_and_witness_keys() -> None:
    key = v.parse_vkey(vkey(LOG_NAME, LOG_KEY))
    assert key == v.VerifierKey(LOG_NAME, kid(LOG_NAME, 1, LOG_KEY), 1, public(LOG_KEY))
    witness = v.parse_vkey(vkey(WITNESS_NAME, WITNESS_KEY, 4))
    assert witness == v.VerifierKey(
        WITNESS_NAME, kid(WITNESS_NAME, 4, WITNESS_KEY), 4, public(WITNESS_KEY)
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"{LOG_NAME}+abc+AAAA", "verifier key is not name+keyid+key"),
        (f"{LOG_NAME}+abcdef012+AAAA", "verifier key is not name+keyid+key"),
        (f"{LOG_NAME}+abcdef01", "verifier key is not name+keyid+key"),
        ("+00000000+AAAA", "key name is empty or contains '+' or whitespace"),
        ("a\tb+00000000+AAAA", "key name is empty or contains '+' or whitespace"),
        (f"{LOG_NAME}+00000000+AAAA", "verifier key is not an Ed25519 key"),
        (
            f"{LOG_NAME}+00000000+{b64(bytes([2]) + bytes(32))}",
            "verifier key is not an Ed25519 key",
        ),
        (
            f"{LOG_NAME}+00000000+{b64(bytes([1]) + bytes(31))}",
            "verifier key is not an Ed25519 key",
        ),
        (f"{LOG_NAME}+00000000+{b64(bytes([1]) + public(LOG_KEY))}", "does not match its key"),
        (f"{LOG_NAME}+00000000+@@@@", "verifier key is not valid base64"),
    ],
)
def test_parse_vkey_refuses_malformed_keys(text: str, message: str) -> None:
    with pytest.raises(VerificationError) as caught:
        v.parse_vkey(text)
    assert message in str(caught.value)


def test_parse_vkey_accepts_an_upper_case_key_id_and_surrounding_space() -> None:
    name, hex_id, encoded = vkey(WITNESS_NAME, WITNESS_KEY, 4).split("+")
    key = v.parse_vkey(f"  {name}+{hex_id.upper()}+{encoded}\n")
    assert (key.name, key.key_type, key.key_id) == (
        WITNESS_NAME,
        4,
        kid(WITNESS_NAME, 4, WITNESS_KEY),
    )


def test_split_note_returns_the_body_and_each_signature() -> None:
    text = body() + "\n" + log_signature(body()) + cosignature(body(), 7)
    found_body, signatures = v.split_note(text)
    assert found_body == body()
    assert [name for name, _ in signatures] == [LOG_NAME, WITNESS_NAME]
    assert signatures[0][1][:4] == kid(LOG_NAME, 1, LOG_KEY)
    assert len(signatures[1][1]) == 4 + 8 + 64


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("origin\n5\nroot\n", "note has no blank line before its signatures"),
        ("origin\n\n\u2014 a AAAAAAAA", "note has no blank line before its signatures"),
        ("origin\n\n- a AAAAAAAA\n", "malformed signature line in note"),
        ("origin\n\n\u2014 a \n", "malformed signature line in note"),
        ("origin\n\n\u2014 a AAAA AAAA\n", "malformed signature line in note"),
        ("origin\n\n\u2014 a AAAAAA==\n", "note signature is too short"),
        ("origin\n\n\u2014 a+b AAAAAAAA\n", "key name is empty or contains '+' or whitespace"),
        ("origin\n\n\u2014 a AAAAAAA*\n", "note signature is not valid base64"),
    ],
)
def test_split_note_refuses_malformed_notes(text: str, message: str) -> None:
    with pytest.raises(VerificationError) as caught:
        v.split_note(text)
    assert str(caught.value) == message


def test_a_five_byte_signature_is_long_enough_to_split() -> None:
    _, signatures = v.split_note("o\n\n\u2014 a " + b64(bytes(5)) + "\n")
    assert signatures == [("a", bytes(5))]


def test_cosigned_message_is_the_c2sp_layout() -> None:
    assert (
        v.cosigned_message("o\n5\nr\n", 1700000000) == b"cosignature/v1\ntime 1700000000\no\n5\nr\n"
    )


LOG_VKEY = vkey(LOG_NAME, LOG_KEY)
WITNESS_VKEY = vkey(WITNESS_NAME, WITNESS_KEY, 4)


def test_checkpoint_signed_by_the_log_and_cosigned_by_the_witness_verifies() -> None:
    text = body() + "\n" + log_signature(body()) + cosignature(body(), 1700000000)
    cp = v.verify_checkpoint(text, v.parse_vkey(LOG_VKEY), [v.parse_vkey(WITNESS_VKEY)])
    assert cp == v.Checkpoint(LOG_NAME, 5, mth(LEAVES[:5]), body())


def test_checkpoint_with_extension_lines_verifies() -> None:
    text = body() + "extra line\n"
    cp = v.verify_checkpoint(text + "\n" + log_signature(text), v.parse_vkey(LOG_VKEY))
    assert (cp.size, cp.body) == (5, text)


def test_signatures_by_unknown_keys_are_ignored() -> None:
    stranger = Ed25519PrivateKey.from_private_bytes(bytes(32))
    text = body() + "\n" + log_signature(body(), "stranger.test", stranger) + log_signature(body())
    assert v.verify_checkpoint(text, v.parse_vkey(LOG_VKEY)).size == 5
    # a signature under the log's name but another key id is not the log's
    other = body() + "\n" + log_signature(body(), LOG_NAME, stranger)
    with pytest.raises(VerificationError) as caught:
        v.verify_checkpoint(other, v.parse_vkey(LOG_VKEY))
    assert str(caught.value) == f"checkpoint lacks a valid signature by {LOG_NAME}"


def test_a_missing_cosignature_is_named() -> None:
    text = body() + "\n" + log_signature(body())
    with pytest.raises(VerificationError) as caught:
        v.verify_checkpoint(text, v.parse_vkey(LOG_VKEY), [v.parse_vkey(WITNESS_VKEY)])
    assert str(caught.value) == f"checkpoint lacks a valid signature by {WITNESS_NAME}"


def test_a_cosignature_over_another_time_is_invalid() -> None:
    text = body() + "\n" + log_signature(body()) + cosignature(body(), 1700000000, 1700000001)
    with pytest.raises(VerificationError) as caught:
        v.verify_checkpoint(text, v.parse_vkey(LOG_VKEY), [v.parse_vkey(WITNESS_VKEY)])
    assert str(caught.value) == f"invalid signature by {WITNESS_NAME}"


def test_a_forged_log_signature_is_invalid() -> None:
    text = body() + "\n" + log_signature(body(6))
    with pytest.raises(VerificationError) as caught:
        v.verify_checkpoint(text, v.parse_vkey(LOG_VKEY))
    assert str(caught.value) == f"invalid signature by {LOG_NAME}"


def test_a_signature_of_the_wrong_length_is_refused() -> None:
    raw = kid(LOG_NAME, 1, LOG_KEY) + LOG_KEY.sign(body().encode()) + b"x"
    text = body() + f"\n\u2014 {LOG_NAME} {b64(raw)}\n"
    with pytest.raises(VerificationError) as caught:
        v.verify_checkpoint(text, v.parse_vkey(LOG_VKEY))
    assert str(caught.value) == f"signature by {LOG_NAME} has the wrong length"


@pytest.mark.parametrize(
    "text",
    [
        f"{LOG_NAME}\n05\n{b64(mth(LEAVES[:5]))}\n",
        f"{LOG_NAME}\n-5\n{b64(mth(LEAVES[:5]))}\n",
        f"{LOG_NAME}\n5\n",
        f"\n5\n{b64(mth(LEAVES[:5]))}\n",
        f"{LOG_NAME}\n\u0665\n{b64(mth(LEAVES[:5]))}\n",
    ],
    ids=["leading-zero", "negative", "no-root", "no-origin", "arabic-digit"],
)
def test_checkpoint_body_must_be_origin_size_root(text: str) -> None:
    with pytest.raises(VerificationError) as caught:
        v.verify_checkpoint(text + "\n" + log_signature(text), v.parse_vkey(LOG_VKEY))
    assert str(caught.value) == "checkpoint body is not origin, size, root"


def test_checkpoint_of_size_zero_verifies() -> None:
    text = f"{LOG_NAME}\n0\n{b64(sha(b''))}\n"
    cp = v.verify_checkpoint(text + "\n" + log_signature(text), v.parse_vkey(LOG_VKEY))
    assert (cp.size, cp.root) == (0, sha(b""))


def test_checkpoint_root_must_be_a_hash() -> None:
    text = f"{LOG_NAME}\n5\n{b64(bytes(31))}\n"
    with pytest.raises(VerificationError) as caught:
        v.verify_checkpoint(text + "\n" + log_signature(text), v.parse_vkey(LOG_VKEY))
    assert str(caught.value) == "checkpoint root is 31 bytes, not 32"


def test_checkpoint_of_another_origin_is_refused() -> None:
    text = body(origin="other.test/log")
    with pytest.raises(VerificationError) as caught:
        v.verify_checkpoint(text + "\n" + log_signature(text), v.parse_vkey(LOG_VKEY))
    assert str(caught.value) == f"checkpoint origin 'other.test/log' is not the key's '{LOG_NAME}'"


# ---- entries -----------------------------------------------------------------------------------


def checkpoint(size: int) -> v.Checkpoint:
    return v.Checkpoint(LOG_NAME, size, mth(LEAVES[:size]), body(size))


def test_entries_rebuild_the_checkpoint_with_or_without_newlines() -> None:
    v.verify_entries([d + b"\n" for d in DATA[:5]], checkpoint(5))
    v.verify_entries(DATA[:5], checkpoint(5))
    v.verify_entries([], checkpoint(0))


def test_entries_out_of_order_are_named_by_position() -> None:
    with pytest.raises(VerificationError) as caught:
        v.verify_entries([DATA[0], DATA[2], DATA[1]], checkpoint(3))
    assert str(caught.value) == "entry 1 records index 2"


def test_entry_without_an_index_is_named() -> None:
    with pytest.raises(VerificationError) as caught:
        v.verify_entries([DATA[0], b'{"x":1}'], checkpoint(2))
    assert str(caught.value) == "entry 1 records index None"


@pytest.mark.parametrize("entry", [b"not json", b"[1]", b'"text"', b"\xff"])
def test_entry_that_is_not_a_json_object_is_named(entry: bytes) -> None:
    with pytest.raises(VerificationError) as caught:
        v.verify_entries([DATA[0], entry], checkpoint(2))
    assert str(caught.value) == "entry 1 is not a JSON object"


def test_too_few_or_too_many_entries_are_counted() -> None:
    with pytest.raises(VerificationError) as caught:
        v.verify_entries(DATA[:4], checkpoint(5))
    assert str(caught.value) == "4 entries, checkpoint says 5"
    with pytest.raises(VerificationError) as caught:
        v.verify_entries(DATA[:6], checkpoint(5))
    assert str(caught.value) == "6 entries, checkpoint says 5"


def test_entries_that_do_not_rebuild_the_root_fail_with_evidence() -> None:
    changed = [*DATA[:4], b'{"index":4,"x":1}']
    with pytest.raises(VerificationError) as caught:
        v.verify_entries(changed, checkpoint(5))
    assert str(caught.value) == "entries do not rebuild the checkpoint root"
    assert caught.value.expected == mth(LEAVES[:5])
    assert caught.value.computed == mth([leaf(d) for d in changed])


# ---- command line ------------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    text = body() + "\n" + log_signature(body()) + cosignature(body(), 42)
    (tmp_path / "cp.txt").write_text(text, encoding="utf-8")
    (tmp_path / "entries.jsonl").write_bytes(b"".join(d + b"\n" for d in DATA[:5]))
    (tmp_path / "short.jsonl").write_bytes(b"".join(d + b"\n" for d in DATA[:4]))
    (tmp_path / "entry.json").write_bytes(DATA[3] + b"\n")
    inclusion = {
        "index": 3,
        "tree_size": 5,
        "leaf_hash": b64(LEAVES[3]),
        "root_hash": b64(mth(LEAVES[:5])),
        "proof": [b64(h) for h in inclusion_path(3, LEAVES[:5])],
    }
    (tmp_path / "inclusion.json").write_text(json.dumps(inclusion), encoding="utf-8")
    wrong_leaf = {**inclusion, "leaf_hash": b64(LEAVES[2])}
    (tmp_path / "wrong_leaf.json").write_text(json.dumps(wrong_leaf), encoding="utf-8")
    consistency = {
        "old_size": 3,
        "new_size": 5,
        "old_root": b64(mth(LEAVES[:3])),
        "new_root": b64(mth(LEAVES[:5])),
        "proof": [b64(h) for h in consistency_path(3, LEAVES[:5])],
    }
    (tmp_path / "consistency.json").write_text(json.dumps(consistency), encoding="utf-8")
    return tmp_path


ROOT5 = b64(mth(LEAVES[:5]))


@pytest.mark.parametrize(
    ("args", "status", "stdout", "stderr"),
    [
        (
            ["checkpoint", "cp.txt", "--vkey", LOG_VKEY],
            0,
            f"checkpoint verified: {LOG_NAME} size 5 root {ROOT5}\n",
            "",
        ),
        (
            ["checkpoint", "cp.txt", "--vkey", LOG_VKEY, "--witness", WITNESS_VKEY],
            0,
            f"checkpoint verified: {LOG_NAME} size 5 root {ROOT5}\n",
            "",
        ),
        (
            ["entries", "entries.jsonl", "--checkpoint", "cp.txt", "--vkey", LOG_VKEY],
            0,
            f"5 entries verified against root {ROOT5}\n",
            "",
        ),
        (
            ["entries", "short.jsonl", "--checkpoint", "cp.txt", "--vkey", LOG_VKEY],
            1,
            "",
            "NOT VERIFIED: 4 entries, checkpoint says 5\n",
        ),
        (["inclusion", "inclusion.json"], 0, "inclusion proof verified at size 5\n", ""),
        (
            ["inclusion", "inclusion.json", "--checkpoint", "cp.txt", "--vkey", LOG_VKEY],
            0,
            "inclusion proof verified at size 5\n",
            "",
        ),
        (
            ["inclusion", "wrong_leaf.json", "--entry", "entry.json"],
            0,
            "inclusion proof verified at size 5\n",
            "",
        ),
        (["consistency", "consistency.json"], 0, "consistency proof verified at size 5\n", ""),
        (
            ["consistency", "consistency.json", "--checkpoint", "cp.txt", "--vkey", LOG_VKEY],
            0,
            "consistency proof verified at size 5\n",
            "",
        ),
        (["entries", "entries.jsonl"], 2, "", "error: entries needs --checkpoint\n"),
        (["checkpoint", "cp.txt"], 2, "", "error: checkpoint needs --vkey\n"),
        (
            ["inclusion", "inclusion.json", "--checkpoint", "cp.txt"],
            2,
            "",
            "error: inclusion needs --vkey\n",
        ),
    ],
)
def test_command_line_output_and_status(
    files: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    status: int,
    stdout: str,
    stderr: str,
) -> None:
    assert v.main(args) == status
    assert capsys.readouterr() == (stdout, stderr)


def test_command_line_failure_prints_the_evidence(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert v.main(["inclusion", "wrong_leaf.json"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    computed = v._walk(3, 4, LEAVES[2], inclusion_path(3, LEAVES[:5]), "inclusion")[1]
    assert err == (
        "NOT VERIFIED: inclusion proof for index 3 does not lead to the root\n"
        f"expected: {ROOT5}\ncomputed: {b64(computed)}\n"
    )


def test_command_line_missing_witness_signature_is_not_verified(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = vkey("witness.test/w2", WITNESS_KEY, 4)
    assert v.main(["checkpoint", "cp.txt", "--vkey", LOG_VKEY, "--witness", other]) == 1
    assert capsys.readouterr().err == (
        "NOT VERIFIED: checkpoint lacks a valid signature by witness.test/w2\n"
    )


def test_command_line_proof_for_another_tree_than_the_checkpoint(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proof = {
        "index": 0,
        "tree_size": 1,
        "leaf_hash": b64(LEAVES[0]),
        "root_hash": b64(LEAVES[0]),
        "proof": [],
    }
    Path("one.json").write_text(json.dumps(proof), encoding="utf-8")
    assert v.main(["inclusion", "one.json"]) == 0
    capsys.readouterr()
    assert v.main(["inclusion", "one.json", "--checkpoint", "cp.txt", "--vkey", LOG_VKEY]) == 1
    assert capsys.readouterr().err == (
        "NOT VERIFIED: proof is for another tree than the checkpoint\n"
    )


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "not a proof (a JSON object with a proof list)"),
        ({"proof": "x"}, "not a proof (a JSON object with a proof list)"),
    ],
)
def test_command_line_refuses_what_is_not_a_proof(
    files: Path, capsys: pytest.CaptureFixture[str], document: object, message: str
) -> None:
    Path("bad.json").write_text(json.dumps(document), encoding="utf-8")
    assert v.main(["consistency", "bad.json"]) == 1
    assert capsys.readouterr().err == f"NOT VERIFIED: bad.json: {message}\n"


def test_command_line_unreadable_input_is_status_2(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert v.main(["inclusion", "missing.json"]) == 2
    assert capsys.readouterr().err.startswith("error: cannot read input (FileNotFoundError: ")
    Path("partial.json").write_text(json.dumps({"proof": []}), encoding="utf-8")
    assert v.main(["inclusion", "partial.json"]) == 2
    assert capsys.readouterr().err.startswith("error: cannot read input (KeyError: ")


def test_a_cosignature_time_uses_all_eight_bytes() -> None:
    timestamp = 2**56 + 2**32 + 7  # every byte of the 8-byte time matters
    text = body() + "\n" + log_signature(body()) + cosignature(body(), timestamp)
    cp = v.verify_checkpoint(text, v.parse_vkey(LOG_VKEY), [v.parse_vkey(WITNESS_VKEY)])
    assert cp.size == 5


@pytest.mark.parametrize(
    ("command", "field", "label"),
    [
        ("inclusion", "leaf_hash", "leaf hash"),
        ("inclusion", "root_hash", "root"),
        ("consistency", "new_root", "root"),
        ("consistency", "old_root", "old root"),
    ],
)
def test_command_line_names_the_field_that_is_not_a_hash(
    files: Path, capsys: pytest.CaptureFixture[str], command: str, field: str, label: str
) -> None:
    document = json.loads(Path(f"{command}.json").read_text(encoding="utf-8"))
    document[field] = b64(bytes(31))
    Path("short.json").write_text(json.dumps(document), encoding="utf-8")
    assert v.main([command, "short.json"]) == 1
    assert capsys.readouterr().err == f"NOT VERIFIED: {label} is 31 bytes, not 32\n"


def test_command_line_names_a_proof_hash_that_is_not_a_hash(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads(Path("inclusion.json").read_text(encoding="utf-8"))
    document["proof"][0] = b64(bytes(33))
    Path("short.json").write_text(json.dumps(document), encoding="utf-8")
    assert v.main(["inclusion", "short.json"]) == 1
    assert capsys.readouterr().err == "NOT VERIFIED: proof hash is 33 bytes, not 32\n"
