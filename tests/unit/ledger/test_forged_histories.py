"""The committed corpus of forged histories (tests/fixtures/forged): each is caught by the replay,
which names the exact violating entry and its rule; the clean history replays. The standalone
``replay.py`` reaches the same verdicts when copied beside ``verify.py`` into a directory of its
own and run by an interpreter that has ``cryptography`` and nothing of custodiet."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import custodiet.ledger.replay as replay_module
from custodiet.ledger.replay import audit_entries
from tests.signed_log import GOVERNANCE, history, intent, numbered

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "forged"
CLEAN = CORPUS / "clean.jsonl"
# case -> (index of the first violating entry, its code, words of its rule)
FORGED = {
    "approval-without-signature": (5, "CUST501", "the request is not signed"),
    "approval-by-non-custodian": (5, "CUST318", "principal 'ola' is a overseer; only custodians"),
    "approval-signed-with-another-key": (5, "CUST502", "key registered for 'ana'"),
    "quorum-below-k": (6, "CUST313", "agreement 'audit-a' is not approved (1 of 2 approvals)"),
    "approval-of-different-sha256": (5, "CUST524", "but the pending version of 'audit-a' is v1"),
    "query-after-revocation": (11, "CUST315", "agreement 'audit-a' was revoked"),
    "projection-from-unregistered-digest": (7, "CUST526", "with an unregistered digest"),
    "query-without-projection": (7, "CUST527", "has no projection built from registered sources"),
    "replayed-request": (10, "CUST506", "the request was already used (a replayed signature)"),
    "wrong-derived-field": (5, "CUST514", "the entry states approvals 2, not 1"),
}


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("forged_corpus", CORPUS / "make_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_corpus_is_exactly_what_the_generator_makes() -> None:
    make = generator()
    history = make.clean()
    expected = {"clean": history.entries, **make.cases(history)}
    expected["truncated-tail"] = history.entries[:-2]
    files = {p.stem for p in CORPUS.glob("*.jsonl")}
    assert files == set(expected) == {"clean", "truncated-tail", *FORGED}
    for name, entries in expected.items():
        lines = b"".join(make.canonical(e) + b"\n" for e in entries)
        assert (CORPUS / f"{name}.jsonl").read_bytes() == lines, name


def test_the_clean_history_replays() -> None:
    state, result = audit_entries(read(CLEAN))
    assert (result.entries, result.violation, result.unfinished) == (10, None, ())
    record = state.agreements["audit-a"]
    assert record.latest.approvals == ["ana", "ben"] and "audit-a@1" in state.projections
    assert state.custodians() == ["ana", "ben"]


@pytest.mark.parametrize("case", sorted(FORGED))
def test_a_forged_history_is_caught_at_its_entry(case: str) -> None:
    index, code, words = FORGED[case]
    entries = read(CORPUS / f"{case}.jsonl")
    _, result = audit_entries(entries)
    assert result.violation is not None, case
    assert result.violation[:2] == (index, code), result.violation
    assert words in result.violation[2]
    assert result.entries == index + 1  # the audit stops at the first violation
    # everything before the forgery is genuine history
    _, before = audit_entries(entries[:index])
    assert before.violation is None


# --- the standalone replay, outside custodiet ----------------------------------------------------


@pytest.fixture(scope="module")
def inspector(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A directory holding only replay.py and verify.py, and an interpreter whose only
    third-party package is ``cryptography`` (with the cffi it loads): custodiet is not
    importable there. Returns (directory, python)."""
    import _cffi_backend  # type: ignore[import-not-found]
    import cffi
    import cryptography

    root = tmp_path_factory.mktemp("inspector")
    here = root / "replay"
    here.mkdir()
    source = Path(replay_module.__file__).parent
    for name in ("replay.py", "verify.py"):
        shutil.copyfile(source / name, here / name)
    deps = root / "deps"
    deps.mkdir()
    for module in (cryptography, cffi, _cffi_backend):
        path = Path(str(module.__file__))
        target = path.parent if path.name == "__init__.py" else path
        (deps / target.name).symlink_to(target)
    venv.EnvBuilder(with_pip=False, symlinks=True).create(root / "venv")
    python = root / "venv" / "bin" / "python"
    site = subprocess.run(
        [python, "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True, env={},
    ).stdout.strip()  # fmt: skip
    (Path(site) / "inspector-deps.pth").write_text(f"{deps}\n", encoding="utf-8")
    return here, python


def standalone(inspector: tuple[Path, Path], *args: str) -> subprocess.CompletedProcess[str]:
    here, python = inspector
    return subprocess.run(
        [str(python), "-I", "replay.py", *args],
        cwd=here, capture_output=True, text=True, env={}, timeout=60, check=False,
    )  # fmt: skip


def test_the_inspectors_interpreter_has_no_custodiet(inspector: tuple[Path, Path]) -> None:
    here, python = inspector
    probe = "import cryptography, importlib.util as u; print(u.find_spec('custodiet'))"
    done = subprocess.run([python, "-I", "-c", probe], cwd=here, capture_output=True,
                          text=True, env={}, check=False)  # fmt: skip
    assert (done.returncode, done.stdout.strip()) == (0, "None"), done.stderr
    assert sorted(p.name for p in here.iterdir()) == ["replay.py", "verify.py"]


def test_standalone_replay_accepts_the_clean_history(inspector: tuple[Path, Path]) -> None:
    vkey = (CORPUS / "log.vkey").read_text().strip()
    done = standalone(inspector, "--entries", str(CLEAN), "--checkpoint",
                      str(CORPUS / "checkpoint.txt"), "--vkey", vkey)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "authorized: 10 entries replayed, every access authorized" in done.stdout
    assert done.stderr == ""


@pytest.mark.parametrize("case", sorted(FORGED))
def test_standalone_replay_names_the_forged_entry(inspector: tuple[Path, Path], case: str) -> None:
    index, code, words = FORGED[case]
    done = standalone(inspector, "--entries", str(CORPUS / f"{case}.jsonl"))
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.startswith(f"NOT AUTHORIZED: entry {index}: ")
    assert words in done.stderr and done.stderr.rstrip().endswith(f"[{code}]")
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_a_truncated_tail_after_a_checkpoint_is_caught(inspector: tuple[Path, Path]) -> None:
    truncated = CORPUS / "truncated-tail.jsonl"
    _, result = audit_entries(read(truncated))  # the governance rules alone cannot see it...
    assert result.violation is None
    vkey = (CORPUS / "log.vkey").read_text().strip()
    done = standalone(inspector, "--entries", str(truncated), "--checkpoint",
                      str(CORPUS / "checkpoint.txt"), "--vkey", vkey)  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr  # ...the checkpoint does
    assert done.stderr == "NOT VERIFIED: 8 entries, checkpoint says 10\n"
    assert done.stdout == ""


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_standalone_replay_names_a_forged_signature_deep_in_a_long_log(
    inspector: tuple[Path, Path], tmp_path: Path, jobs: str
) -> None:
    """Copied out, the replay starts its own workers (``--jobs 2``) and names the same entry."""
    now = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)
    entries = history(2 * replay_module.CHUNK + 301, "test.local/audit", now)
    index = GOVERNANCE + 2 * (replay_module.CHUNK + 40)
    entries[index] = intent("test.local/audit", now, signer="ben")
    path = tmp_path / "entries.jsonl"
    path.write_bytes(b"\n".join(numbered(entries, now)) + b"\n")
    done = standalone(inspector, "--entries", str(path), "--jobs", jobs)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr == (
        f"NOT AUTHORIZED: entry {index}: the signature does not verify under the key "
        "registered for 'rae' [CUST502]\n"
    )
    assert done.stdout == ""


def test_the_in_package_replay_agrees_with_the_command_line() -> None:
    """``python -m``-less use of the module's main on the same inputs (no subprocess)."""
    vkey = (CORPUS / "log.vkey").read_text().strip()
    args = ["--checkpoint", str(CORPUS / "checkpoint.txt"), "--vkey", vkey]
    assert replay_module.main(["--entries", str(CLEAN), *args]) == 0
    assert replay_module.main(["--entries", str(CORPUS / "truncated-tail.jsonl"), *args]) == 1
    assert sys.modules["custodiet.ledger.replay"] is replay_module
