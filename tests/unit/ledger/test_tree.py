"""Tiles: grown batch by batch they serve every root and proof a tree built at once gives."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custodiet.ledger import tree
from custodiet.ledger.verify import leaf_hash, leaf_hashes, next_level, node_hash, tree_hash


def grown(leaves: list[bytes], batches: list[int]) -> dict[int, bytes]:
    tiles: dict[int, bytes] = {}
    size = 0
    for count in batches:
        new = leaves[size : size + count]
        tiles.update(tree.grow(size, {k: tiles[k] for k in tree.partial_tiles(size)}, new))
        size += len(new)
    return tiles


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 70), min_size=1, max_size=12))
def test_tiles_grown_in_any_batches_give_every_root(batches: list[int]) -> None:
    leaves = [leaf_hash(b"%d" % n) for n in range(sum(batches))]
    tiles = grown(leaves, batches)
    for size in range(1, len(leaves) + 1):
        computed = tree.range_hash(0, size, lambda key: tree.node_from_tiles(key, tiles))
        assert computed == tree_hash(leaves[:size])


def test_only_every_fourth_level_is_stored_and_partial_tiles_hold_complete_nodes() -> None:
    leaves = [leaf_hash(b"%d" % n) for n in range(300)]
    tiles = grown(leaves, [300])
    assert {tree.split_key(key)[0] for key in tiles} == {0, 1, 2}
    assert len(tiles[tree.node_key(0, 18)]) == (300 - 18 * 16) * 32
    assert tiles[tree.node_key(2, 0)] == tree_hash(leaves[:256])
    assert len(tiles[tree.node_key(1, 1)]) == (300 // 16 - 16) * 32


def test_growing_without_the_partial_tile_fails() -> None:
    leaves = [leaf_hash(b"%d" % n) for n in range(5)]
    with pytest.raises(KeyError):
        tree.grow(3, {}, leaves[3:])


def test_a_node_beyond_a_partial_tile_is_missing() -> None:
    tiles = grown([leaf_hash(b"%d" % n) for n in range(5)], [5])
    with pytest.raises(KeyError):
        tree.node_from_tiles(tree.node_key(3, 0), tiles)


def test_c_level_hashing_matches_the_one_at_a_time_definitions() -> None:
    data = [b"", b"a", b"{}" * 100]
    hashes = leaf_hashes(data)
    assert hashes == [leaf_hash(d) for d in data]
    assert next_level(hashes) == [node_hash(hashes[0], hashes[1])]
