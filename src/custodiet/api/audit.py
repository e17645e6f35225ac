"""``GET /v1/audit``: the server's verdict of the governance replay (``custodiet ledger audit``,
``custodiet.ledger.replay``) over the entries its latest signed checkpoint covers.

The verdict is cached per checkpoint size: a page view at the same size costs a lookup, and a
larger checkpoint continues the replay from the state the last one reached (the replay is a
fold over the entries, and a log only grows). A violation is final: later entries cannot undo
it. A checkpoint smaller than the cached one (a restored store) replays from the genesis.

It is the server's word: an overseer who does not trust the server replays the entries with
their own copy of ``src/custodiet/ledger/replay.py`` (docs/ledger.md)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from custodiet.api import errors
from custodiet.ledger.replay import AuditResult, State, audit_more, parse_line

if TYPE_CHECKING:
    from custodiet.api.app import Server
    from custodiet.ledger.writer import Ledger


@dataclass
class AuditCache:
    """The replay's state and verdict at the last checkpoint size audited."""

    size: int = 0
    state: State = field(default_factory=State)
    result: AuditResult = field(default_factory=lambda: AuditResult(0, None, ()))
    lock: threading.Lock = field(default_factory=threading.Lock)
    replayed: int = 0  # entries replayed since the start (what the cache saves, for tests)

    def verdict(self, ledger: Ledger) -> dict[str, Any]:
        checkpoint, _ = ledger.signed_checkpoint()
        size = checkpoint.size
        with self.lock:
            if size < self.size:
                self.size, self.state = 0, State()
                self.result = AuditResult(0, None, ())
            if size > self.size and self.result.violation is None:
                lines = (data for _, data in ledger.entries(self.size, size))
                entries = map(parse_line, lines)
                self.result = audit_more(self.state, entries)
                self.replayed += self.result.entries - self.size
                self.size = size
            return document(size, self.result)


def document(size: int, result: AuditResult) -> dict[str, Any]:
    violation = None
    if result.violation is not None:
        index, code, rule = result.violation
        violation = {"index": index, "code": code, "rule": rule}
    return {
        "checkpoint_size": size,
        "verdict": "ok" if violation is None else "violation",
        "violation": violation,
        "unfinished": list(result.unfinished) if violation is None else [],
        "replayed_by": "custodiet ledger audit (src/custodiet/ledger/replay.py)",
    }


def add_audit(app: FastAPI, server: Server) -> None:
    from custodiet.api.app import answered

    cache = AuditCache()
    app.state.audit = cache

    @app.get(
        "/v1/audit",
        summary="The server's `ledger audit` verdict up to its latest checkpoint",
        responses=errors.responses(),
        tags=["log"],
    )
    async def get_audit() -> Any:
        return await answered(lambda: cache.verdict(server.runtime.ledger))
