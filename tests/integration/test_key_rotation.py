"""Issue 9, the log key's rotation: the signing key is pinned; another key is refused until a
``key.rotate`` entry signed by K custodians (and, in its batch's checkpoint, by the old key)
moves it. Each test runs the CLI as a user would and checks the ledger and the key files."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from custodiet.identity import sign_request
from custodiet.ledger import note
from custodiet.ledger.verify import VerificationError, parse_vkey, verify_checkpoint
from custodiet.principals import Role
from custodiet.runtime import opened
from custodiet.workspace import Workspace
from tests.conftest import CliResult, run_cli
from tests.kit import Kit, private_key


def cli(ws: Workspace, *args: str) -> CliResult:
    return run_cli("--workspace", str(ws.root), *args)


def rotate(kit: Kit, ws: Workspace, who: str) -> CliResult:
    return cli(ws, "ledger", "rotate-key", *kit.as_(who))


def vkey_of(ws: Workspace, path: Path) -> str:
    return note.vkey(ws.origin, note.load_private_key(path))


def last_entry(ws: Workspace) -> dict[str, object]:
    ledger = ws.ledger()
    try:
        entry: dict[str, object] = json.loads(ledger.entry(ledger.size() - 1))
        return entry
    finally:
        ledger.close()


def stored_checkpoints(ws: Workspace) -> dict[int, str]:
    ledger = ws.ledger()
    try:
        return dict(ledger.store.checkpoints())
    finally:
        ledger.close()


@pytest.fixture
def kit(tmp_path: Path) -> Kit:
    return Kit(tmp_path)


@pytest.fixture
def ws(kit: Kit, tmp_path: Path) -> Workspace:
    made = kit.init(tmp_path / "ws")
    kit.add_principal(made, "rae", Role.REVIEWER)
    return made


@pytest.fixture
def rotated(kit: Kit, ws: Workspace) -> tuple[Workspace, str, str]:
    """``ws`` after ana and ben rotated its key, and one more entry signed under the new key;
    its old and new vkeys."""
    old = cli(ws, "ledger", "key").stdout.strip()
    assert rotate(kit, ws, "ana").status == 0
    done = rotate(kit, ws, "ben")
    assert done.status == 0, done.stderr
    new = cli(ws, "ledger", "key").stdout.strip()
    kit.add_principal(ws, "ola", Role.OVERSEER)
    return ws, old, new


def test_one_custodian_does_not_rotate_and_a_reviewer_is_refused(kit: Kit, ws: Workspace) -> None:
    old = cli(ws, "ledger", "key").stdout.strip()
    first = rotate(kit, ws, "ana")
    assert first.status == 0, first.stderr
    next_path = ws.next_log_key_path
    assert stat.S_IMODE(next_path.stat().st_mode) == 0o600
    assert next_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    upcoming = vkey_of(ws, next_path)
    assert f"log key {upcoming}: signed by ana (1 of 2); not rotated yet" in first.stdout
    entry = last_entry(ws)
    assert (entry["action"], entry["vkey"], entry["previous"]) == ("key.rotate", upcoming, old)
    assert (entry["votes"], entry["required"], entry["effective"]) == (1, 2, False)
    assert cli(ws, "ledger", "key").stdout.strip() == old
    assert vkey_of(ws, ws.log_key_path) == old
    assert json.loads(ws.log_pin_path.read_text())["keys"] == [{"vkey": old, "from_size": 1}]

    again = rotate(kit, ws, "ana")  # an approval counts once
    assert again.status == 3, again.stdout + again.stderr
    assert "already signed this change" in again.stderr

    reviewer = rotate(kit, ws, "rae")
    assert reviewer.status == 3, reviewer.stdout + reviewer.stderr
    assert "only custodians rotate the log key" in reviewer.stderr
    refusal = last_entry(ws)
    assert (refusal["action"], refusal["attempted"], refusal["actor"], refusal["code"]) == (
        "refusal", "key.rotate", "rae", "CUST318",
    )  # fmt: skip
    assert cli(ws, "ledger", "key").stdout.strip() == old
    assert cli(ws, "ledger", "audit").status == 0


def test_k_custodians_rotate_the_key_and_every_check_follows_the_history(
    rotated: tuple[Workspace, str, str], tmp_path: Path
) -> None:
    ws, old, new = rotated
    assert new != old
    assert not ws.next_log_key_path.exists()
    pin = json.loads(ws.log_pin_path.read_text())
    assert pin["vkey"] == new
    assert pin["keys"][0] == {"vkey": old, "from_size": 1}
    from_size = pin["keys"][1]["from_size"]
    assert pin["keys"][1] == {"vkey": new, "from_size": from_size}
    assert vkey_of(ws, ws.retired_log_key_path(from_size)) == old
    assert vkey_of(ws, ws.log_key_path) == new
    history = cli(ws, "ledger", "key", "--all")
    assert history.stdout.splitlines() == [f"1 {old}", f"{from_size} {new}"]

    # the rotation entry is the last of the batch the old key signed
    checkpoints = stored_checkpoints(ws)
    rotation = json.loads(run_cli_entries(ws)[from_size - 2])
    assert (rotation["action"], rotation["effective"], rotation["votes"]) == ("key.rotate", True, 2)
    old_note = checkpoints[from_size - 1]
    assert verify_checkpoint(old_note, parse_vkey(old)).size == from_size - 1
    with pytest.raises(VerificationError):
        verify_checkpoint(old_note, parse_vkey(new))
    latest = cli(ws, "ledger", "checkpoint").stdout
    assert verify_checkpoint(latest, parse_vkey(new)).size > from_size - 1
    with pytest.raises(VerificationError):
        verify_checkpoint(latest, parse_vkey(old))
    assert all(n < from_size for n in checkpoints if verify_ok(checkpoints[n], old))
    assert all(n >= from_size for n in checkpoints if verify_ok(checkpoints[n], new))

    verified = cli(ws, "ledger", "verify")
    assert verified.status == 0, verified.stderr
    audited = cli(ws, "ledger", "audit")
    assert audited.status == 0, audited.stderr

    old_file, new_file = tmp_path / "old.txt", tmp_path / "new.txt"
    old_file.write_text(old_note)
    new_file.write_text(latest)
    for path, vkey, status in ((old_file, old, 0), (new_file, new, 0), (new_file, old, 1),
                               (old_file, new, 1)):  # fmt: skip
        proc = subprocess.run(
            [sys.executable, "-m", "custodiet.ledger.verify", "checkpoint", str(path),
             "--vkey", vkey],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert proc.returncode == status, (path.name, proc.stdout, proc.stderr)
    # an overseer's checkpoint kept from before the rotation is consistent with the log now
    kept = cli(ws, "ledger", "verify", "--from-checkpoint", str(old_file))
    assert kept.status == 0, kept.stderr


def run_cli_entries(ws: Workspace) -> list[str]:
    return cli(ws, "ledger", "entries").stdout.splitlines()


def verify_ok(text: str, vkey: str) -> bool:
    try:
        verify_checkpoint(text, parse_vkey(vkey))
    except VerificationError:
        return False
    return True


def test_the_retired_key_and_an_unknown_key_are_refused(
    rotated: tuple[Workspace, str, str], tmp_path: Path
) -> None:
    ws, old, new = rotated
    current = tmp_path / "current.pem"
    shutil.copyfile(ws.log_key_path, current)
    size = len(run_cli_entries(ws))
    (retired,) = ws.log_key_path.parent.glob("log.ed25519.retired-*")
    shutil.copyfile(retired, ws.log_key_path)
    refused = cli(ws, "ledger", "key")
    assert refused.status == 1
    assert "the signing key is a retired key of this log" in refused.stderr
    assert old not in refused.stdout
    ws.log_key_path.unlink()
    note.write_private_key(ws.log_key_path)
    unknown = cli(ws, "ledger", "checkpoint")
    assert unknown.status == 1
    assert "the signing key is not the log's pinned key" in unknown.stderr
    shutil.copyfile(current, ws.log_key_path)
    assert cli(ws, "ledger", "key").stdout.strip() == new
    assert len(run_cli_entries(ws)) == size  # nothing was signed with either


def test_a_forged_key_rotate_changes_nothing_and_audit_names_it(
    kit: Kit, ws: Workspace, tmp_path: Path
) -> None:
    old = cli(ws, "ledger", "key").stdout.strip()
    forged_key = tmp_path / "forged.pem"
    forged_vkey = note.vkey(ws.origin, note.write_private_key(forged_key))
    with opened(ws) as rt:
        requests = [
            sign_request(
                private_key("mallory"),
                name,
                rt.state.origin,
                "key.rotate",
                {"vkey": forged_vkey},
                now=rt.now(),
            )
            for name in ("ana", "ben")
        ]
    ledger = ws.ledger()
    try:
        first = ledger.size()
        for count, request in enumerate(requests, 1):
            ledger.append({
                "action": "key.rotate", "actor": request.principal, "request": request.request,
                "signature": request.signature, "vkey": forged_vkey, "previous": old,
                "votes": count, "required": 2, "effective": count == 2,
            })  # fmt: skip
    finally:
        ledger.close()
    with opened(ws) as rt:
        assert rt.state.log_vkey == old
        assert [code for _, code, _ in rt.violations] == ["CUST502", "CUST502"]
    kit.add_principal(ws, "ola", Role.OVERSEER)  # the log goes on signing with its own key
    assert cli(ws, "ledger", "key").stdout.strip() == old
    assert json.loads(ws.log_pin_path.read_text())["keys"] == [{"vkey": old, "from_size": 1}]
    assert verify_checkpoint(cli(ws, "ledger", "checkpoint").stdout, parse_vkey(old))
    audited = cli(ws, "ledger", "audit")
    assert audited.status == 1
    assert f"not authorized: ledger entry {first}:" in audited.stderr
    assert "does not verify under the key registered for 'ana' [CUST502]" in audited.stderr


def test_a_pin_without_a_key_history_is_read_as_one_key(kit: Kit, ws: Workspace) -> None:
    pin = json.loads(ws.log_pin_path.read_text())
    vkey = pin.pop("keys")[0]["vkey"]
    ws.log_pin_path.write_text(json.dumps(pin))
    assert cli(ws, "ledger", "key", "--all").stdout == f"1 {vkey}\n"
    assert cli(ws, "ledger", "verify").status == 0
    assert rotate(kit, ws, "ana").status == 0
    assert rotate(kit, ws, "ben").status == 0
    keys = json.loads(ws.log_pin_path.read_text())["keys"]
    assert [k["vkey"] for k in keys][:1] == [vkey]
    assert len(keys) == 2


def test_a_rotation_killed_before_the_key_files_moved_is_finished_next_time(
    kit: Kit, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from custodiet import logkey

    old = cli(ws, "ledger", "key").stdout.strip()
    assert rotate(kit, ws, "ana").status == 0
    new = vkey_of(ws, ws.next_log_key_path)

    def killed(workspace: Workspace, vkey: str) -> None:
        if vkey == new:  # the rotation is pinned: die before the key files move
            raise KeyboardInterrupt

    monkeypatch.setattr(logkey, "finish_swap", killed)
    with pytest.raises(KeyboardInterrupt):
        kit.call(ws, logkey.rotate_key, "ben", "key.rotate", vkey=new)
    monkeypatch.undo()
    assert vkey_of(ws, ws.log_key_path) == old  # pinned, not yet swapped
    assert json.loads(ws.log_pin_path.read_text())["vkey"] == new
    assert cli(ws, "ledger", "key").stdout.strip() == new
    kit.add_principal(ws, "ola", Role.OVERSEER)
    assert cli(ws, "ledger", "verify").status == 0
    assert cli(ws, "ledger", "audit").status == 0
    assert new != old


@pytest.mark.parametrize(
    ("vkey", "rule"),
    [
        ("not a vkey", "not a log verifier key"),
        ("other.example/log", "is not an Ed25519 key of this log"),
        ("current", "already the log's key"),
    ],
)
def test_key_rotate_names_a_new_ed25519_key_of_this_log(
    kit: Kit, ws: Workspace, tmp_path: Path, vkey: str, rule: str
) -> None:
    from custodiet.errors import RefusedError
    from custodiet.logkey import rotate_key

    with opened(ws) as rt:
        current = rt.state.log_vkey
    if vkey == "current":
        vkey = current
    elif vkey == "other.example/log":
        vkey = note.vkey(vkey, note.write_private_key(tmp_path / "other.pem"))
    with pytest.raises(RefusedError, match=rule):
        kit.call(ws, rotate_key, "ana", "key.rotate", vkey=vkey)
    with opened(ws) as rt:
        assert rt.state.log_vkey == current
        assert rt.state.votes == {}


def test_a_pin_whose_history_does_not_end_in_its_key_is_refused(kit: Kit, ws: Workspace) -> None:
    from custodiet.errors import TamperedError
    from custodiet.ledger.pin import LogPin

    pin = json.loads(ws.log_pin_path.read_text())
    other = note.vkey(ws.origin, note.write_private_key(ws.root / "other.pem"))
    for keys in ([{"vkey": other, "from_size": 1}], [], [{"vkey": pin["vkey"], "from_size": 2}]):
        ws.log_pin_path.write_text(json.dumps({**pin, "keys": keys}))
        with pytest.raises(TamperedError, match="unreadable"):
            LogPin(ws.log_pin_path).read()
