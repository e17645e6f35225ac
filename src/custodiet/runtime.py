"""The long-lived runtime: one ledger writer and the governance state derived from it.

The state every decision reads (principals, datasets, agreement versions, approvals,
re-identification requests) is ``ledger.replay.State``, replayed from the ledger's own
entries. ``state.json`` beside the ledger only caches it: it is authenticated with a key of
its own (``keys/state-cache.key``, not the workspace secret, which a reviewer's query never
reads) and pinned to the ledger's size and root, so a cache that
disagrees with the ledger — edited, stale or for another history — is discarded and the state
is replayed again from the genesis; it is never acted on.

Every change goes through ``commit``: under one lock (a thread lock, and a file lock across
processes) the state is brought up to date, the entry is checked by the same rules an audit
applies, appended, and applied. A refused entry is recorded as a refusal instead, and raised.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from custodiet import entries
from custodiet.errors import CustodietError, RefusedError, SystemFailure
from custodiet.identity import SignedRequest
from custodiet.ledger.replay import (
    State,
    Violation,
    canonical,
    state_document,
    state_from_document,
)
from custodiet.ledger.writer import Ledger
from custodiet.workspace import Workspace

CACHE_FILE = "state.json"
CACHE_KEY_FILE = "state-cache.key"  # in keys/
LOCK_FILE = "ledger.lock"
_CACHE_INFO = b"custodiet/state-cache/v1"


@dataclass(frozen=True)
class Committed:
    index: int
    entry: dict[str, Any]  # as appended (derived fields filled in), without index and time


def refused(violation: Violation) -> RefusedError:
    """A replay rule's violation as the refusal a user sees."""
    return RefusedError(violation.rule, code=violation.code)


