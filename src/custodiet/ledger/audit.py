"""Full verification of a stored ledger: every entry, every stored node, every checkpoint.

Re-hashes each entry, recomputes each level of the tree from the one below and compares it
with the stored nodes that proofs are served from, then checks every stored checkpoint's
signature and root, and optionally an earlier checkpoint an overseer kept (truncation,
rollback, forks). The first discrepancy raises TamperedError naming the index and both hashes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from custodiet.errors import InputError, TamperedError
from custodiet.ledger import audit_pool, tree
from custodiet.ledger.verify import (
    Checkpoint,
    VerificationError,
    VerifierKey,
    b64,
    leaf_hashes,
    next_level,
    parse_vkey,
    verify_checkpoint,
    verify_consistency,
)
from custodiet.ledger.writer import Ledger

if TYPE_CHECKING:
    from custodiet.progress import Progress

READ_CHUNK = 1 << 16


@dataclass(frozen=True)
class AuditReport:
    size: int
    root: bytes
    checkpoints: int


def tampered(
    message: str, *, code: str, index: int | None = None, **hashes: bytes
) -> TamperedError:
    evidence = ", ".join(f"{label} {b64(value)}" for label, value in hashes.items())
    where = f"ledger entry {index}: " if index is not None else "ledger: "
    return TamperedError(
        f"{where}{message}" + (f" ({evidence})" if evidence else ""),
        hint="the stored log differs from what was signed; keep the store and report it",
        code=code,
    )


def _leaf_level(ledger: Ledger, size: int, progress: Progress | None = None) -> list[bytes]:
    """The leaf hashes of entries 0 .. size - 1 (the store's size is one past the highest
    index), after checking that none is missing; read in chunks so the entries' bytes are
    never all in memory at once (``progress`` hears of the entries hashed, chunk by chunk)."""
    hashes: list[bytes] = []
    for start in range(0, size, READ_CHUNK):
        if progress is not None:
            progress(start, size)
        data = ledger.store.entry_data(start, min(size, start + READ_CHUNK))
        if len(data) != min(READ_CHUNK, size - start):
            stored = ledger.store.entries(start, size)
            position, index = next((p, i) for p, (i, _) in enumerate(stored, start) if i != p)
            raise tampered(
                f"is missing (next stored entry is {index})", code="CUST111", index=position
            )
        hashes += leaf_hashes(data)
    return hashes


def _check_recorded_index(position: int, data: bytes) -> None:
    try:
        recorded = json.loads(data).get("index")
    except (ValueError, AttributeError):
        raise tampered("is not a JSON object", code="CUST112", index=position) from None
    if recorded != position:
        raise tampered(f"records index {recorded}", code="CUST112", index=position)


def _stored_hashes(tiles: Iterable[tuple[int, bytes]]) -> Iterator[tuple[int, bytes]]:
    for tile, blob in tiles:
        for offset, value in enumerate(tree.hashes_of(blob)):
            yield tile * tree.TILE_WIDTH + offset, value


def _compare_level(ledger: Ledger, level: int, computed: list[bytes]) -> None:
    """The stored tiles of tree level ``level`` hold exactly the ``computed`` hashes; compared
    tile by tile as bytes, searching hash by hash only to name the first difference."""
    stored = ledger.store.tile_level(level // tree.TILE_HEIGHT)
    joined = b"".join(computed)
    expected = [
        (tile, joined[at : at + tree.TILE_BYTES])
        for tile, at in enumerate(range(0, len(joined), tree.TILE_BYTES))
    ]
    if list(stored) == expected:
        return
    seen = 0
    for position, value in _stored_hashes(stored):
        if seen < position and seen < len(computed):
            break
        if position >= len(computed) or position != seen:
            raise tampered(
                f"unexpected stored node at level {level}", code="CUST113", index=position << level
            )
        if value != computed[position]:
            if level == 0:
                _check_recorded_index(position, ledger.entry(position))
            raise tampered(
                f"stored {'leaf hash' if level == 0 else f'node at level {level}'} is wrong",
                code="CUST113",
                index=position << level,
                expected=value,
                computed=computed[position],
            )
        seen += 1
    raise tampered(
        f"a stored node at level {level} is missing", code="CUST113", index=seen << level
    )


def _tree_nodes(
    ledger: Ledger, size: int, keep: set[int], jobs: int, progress: Progress | None = None
) -> dict[int, bytes]:
    """Check every stored tile level by level; return the recomputed nodes whose keys are kept.
    With several jobs the levels below a span height are checked span by span in worker
    processes; any difference there is then looked for again here, level by level."""
    if progress is not None:
        progress(0, size)
    spans = audit_pool.checked_spans(ledger.store.url, size, jobs, keep)
    if spans is None:
        return _nodes_from(ledger, 0, _leaf_level(ledger, size, progress), keep, {})
    top, nodes = spans
    return _nodes_from(ledger, top, nodes.top_nodes, keep, nodes.kept)


def _nodes_from(
    ledger: Ledger, level: int, level_hashes: list[bytes], keep: set[int], kept: dict[int, bytes]
) -> dict[int, bytes]:
    """From the complete nodes of ``level`` up: compare stored tiles, collect the kept nodes."""
    wanted = [tree.split_key(key) for key in keep]
    while level_hashes:
        if level % tree.TILE_HEIGHT == 0:
            _compare_level(ledger, level, level_hashes)
        kept.update(
            (tree.node_key(lvl, idx), level_hashes[idx]) for lvl, idx in wanted if lvl == level
        )
        level_hashes = next_level(level_hashes)
        level += 1
    return kept


def _root(size: int, nodes: dict[int, bytes]) -> bytes:
    return tree.range_hash(0, size, nodes.__getitem__) if size else tree.EMPTY_ROOT


def _checked(note: str, log_key: VerifierKey, what: str) -> Checkpoint:
    try:
        return verify_checkpoint(note, log_key)
    except VerificationError as exc:
        raise tampered(f"{what} does not verify: {exc}", code="CUST114") from None


def log_key(vkey: str) -> VerifierKey:
    try:
        return parse_vkey(vkey)
    except VerificationError as exc:
        raise InputError(
            f"--key: not a log verifier key ({exc})",
            hint="pass the output of `custodiet ledger key`",
            code="CUST228",
        ) from None


Keys = Sequence[tuple[VerifierKey, int]]
"""A log's key history: each key with the first checkpoint size it signs, oldest first."""


