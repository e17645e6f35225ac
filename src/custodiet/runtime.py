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
applies, given its index and time, queued to the ledger writer and applied. Governance entries
are then made durable before the lock is let go. Access entries (intents, outcomes, refusals)
wait for durability outside the lock, so concurrent requests share one group commit (one
fsync): the state already holds their effect (a nonce is used, an intent open), so a replayed
request cannot pass twice, and the process keeps the file lock while any entry is in flight, so
another process never appends in between. An entry that cannot be recorded is never answered;
every entry checked after it fails too (the writer refuses an entry whose checked index is not
where it would land, CUST138), and the state is replayed from the ledger before the next check.
A refused entry is recorded as a refusal instead, and raised.
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
import time as clock
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
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
from custodiet.ledger.writer import Ledger, Ticket, time_text
from custodiet.workspace import Workspace

CACHE_FILE = "state.json"
CACHE_KEY_FILE = "state-cache.key"  # in keys/
LOCK_FILE = "ledger.lock"
_CACHE_INFO = b"custodiet/state-cache/v1"
PIPELINED = frozenset({"intent", "query", "screen.run", "refusal"})
"""Actions whose entries wait for durability outside the write lock (see the module's text)."""
LEASE = 0.25
"""Seconds this process keeps the file lock while entries stay in flight; then it lets every
entry in flight settle and lets go, so another process on the workspace gets its turn."""
GIVE_WAY = 0.002


@dataclass(frozen=True)
class Committed:
    index: int
    entry: dict[str, Any]  # as appended (derived fields filled in), without index and time


def refused(violation: Violation) -> RefusedError:
    """A replay rule's violation as the refusal a user sees."""
    return RefusedError(violation.rule, code=violation.code)


