"""`custodiet --server URL` prints what the same command prints on the workspace itself, and
runs every principal command remotely (the server in a thread here; the e2e test runs it as its
own process)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from custodiet.api.app import create_app
from custodiet.api.limits import Limits
from custodiet.cli.app import app
from custodiet.cli.commands import register
from custodiet.client import ROUTES
from custodiet.ledger import note
from tests.api.world import ROUTES as API_ROUTES
from tests.gateway_data import agreement_document, write_canonical
from tests.kit import Kit
from tests.processes import free_port

AGREEMENT = "ssa-deceased"


@dataclass(frozen=True)
class World:
    url: str
    ws: Path
    kit: Kit
    runner: CliRunner

    def remote(self, *args: str, as_: str | None = None) -> Any:
        who = [*self.kit.as_(as_)] if as_ else []
        return self.runner.invoke(app, ["--server", self.url, *args, *who])

    def local(self, *args: str) -> Any:
        return self.runner.invoke(app, [*args, "--workspace", str(self.ws)])

    def ok(self, *args: str, as_: str | None = None) -> str:
        done = self.remote(*args, as_=as_)
        assert done.exit_code == 0, (args, done.stderr, done.exception)
        return str(done.stdout)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("remote")
    kit = Kit(root)
    ws = kit.init(root / "ws")
    port = free_port()
    config = uvicorn.Config(
        create_app(ws.root, Limits(rate=1e4, burst=1e4)),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.05)
    register(app)
    world = World(f"http://127.0.0.1:{port}", ws.root, kit, CliRunner())
    data = write_canonical(root / "data", people=60)
    world.ok(
        "principal",
        "add",
        "rae",
        "--role",
        "reviewer",
        "--pubkey",
        str(kit.pub_file("rae")),
        as_="ana",
    )
    for name, path in data.items():
        world.ok("dataset", "add", name, str(path), as_="ana")
    agreement = root / "agreement.yaml"
    document = agreement_document(AGREEMENT, reviewer="rae")
    document["datasets"]["payments"]["columns"]["agency"] = "allow"  # paid_after_death reads it
    agreement.write_text(yaml.safe_dump(document))
    world.ok("agreement", "apply", str(agreement), as_="rae")
    try:
        yield world
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _approve(world: World, agreement: str) -> None:
    import json

    shown = json.loads(world.ok("agreement", "show", agreement, "--format", "json"))
    for custodian in ("ana", "ben"):
        world.ok(
            "agreement",
            "approve",
            agreement,
            "--version",
            str(shown["version"]),
            "--sha256",
            shown["sha256"],
            as_=custodian,
        )


def test_no_progress_is_drawn_for_work_the_server_does(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Even with stderr a terminal, a --server command draws no bar: the work is the server's."""
    from rich.console import Console

    from custodiet.cli import progress

    own = "ssa-deceased-progress"
    document = agreement_document(own, reviewer="rae")
    document["datasets"]["payments"]["columns"]["agency"] = "allow"
    (tmp_path / "own.yaml").write_text(yaml.safe_dump(document))
    world.ok("agreement", "apply", str(tmp_path / "own.yaml"), as_="rae")
    terminal = Console(stderr=True, force_terminal=True)
    monkeypatch.setattr(progress, "err_console", lambda: terminal)
    _approve(world, own)  # the second approval builds the projection, on the server
    built = world.remote("agreement", "build", own, as_="ana")
    assert built.exit_code == 0, built.stderr
    assert "protected projection ready" in built.stdout
    screened = world.remote("screen", "run", "paid_after_death", "--agreement", own, as_="rae")
    assert screened.exit_code == 0, screened.stderr
    assert "Improper-payment screens" in screened.stdout
    assert "building the projection" not in built.stderr
    assert f"screening {own}" not in screened.stderr
    assert "\x1b" not in built.stderr + screened.stderr  # nothing drawn on the terminal


def test_the_client_knows_every_route_the_api_serves() -> None:
    assert ROUTES == API_ROUTES


@pytest.mark.parametrize(
    "args",
    [
        ("principal", "list"),
        ("principal", "list", "--format", "json"),
        ("dataset", "list"),
        ("dataset", "show", "payments"),
        ("agreement", "list"),
        ("agreement", "list", "--format", "json"),
        ("agreement", "show", AGREEMENT),
        ("agreement", "show", AGREEMENT, "--format", "json"),
        ("reid", "list"),
        ("reid", "list", "--format", "json"),
    ],
)
def test_reads_print_the_same_over_the_server(world: World, args: tuple[str, ...]) -> None:
    remote, local = world.remote(*args), world.local(*args)
    assert (remote.exit_code, remote.stdout) == (local.exit_code, local.stdout)


