"""A workspace on disk: where settings, keys, the ledger, the catalog and projections live.

DIR/
  workspace.json            origin name of the log, ledger store URL, created time
  keys/log.ed25519          the log's Ed25519 signing key (mode 0600, never printed)
  keys/secret.bin           32 random bytes; per-agreement token keys derive from it (0600)
  ledger.db                 the ledger (SQLite) unless workspace.json names a PostgreSQL store
  state.db                  catalog, principals, agreements, approvals, re-identification
  projections/              one DuckDB file per active agreement version (reviewer's engine)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from custodiet.errors import InputError

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
