"""Break-glass re-identification of named case tokens, approved by two custodians, on the ledger."""

from __future__ import annotations

from custodiet.reid.service import (
    APPROVALS_REQUIRED,
    MAX_TOKENS,
    WINDOW,
    Release,
    approve_reid,
    request_reid,
    show_reid,
)
from custodiet.reid.store import ReidRequest

__all__ = [
    "APPROVALS_REQUIRED",
    "MAX_TOKENS",
    "WINDOW",
    "ReidRequest",
    "Release",
    "approve_reid",
    "request_reid",
    "show_reid",
]
