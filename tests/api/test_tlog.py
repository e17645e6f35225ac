"""The log over HTTP as C2SP tlog-tiles, read by a client written from the spec alone, and the
JSON reads of entries and proofs."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from custodiet.api.tlog import parse_index, tile_path
from custodiet.errors import InputError
from custodiet.ledger.verify import (
    parse_vkey,
    verify_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from tests.api import tlog_client
from tests.api.world import Caller, add_people, served
from tests.kit import Kit

FILLER = 600  # entries: two full level-0 tiles, a partial one, and a level-1 tile of width 2


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Caller]:
    root = tmp_path_factory.mktemp("tlog")
    ws = Kit(root).init(root / "ws")
    ledger = ws.ledger()
    try:
        filler = {
            "action": "refusal",
            "attempted": "query",
            "actor": "(unauthenticated)",
            "decision": "refused",
            "reason": "filler",
            "code": "CUST501",
        }
        ledger.append_many([filler] * FILLER)
    finally:
        ledger.close()
    with served(root, workspace=ws) as caller:
        add_people(caller)
        yield caller


def _get(caller: Caller):
    def get(path: str) -> bytes:
        response = caller.client.get("/" + path)
        assert response.status_code == 200, (path, response.text)
        assert response.headers["content-type"] == "application/octet-stream"
        return response.content

    return get


def test_a_spec_only_client_rebuilds_the_checkpoint_from_tiles(world: Caller) -> None:
    note = world.client.get("/checkpoint")
    assert note.headers["content-type"].startswith("text/plain")
    vkey = world.client.get("/v1/info").json()["vkey"]
    checkpoint = verify_checkpoint(note.text, parse_vkey(vkey))
    assert checkpoint.size > FILLER
    get = _get(world)
    assert tlog_client.root_from_tiles(get, checkpoint.size) == checkpoint.root
    entries = tlog_client.read_entries(get, checkpoint.size)
    leaves = tlog_client.read_level(get, 0, checkpoint.size)
    assert [tlog_client.leaf(e) for e in entries] == leaves
    assert [json.loads(e)["index"] for e in entries] == list(range(checkpoint.size))
    lines = world.client.get("/v1/entries").content.splitlines()
    assert lines == entries


def test_partial_tiles_are_served_at_every_width_up_to_the_tree(world: Caller) -> None:
    size = int(world.client.get("/checkpoint").text.split("\n")[1])
    width = size % 256
    full = world.client.get(f"/tile/0/{tile_path(size // 256)}.p/{width}").content
    assert len(full) == 32 * width
    smaller = world.client.get(f"/tile/0/{tile_path(size // 256)}.p/1").content
    assert smaller == full[:32]
    assert world.client.get(f"/tile/0/{tile_path(size // 256)}").status_code == 404
    assert world.client.get("/tile/0/000").status_code == 200
    assert world.client.get("/tile/1/000.p/2").status_code == 200
    assert world.client.get("/tile/1/000.p/3").status_code == 404


def test_proofs_verify_against_the_checkpoint(world: Caller) -> None:
    note = world.client.get("/checkpoint").text
    vkey = world.client.get("/v1/info").json()["vkey"]
    checkpoint = verify_checkpoint(note, parse_vkey(vkey))
    proof = world.client.get(f"/v1/proof/5?size={checkpoint.size}").json()
    entry = world.client.get("/v1/entries?from=5&to=5").content.rstrip(b"\n")
    path = [base64.b64decode(h) for h in proof["proof"]]
    verify_inclusion(5, checkpoint.size, tlog_client.leaf(entry), path, checkpoint.root)
    consistency = world.client.get(f"/v1/consistency/300/{checkpoint.size}").json()
    old_root = base64.b64decode(consistency["old_root"])
    hashes = [base64.b64decode(h) for h in consistency["proof"]]
    verify_consistency(300, checkpoint.size, hashes, old_root, checkpoint.root)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("000", (0, None)),
        ("x001/x234/067", (1234067, None)),
        ("067.p/5", (67, 5)),
        ("x001/000.p/255", (1000, 255)),
    ],
)
def test_tile_indexes_parse_as_the_spec_encodes_them(
    path: str, expected: tuple[int, int | None]
) -> None:
    assert parse_index(path) == expected
    assert tile_path(expected[0]) == path.split(".p/")[0]


@pytest.mark.parametrize(
    "path",
    [
        "0",
        "00",
        "0000",
        "x000/001",
        "001/001",
        "x1/001",
        "000.p/256",
        "000.p/0",
        "000.p/01",
        "000.p/",
        "-01",
        "x001/",
        "abc",
    ],
)
def test_malformed_tile_paths_are_refused(path: str) -> None:
    with pytest.raises(InputError):
        parse_index(path)


def test_no_entry_bundle_beyond_the_log(world: Caller, tmp_path: Path) -> None:
    assert world.client.get("/tile/entries/x999/000").status_code == 404