def test_errors_keep_their_code_and_exit_status(world: World) -> None:
    remote, local = (
        world.remote("agreement", "show", "nope"),
        world.local("agreement", "show", "nope"),
    )
    assert remote.exit_code == local.exit_code == 2
    assert remote.stderr == local.stderr
    denied = world.remote(
        "principal",
        "add",
        "zed",
        "--role",
        "overseer",
        "--pubkey",
        str(world.kit.pub_file("zed")),
        as_="rae",
    )
    assert denied.exit_code == 3 and denied.stderr.startswith("refused:")


def test_every_principal_command_runs_over_the_server(world: World, tmp_path: Path) -> None:
    import json

    _approve(world, AGREEMENT)
    out = world.ok(
        "query",
        "--agreement",
        AGREEMENT,
        "--format",
        "json",
        "SELECT payee_tin FROM payments ORDER BY payment_id LIMIT 2",
        as_="rae",
    )
    tokens = [row[0] for row in json.loads(out)["rows"]]
    assert "1 row(s)" not in out
    assert "Improper-payment screens" in world.ok(
        "screen", "run", "paid_after_death", "--agreement", AGREEMENT, as_="rae"
    )
    assert "protected projection ready" in world.ok("agreement", "build", AGREEMENT, as_="ana")
    month = write_canonical(tmp_path / "month", people=30)["payments"]
    grown = world.ok("dataset", "update", "payments", str(month), as_="ana")
    assert "payments: version 2, 2 files" in grown and "projections extended: none" in grown
    filed = world.ok(
        "reid",
        "request",
        "--agreement",
        AGREEMENT,
        "--case",
        tokens[0],
        "--reason",
        "paid after death",
        "--fields",
        "name",
        as_="rae",
    )
    pending = json.loads(world.ok("reid", "list", "--format", "json"))
    first, sha = str(pending[0]["id"]), pending[0]["sha256"]
    assert filed.startswith(f"request {first}:")
    for custodian in ("ana", "ben"):
        world.ok("reid", "approve", first, "--sha256", sha, as_=custodian)
    shown = json.loads(world.ok("reid", "show", first, "--format", "json", as_="rae"))
    assert shown["records"][0]["token"] == tokens[0]
    world.ok(
        "reid",
        "request",
        "--agreement",
        AGREEMENT,
        "--case",
        tokens[1],
        "--reason",
        "x",
        "--fields",
        "name",
        as_="rae",
    )
    second = str(json.loads(world.ok("reid", "list", "--format", "json"))[-1]["id"])
    assert "denied by ana" in world.ok("reid", "deny", second, "--reason", "no", as_="ana")
    assert "revoked" in world.ok("agreement", "revoke", AGREEMENT, as_="ana")
    world.ok(
        "principal",
        "add",
        "tmp",
        "--role",
        "overseer",
        "--pubkey",
        str(world.kit.pub_file("tmp")),
        as_="ana",
    )
    world.ok("principal", "remove", "tmp", as_="ana")
    assert "removed" in world.ok("principal", "remove", "tmp", as_="ben")


@pytest.mark.parametrize(
    "args",
    [
        ("ledger", "key"),
        ("ledger", "checkpoint"),
        ("ledger", "entries"),
        ("ledger", "entries", "--from", "2", "--to", "4"),
        ("ledger", "entries", "--from", "0", "--to", "0"),
        ("ledger", "proof", "3"),
        ("ledger", "proof", "1", "--size", "3"),
        ("ledger", "consistency", "2", "5"),
    ],
)
def test_ledger_reads_print_the_same_over_the_server(world: World, args: tuple[str, ...]) -> None:
    local = world.local(*args)
    remote = world.remote(*args)
    assert local.exit_code == 0, local.stderr
    assert (remote.exit_code, remote.stdout) == (local.exit_code, local.stdout)


def test_ledger_audit_and_witnessing_need_the_workspace(world: World) -> None:
    for args in (("ledger", "audit"), ("ledger", "cosign"), ("ledger", "witnesses", "list")):
        done = world.remote(*args)
        assert done.exit_code == 2 and "does not run against a server" in done.stderr


def test_ledger_verify_over_the_server_rehashes_the_served_entries(world: World) -> None:
    size = int(world.ok("ledger", "checkpoint").split("\n")[1])
    done = world.remote("ledger", "verify", "--key", world.local("ledger", "key").stdout.strip())
    assert done.exit_code == 0, done.stderr
    assert done.stdout.startswith(f"verified: {size} entries")
    origin = world.local("ledger", "key").stdout.split("+")[0]
    stranger = note.vkey(origin, Ed25519PrivateKey.generate())  # the log's name, another key
    done = world.remote("ledger", "verify", "--key", stranger)
    assert done.exit_code == 1 and "the served checkpoint does not verify" in done.stderr
    malformed = world.remote("ledger", "verify", "--key", "not-a-key")
    assert malformed.exit_code == 2


