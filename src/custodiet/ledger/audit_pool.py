"""Full verification's heavy part on several cores: spans of leaves checked in worker processes.

The leaves are cut into spans of ``2**top`` leaves (``top`` a multiple of TILE_HEIGHT), so every
stored tile below level ``top`` lies in exactly one span. A worker opens the store itself,
re-hashes its span's entries, recomputes each level up to ``top`` and compares its tiles as
bytes, and returns the span's level-``top`` nodes (plus the lower nodes the checkpoints need);
the parent carries on from level ``top`` as the one-process audit does. A worker only says
*whether* its span matches the store: on any difference the parent re-runs the one-process
audit, which names the first bad index with the same evidence whatever the number of workers.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing
from dataclasses import dataclass

from custodiet.errors import CustodietError
from custodiet.ledger import tree
from custodiet.ledger.store import LedgerStore, open_store
from custodiet.ledger.verify import leaf_hashes, next_level

MAX_TOP = 4 * tree.TILE_HEIGHT


@dataclass(frozen=True)
class Span:
    """Leaves [start, end) of a log of ``size`` leaves, checked up to level ``top``."""

    url: str
    start: int
    end: int
    size: int
    top: int
    wanted: tuple[int, ...]


@dataclass(frozen=True)
class SpanNodes:
    """A matching span's level-``top`` nodes and the wanted nodes below that level."""

    top_nodes: list[bytes]
    kept: dict[int, bytes]


def span_top(size: int, jobs: int) -> int:
    """The span height: the largest multiple of TILE_HEIGHT (at most MAX_TOP) that still gives
    every worker at least two whole spans, or 0 when no span height does."""
    for top in range(MAX_TOP, 0, -tree.TILE_HEIGHT):
        if size >> top >= 2 * jobs:
            return top
    return 0


def spans(url: str, size: int, top: int, keep: set[int]) -> list[Span]:
    width = 1 << top
    below = [tree.split_key(key) for key in keep if tree.split_key(key)[0] < top]
    return [
        Span(
            url,
            start,
            min(size, start + width),
            size,
            top,
            tuple(
                tree.node_key(level, idx)
                for level, idx in below
                if start <= idx << level < start + width
            ),
        )
        for start in range(0, size, width)
    ]


def _tiles_match(store: LedgerStore, span: Span, level: int, hashes: list[bytes]) -> bool:
    """The stored tiles of this span at ``level`` (for the last span, to the end of the level)
    are exactly the computed ``hashes``."""
    first = (span.start >> level) // tree.TILE_WIDTH
    last_span = span.end == span.size
    end = 1 << tree.KEY_SHIFT if last_span else (span.end >> level) // tree.TILE_WIDTH
    stored = store.tile_level(level // tree.TILE_HEIGHT, first, end)
    joined = b"".join(hashes)
    expected = [
        (first + at // tree.TILE_BYTES, joined[at : at + tree.TILE_BYTES])
        for at in range(0, len(joined), tree.TILE_BYTES)
    ]
    return list(stored) == expected


def _span_nodes(store: LedgerStore, span: Span) -> SpanNodes | None:
    data = store.entry_data(span.start, span.end)
    if len(data) != span.end - span.start:
        return None
    hashes = leaf_hashes(data)
    del data
    kept: dict[int, bytes] = {}
    wanted = [tree.split_key(key) for key in span.wanted]
    for level in range(span.top):
        if level % tree.TILE_HEIGHT == 0 and not _tiles_match(store, span, level, hashes):
            return None
        offset = span.start >> level
        kept.update(
            (tree.node_key(lvl, idx), hashes[idx - offset]) for lvl, idx in wanted if lvl == level
        )
        hashes = next_level(hashes)
    return SpanNodes(hashes, kept)


def check_span(span: Span) -> SpanNodes | None:
    """Run in a worker: the span's nodes, or None if anything differs or cannot be read (the
    parent then finds out what, in one process)."""
    try:
        with closing(open_store(span.url)) as store:
            return _span_nodes(store, span)
    except CustodietError:
        return None


def checked_spans(url: str, size: int, jobs: int, keep: set[int]) -> tuple[int, SpanNodes] | None:
    """Level ``top`` and every span's nodes combined, or None when the spans cannot be checked
    in parallel (too few leaves or jobs, a worker failed) or something differs."""
    top = span_top(size, jobs)
    if jobs < 2 or not top:
        return None
    context = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(jobs, mp_context=context) as pool:
            results = list(pool.map(check_span, spans(url, size, top, keep)))
    except (OSError, BrokenProcessPool):
        return None
    combined = SpanNodes([], {})
    for result in results:
        if result is None:
            return None
        combined.top_nodes.extend(result.top_nodes)
        combined.kept.update(result.kept)
    return top, combined
