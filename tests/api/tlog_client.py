"""A tlog-tiles reader written from the C2SP spec alone (https://c2sp.org/tlog-tiles): fetch
the checkpoint, the hash tiles and the entry bundles, rebuild the tree, check every entry.

Nothing here comes from custodiet but the checkpoint's signature check (custodiet.ledger.verify,
the standalone verifier).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

HEIGHT = 8
WIDTH = 1 << HEIGHT

Get = Callable[[str], bytes]  # path -> body (raises on a non-200)


def leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def encode(n: int) -> str:
    """Tile index as 3-digit path elements, all but the last prefixed with x."""
    groups = []
    while True:
        groups.append(f"{n % 1000:03d}")
        n //= 1000
        if n == 0:
            break
    groups.reverse()
    return "/".join(["x" + g for g in groups[:-1]] + groups[-1:])


def tile_name(level: int, n: int, width: int) -> str:
    return f"tile/{level}/{encode(n)}" + ("" if width == WIDTH else f".p/{width}")


def entries_name(n: int, width: int) -> str:
    return f"tile/entries/{encode(n)}" + ("" if width == WIDTH else f".p/{width}")


def split_hashes(blob: bytes) -> list[bytes]:
    assert len(blob) % 32 == 0
    return [blob[i : i + 32] for i in range(0, len(blob), 32)]


def mth(hashes: list[bytes]) -> bytes:
    """RFC 6962 Merkle tree hash over already-hashed leaves."""
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return node(mth(hashes[:k]), mth(hashes[k:]))


def read_level(get: Get, level: int, count: int) -> list[bytes]:
    """All ``count`` hashes of tree level 8*level, from full tiles and one partial tile."""
    hashes: list[bytes] = []
    for n in range((count + WIDTH - 1) // WIDTH):
        width = min(WIDTH, count - n * WIDTH)
        got = split_hashes(get(tile_name(level, n, width)))
        assert len(got) == width, (level, n, width, len(got))
        hashes += got
    return hashes


def read_entries(get: Get, size: int) -> list[bytes]:
    out: list[bytes] = []
    for n in range((size + WIDTH - 1) // WIDTH):
        width = min(WIDTH, size - n * WIDTH)
        blob, at, bundle = get(entries_name(n, width)), 0, []
        while at < len(blob):
            length = int.from_bytes(blob[at : at + 2], "big")
            bundle.append(blob[at + 2 : at + 2 + length])
            at += 2 + length
        assert at == len(blob) and len(bundle) == width
        out += bundle
    return out


def root_from_tiles(get: Get, size: int) -> bytes:
    """The tree hash of ``size`` leaves from the tiles: every level's hashes are checked
    against the level below, then the tree is folded from the largest perfect subtrees (the
    hashes of the highest tiles) down to single leaves."""
    levels = [read_level(get, 0, size)]
    while size >> (HEIGHT * len(levels)):
        lv = len(levels)
        upper = read_level(get, lv, size >> (HEIGHT * lv))
        for i, h in enumerate(upper):  # each is the MTH of 256 hashes of the level below
            assert mth(levels[-1][i * WIDTH : (i + 1) * WIDTH]) == h, (lv, i)
        levels.append(upper)
    pieces: list[tuple[int, bytes]] = []  # (leaves covered, hash), left to right
    covered = 0
    for lv in range(len(levels) - 1, -1, -1):
        span = WIDTH**lv
        while size - covered >= span:
            pieces.append((span, levels[lv][covered // span]))
            covered += span
    return fold(pieces)


def fold(pieces: list[tuple[int, bytes]]) -> bytes:
    """RFC 6962's MTH over a run of aligned perfect subtrees given by (leaves, hash)."""
    n = sum(w for w, _ in pieces)
    if len(pieces) == 1:
        return pieces[0][1]
    k = 1
    while k * 2 < n:
        k *= 2
    acc, j = 0, 0
    while acc < k:
        acc += pieces[j][0]
        j += 1
    assert acc == k, "a perfect subtree straddles the split"
    return node(fold(pieces[:j]), fold(pieces[j:]))
