"""The corruption battery: over copies of a workspace on SQLite and PostgreSQL, every fault makes
every command fail closed (exit 1, nothing signed, nothing appended), or, where the fault is
outside what a command reads, leaves its output exactly what the intact log gives; `ledger
verify` always names the fault."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from custodiet.errors import CustodietError
from tests.integration import ledger_faults as faults
from tests.integration.ledger_faults import Site

ALL = ("checkpoint", "key", "verify", "entries", "proof", "append")
# fault -> (the commands that must refuse; words `ledger verify` must name the fault with)
FAULTS: dict[str, tuple[Callable[[Site], None], tuple[str, ...], str]] = {
    "delete": (faults.delete_store, ALL, "ledger store"),
    "empty": (faults.empty_store, ALL, "ledger store"),
    "truncate": (faults.truncate_log, ALL, "fewer than the 20"),
    "truncate-file": (faults.truncate_file, ALL, "ledger store"),
    "flip-entry": (faults.flip_entry, ("verify", "entries", "proof"), "ledger entry 5"),
    "flip-full-tile": (faults.flip_full_tile, ("verify", "entries", "proof"), "ledger entry 3"),
    "flip-partial-tile": (faults.flip_partial_tile, ALL, "pinned checkpoint"),
    "flip-checkpoint": (faults.flip_checkpoint, ALL, "checkpoint does not verify"),
    "swap-key": (faults.swap_key, ALL, "not the log's pinned key"),
}
SQLITE_ONLY = {"truncate-file"}
CASES = [
    pytest.param(backend, fault, id=f"{backend}-{fault}", marks=marks)
    for backend, marks in (("sqlite", ()), ("postgres", (pytest.mark.postgres,)))
    for fault in FAULTS
    if backend == "sqlite" or fault not in SQLITE_ONLY
]


@pytest.fixture
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    made = faults.make_site(tmp_path / "ws", request.param)
    yield made
    faults.drop_site(made)


def run_command(site: Site, command: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of one command; ``append`` runs in process."""
    if command == "append":
        try:
            ledger = site.ws.ledger()
            try:
                ledger.append({"actor": "reviewer-1", "action": "query"})
            finally:
                ledger.close()
        except CustodietError as exc:
            return exc.exit_status, "", exc.render()
        return 0, "", ""
    args = {"proof": ("proof", "5"), "entries": ("entries",)}.get(command, (command,))
    result = site.ledger_cli(*args)
    return result.status, result.stdout, result.stderr


@pytest.mark.parametrize(("site", "fault"), CASES, indirect=["site"])
def test_every_command_fails_closed(site: Site, fault: str) -> None:
    inflict, refusing, words = FAULTS[fault]
    intact = {command: run_command(site, command) for command in ALL if command != "append"}
    assert all(status == 0 for status, _, _ in intact.values()), intact
    inflict(site)
    signed = site.checkpoint_count()  # after the fault: no command may add to it
    for command in ALL:
        status, out, err = run_command(site, command)
        if command in refusing:
            assert status == 1, (command, out, err)
            assert "Traceback" not in err and "hint:" in err, (command, err)
            if command != "verify":
                assert out == "", (command, out)
            assert site.checkpoint_count() in (signed, None), command
        elif command == "append":
            assert status == 0, err
            signed = site.checkpoint_count()
        else:
            assert (status, out) == intact[command][:2], command
    verdict = run_command(site, "verify")
    assert verdict[0] == 1 and words in verdict[2], verdict
    if fault in ("delete", "empty"):
        assert site.checkpoint_count() in (None, 0)
