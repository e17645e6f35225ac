"""A workspace on disk: where settings, keys, the ledger, the catalog and projections live.

DIR/
  workspace.json            origin name of the log, ledger store URL, created time
  log.json                  the log as pinned outside the store: origin, genesis entry hash,
                            verifier key and key history, latest signed checkpoint (0600; see
                            ledger/pin.py)
  keys/log.ed25519          the log's Ed25519 signing key (mode 0600, never printed)
  keys/log.ed25519.next     the next log key while custodians vote a `key.rotate` (0600)
  keys/log.ed25519.retired-N  a former log key, which signed the checkpoints below size N
  keys/secret.bin           32 random bytes; per-agreement token keys derive from it (0600)
  ledger.db                 the ledger (SQLite) unless workspace.json names a PostgreSQL store
  state.json                cache of the state replayed from the ledger (authenticated; never
                            acted on when it disagrees with the ledger)
  projections/              one DuckDB file per active agreement version (reviewer's engine)
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from custodiet.errors import InputError

if TYPE_CHECKING:
    from custodiet.ledger.pin import PinnedLog
    from custodiet.ledger.writer import Ledger

MANIFEST = "workspace.json"
PIN_FILE = "log.json"
PROCESS_START = time.time()
TEMPORARY_NAME = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp(\.wal)?$")
"""Our temporary files: ``.NAME.HEX.tmp`` (and DuckDB's ``.wal`` beside one) while a projection
or ``log.json`` is written; renamed into place when complete."""
SWEEP_GRACE = 5.0
"""Seconds a temporary file must predate this process before a sweep removes it."""
DEFAULT_MAX_RESULT_BYTES = 64 << 20
"""The manifest's ``max_result_bytes`` when absent: what one query may fetch from its engine."""


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    @property
    def log_key_path(self) -> Path:
        return self.root / "keys" / "log.ed25519"

    @property
    def next_log_key_path(self) -> Path:
        return self.root / "keys" / "log.ed25519.next"

    def retired_log_key_path(self, from_size: int) -> Path:
        """Where the key that signed the checkpoints below ``from_size`` is kept."""
        return self.root / "keys" / f"log.ed25519.retired-{from_size}"

    @property
    def secret_path(self) -> Path:
        return self.root / "keys" / "secret.bin"

    @property
    def state_path(self) -> Path:
        return self.root / "state.db"

    @property
    def projections_dir(self) -> Path:
        return self.root / "projections"

    @property
    def log_pin_path(self) -> Path:
        return self.root / PIN_FILE

    @property
    def witnesses_path(self) -> Path:
        """The witnesses the log asks for cosignatures (``custodiet.ledger.cosigning``)."""
        return self.root / "witnesses.json"

    def manifest(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(
                f"{self.root}: not a custodiet workspace (no {MANIFEST})",
                hint="create one with `custodiet init DIR`, or pass --workspace",
                code="CUST201",
            ) from None
        except (OSError, ValueError) as exc:
            raise InputError(
                f"{self.manifest_path}: unreadable workspace manifest ({type(exc).__name__})",
                code="CUST202",
            ) from None
        return data

    @property
    def origin(self) -> str:
        return str(self.manifest()["origin"])

    @property
    def max_result_bytes(self) -> int:
        """The manifest's ``max_result_bytes`` (default 64 MiB): a query whose result grows past
        it while it is fetched is refused (CUST376). A value that is not a positive integer
        fails closed (CUST202)."""
        value = self.manifest().get("max_result_bytes", DEFAULT_MAX_RESULT_BYTES)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(
                f"{self.manifest_path}: max_result_bytes must be a positive whole number of bytes",
                hint=f"set it to a number of bytes (the default is {DEFAULT_MAX_RESULT_BYTES})",
                code="CUST202",
            )
        return value

    @property
    def ledger_store_url(self) -> str:
        """``sqlite:///abs/path/ledger.db`` by default, or a ``postgresql://`` URL."""
        url = self.manifest().get("ledger_store")
        return str(url) if url else f"sqlite:///{(self.root / 'ledger.db').resolve()}"

    def ledger(self, pin_interval: float | None = None) -> Ledger:
        """The workspace's ledger writer, opened on ``ledger_store_url`` after sweeping
        unfinished temporary files, and checked against ``log.json`` (fails closed: a missing,
        emptied, replaced, truncated or inconsistent store, or a signing key other than the
        pinned one, is a TamperedError; see ``ledger.pin.check_log``)."""
        from custodiet.ledger.pin import LogPin, check_log
        from custodiet.ledger.writer import PIN_INTERVAL, open_ledger

        sweep_temporary_files(self)
        pin = LogPin(self.log_pin_path)
        pinned = pin.read()
        interval = PIN_INTERVAL if pin_interval is None else pin_interval
        ledger = open_ledger(
            self.ledger_store_url,
            self.origin,
            self.log_key_path,
            vkey=pinned_vkey(self, pinned),
            pin=pin,
            pin_interval=interval,
            history=pinned.history,
        )
        try:
            ledger.vkey()
            check_log(ledger, pinned)
        except BaseException:
            ledger.close()
            raise
        return ledger


def pinned_vkey(workspace: Workspace, pinned: PinnedLog) -> str:
    """The verifier key the log's signing key must match: the current pinned one (moved only
    by a ``key.rotate`` entry K custodians signed, see ``custodiet.logkey``). A rotation that
    was pinned but whose key files were not yet swapped (a killed process) is finished here:
    ``keys/log.ed25519.next`` becomes ``keys/log.ed25519`` when it is the pinned key."""
    from custodiet.logkey import finish_swap

    finish_swap(workspace, pinned.vkey)
    return pinned.vkey


def genesis_entry(workspace: Workspace, vkey: str, genesis: Mapping[str, Any]) -> dict[str, Any]:
    """Entry 0 of a new workspace's ledger, naming the first custodians and K (its leaf hash is
    pinned in log.json)."""
    return {
        "actor": "custodiet init",
        "action": "genesis",
        "origin": workspace.origin,
        "key_id": vkey.split("+")[1],
        "vkey": vkey,
        **genesis,
    }


def log_origin(root: Path) -> str:
    """A new log's origin, also its key's name: a C2SP key name (no whitespace, no '+')
    whatever the directory is called."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", root.resolve().name).strip("-") or "workspace"
    return f"custodiet.local/{name}-{secrets.token_hex(4)}"


def sweep_temporary_files(workspace: Workspace) -> list[Path]:
    """Remove unfinished temporary files a killed command left (``.NAME.HEX.tmp`` and its
    ``.wal``, in DIR and DIR/projections) that predate this process by SWEEP_GRACE seconds;
    return what was removed. Nothing else is touched."""
    removed = []
    cutoff = PROCESS_START - SWEEP_GRACE
    for directory in (workspace.root, workspace.projections_dir):
        try:
            candidates = [p for p in directory.iterdir() if TEMPORARY_NAME.match(p.name)]
        except OSError:
            continue
        for path in candidates:
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed.append(path)
            except OSError:
                continue
    return removed


def init_workspace(
    root: Path,
    ledger_store: str | None = None,
    *,
    custodians: Mapping[str, str],
    min_approvals: int = 2,
) -> Workspace:
    """Create a workspace: manifest, keys (0600), projections/, the ledger and its genesis.

    The genesis names the first ``custodians`` (name -> OpenSSH public key, at least two) and
    K = ``min_approvals`` (2 <= K <= their number); whoever runs init holds no power afterwards.
    Refuses (InputError) an existing directory that is not empty, a workspace included, and a
    ledger store that already holds a log. On any failure DIR is left as it was found.
    """
    genesis = genesis_fields(custodians, min_approvals)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        what = (
            "is already a workspace" if (root / MANIFEST).exists() else "is not an empty directory"
        )
        raise InputError(
            f"{root}: exists and {what}",
            hint="pick a new directory name, or empty this one",
            code="CUST227",
        )
    existed = root.exists()
    root.mkdir(parents=True, exist_ok=True)
    try:
        workspace = _populate(Workspace(root), ledger_store, genesis)
        from custodiet.permissions import tighten

        tighten(root)  # the workspace is the vault's alone: dirs 0700, files 0600
        return workspace
    except BaseException:
        # leave nothing half-made: a retry after fixing the cause must find DIR as it was
        shutil.rmtree(root, ignore_errors=True)
        if existed:
            root.mkdir()
        raise


def genesis_fields(custodians: Mapping[str, str], min_approvals: int) -> dict[str, Any]:
    """The genesis's custodians and K, checked: InputError naming what to fix."""
    from custodiet.ledger.replay import NAME, ssh_ed25519_key

    if len(custodians) < 2:
        raise InputError(
            "a workspace needs at least two custodians (--custodian NAME=PUBFILE, twice)",
            hint="every approval needs K >= 2 distinct custodians, so name at least two",
            code="CUST535",
        )
    if not 2 <= min_approvals <= len(custodians):
        raise InputError(
            f"--min-approvals {min_approvals}: must be at least 2 and at most the number of "
            f"custodians ({len(custodians)})",
            code="CUST535",
        )
    raws = set()
    for name, pubkey in custodians.items():
        if not NAME.match(name):
            raise InputError(f"--custodian {name!r}: not a valid principal name", code="CUST230")
        raws.add(ssh_ed25519_key(pubkey))
    if len(raws) != len(custodians):
        raise InputError("two custodians share one public key", code="CUST517")
    return {
        "custodians": [{"name": n, "pubkey": k} for n, k in sorted(custodians.items())],
        "min_approvals": min_approvals,
    }


def _populate(workspace: Workspace, ledger_store: str | None, genesis: dict[str, Any]) -> Workspace:
    from custodiet.ledger import note

    root = workspace.root
    (root / "keys").mkdir(mode=0o700)
    workspace.projections_dir.mkdir()
    key = note.write_private_key(workspace.log_key_path)
    fd = os.open(workspace.secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secrets.token_bytes(32))
    manifest: dict[str, Any] = {
        "origin": log_origin(root),
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if ledger_store:
        manifest["ledger_store"] = ledger_store
    workspace.manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    from custodiet.ledger.pin import LogPin, pinned_log
    from custodiet.ledger.writer import open_ledger

    vkey = note.vkey(workspace.origin, key)
    url = workspace.ledger_store_url
    ledger = open_ledger(url, workspace.origin, workspace.log_key_path, create=True, vkey=vkey)
    try:
        if ledger.size() or ledger.store.latest_checkpoint() is not None:
            raise InputError(
                "the ledger store already holds another log",
                hint="give --ledger-store an empty database, or a new ?schema=NAME",
                code="CUST136",
            )
        ledger.append(genesis_entry(workspace, vkey, genesis))
        LogPin(workspace.log_pin_path).write(pinned_log(ledger, vkey))
    finally:
        ledger.close()
    return workspace
