"""What ``ledger entries`` and ``ledger proof`` print is checked before it is printed.

Entries are compared with the leaf hashes the stored tree holds; an inclusion proof is checked
from the entry's own bytes to the root of the latest signed checkpoint (through a consistency
proof when it is for an earlier size). A difference is CUST129: nothing is printed past it.
"""

from __future__ import annotations

from collections.abc import Iterator

from custodiet.errors import TamperedError
from custodiet.ledger import tree
from custodiet.ledger.proofs import InclusionProof
from custodiet.ledger.store import RESTORE_HINT
from custodiet.ledger.verify import (
    VerificationError,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from custodiet.ledger.writer import Ledger

CHUNK = 1 << 12


def served_fault(message: str) -> TamperedError:
    return TamperedError(
        f"ledger: {message}; run `custodiet ledger verify`", hint=RESTORE_HINT, code="CUST129"
    )


def checked_entries(ledger: Ledger, start: int, end: int) -> Iterator[list[bytes]]:
    """The data of entries start .. end - 1, each checked against its stored leaf hash, in
    chunks of CHUNK entries: a chunk is yielded only once all of it checked."""
    for first in range(start, end, CHUNK):
        last = min(end, first + CHUNK)
        tiles = dict(
            ledger.store.tile_level(0, first // tree.TILE_WIDTH, -(-last // tree.TILE_WIDTH))
        )
        expected, chunk = first, []
        for index, data in ledger.store.entries(first, last):
            if index != expected:
                raise served_fault(f"entry {expected} is missing")
            tile, slot = divmod(index, tree.TILE_WIDTH)
            stored = tiles.get(tile, b"")[slot * tree.HASH : (slot + 1) * tree.HASH]
            if leaf_hash(data) != stored:
                raise served_fault(f"entry {index} differs from its stored leaf hash")
            expected += 1
            chunk.append(data)
        if expected != last:
            raise served_fault(f"entry {expected} is missing")
        yield chunk


def checked_inclusion_proof(ledger: Ledger, index: int, size: int | None) -> InclusionProof:
    """An inclusion proof checked from the entry's bytes up to the latest signed root."""
    proof = ledger.inclusion_proof(index, size)
    signed, _ = ledger.signed_checkpoint()
    stored = [data for _, data in ledger.store.entries(index, index + 1)]
    if [leaf_hash(data) for data in stored] != [proof.leaf_hash]:
        raise served_fault(f"entry {index} differs from its stored leaf hash")
    try:
        verify_inclusion(index, proof.tree_size, proof.leaf_hash, proof.proof, proof.root_hash)
        if proof.tree_size == signed.size:
            verify_consistency(signed.size, signed.size, [], proof.root_hash, signed.root)
        else:
            consistency = ledger.consistency_proof(proof.tree_size, signed.size)
            verify_consistency(
                proof.tree_size, signed.size, consistency.proof, proof.root_hash, signed.root
            )
    except VerificationError:
        raise served_fault(
            f"the proof for entry {index} does not lead to the signed checkpoint"
        ) from None
    return proof
