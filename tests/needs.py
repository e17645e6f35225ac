"""A test prerequisite from outside the repo (a Debian package, a server, the shared vectors)
that is missing: under CI=true that is a failure, never a skip, so a CI run proves what it
claims; on a laptop it is a visible skip naming what to install."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(missing: str, remedy: str) -> NoReturn:
    """Fail under CI=true (``missing``: required under CI; ``remedy``), else skip."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{missing} (required under CI=true: {remedy})")
    pytest.skip(f"{missing}; {remedy}")
