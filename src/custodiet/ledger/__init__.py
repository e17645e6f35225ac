"""The ledger: an RFC 9162 Merkle-tree log of every access (format: docs/ledger.md)."""
