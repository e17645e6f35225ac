"""The standalone verifier's --vkey and --witness take the key or a file holding it; a
malformed key is a usage error (exit 2), never NOT VERIFIED."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodiet.ledger import note
from custodiet.ledger.verify import main

ORIGIN = "example.test/log"


def _checkpoint(tmp_path: Path) -> tuple[Path, str]:
    key = Ed25519PrivateKey.generate()
    body = note.checkpoint_body(ORIGIN, 0, b"\x00" * 32)
    path = tmp_path / "cp.txt"
    path.write_text(note.sign(body, ORIGIN, key), encoding="utf-8")
    return path, note.vkey(ORIGIN, key)


def test_vkey_from_a_file_as_the_readme_writes_it(tmp_path: Path, capsys) -> None:
    checkpoint, vkey = _checkpoint(tmp_path)
    (tmp_path / "log.vkey").write_text(vkey + "\n", encoding="utf-8")
    assert main(["checkpoint", str(checkpoint), "--vkey", str(tmp_path / "log.vkey")]) == 0
    assert "checkpoint verified" in capsys.readouterr().out


def test_vkey_as_the_key_string(tmp_path: Path) -> None:
    checkpoint, vkey = _checkpoint(tmp_path)
    assert main(["checkpoint", str(checkpoint), "--vkey", vkey]) == 0


@pytest.mark.parametrize("option", ["--vkey", "--witness"])
def test_a_malformed_key_is_a_usage_error_not_a_failed_verification(
    tmp_path: Path, capsys, option: str
) -> None:
    checkpoint, vkey = _checkpoint(tmp_path)
    extra = ["--vkey", vkey] if option == "--witness" else []
    status = main(["checkpoint", str(checkpoint), *extra, option, "no-such-file-or-key"])
    err = capsys.readouterr().err
    assert status == 2
    assert "NOT VERIFIED" not in err and "not a verifier key" in err


def test_help_has_no_raw_markup(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "``" not in capsys.readouterr().out
