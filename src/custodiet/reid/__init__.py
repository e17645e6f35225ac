"""Break-glass re-identification of named case tokens, approved by K custodians, on the ledger."""

from __future__ import annotations

from custodiet.reid.service import (
    DEFAULT_FIELDS,
    FIELDS,
    MAX_TOKENS,
    WINDOW,
    ReidRequest,
    Release,
    approve_reid,
    deny_reid,
    find_request,
    pending,
    request_reid,
    show_reid,
)

__all__ = [
    "DEFAULT_FIELDS",
    "FIELDS",
    "MAX_TOKENS",
    "WINDOW",
    "ReidRequest",
    "Release",
    "approve_reid",
    "deny_reid",
    "find_request",
    "pending",
    "request_reid",
    "show_reid",
]
