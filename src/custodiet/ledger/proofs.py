"""The proofs a ledger serves, as the JSON documents docs/ledger.md §4 gives (hashes in base64)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from custodiet.ledger.verify import b64


@dataclass(frozen=True)
class InclusionProof:
    index: int
    tree_size: int
    leaf_hash: bytes
    proof: list[bytes]
    root_hash: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "tree_size": self.tree_size,
            "leaf_hash": b64(self.leaf_hash),
            "proof": [b64(h) for h in self.proof],
            "root_hash": b64(self.root_hash),
        }


@dataclass(frozen=True)
class ConsistencyProof:
    old_size: int
    new_size: int
    proof: list[bytes]
    old_root: bytes
    new_root: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "old_size": self.old_size,
            "new_size": self.new_size,
            "proof": [b64(h) for h in self.proof],
            "old_root": b64(self.old_root),
            "new_root": b64(self.new_root),
        }
