"""End to end: two witnesses, each `custodiet witness serve` in its own process on loopback; a
log server (`create_app` under uvicorn, in a thread) configured with both (and with a third that
is down). Signed actions make checkpoints; both witnesses cosign them in the background and
`ledger verify --witness A --witness B` passes, locally and over --server. A copy of the log
with the same key and another history is refused by the witness it is shown (422), which keeps
its state, and verify requiring that witness fails on the copy."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from custodiet.api.app import create_app
from custodiet.api.limits import Limits
from custodiet.cli import commands
from custodiet.cli.app import app
from custodiet.identity import sign_request
from custodiet.ledger.pin import LogPin
from custodiet.ledger.verify import cosigners, parse_vkey
from tests.conftest import CliResult
from tests.kit import Kit, private_key, public_key
from tests.processes import free_port, running

if not any(group.name == "witness" for group in app.registered_groups):
    commands.register(app)

pytestmark = pytest.mark.slow


def cli(*args: str) -> CliResult:
    done = CliRunner().invoke(app, list(args))
    return CliResult(done.exit_code, done.stdout, done.stderr)


@contextmanager
def witness_process(directory: Path, name: str, log_vkey: str) -> Iterator[tuple[str, str]]:
    """`custodiet witness serve` in its own process: (its URL, its vkey)."""
    made = cli("witness", "init", "--dir", str(directory), "--name", name, "--log-vkey", log_vkey)
    assert made.status == 0, made.stderr
    port = free_port()
    args = ("witness", "serve", "--dir", str(directory), "--port", str(port))
    with running(args, port, ready=_refuses_an_empty_body):
        yield f"http://127.0.0.1:{port}", made.stdout.strip()


def _refuses_an_empty_body(url: str) -> bool:
    """The witness is up: it answers an empty add-checkpoint with 400."""
    return httpx.post(f"{url}/add-checkpoint", content=b"", timeout=1).status_code == 400


@contextmanager
def log_server(ws: Path) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        create_app(ws, Limits(rate=1e4, burst=1e4)), host="127.0.0.1", port=port,
        log_level="warning", lifespan="on",
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive()
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def add_principals(url: str, origin: str, names: list[str]) -> None:
    for name in names:
        signed = sign_request(
            private_key("ana"), "ana", origin, "principal.add",
            {"name": name, "role": "reviewer", "pubkey": public_key(name)},
        )  # fmt: skip
        response = httpx.post(f"{url}/v1/principals/add", json=signed.document(), timeout=30)
        assert response.status_code == 200, response.text


def wait_cosigned(url: str, keys: list[str]) -> str:
    """The served checkpoint once it carries valid cosignatures by every one of ``keys``."""
    wanted = [parse_vkey(k) for k in keys]
    deadline = time.monotonic() + 60
    while True:
        note = httpx.get(f"{url}/checkpoint", timeout=10).text
        if len(cosigners(note, wanted)) == len(wanted):
            return note
        assert time.monotonic() < deadline, f"not cosigned: {note}"
        time.sleep(0.1)


def test_two_witnesses_cosign_and_a_fork_is_refused(tmp_path: Path) -> None:
    ws = Kit(tmp_path).init(tmp_path / "ws")
    origin, log_vkey = ws.origin, LogPin(ws.log_pin_path).read().vkey
    fork = tmp_path / "fork"
    shutil.copytree(ws.root, fork)  # the same key and genesis: its history will differ
    with (
        witness_process(tmp_path / "wa", "witness.test/a", log_vkey) as (url_a, vkey_a),
        witness_process(tmp_path / "wb", "witness.test/b", log_vkey) as (url_b, vkey_b),
    ):
        for vkey, url in ((vkey_a, url_a), (vkey_b, url_b)):
            added = cli("ledger", "witnesses", "add", vkey, url, "--workspace", str(ws.root))
            assert added.status == 0, added.stderr

        down_key = cli(
            "witness", "init", "--dir", str(tmp_path / "wd"), "--name", "witness.test/down"
        )

        dead = f"http://127.0.0.1:{free_port()}"
        assert cli("ledger", "witnesses", "add", down_key.stdout.strip(), dead,
                   "--workspace", str(ws.root)).status == 0  # fmt: skip
        listed = cli("ledger", "witnesses", "list", "--workspace", str(ws.root)).stdout
        assert url_a in listed and url_b in listed and dead in listed

        with log_server(ws.root) as url:
            add_principals(url, origin, ["rae", "otto"])  # answered although one witness is down
            note = wait_cosigned(url, [vkey_a, vkey_b])
            size = int(note.split("\n")[1])
            remote = cli("--server", url, "ledger", "verify", "--key", log_vkey,
                         "--witness", vkey_a, "--witness", vkey_b)  # fmt: skip
            assert remote.status == 0, remote.stderr
            assert "cosigned by witness.test/a, witness.test/b" in remote.stdout
            required = cli("--server", url, "ledger", "verify", "--witness", vkey_a,
                           "--witness", down_key.stdout.strip())  # fmt: skip
            assert required.status == 1 and not required.stdout
            assert "lacks valid cosignatures by witness.test/down (1 of 2" in required.stderr

        local = cli("ledger", "verify", "--witness", vkey_a, "--witness", vkey_b,
                    "--workspace", str(ws.root))  # fmt: skip
        assert local.status == 0, local.stderr
        two_of_three = cli("ledger", "verify", "--witness", vkey_a, "--witness", vkey_b,
                           "--witness", down_key.stdout.strip(), "--witnesses-required", "2",
                           "--workspace", str(ws.root))  # fmt: skip
        assert two_of_three.status == 0, two_of_three.stderr

        # The fork: same key, another history, longer than what witness a cosigned.
        witnessed = json.loads((tmp_path / "wa" / "witness.json").read_text())
        assert witnessed["size"] == size
        assert (
            cli("ledger", "witnesses", "add", vkey_a, url_a, "--workspace", str(fork)).status == 0
        )
        with log_server(fork) as fork_url:
            add_principals(fork_url, origin, ["mallory", "eve", "trent", "peggy"])
        asked = cli("ledger", "cosign", "--workspace", str(fork))
        assert asked.status == 0, asked.stderr
        assert "witness.test/a: refused: HTTP 422" in asked.stdout
        assert json.loads((tmp_path / "wa" / "witness.json").read_text()) == witnessed
        refused = cli("ledger", "verify", "--witness", vkey_a, "--workspace", str(fork))
        assert refused.status == 1, refused.stdout
        assert "lacks valid cosignatures by witness.test/a (0 of 1 required)" in refused.stderr
        # and witness a still cosigns the genuine log's growth
        with log_server(ws.root) as url:
            add_principals(url, origin, ["walter"])
            grown = wait_cosigned(url, [vkey_a, vkey_b])
        assert int(grown.split("\n")[1]) > size
