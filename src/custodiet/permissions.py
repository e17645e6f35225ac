"""The workspace is the vault's alone: its directory 0700 and its files 0600, from ``init`` on.

``problems(root)`` lists every path group or others can read, write or enter; ``custodiet
doctor`` prints them and ``custodiet serve`` refuses to start while there is any.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from custodiet.errors import SystemFailure


def tighten(root: Path) -> None:
    """Make ``root`` and everything under it private to its owner (dirs 0700, files 0600)."""
    for directory, dirnames, filenames in os.walk(root):
        Path(directory).chmod(0o700)
        for name in filenames:
            path = Path(directory) / name
            if not path.is_symlink():
                path.chmod(0o600)
        dirnames[:] = [d for d in dirnames if not (Path(directory) / d).is_symlink()]


def problems(root: Path) -> list[str]:
    """One line per path under ``root`` (``root`` included) that group or others can use."""
    found: list[str] = []
    if not root.is_dir():
        return [f"{root}: not a directory"]
    for directory, dirnames, filenames in os.walk(root):
        for path in (Path(directory), *(Path(directory) / n for n in filenames)):
            try:
                mode = path.lstat().st_mode
            except OSError:
                continue
            if stat.S_ISLNK(mode):
                continue
            if mode & 0o077:
                found.append(f"{path}: mode {stat.S_IMODE(mode):04o} (group or others have access)")
        dirnames[:] = [d for d in dirnames if not (Path(directory) / d).is_symlink()]
    return found


def require_private(root: Path) -> None:
    """SystemFailure (CUST610) when anyone but the owner can use the workspace."""
    found = problems(root)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise SystemFailure(
            f"refusing to serve a workspace others can read: {found[0]}{more}",
            hint=f"run `chmod -R go-rwx {root}` as the server's user; `custodiet doctor` lists "
            "every path",
            code="CUST610",
        )
