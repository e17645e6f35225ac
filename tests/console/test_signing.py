"""Signing in the browser (static/canonical.js, static/sshkey.js, static/api.js), in Chromium:
canonical JSON byte-equal to RFC 8785 as the ledger computes it, an `ssh-keygen` key file parsed
to the public key ssh-keygen wrote, requests signed in the page accepted by the ledger's own
check (and a request altered after signing refused), and key files the console must refuse."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from custodiet.ledger.canonical import dumps
from custodiet.ledger.replay import request_message, signature_valid, ssh_ed25519_key
from tests.console.browser import module_page
from tests.console.world import chromium

SAMPLES: list[Any] = [
    {"b": 1, "a": [True, False, None], "é": "ü", "\u20ac": "€", "𝄞": "clef", "Z": {}},
    {"sql": "SELECT \"x\" FROM t WHERE a = '\\n'\n\t-- \u2028 \u007f \u0000 \u001f"},
    {"n": [0, -1, 9007199254740991, -9007199254740991, 1.5, 0.1, 1e21, 1e-7, -0.0]},
    {"nested": {"z": [{"b": 2, "a": 1}], "a": "x"}, "": "empty key", "aa": 1, "a": 2},
    ["\U0001f600", "line\r\nbreak", "\\", "/", "\u00e9\u0301"],
]

CANONICAL = """async (values) => {
  const c = await import("/console/static/canonical.js");
  return values.map((v) => c.canonical(v));
}"""

PARSE = """async (text) => {
  const k = await import("/console/static/sshkey.js");
  try { return (await k.importPrivateKey(text)).line; }
  catch (e) { return `refused: ${e.message}`; }
}"""

SIGN = """async ({text, origin, principal, args}) => {
  const k = await import("/console/static/sshkey.js");
  const api = await import("/console/static/api.js");
  const { key } = await k.importPrivateKey(text);
  return api.sign(key, api.requestObject(origin, principal, "query", args));
}"""


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    with chromium() as browser:
        yield module_page(browser)


@pytest.fixture(scope="module")
def ssh_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ssh") / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "me@console", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path


def test_canonical_json_in_the_browser_is_the_ledgers_byte_for_byte(page: Any) -> None:
    produced = page.evaluate(CANONICAL, SAMPLES)
    assert [p.encode() for p in produced] == [dumps(s) for s in SAMPLES]


def test_an_ssh_keygen_key_parses_to_the_public_key_ssh_keygen_wrote(
    page: Any, ssh_key: Path
) -> None:
    line = page.evaluate(PARSE, ssh_key.read_text())
    assert line == " ".join(ssh_key.with_suffix(".pub").read_text().split()[:2])


def test_a_request_signed_in_the_page_passes_the_ledgers_check_and_an_altered_one_fails(
    page: Any, ssh_key: Path
) -> None:
    args = {"agreement": "a", "sql": "SELECT 'é', 1.5 AS x"}
    signed = page.evaluate(
        SIGN, {"text": ssh_key.read_text(), "origin": "o.test/log", "principal": "me", "args": args}
    )
    request, signature = signed["request"], signed["signature"]
    public = ssh_ed25519_key(ssh_key.with_suffix(".pub").read_text())
    assert request["args"] == args and request["origin"] == "o.test/log"
    assert len(request["nonce"]) == 32 and request["time"].endswith("000Z")
    assert signature_valid(public, request, signature)
    assert request_message(request).startswith(b"custodiet/request/v1\n")
    altered = {**request, "args": {**args, "sql": "SELECT 2"}}
    assert not signature_valid(public, altered, signature)
    assert len(base64.b64decode(signature)) == 64


def test_key_files_the_console_cannot_use_are_refused_by_name(
    page: Any, ssh_key: Path, tmp_path: Path
) -> None:
    protected = tmp_path / "protected"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret words", "-f", str(protected)],
        check=True,
        capture_output=True,
    )
    rsa = tmp_path / "rsa"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(rsa)],
        check=True,
        capture_output=True,
    )
    text = ssh_key.read_text()
    lines = text.splitlines()
    damaged = "\n".join([lines[0], lines[1][:10] + "A" + lines[1][11:], *lines[2:]])
    outcomes = {
        "protected": page.evaluate(PARSE, protected.read_text()),
        "rsa": page.evaluate(PARSE, rsa.read_text()),
        "public": page.evaluate(PARSE, ssh_key.with_suffix(".pub").read_text()),
        "damaged": page.evaluate(PARSE, damaged),
    }
    assert "passphrase-protected" in outcomes["protected"]
    assert outcomes["rsa"] == "refused: not an Ed25519 key"
    assert outcomes["public"].startswith("refused: not an OpenSSH private key")
    assert outcomes["damaged"].startswith("refused: ")
