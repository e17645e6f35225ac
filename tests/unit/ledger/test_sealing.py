"""The writer signs nothing its stored tail does not give: every refusal of ``check_tail``."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodiet.errors import TamperedError
from custodiet.ledger import note, sealing, tree
from custodiet.ledger.verify import leaf_hashes, parse_vkey

ORIGIN = "custodiet.test/sealing"
KEY = Ed25519PrivateKey.generate()
LOG_KEY = parse_vkey(note.vkey(ORIGIN, KEY))
TILES = tree.grow(0, {}, leaf_hashes([b"%d" % n for n in range(5)]))
SEALED = sealing.seal(ORIGIN, KEY, 5, TILES)
SIGNED = SEALED[0]


def test_a_consistent_tail_passes() -> None:
    sealing.check_tail(5, (5, SIGNED), LOG_KEY, TILES)
    sealing.check_tail(0, None, LOG_KEY, {})
    sealing.check_tail(5, (5, SIGNED), LOG_KEY, TILES, SEALED)


def test_a_note_this_process_sealed_still_has_its_root_checked() -> None:
    with pytest.raises(TamperedError) as caught:
        sealing.check_tail(5, (5, SIGNED), LOG_KEY, flipped(TILES), SEALED)
    assert caught.value.code == "CUST125"


def flipped(tiles: dict[int, bytes]) -> dict[int, bytes]:
    key = next(iter(tiles))
    return {**tiles, key: bytes([tiles[key][0] ^ 1]) + tiles[key][1:]}


@pytest.mark.parametrize(
    ("size", "latest", "tiles", "code", "words"),
    [
        (5, None, TILES, "CUST126", "no signed checkpoint"),
        (6, (5, SIGNED), TILES, "CUST126", "covers 5 entries, the store holds 6"),
        (5, (5, sealing.seal(ORIGIN, KEY, 4, TILES)[0]), TILES, "CUST126", "another size"),
        (5, (5, SIGNED.replace(ORIGIN, "custodiet.test/x", 1)), TILES, "CUST126", "verify"),
        (5, (5, SIGNED), {}, "CUST125", "lacks tree hashes"),
        (5, (5, SIGNED), flipped(TILES), "CUST125", "disagree"),
    ],
    ids=["unsigned", "beyond", "misfiled", "bad-note", "missing-tiles", "flipped-tile"],
)
def test_refuses_to_sign_over_a_bad_tail(size, latest, tiles, code, words) -> None:
    with pytest.raises(TamperedError) as caught:
        sealing.check_tail(size, latest, LOG_KEY, tiles)
    assert caught.value.code == code and words in caught.value.message
    assert "nothing was signed or appended" in caught.value.message
