"""Where settings come from. The environment is read here and nowhere else in the package.

``CUSTODIET_WORKSPACE`` names the workspace when ``--workspace`` is not given. (The test suite
also reads ``CUSTODIET_MERKLE_VECTORS``, the folder of RFC 6962 proof vectors.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

WORKSPACE_ENV = "CUSTODIET_WORKSPACE"
SERVER_ENV = "CUSTODIET_SERVER"  # read by custodiet.cli.options.server_url
DEFAULT_WORKSPACE = Path("custodiet-workspace")


def resolve_workspace(explicit: Path | None, environ: Mapping[str, str] | None = None) -> Path:
    """``--workspace``, else ``$CUSTODIET_WORKSPACE``, else ``./custodiet-workspace``."""
    if explicit is not None:
        return explicit
    env = os.environ if environ is None else environ
    from_env = env.get(WORKSPACE_ENV)
    return Path(from_env) if from_env else DEFAULT_WORKSPACE
