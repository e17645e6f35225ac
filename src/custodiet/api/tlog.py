"""The log on the wire: C2SP tlog-tiles (``/checkpoint``, ``/tile/<L>/<N>[.p/<W>]``,
``/tile/entries/<N>[.p/<W>]``), and JSON reads of entries and proofs under ``/v1``.

tlog-tiles' tiles are 8 levels high: tile ``(L, N)`` holds the hashes of the level-``8L``
nodes ``256N ... 256N + W - 1``. The store keeps 4-level tiles (``ledger.tree``), whose level
``2L`` holds exactly those nodes, so a C2SP tile is 16 stored rows concatenated. An entry
bundle is each entry as a 2-byte big-endian length and its bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Query
from fastapi.responses import Response

from custodiet.api import errors
from custodiet.errors import InputError, SystemFailure
from custodiet.ledger import tree

if TYPE_CHECKING:
    from custodiet.api.app import Server
    from custodiet.ledger.writer import Ledger

C2SP_HEIGHT = 8
C2SP_WIDTH = 1 << C2SP_HEIGHT
STORE_PER_TILE = C2SP_WIDTH // tree.TILE_WIDTH  # stored rows per C2SP tile
MAX_LEVEL = 5  # 256**6 leaves: more than the store keys (2**40) allow
MAX_ENTRIES = 10_000  # entries one /v1/entries call returns


def no_tile(what: str) -> InputError:
    return InputError(
        f"no such tile: {what}",
        hint="tiles are tile/<L>/<N>[.p/<W>] for the tree size of the latest /checkpoint "
        "(C2SP tlog-tiles)",
        code="CUST608",
    )


def parse_index(path: str) -> tuple[int, int | None]:
    """``x001/x234/067[.p/W]`` as (1234067, W or None); InputError (404) otherwise."""
    parts = path.split("/")
    width: int | None = None
    if len(parts) >= 2 and parts[-2].endswith(".p"):
        text = parts.pop()
        parts[-1] = parts[-1][: -len(".p")]
        if not (text.isdigit() and text == str(int(text)) and 1 <= int(text) < C2SP_WIDTH):
            raise no_tile(path)
        width = int(text)
    digits = [p[1:] for p in parts[:-1] if p.startswith("x")] + parts[-1:]
    well_formed = len(digits) == len(parts) and all(
        len(d) == 3 and d.isascii() and d.isdigit() for d in digits
    )
    if not well_formed or (len(digits) > 1 and digits[0] == "000"):
        raise no_tile(path)
    return int("".join(digits)), width


def tile_path(index: int) -> str:
    """``index`` in tlog-tiles' path encoding (1234067 -> ``x001/x234/067``)."""
    text = f"{index:d}"
    text = "0" * (-len(text) % 3) + text
    groups = [text[at : at + 3] for at in range(0, len(text), 3)]
    return "/".join([*("x" + g for g in groups[:-1]), groups[-1]])


def _width(count: int, index: int, width: int | None, path: str) -> int:
    """How many of tile ``index``'s slots exist among ``count`` nodes; 404 unless exactly
    the asked form: a full tile, or a partial one of width W."""
    wanted = C2SP_WIDTH if width is None else width
    if index >= (1 << tree.KEY_SHIFT) or index * C2SP_WIDTH + wanted > count:
        raise no_tile(path)
    return wanted


def hash_tile(ledger: Ledger, level: int, path: str) -> bytes:
    index, width = parse_index(path)
    if not 0 <= level <= MAX_LEVEL:
        raise no_tile(path)
    count = ledger.size() >> (C2SP_HEIGHT * level)
    wanted = _width(count, index, width, path)
    stored_level = level * C2SP_HEIGHT // tree.TILE_HEIGHT
    first = index * STORE_PER_TILE
    keys = [tree.node_key(stored_level, first + j) for j in range(STORE_PER_TILE)]
    rows = ledger.store.tiles(keys)
    blob = b"".join(rows.get(key, b"") for key in keys)[: wanted * tree.HASH]
    if len(blob) != wanted * tree.HASH:
        raise SystemFailure("the ledger store lacks tree nodes", code="CUST133")
    return blob