def key_history(vkeys: Iterable[tuple[str, int]]) -> list[tuple[VerifierKey, int]]:
    """A pinned key history (``PinnedLog.history``) parsed."""
    return [(log_key(vkey), size) for vkey, size in vkeys]


def _key_at(keys: Keys, size: int) -> VerifierKey:
    return [key for key, from_size in keys if from_size <= size or key is keys[0][0]][-1]


def _checked_earlier(note: str, keys: Keys, what: str) -> Checkpoint:
    """``note`` verified under whichever key of the history signed it, which must be the key
    in force at its size."""
    for key, _ in keys[:-1]:
        try:
            found = verify_checkpoint(note, key)
        except VerificationError:
            continue
        if _key_at(keys, found.size) is not key:
            raise tampered(f"{what} is signed by a key not in force at its size", code="CUST114")
        return found
    found = _checked(note, keys[-1][0], what)
    if _key_at(keys, found.size) is not keys[-1][0]:
        raise tampered(f"{what} is signed by a key not in force at its size", code="CUST114")
    return found


def audit(
    ledger: Ledger,
    log_key: VerifierKey | Keys,
    earlier: str | Sequence[str] | None = None,
    jobs: int = 1,
    progress: Progress | None = None,
) -> AuditReport:
    """Verify the whole stored log (and consistency with ``earlier`` checkpoint notes: one an
    overseer kept, the workspace's pinned one), the entries and lower tree levels in ``jobs``
    worker processes when there are enough leaves. ``log_key`` is the log's key, or its key
    history: each stored checkpoint must verify under the key in force at its size.
    ``progress`` hears of the entries re-hashed so far."""
    keys: Keys = [(log_key, 1)] if isinstance(log_key, VerifierKey) else log_key
    size = ledger.size()
    stored = [
        _checked(note, _key_at(keys, n), f"stored checkpoint {n}")
        for n, note in ledger.store.checkpoints()
    ]
    notes = [earlier] if isinstance(earlier, str) else list(earlier or ())
    olds = [_checked_earlier(note, keys, "the earlier checkpoint") for note in notes]
    sizes = [cp.size for cp in stored] + [old.size for old in olds]
    too_big = [n for n in sizes if n > size]
    if too_big:
        raise tampered(
            f"a checkpoint of size {max(too_big)} exists but only {size} entries", code="CUST115"
        )
    keep = set(tree.keys_for([(0, n) for n in [*sizes, size] if n]))
    nodes = _tree_nodes(ledger, size, keep, jobs, progress)
    if progress is not None:
        progress(size, size)
    for cp in [*stored, *olds]:
        computed = _root(cp.size, nodes)
        if computed != cp.root:
            raise tampered(
                f"root at size {cp.size} differs from the signed checkpoint",
                code="CUST116",
                expected=cp.root,
                computed=computed,
            )
    for old in olds:
        if not old.size:
            continue
        proof = ledger.consistency_proof(old.size, size)
        try:
            verify_consistency(old.size, size, proof.proof, old.root, _root(size, nodes))
        except VerificationError as exc:
            raise tampered(
                f"not consistent with the earlier checkpoint: {exc}", code="CUST117"
            ) from None
    return AuditReport(size, _root(size, nodes), len(stored))
