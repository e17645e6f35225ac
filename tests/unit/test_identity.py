"""Principals' keys: ssh-keygen keys, `custodiet key new`, PEM and passphrase-protected keys,
non-Ed25519 keys refused; and the replay's canonical JSON is the package's RFC 8785 encoder."""

from __future__ import annotations

import importlib.util
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from custodiet.errors import InputError
from custodiet.identity import (
    load_private_key,
    load_public_key,
    new_key,
    resolve_key_path,
    sign_request,
)
from custodiet.ledger import canonical as package_canonical
from custodiet.ledger.replay import SAFE_INTEGER, canonical, signature_valid, ssh_ed25519_key
from tests.conftest import run_cli
from tests.needs import unavailable

PASSPHRASE_ENV = "CUSTODIET_KEY_PASSPHRASE"


def ssh_keygen() -> str:
    """ssh-keygen's path; under CI=true its absence fails the test, elsewhere it skips."""
    found = shutil.which("ssh-keygen") or (
        "/usr/bin/ssh-keygen" if Path("/usr/bin/ssh-keygen").exists() else None
    )
    if found is None:
        unavailable(
            "ssh-keygen is not installed: OpenSSH interoperability not checked",
            "install openssh-client (make system-deps)",
        )
    return found


def keygen(path: Path, key_type: str = "ed25519", passphrase: str = "") -> Path:
    subprocess.run(
        [ssh_keygen(), "-q", "-t", key_type, "-N", passphrase, "-C", "someone@host", "-f",
         str(path)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return path


def public_line(key: Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode("ascii")
    )


def assert_signs(key: Ed25519PrivateKey, public: str) -> None:
    """A request signed with ``key`` verifies under ``public`` the way the ledger checks it."""
    signed = sign_request(key, "ana", "custodiet.test/id", "query", {"sql": "SELECT 1"})
    assert signature_valid(ssh_ed25519_key(public), signed.request, signed.signature)
    other = Ed25519PrivateKey.generate()
    assert not signature_valid(ssh_ed25519_key(public_line(other)), signed.request,
                               signed.signature)  # fmt: skip


# --- OpenSSH keys from ssh-keygen ----------------------------------------------------------------


def test_ssh_keygen_ed25519_keys_load_and_sign(tmp_path: Path) -> None:
    private = keygen(tmp_path / "id_ed25519")
    public = load_public_key(tmp_path / "id_ed25519.pub")
    assert public.startswith("ssh-ed25519 AAAA") and "someone@host" not in public
    key = load_private_key(private)
    assert public_line(key) == public
    assert_signs(key, public)


def test_ssh_keygen_keys_work_end_to_end(tmp_path: Path) -> None:
    """A workspace whose custodians are ssh-keygen keys; one registers a reviewer with hers."""
    for name in ("ana", "ben", "rae"):
        keygen(tmp_path / name)
    ws = tmp_path / "ws"
    made = run_cli("init", str(ws), "--custodian", f"ana={tmp_path / 'ana.pub'}",
                   "--custodian", f"ben={tmp_path / 'ben.pub'}")  # fmt: skip
    assert made.status == 0, made.stderr
    added = run_cli("principal", "add", "rae", "--role", "reviewer", "--pubkey",
                    str(tmp_path / "rae.pub"), "--as", "ana", "--key", str(tmp_path / "ana"),
                    "--workspace", str(ws))  # fmt: skip
    assert added.status == 0, added.stderr
    assert "signed by ana (1 of 1); registered" in added.stdout


def test_a_non_ed25519_ssh_key_is_a_usage_error(tmp_path: Path) -> None:
    keygen(tmp_path / "id_ecdsa", "ecdsa")
    with pytest.raises(InputError) as public:
        load_public_key(tmp_path / "id_ecdsa.pub")
    assert public.value.code == "CUST533" and public.value.exit_status == 2
    with pytest.raises(InputError) as private:
        load_private_key(tmp_path / "id_ecdsa")
    assert private.value.code == "CUST532" and private.value.exit_status == 2
    assert "not an Ed25519 private key" in private.value.message


# --- `custodiet key new` -------------------------------------------------------------------------


def test_key_new_writes_a_private_key_0600_and_its_pub(tmp_path: Path) -> None:
    out = tmp_path / "rae"
    made = run_cli("key", "new", "--out", str(out), "--comment", "rae@agency")
    assert made.status == 0, made.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    pub = out.with_name("rae.pub").read_text(encoding="ascii")
    assert pub.startswith("ssh-ed25519 AAAA") and pub.rstrip().endswith(" rae@agency")
    assert pub.split()[1] in made.stdout and "BEGIN" not in made.stdout  # the private key stays
    assert out.read_bytes().startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    key = load_private_key(out)
    assert public_line(key) == load_public_key(out.with_name("rae.pub"))
    before = (out.read_bytes(), out.with_name("rae.pub").read_bytes())
    again = run_cli("key", "new", "--out", str(out))
    assert again.status == 2, again.stdout + again.stderr
    assert f"{out}: exists; custodiet never overwrites a key" in again.stderr
    assert (out.read_bytes(), out.with_name("rae.pub").read_bytes()) == before


def test_key_new_refuses_when_only_the_pub_exists(tmp_path: Path) -> None:
    out = tmp_path / "k"
    out.with_name("k.pub").write_text("somebody else's key\n")
    with pytest.raises(InputError, match="exists; custodiet never overwrites a key"):
        new_key(out)
    assert not out.exists()
    with pytest.raises(InputError, match="no such directory"):
        new_key(tmp_path / "missing" / "k")


# --- PEM, passphrases, other algorithms ----------------------------------------------------------


def pem(key: Any, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    data: bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    return data


def test_pem_keys_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "key.pem"
    path.write_bytes(pem(key))
    loaded = load_private_key(path)
    assert public_line(loaded) == public_line(key)
    assert_signs(loaded, public_line(key))


def test_a_passphrase_protected_key_loads_with_the_passphrase_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "key.pem"
    path.write_bytes(pem(key, b"correct horse"))
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    with pytest.raises(InputError) as missing:
        load_private_key(path)
    assert missing.value.code == "CUST532"
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")
    with pytest.raises(InputError):
        load_private_key(path)
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse")
    assert public_line(load_private_key(path)) == public_line(key)


def test_a_passphrase_protected_ssh_keygen_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening an encrypted OpenSSH key needs bcrypt; without it, a clean usage error (exit 2),
    never a traceback."""
    path = keygen(tmp_path / "id_ed25519", passphrase="correct horse")
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse")
    if importlib.util.find_spec("bcrypt") is not None:
        key = load_private_key(path)
        assert public_line(key) == load_public_key(path.with_name("id_ed25519.pub"))
        return
    with pytest.raises(InputError) as refused:
        load_private_key(path)
    assert refused.value.code == "CUST532" and refused.value.exit_status == 2
    assert "needs the bcrypt package" in refused.value.message


def test_non_ed25519_keys_are_refused_with_exit_2(tmp_path: Path) -> None:
    for name, key in (
        ("rsa.pem", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("ec.pem", ec.generate_private_key(ec.SECP256R1())),
    ):
        path = tmp_path / name
        path.write_bytes(pem(key))
        with pytest.raises(InputError) as refused:
            load_private_key(path)
        assert refused.value.exit_status == 2 and refused.value.code == "CUST532"
    rsa_pub = tmp_path / "rsa.pub"
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_pub.write_bytes(
        rsa_key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
    )
    ed_pub = tmp_path / "ed.pub"
    ed_pub.write_text(public_line(Ed25519PrivateKey.generate()) + "\n")
    result = run_cli("init", str(tmp_path / "ws"), "--custodian", f"ana={rsa_pub}",
                     "--custodian", f"ben={ed_pub}")  # fmt: skip
    assert result.status == 2, result.stdout + result.stderr
    assert f"{rsa_pub}: not an OpenSSH ssh-ed25519 public key" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "ws" / "ledger.db").exists()


def test_the_key_comes_from_key_or_the_environment(tmp_path: Path) -> None:
    assert resolve_key_path(tmp_path / "k", {"CUSTODIET_KEY": "/x"}) == tmp_path / "k"
    assert resolve_key_path(None, {"CUSTODIET_KEY": "/x"}) == Path("/x")
    with pytest.raises(InputError) as missing:
        resolve_key_path(None, {})
    assert missing.value.code == "CUST534"


# --- canonical JSON: the standalone replay's encoder is the package's RFC 8785 -------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-SAFE_INTEGER, max_value=SAFE_INTEGER)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_replay_canonical_json_is_the_package_encoder(value: Any) -> None:
    assert canonical(value) == package_canonical.dumps(value)


def encoded(encode: Any, value: Any) -> bytes | str:
    try:
        result: bytes = encode(value)
    except ValueError:
        return "refused"
    return result


@given(
    st.dictionaries(
        st.text(alphabet=st.characters(exclude_categories=()), max_size=3), st.integers(0, 9)
    )
)
def test_keys_sort_by_utf16_code_units_and_both_refuse_lone_surrogates(
    value: dict[str, int],
) -> None:
    assert encoded(canonical, value) == encoded(package_canonical.dumps, value)


def test_canonical_json_known_answers() -> None:
    # RFC 8785 3.2.3: keys sort by UTF-16 code units ("\u20ac" before "\U0001f600" in UTF-16)
    value = {"\U0001f600": 1, "\u20ac": 2, "\r": 3, "1": 4, "\u00f6": 5}
    expected = '{"\\r":3,"1":4,"\u00f6":5,"\u20ac":2,"\U0001f600":1}'.encode()
    assert canonical(value) == package_canonical.dumps(value) == expected
    assert canonical(["\u2028", "\x1f", "/"]) == '["\u2028","\\u001f","/"]'.encode()
    lone = {"\ud800": 1}
    assert encoded(canonical, lone) == encoded(package_canonical.dumps, lone) == "refused"
    for bad in (1.5, 2**53, {1: 2}):
        with pytest.raises(ValueError):
            canonical(bad)