class Runtime:
    """Owns the ledger writer and the replayed state for as long as a command or server runs."""

    def __init__(self, ws: Workspace, ledger: Ledger | None = None) -> None:
        self.ws = ws
        self.ledger = ledger if ledger is not None else ws.ledger()
        self.violations: list[tuple[int, str, str]] = []
        self._lock = threading.RLock()
        self._depth = 0
        self._saved_size = -1
        self.resources: dict[str, Any] = {}  # caches of higher layers (engines), per runtime
        self.resource_lock = threading.Lock()
        self.state = self._load()
        self.refresh()

    # --- state ---------------------------------------------------------------------------------

    def refresh(self) -> State:
        """Apply every entry appended since the state was last brought up to date."""
        with self._lock:
            size = self.ledger.size()
            if size > self.state.size:
                for index, data in self.ledger.entries(self.state.size, size):
                    self._apply(index, data)
            return self.state

    def _apply(self, index: int, data: bytes) -> None:
        try:
            entry = json.loads(data)
        except ValueError:
            entry = {"index": index}
        try:
            self.state.apply(entry)
        except Violation as exc:
            # an entry that breaks a rule authorizes nothing; `ledger audit` reports it
            self.violations.append((index, exc.code, exc.rule))

    def now(self) -> datetime:
        return datetime.now(UTC)

    # --- the one way to change anything --------------------------------------------------------

    @contextmanager
    def exclusive(self) -> Iterator[State]:
        """Hold the workspace's write lock (threads and processes) with the state up to date."""
        with self._lock:
            if self._depth:  # re-entered by the thread that holds it
                self._depth += 1
                try:
                    yield self.refresh()
                finally:
                    self._depth -= 1
                return
            fd = os.open(self.ws.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._depth = 1
                state = self.refresh()
                self._follow_key()
                yield state
            finally:
                self._depth = 0
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    def commit(
        self, entry: Mapping[str, Any], *, refuse_as: SignedRequest | None = None
    ) -> Committed:
        """Check ``entry`` by the replay rules, append it and apply it; its index. A violation
        is recorded as a refusal (carrying ``refuse_as``, the request) and raised."""
        with self.exclusive() as state:
            try:
                filled = state.check(dict(entry), self.now())
            except Violation as exc:
                self._refuse_locked(refused(exc), entry, refuse_as)
            return Committed(self._append_locked(filled), filled)

    def authorize(self, entry: Mapping[str, Any], *, refuse_as: SignedRequest | None) -> None:
        """Check ``entry`` now without appending it; a violation is recorded and raised."""
        with self.exclusive() as state:
            try:
                state.check(dict(entry), self.now())
            except Violation as exc:
                self._refuse_locked(refused(exc), entry, refuse_as)

    def record(self, entry: Mapping[str, Any]) -> int:
        """Append an entry that authorizes nothing (a refusal, a failure); its index."""
        with self.exclusive():
            return self._append_locked(entry)

    def refuse(
        self,
        error: CustodietError,
        *,
        attempted: str,
        actor: str,
        signed: SignedRequest | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> NoReturn:
        """Record ``error`` as a refusal and raise it: the one refusal path."""
        self.record(
            entries.refusal(error, attempted=attempted, actor=actor, signed=signed, context=context)
        )
        raise error

    def _refuse_locked(
        self, error: RefusedError, entry: Mapping[str, Any], signed: SignedRequest | None
    ) -> NoReturn:
        context = {k: entry[k] for k in ("agreement", "agreement_version", "intent") if k in entry}
        attempted = str(entry.get("attempted") or entry.get("action"))
        refusal = entries.refusal(
            error, attempted=attempted, actor=str(entry.get("actor")), signed=signed,
            context=context,
        )  # fmt: skip
        self._append_locked(refusal)
        raise error

    def _append_locked(self, entry: Mapping[str, Any]) -> int:
        try:
            index: int = self.ledger.append(entry)
        except CustodietError:
            raise
        except Exception as exc:
            raise SystemFailure(
                f"the ledger could not record this request ({type(exc).__name__}); nothing done",
                hint="check the ledger store (`custodiet ledger verify`) and try again",
                code="CUST147",
            ) from None
        self.refresh()
        self._follow_key()
        return index

    def _follow_key(self) -> None:
        """Sign from now on with the log key the ledger's state names (see ``logkey``)."""
        if self.state.log_vkey and self.state.log_vkey != self.ledger.current_vkey:
            from custodiet.logkey import follow

            follow(self)

    # --- the authenticated cache ---------------------------------------------------------------

    def _cache_key(self) -> bytes | None:
        """The cache's MAC key: a random key of its own in keys/, made on first use; never the
        workspace secret, which every token key derives from and a reviewer's query must not
        need. None (no cache: the state is replayed) when it cannot be made or read."""
        path = self.ws.root / "keys" / CACHE_KEY_FILE
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        except OSError:
            return None
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(32))
        try:
            key = path.read_bytes()
        except OSError:
            return None
        return hmac.new(key, _CACHE_INFO, hashlib.sha256).digest() if len(key) == 32 else None

    def _load(self) -> State:
        path = self.ws.root / CACHE_FILE
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            body, mac = doc["body"], base64.b64decode(doc["mac"])
            key = self._cache_key()
            if key is None:
                return State()
            expected = hmac.new(key, canonical(body), hashlib.sha256).digest()
            size = int(body["state"]["size"])
            if (
                hmac.compare_digest(mac, expected)
                and 0 < size <= self.ledger.size()
                and body["root"] == base64.b64encode(self.ledger.root(size)).decode()
            ):
                self._saved_size = size
                return state_from_document(body["state"])
        except (OSError, ValueError, KeyError, TypeError, CustodietError):
            pass
        return State()  # replayed from the genesis by refresh()

    def save(self) -> None:
        """Write the cache (atomically, 0600) if the state moved since it was last written."""
        with self._lock:
            size = self.state.size
            if size == self._saved_size or size == 0:
                return
            body = {
                "root": base64.b64encode(self.ledger.root(size)).decode(),
                "state": state_document(self.state),
            }
            key = self._cache_key()
            if key is None:
                return  # no cache: the next start replays
            try:
                mac = hmac.new(key, canonical(body), hashlib.sha256).digest()
            except ValueError:
                return  # not canonical: no cache, the next start replays
            text = json.dumps({"body": body, "mac": base64.b64encode(mac).decode()})
            path = self.ws.root / CACHE_FILE
            temporary = path.with_name(f".{CACHE_FILE}.{os.getpid()}.tmp")
            try:
                fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
                temporary.replace(path)
            except OSError:
                temporary.unlink(missing_ok=True)
                return  # a cache that cannot be written is rebuilt next time
            self._saved_size = size

    def close(self) -> None:
        try:
            self.save()
        finally:
            for cache in self.resources.values():
                for item in cache.values() if isinstance(cache, dict) else ():
                    close = getattr(item, "close", None)
                    if callable(close):
                        close()
            self.ledger.close()


@contextmanager
def opened(ws: Workspace) -> Iterator[Runtime]:
    """A runtime for one command: opened, then its cache saved and its ledger closed."""
    ws.manifest()
    runtime = Runtime(ws)
    try:
        yield runtime
    finally:
        runtime.close()
