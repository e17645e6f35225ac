"""A workspace on disk: where settings, keys, the ledger, the catalog and projections live.

DIR/
  workspace.json            origin name of the log, ledger store URL, created time
  keys/log.ed25519          the log's Ed25519 signing key (mode 0600, never printed)
  keys/secret.bin           32 random bytes; per-agreement token keys derive from it (0600)
  ledger.db                 the ledger (SQLite) unless workspace.json names a PostgreSQL store
  state.json                cache of the state replayed from the ledger (authenticated; never
                            acted on when it disagrees with the ledger)
  projections/              one DuckDB file per active agreement version (reviewer's engine)
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from custodiet.errors import InputError

if TYPE_CHECKING:
    from custodiet.ledger.writer import Ledger

MANIFEST = "workspace.json"


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
    def secret_path(self) -> Path:
        return self.root / "keys" / "secret.bin"

    @property
    def state_path(self) -> Path:
        return self.root / "state.db"

    @property
    def projections_dir(self) -> Path:
        return self.root / "projections"

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
    def ledger_store_url(self) -> str:
        """``sqlite:///abs/path/ledger.db`` by default, or a ``postgresql://`` URL."""
        url = self.manifest().get("ledger_store")
        return str(url) if url else f"sqlite:///{(self.root / 'ledger.db').resolve()}"

    def ledger(self) -> Ledger:
        """The workspace's ledger writer, opened on ``ledger_store_url`` (cheap to open)."""
        from custodiet.ledger.writer import open_ledger

        return open_ledger(self.ledger_store_url, self.origin, self.log_key_path)


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
        "origin": f"custodiet.local/{root.resolve().name}-{secrets.token_hex(4)}",
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if ledger_store:
        manifest["ledger_store"] = ledger_store
    workspace.manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    ledger = workspace.ledger()
    try:
        if ledger.size():
            raise InputError(
                "the ledger store already holds another log",
                hint="give --ledger-store an empty database, or a new ?schema=NAME",
                code="CUST136",
            )
        vkey = note.vkey(workspace.origin, key)
        ledger.append(
            {
                "actor": "custodiet init",
                "action": "genesis",
                "origin": workspace.origin,
                "key_id": vkey.split("+")[1],
                "vkey": vkey,
                **genesis,
            }
        )
        ledger.checkpoint()
    finally:
        ledger.close()
    return workspace