RECEIPTED = "receipted"


@pytest.fixture(scope="module")
def receipted(world: World, tmp_path_factory: pytest.TempPathFactory) -> World:
    """The world with an active agreement of its own (other tests revoke theirs)."""
    path = tmp_path_factory.mktemp("receipted") / "agreement.yaml"
    document = agreement_document(RECEIPTED, reviewer="rae")
    document["datasets"]["payments"]["columns"]["agency"] = "allow"  # paid_after_death reads it
    path.write_text(yaml.safe_dump(document))
    world.ok("agreement", "apply", str(path), as_="rae")
    _approve(world, RECEIPTED)
    return world


@pytest.mark.parametrize("name", ["remote.csv", "remote.json", "remote.parquet"])
def test_a_result_written_over_the_server_verifies_from_its_receipt(
    receipted: World, tmp_path: Path, name: str
) -> None:
    import hashlib
    import json

    world = receipted
    out = tmp_path / name
    world.ok("query", "--agreement", RECEIPTED, "--out", str(out),
             "SELECT payee_tin, amount FROM payments ORDER BY payment_id", as_="rae")  # fmt: skip
    receipt = json.loads((tmp_path / f"{name}.receipt.json").read_text(encoding="utf-8"))
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert receipt["file"]["sha256"] == digest
    served = world.runner.invoke(app, ["--server", world.url, "verify-result", str(out)])
    assert served.exit_code == 0, served.stderr
    assert f"sha256 {digest}" in served.stdout and f"the server's, {world.url}" in served.stdout
    assert "consistent with the server's checkpoint" in served.stdout
    vkey = world.ok("ledger", "key").strip()
    outsider = world.runner.invoke(app, ["verify-result", str(out), "--vkey", vkey])
    assert outsider.exit_code == 0, outsider.stderr
    out.write_bytes(out.read_bytes()[:-1])
    changed = world.runner.invoke(app, ["--server", world.url, "verify-result", str(out)])
    assert changed.exit_code == 1 and "NOT VERIFIED" in changed.stderr


def test_a_screen_run_written_over_the_server_verifies(receipted: World, tmp_path: Path) -> None:
    import json

    world = receipted
    out = tmp_path / "cases.parquet"
    world.ok("screen", "run", "paid_after_death", "--agreement", RECEIPTED, "--out", str(out),
             as_="rae")  # fmt: skip
    receipt = json.loads((tmp_path / "cases.parquet.receipt.json").read_text(encoding="utf-8"))
    assert set(receipt["screens"]) == {"paid_after_death"}
    done = world.runner.invoke(app, ["--server", world.url, "verify-result", str(out)])
    assert done.exit_code == 0, done.stderr
    assert "is the parquet file" in done.stdout and "screen.run by rae" in done.stdout


def test_a_receipt_from_a_fork_of_the_servers_log_is_caught_with_server(
    receipted: World, tmp_path: Path
) -> None:
    """A copy of the vault (same log key) that goes on appending on its own is a fork: its
    receipts verify under the key, but not against the server's log (CUST153)."""
    import shutil

    world = receipted
    fork = tmp_path / "fork"
    shutil.copytree(world.ws, fork)
    sql = "SELECT count(*) AS n FROM payments"
    out = tmp_path / "forked.csv"
    args = ["query", "--agreement", RECEIPTED, "--out", str(out), "--workspace", str(fork)]
    done = world.runner.invoke(app, [*args, *world.kit.as_("rae"), sql])
    assert done.exit_code == 0, done.stderr
    world.ok("query", "--agreement", RECEIPTED, sql, as_="rae")  # the server's own history
    vkey = world.ok("ledger", "key").strip()
    alone = world.runner.invoke(app, ["verify-result", str(out), "--vkey", vkey])
    assert alone.exit_code == 0, alone.stderr  # the key alone cannot tell a fork
    served = world.runner.invoke(app, ["--server", world.url, "verify-result", str(out)])
    assert served.exit_code == 1, served.stdout
    assert "not consistent with the server's current log" in served.stderr


def test_monitor_and_case_set_run_over_the_server(receipted: World, tmp_path: Path) -> None:
    import json

    world = receipted
    out = tmp_path / "new.json"
    world.ok("monitor", "--agreement", RECEIPTED, "--out", str(out), as_="rae")
    cases = json.loads(out.read_text(encoding="utf-8"))["cases"]
    assert cases and all(len(c["id"]) == 64 for c in cases)
    done = world.runner.invoke(app, ["--server", world.url, "verify-result", str(out)])
    assert done.exit_code == 0, done.stderr
    again = json.loads(world.ok("monitor", "--agreement", RECEIPTED, "--format", "json",
                                as_="rae"))  # fmt: skip
    assert again["cases"] == [] and again["unchanged_since"] is not None
    first = cases[0]["id"]
    refused = world.remote("case", "set", first, "--state", "confirmed", as_="ana")
    assert refused.exit_code == 3 and "reviewer" in refused.stderr
    changed = json.loads(world.ok("case", "set", first, "--state", "confirmed",
                                  "--format", "json", as_="rae"))  # fmt: skip
    assert changed["previous"] == "open" and changed["state"] == "confirmed"
    listed = json.loads(world.ok("case", "list", "--agreement", RECEIPTED, "--format", "json",
                                 as_="rae"))  # fmt: skip
    states = {c["id"]: c["state"] for c in listed}
    assert states[first] == "confirmed" and len(states) == len(cases)