def entry_bundle(ledger: Ledger, path: str) -> bytes:
    index, width = parse_index(path)
    wanted = _width(ledger.size(), index, width, path)
    start = index * C2SP_WIDTH
    out = bytearray()
    for _, data in ledger.entries(start, start + wanted):
        if len(data) > 0xFFFF:
            raise SystemFailure(
                "an entry is longer than an entry bundle can carry (65535 bytes)",
                hint="read it with /v1/entries",
                code="CUST609",
            )
        out += len(data).to_bytes(2, "big") + data
    return bytes(out)


def add_tlog(app: FastAPI, server: Server) -> None:
    from custodiet.api.app import answered

    common: dict[str, Any] = {"responses": errors.responses(), "tags": ["log"]}
    octets: dict[int | str, dict[str, Any]] = {
        200: {
            "description": "tile bytes",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    }

    def checkpoint() -> str:
        # never signs (every batch is committed with its checkpoint), so it needs no write
        # lock: `signed_checkpoint` reads again when a commit lands in between
        return server.runtime.ledger.checkpoint()

    @app.get(
        "/checkpoint",
        summary="The latest signed checkpoint (C2SP signed note)",
        responses={
            200: {
                "description": "signed note",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            **errors.responses(),
        },
        tags=["log"],
    )
    async def get_checkpoint() -> Response:
        note = await answered(checkpoint)
        if isinstance(note, Response):
            return note
        return Response(note, media_type="text/plain; charset=utf-8")

    @app.get(
        "/tile/entries/{path:path}",
        summary="An entry bundle (tlog-tiles)",
        responses={**octets, **errors.responses()},
        tags=["log"],
    )
    async def get_entries_tile(path: str) -> Response:
        blob = await answered(lambda: entry_bundle(server.runtime.ledger, path))
        if isinstance(blob, Response):
            return blob
        return Response(blob, media_type="application/octet-stream")

    @app.get(
        "/tile/{level}/{path:path}",
        summary="A hash tile (tlog-tiles)",
        responses={**octets, **errors.responses()},
        tags=["log"],
    )
    async def get_tile(level: int, path: str) -> Response:
        blob = await answered(lambda: hash_tile(server.runtime.ledger, level, path))
        if isinstance(blob, Response):
            return blob
        return Response(blob, media_type="application/octet-stream")

    @app.get(
        "/v1/entries",
        summary="Entries as JSON lines, each the canonical leaf data",
        responses={
            200: {
                "description": "JSON lines",
                "content": {"application/jsonl": {"schema": {"type": "string"}}},
            },
            **errors.responses(),
        },
        tags=["log"],
    )
    async def get_entries(
        start: int = Query(0, alias="from", ge=0),
        end: int | None = Query(None, alias="to", ge=0),
    ) -> Response:
        def work() -> bytes:
            ledger = server.runtime.ledger
            size = ledger.size()
            stop = size if end is None else min(end + 1, size)
            stop = min(stop, start + MAX_ENTRIES)
            first = min(start, stop)
            from custodiet.ledger.serving import checked_entries

            chunks = checked_entries(ledger, first, stop)  # as `ledger entries` prints them
            return b"".join(data + b"\n" for chunk in chunks for data in chunk)

        lines = await answered(work)
        if isinstance(lines, Response):
            return lines
        return Response(lines, media_type="application/jsonl")

    @app.get("/v1/proof/{index}", summary="An inclusion proof (base64 hashes)", **common)
    async def get_proof(index: int, size: int | None = None) -> Any:
        from custodiet.ledger.serving import checked_inclusion_proof

        return await answered(
            lambda: checked_inclusion_proof(server.runtime.ledger, index, size).to_json()
        )

    @app.get("/v1/consistency/{old}/{new}", summary="A consistency proof (base64 hashes)", **common)
    async def get_consistency(old: int, new: int) -> Any:
        return await answered(lambda: server.runtime.ledger.consistency_proof(old, new).to_json())
