"""Which stored hashes a root or a proof needs (RFC 9162 §2.1), kept in tiles (as tlog-tiles).

A node ``(level, idx)`` is the hash of the perfect subtree over leaves
``[idx * 2**level, (idx + 1) * 2**level)``; level 0 holds the leaf hashes. Only every
TILE_HEIGHT-th level is stored: tile ``(t, i)`` is one row holding the hashes of nodes
``W*i ... W*i + W - 1`` (W = 2**TILE_HEIGHT = 16) of level ``TILE_HEIGHT*t``, concatenated
(fewer in the rightmost, partial tile). A node of level ``TILE_HEIGHT*t + r`` is recomputed
from the ``2**r`` hashes below it in one tile, so a root or a proof reads O(log n) rows and
hashes at most W - 1 nodes per tile level. Height 4 rather than tlog-tiles' 8 keeps that
work (and the partial tiles each commit rewrites) small. Every subtree the RFC's recursion
names is a run of perfect subtrees, largest first, folded from the right.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence

from custodiet.ledger.verify import next_level, node_hash

Range = tuple[int, int]
KEY_SHIFT = 40
TILE_HEIGHT = 4
TILE_WIDTH = 1 << TILE_HEIGHT
HASH = 32
TILE_BYTES = TILE_WIDTH * HASH
EMPTY_ROOT = hashlib.sha256(b"").digest()


def node_key(level: int, idx: int) -> int:
    """One integer per node (or tile), ordered by level then position (2**40 leaves at most)."""
    return (level << KEY_SHIFT) | idx


def split_key(key: int) -> tuple[int, int]:
    return key >> KEY_SHIFT, key & ((1 << KEY_SHIFT) - 1)


def hashes_of(blob: bytes) -> list[bytes]:
    return [blob[at : at + HASH] for at in range(0, len(blob), HASH)]


def perfect_root(hashes: list[bytes]) -> bytes:
    """MTH of a power-of-two count of hashes."""
    while len(hashes) > 1:
        hashes = next_level(hashes)
    return hashes[0]


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The subtrees whose hashes form PATH(index, D[0:size]), from the leaf up."""
    ranges: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        mid = start + _split(end - start)
        if index < mid:
            ranges.append((mid, end))
            end = mid
        else:
            ranges.append((start, mid))
            start = mid
    return ranges[::-1]


def consistency_ranges(old: int, new: int) -> list[Range]:
    """The subtrees whose hashes form PROOF(old, D[0:new]) (RFC 9162 §2.1.4.1), in order."""
    ranges: list[Range] = []
    start, end, m, whole = 0, new, old, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start, m, whole = start + k, m - k, False
    if not whole:
        ranges.append((start, end))
    return ranges[::-1]


def perfect_keys(start: int, end: int) -> list[int]:
    """The nodes that make up subtree [start, end), largest (leftmost) first."""
    keys = []
    pos, remaining = start, end - start
    for level in range(remaining.bit_length() - 1, -1, -1):
        if remaining >> level & 1:
            keys.append(node_key(level, pos >> level))
            pos += 1 << level
    return keys


def range_hash(start: int, end: int, node: Callable[[int], bytes]) -> bytes:
    """MTH of leaves [start, end) from nodes looked up by key."""
    parts = [node(key) for key in perfect_keys(start, end)]
    acc = parts[-1]
    for left in reversed(parts[:-1]):
        acc = node_hash(left, acc)
    return acc


def keys_for(ranges: Sequence[Range]) -> list[int]:
    return sorted({key for start, end in ranges for key in perfect_keys(start, end)})


def _tile_slot(key: int) -> tuple[int, int, int]:
    """Where node ``key`` comes from: its tile's key, first hash slot there, and slot count."""
    level, idx = split_key(key)
    height = level % TILE_HEIGHT
    first = idx << height
    return node_key(level // TILE_HEIGHT, first >> TILE_HEIGHT), first % TILE_WIDTH, 1 << height


def tile_keys(keys: Sequence[int]) -> list[int]:
    """The tiles holding what the nodes ``keys`` are computed from."""
    return sorted({_tile_slot(key)[0] for key in keys})


def node_from_tiles(key: int, tiles: Mapping[int, bytes]) -> bytes:
    """Node ``key`` recomputed from its tile; KeyError if the tile lacks the hashes."""
    tile, slot, count = _tile_slot(key)
    hashes = hashes_of(tiles[tile][slot * HASH : (slot + count) * HASH])
    if len(hashes) != count or len(hashes[-1]) != HASH:
        raise KeyError(key)
    return perfect_root(hashes)


def partial_tiles(size: int) -> list[int]:
    """The rightmost, partial tile of every tile level of a tree of ``size`` leaves."""
    keys = []
    level, count = 0, size
    while count:
        if count % TILE_WIDTH:
            keys.append(node_key(level, count // TILE_WIDTH))
        level, count = level + 1, count // TILE_WIDTH
    return keys


def _chunks(level: int, first_tile: int, blob: bytes) -> Iterator[tuple[int, bytes]]:
    for at in range(0, len(blob), TILE_BYTES):
        yield node_key(level, first_tile + at // TILE_BYTES), blob[at : at + TILE_BYTES]


def grow(size: int, partial: Mapping[int, bytes], leaves: Sequence[bytes]) -> dict[int, bytes]:
    """The tiles (key -> blob) to write when ``leaves`` are appended to a tree of ``size``
    leaves, whose partial tiles are ``partial``; KeyError if one of them is missing or short."""
    written: dict[int, bytes] = {}
    level, count, new = 0, size, list(leaves)
    while new:
        first_tile, held = divmod(count, TILE_WIDTH)
        row = partial[node_key(level, first_tile)] if held else b""
        if len(row) != held * HASH:
            raise KeyError(node_key(level, first_tile))
        completed = []
        for key, blob in _chunks(level, first_tile, row + b"".join(new)):
            written[key] = blob
            if len(blob) == TILE_BYTES:
                completed.append(perfect_root(hashes_of(blob)))
        level, count, new = level + 1, count // TILE_WIDTH, completed
    return written


def root_from_tiles(size: int, tiles: Mapping[int, bytes]) -> bytes:
    """MTH of the first ``size`` leaves from tiles holding its nodes (the partial tiles of a
    tree of ``size`` leaves always do); KeyError if one lacks a hash."""
    if not size:
        return EMPTY_ROOT
    return range_hash(0, size, lambda key: node_from_tiles(key, tiles))