def test_case_reads_over_the_server_print_what_the_workspace_prints(
    receipted: World, tmp_path: Path
) -> None:
    """`case list`, `case show` and `report` run over the server for the agreement's reviewer
    and print exactly what they print on the workspace; another reviewer is refused (exit 3,
    on the ledger), and so is a request signed with another key; the ledger audits."""
    import json

    world = receipted
    world.ok("monitor", "--agreement", RECEIPTED, as_="rae")
    listed = json.loads(world.ok("case", "list", "--agreement", RECEIPTED, "--format", "json",
                                 as_="rae"))  # fmt: skip
    assert listed
    first = listed[0]["id"]
    month = listed[0]["history"][0]["time"][:7]
    rae = world.kit.as_("rae")
    for args in (
        ("case", "list", "--agreement", RECEIPTED),
        ("case", "list", "--agreement", RECEIPTED, "--format", "json"),
        ("case", "list", "--agreement", RECEIPTED, "--format", "csv", "--state", "open"),
        ("case", "show", first[:10]),
        ("case", "show", first, "--format", "json"),
    ):
        remote = world.remote(*args, as_="rae")
        local = world.local(*args, *rae)
        assert remote.exit_code == local.exit_code == 0, (args, remote.stderr, local.stderr)
        assert remote.stdout == local.stdout, args
    vkey = world.ok("ledger", "key").strip()
    for kind in ("csv", "json", "parquet"):  # the same file and a receipt, with or without it
        here, there = tmp_path / f"local-cases.{kind}", tmp_path / f"remote-cases.{kind}"
        listing = ("case", "list", "--agreement", RECEIPTED, "--state", "open", "--out")
        assert world.remote(*listing, str(there), as_="rae").exit_code == 0
        assert world.local(*listing, str(here), *rae).exit_code == 0
        assert there.read_bytes() == here.read_bytes()
        entry = json.loads(world.local("ledger", "entries").stdout.strip().splitlines()[-1])
        assert entry["request"]["args"]["state"] == "open" and entry["output_format"] == kind
        served = world.runner.invoke(app, ["--server", world.url, "verify-result", str(there)])
        assert served.exit_code == 0, served.stderr
        outsider = world.runner.invoke(app, ["verify-result", str(here), "--vkey", vkey])
        assert outsider.exit_code == 0, outsider.stderr
        there.write_bytes(there.read_bytes()[:-1])
        changed = world.runner.invoke(app, ["--server", world.url, "verify-result", str(there)])
        assert changed.exit_code == 1 and "NOT VERIFIED" in changed.stderr
    for suffix in ("csv", "html"):
        here, there = tmp_path / f"local.{suffix}", tmp_path / f"remote.{suffix}"
        report = ("report", "--agreement", RECEIPTED, "--month", month, "--out")
        assert world.remote(*report, str(there), as_="rae").exit_code == 0
        assert world.local(*report, str(here), *rae).exit_code == 0
        assert there.read_text(encoding="utf-8") == here.read_text(encoding="utf-8")
        assert there.read_text(encoding="utf-8").count(first[:16]) == 0  # counts, not cases
    world.ok("principal", "add", "rex", "--role", "reviewer",
             "--pubkey", str(world.kit.pub_file("rex")), as_="ana")  # fmt: skip
    forged = ["--as", "rae", "--key", str(world.kit.key_file("rex"))]
    for args, code in (
        (["case", "list", "--agreement", RECEIPTED, *world.kit.as_("rex")], "CUST760"),
        (["case", "show", first, *world.kit.as_("rex")], "CUST760"),
        (["case", "list", "--agreement", RECEIPTED, *forged], "CUST502"),
    ):
        refused = world.runner.invoke(app, ["--server", world.url, *args])
        assert refused.exit_code == 3, (args, refused.stderr)
        assert listed[0]["payee"] not in refused.stdout + refused.stderr
        last = json.loads(world.local("ledger", "entries").stdout.strip().splitlines()[-1])
        assert last["action"] == "refusal" and last["code"] == code
    audit = world.local("ledger", "audit")
    assert audit.exit_code == 0, audit.stderr
