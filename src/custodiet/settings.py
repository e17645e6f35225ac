"""Settings: one table drives defaults, environment and docs; the environment is read here."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

WORKSPACE_ENV = "CUSTODIET_WORKSPACE"
DEFAULT_WORKSPACE = Path("custodiet-workspace")


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    env: str | None
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("workspace", str(DEFAULT_WORKSPACE), WORKSPACE_ENV, "workspace directory"),
    Setting(
        "merkle_vectors",
        "../shared/testvectors/merkle",
        "CUSTODIET_MERKLE_VECTORS",
        "RFC 6962 test vectors (tests only)",
    ),
)


def resolve_workspace(explicit: Path | None, environ: dict[str, str] | None = None) -> Path:
    """``--workspace``, else ``$CUSTODIET_WORKSPACE``, else ``./custodiet-workspace``."""
    if explicit is not None:
        return explicit
    env = os.environ if environ is None else environ
    from_env = env.get(WORKSPACE_ENV)
    return Path(from_env) if from_env else DEFAULT_WORKSPACE
