"""Our notes and cosignatures against Go's reference golang.org/x/mod/sumdb/note.

tests/go/notehelper is built here, in GOPATH mode and offline, against Debian's
golang-golang-x-mod-dev (sources in /usr/share/gocode). Under CI=true a missing Go toolchain
fails these tests; elsewhere they skip visibly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from custodiet.ledger import note
from custodiet.ledger.verify import (
    COSIGNATURE_TYPE,
    SIGNATURE_PREFIX,
    VerificationError,
    b64,
    parse_vkey,
    split_note,
    verify_checkpoint,
)
from custodiet.ledger.witness import Witness
from tests.needs import unavailable

HELPER = Path(__file__).resolve().parents[2] / "go" / "notehelper" / "main.go"
GOPATH_SOURCES = Path("/usr/share/gocode")
NOTE_PACKAGE = GOPATH_SOURCES / "src" / "golang.org" / "x" / "mod" / "sumdb" / "note"
ORIGIN = "custodiet.test/go-interop"
ROOT = bytes(range(32))

Helper = Callable[..., subprocess.CompletedProcess[str]]


def _unavailable(why: str) -> None:
    unavailable(why, "install golang-go golang-golang-x-mod-dev (make system-deps)")


@pytest.fixture(scope="module")
def go(tmp_path_factory: pytest.TempPathFactory) -> Helper:
    """The helper binary, built from the fixture in a temporary GOPATH."""
    go_binary = shutil.which("go")
    if go_binary is None:
        _unavailable("the Go toolchain is not installed")
    if not NOTE_PACKAGE.is_dir():
        _unavailable(f"{NOTE_PACKAGE} is missing")
    work = tmp_path_factory.mktemp("go")
    package = work / "src" / "notehelper"
    package.mkdir(parents=True)
    shutil.copy(HELPER, package / "main.go")
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": f"{work}{os.pathsep}{GOPATH_SOURCES}",
        "GOCACHE": str(work / "cache"),
        "GOFLAGS": "",
        "GOPROXY": "off",
    }
    binary = work / "notehelper"
    built = subprocess.run(
        [str(go_binary), "build", "-o", str(binary), "."],
        cwd=package,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(binary), *args], input=stdin, capture_output=True, text=True, timeout=60
        )

    return run


def _seed(key: Ed25519PrivateKey) -> str:
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return raw.hex()


def test_go_signed_checkpoint_verifies_here(go: Helper) -> None:
    skey, vkey = go("keygen", ORIGIN).stdout.split()
    body = note.checkpoint_body(ORIGIN, 7, ROOT)
    signed = go("sign", skey, stdin=body)
    assert signed.returncode == 0, signed.stderr
    cp = verify_checkpoint(signed.stdout, parse_vkey(vkey))
    assert (cp.size, cp.root, cp.body) == (7, ROOT, body)


def test_our_signed_and_witnessed_checkpoint_opens_in_go(go: Helper, tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    vkey = note.vkey(ORIGIN, key)
    signed = note.sign(note.checkpoint_body(ORIGIN, 3, ROOT), ORIGIN, key)
    witness = Witness.open_or_create(tmp_path / "w", "witness.test/w1")
    line = witness.cosign(signed, vkey, [])
    opened = go("open", vkey, witness.vkey, stdin=signed + line)
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout.split() == [ORIGIN, "witness.test/w1"]


def test_go_cosignature_verifies_here(go: Helper) -> None:
    key, witness = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    body = note.checkpoint_body(ORIGIN, 9, ROOT)
    signed = note.sign(body, ORIGIN, key)
    cosigned = go("cosign", "witness.test/go", _seed(witness), "1700000000", stdin=body)
    assert cosigned.returncode == 0, cosigned.stderr
    line, wvkey = cosigned.stdout.splitlines()
    assert wvkey == note.vkey("witness.test/go", witness, COSIGNATURE_TYPE)
    cp = verify_checkpoint(
        signed + line + "\n", parse_vkey(note.vkey(ORIGIN, key)), [parse_vkey(wvkey)]
    )
    assert cp.size == 9


def test_go_note_with_a_blank_line_splits_at_the_last_one(go: Helper) -> None:
    skey, vkey = go("keygen", "example.com/log").stdout.split()
    signed = go("sign", skey, stdin="first\n\nsecond\n").stdout
    body, signatures = split_note(signed)
    assert body == "first\n\nsecond\n"
    ((name, raw),) = signatures
    key = parse_vkey(vkey)
    assert (name, raw[:4]) == (key.name, key.key_id)
    Ed25519PublicKey.from_public_bytes(key.public_key).verify(raw[4:], body.encode())


KEY = Ed25519PrivateKey.generate()
VKEY = note.vkey(ORIGIN, KEY)
SIGNED = note.sign(note.checkpoint_body(ORIGIN, 5, ROOT), ORIGIN, KEY)
UNKNOWN = f"{SIGNATURE_PREFIX}someone.else {b64(bytes(8))}\n"


@pytest.mark.parametrize(
    "text",
    [
        SIGNED,
        SIGNED + UNKNOWN * 99,
        SIGNED + UNKNOWN * 100,
        SIGNED + f"{SIGNATURE_PREFIX}bad+name {b64(bytes(8))}\n",
        SIGNED + f"{SIGNATURE_PREFIX}bad name {b64(bytes(8))}\n",
        SIGNED.replace(ORIGIN, ORIGIN + "\t", 1),
        SIGNED + "\n",
        SIGNED.rstrip("\n"),
        "preamble\n\n" + SIGNED,
        SIGNED + f"{SIGNATURE_PREFIX}short {b64(bytes(4))}\n",
    ],
    ids=[
        "valid",
        "100-lines",
        "101-lines",
        "plus-name",
        "space-name",
        "control",
        "trailing-blank",
        "no-final-newline",
        "blank-line-in-text",
        "short-signature",
    ],
)
def test_go_and_we_accept_and_refuse_the_same_notes(go: Helper, text: str) -> None:
    """Differential: note.Open and our split_note + signature check agree on every case."""
    theirs = go("open", VKEY, stdin=text).returncode == 0
    try:
        verify_checkpoint(text, parse_vkey(VKEY))
    except VerificationError:
        ours = False
    else:
        ours = True
    assert ours == theirs