class _FileLock:
    """The workspace's file lock, held while anything in this process needs it: the exclusive
    section, or entries checked and queued but not yet durable (``holders``).

    A process that waits for it first holds a shared lock on ``ledger.lock.wait``; the holder
    sees that (it cannot lock that file exclusively) and, after LEASE seconds, gives way."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._fd = self._wait_fd = -1  # opened at the first acquire (a reader never locks)
        self._mutex = threading.Lock()
        self._idle = threading.Condition(self._mutex)
        self._holders = 0
        self._since = 0.0

    def acquire(self) -> bool:
        """One more holder; True if this took the file lock (it was not held: another process
        may have appended since). Called by the exclusive section only, under the runtime's
        lock: after LEASE seconds of entries in flight, the section first lets them settle and
        the file lock go, so other processes are not starved."""
        with self._mutex:
            if self._holders and clock.monotonic() - self._since > LEASE and self._others_waiting():
                while self._holders:
                    self._idle.wait()
                give_way = True
            else:
                give_way = False
        if give_way:
            clock.sleep(GIVE_WAY)
        with self._mutex:
            taken = not self._holders
            if taken:
                self._open()
                fcntl.flock(self._wait_fd, fcntl.LOCK_SH)  # "waiting": the holder gives way
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX)
                finally:
                    fcntl.flock(self._wait_fd, fcntl.LOCK_UN)
                self._since = clock.monotonic()
            self._holders += 1
            return taken

    def _open(self) -> None:
        if self._fd < 0:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        if self._wait_fd < 0:
            self._wait_fd = os.open(f"{self._path}.wait", os.O_RDWR | os.O_CREAT, 0o600)

    def _others_waiting(self) -> bool:
        try:
            fcntl.flock(self._wait_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(self._wait_fd, fcntl.LOCK_UN)
        self._since = clock.monotonic()  # nobody: look again after another LEASE
        return False

    def add(self) -> None:
        """One more holder while the lock is already held (an entry put in flight)."""
        with self._mutex:
            self._holders += 1

    def release(self) -> None:
        with self._mutex:
            self._holders -= 1
            if not self._holders:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                self._idle.notify_all()

    def drain(self) -> None:
        """Wait until no entry is in flight (called without holding)."""
        with self._mutex:
            while self._holders:
                self._idle.wait()

    def close(self) -> None:
        for fd in (self._wait_fd, self._fd):
            if fd >= 0:
                os.close(fd)
        self._fd = self._wait_fd = -1


class Runtime:
    """Owns the ledger writer and the replayed state for as long as a command or server runs."""

    def __init__(self, ws: Workspace, ledger: Ledger | None = None) -> None:
        self.ws = ws
        self.ledger = ledger if ledger is not None else ws.ledger()
        self.violations: list[tuple[int, str, str]] = []
        self._lock = threading.RLock()
        self._file_lock = _FileLock(str(ws.root / LOCK_FILE))
        self._depth = 0
        self._stale = False  # an entry applied to the state was not recorded: replay
        self._saved_size = -1
        self.resources: dict[str, Any] = {}  # caches of higher layers (engines), per runtime
        self.resource_lock = threading.Lock()
        self.state = self._load()
        self.refresh()

    # --- state ---------------------------------------------------------------------------------

    def refresh(self) -> State:
        """Apply every entry appended since the state was last brought up to date."""
        with self._lock:
            if self._stale and not self._depth:
                self._replay()
            size = self.ledger.size()
            if size > self.state.size:
                for index, data in self.ledger.entries(self.state.size, size):
                    self._apply(index, data)
            return self.state

    def _replay(self) -> None:
        """Once nothing is in flight, start again from the cache or the genesis: the state
        holds the effect of an entry that was not recorded."""
        self._file_lock.drain()
        self._stale = False
        self.state = self._load()

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
                    yield self.state
                finally:
                    self._depth -= 1
                return
            if self._stale:
                self._replay()
            taken = self._file_lock.acquire()
            try:
                self._depth = 1
                # held all along (entries in flight), nothing else appended: the state is
                # current without asking the store
                state = self.refresh() if taken else self.state
                self._follow_key()
                yield state
            finally:
                self._depth = 0
                self._file_lock.release()

    def commit(
        self, entry: Mapping[str, Any], *, refuse_as: SignedRequest | None = None
    ) -> Committed:
        """Check ``entry`` by the replay rules, append it and apply it; its index. A violation
        is recorded as a refusal (carrying ``refuse_as``, the request) and raised."""
        error: RefusedError | None = None
        with self.exclusive() as state:
            at = self.now()
            try:
                filled = state.check(dict(entry), at)
            except Violation as exc:
                error = refused(exc)
                filled = self._refusal(error, entry, refuse_as)
            ticket: Ticket | None = self._reserve(filled, at)
            if ticket is not None and filled.get("action") not in PIPELINED:
                index = self._settle(ticket)  # governance: durable before anything else
                self._follow_key()
                ticket = None
        if ticket is not None:
            index = self._settle(ticket)
        if error is not None:
            raise error
        return Committed(index, filled)

    def authorize(self, entry: Mapping[str, Any], *, refuse_as: SignedRequest | None) -> None:
        """Check ``entry`` now without appending it; a violation is recorded and raised."""
        with self.exclusive() as state:
            at = self.now()
            try:
                state.check(dict(entry), at)
                return
            except Violation as exc:
                error = refused(exc)
                ticket = self._reserve(self._refusal(error, entry, refuse_as), at)
        self._settle(ticket)
        raise error

    def record(self, entry: Mapping[str, Any]) -> int:
        """Append an entry that authorizes nothing (a refusal, a failure); its index."""
        with self.exclusive():
            ticket = self._reserve(entry, self.now())
        return self._settle(ticket)

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

    @staticmethod
    def _refusal(
        error: RefusedError, entry: Mapping[str, Any], signed: SignedRequest | None
    ) -> dict[str, Any]:
        context = {k: entry[k] for k in ("agreement", "agreement_version", "intent") if k in entry}
        attempted = str(entry.get("attempted") or entry.get("action"))
        return entries.refusal(
            error, attempted=attempted, actor=str(entry.get("actor")), signed=signed,
            context=context,
        )  # fmt: skip

    def _reserve(self, entry: Mapping[str, Any], at: datetime) -> Ticket:
        """Under the write lock: queue ``entry`` at the next index and apply it to the state
        (``_settle`` then waits for it to be durable; every reservation must be settled)."""
        index = self.state.size
        try:
            data, ticket = self.ledger.reserve(entry, index, time_text(at))
        except CustodietError:
            raise
        except Exception as exc:
            raise _not_recorded(exc) from None
        self._file_lock.add()
        try:
            self._apply(index, data)
        except BaseException:
            self._stale = True
            with suppress(CustodietError):
                self._settle(ticket)
            raise
        return ticket

    def _settle(self, ticket: Ticket) -> int:
        """Wait (outside the write lock unless the caller holds it) for a reserved entry to be
        durable; its index. If it is not, the state is marked for replay and the caller gets
        the failure: nothing that depended on the entry is released."""
        try:
            index: int = self.ledger.settle(ticket)[0]
        except BaseException as exc:
            self._stale = True
            if isinstance(exc, CustodietError) or not isinstance(exc, Exception):
                raise
            raise _not_recorded(exc) from None
        finally:
            self._file_lock.release()
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
            if size == self._saved_size or size == 0 or self._stale or self._depth:
                return
            self._file_lock.drain()  # every entry the state holds is durable
            if self._stale:
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
            self._file_lock.close()


def _not_recorded(exc: Exception) -> SystemFailure:
    return SystemFailure(
        f"the ledger could not record this request ({type(exc).__name__}); nothing done",
        hint="check the ledger store (`custodiet ledger verify`) and try again",
        code="CUST147",
    )


@contextmanager
def opened(ws: Workspace) -> Iterator[Runtime]:
    """A runtime for one command: opened, then its cache saved and its ledger closed."""
    ws.manifest()
    runtime = Runtime(ws)
    try:
        yield runtime
    finally:
        runtime.close()
