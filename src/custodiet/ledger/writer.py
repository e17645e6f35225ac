"""The ledger writer: appends entries durably, serves proofs and signs checkpoints.

Concurrent ``append`` calls in one process are group-committed: the first caller to find no
commit in progress becomes the leader and, once it holds the store's lock, takes every queued
entry and writes them in one store transaction (one fsync); the others wait for their index.
The committed waiters are then woken one at a time, each waking the next as it resumes, and the
last one hands the leader's role on: woken all at once, every thread would only go back to sleep
on the GIL the others hold, and that churn costs more than the whole append.
Across processes the store's lock orders the transactions, and each transaction re-reads the
size, so indexes stay consecutive.

``reserve`` queues an entry already checked at a given index and time (the runtime checks under
its own lock, then waits with ``settle`` outside it): its batch fails, recording nothing, unless
the entry lands exactly at that index (CUST138), so an entry is never recorded at a place other
than the one it was checked at, and one whose predecessor failed is never recorded at all.

Every batch is committed with the checkpoint that covers it, signed inside the same transaction
after proving it consistent with the previous one (``sealing``); the signing key must match the
pinned verifier key. Checkpoints signed before a key rotation are checked under the key in
force at their size (``history``). The workspace's external pin (``pin.LogPin``) is advanced
at most every ``pin_interval`` seconds and at ``close()``.
"""

from __future__ import annotations

import threading
import time as clock
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from itertools import pairwise, repeat
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodiet.errors import CustodietError, InputError, SystemFailure, TamperedError
from custodiet.ledger import canonical, note, sealing, tree
from custodiet.ledger.pin import KeyHistory, LogPin, key_at
from custodiet.ledger.proofs import ConsistencyProof, InclusionProof
from custodiet.ledger.store import (
    RESTORE_HINT,
    Batch,
    CheckpointReader,
    LedgerStore,
    TileReader,
    open_store,
)
from custodiet.ledger.verify import Checkpoint, VerifierKey, leaf_hashes, parse_vkey

ASSIGNED = ("index", "time")
SIGNED_CHECKPOINT_ATTEMPTS = 20
PIN_INTERVAL = 1.0
"""Seconds between refreshes of the external pin while appending (and always at close)."""
Member = list[bytes]


def canonical_members(entry: Mapping[str, Any]) -> Member:
    """The entry's canonical members in three groups (keys before "index", between "index"
    and "time", after "time"), checked in the caller's thread so the committing thread only
    splices in the two members it assigns."""
    clash = [key for key in ASSIGNED if key in entry]
    if clash:
        raise InputError(
            f"ledger entry sets {', '.join(clash)}, which the ledger assigns",
            hint="leave index and time out of the entry",
            code="CUST222",
        )
    try:
        return canonical.object_parts(entry, ASSIGNED)
    except (canonical.NotCanonical, RecursionError) as exc:
        raise InputError(
            f"ledger entry is not canonical JSON ({exc})",
            hint="keys str; values str, int below 2**53, finite float, bool, None, list or dict",
            code="CUST220",
        ) from None


def canonical_entry(parts: Member, index: int, time: bytes) -> bytes:
    """RFC 8785 bytes of the entry with ``index`` and ``time`` (canonical JSON text) added,
    members in JCS order."""
    before, between, after = parts
    members = (before, b'"index":%d' % index, between, b'"time":' + time, after)
    return b"{" + b",".join(filter(None, members)) + b"}"


def time_text(moment: datetime) -> str:
    """An entry's ``time``: UTC, RFC 3339 with microseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc_now() -> str:
    return time_text(datetime.now(UTC))


class _Waiter:
    """One append call: its entries and a lock held until they are committed (or failed), or
    until the caller is handed the committer's role; each waiter is woken exactly once, then
    wakes ``next``, or hands the role on if it is the last of its batch. A reserved entry
    (``Ledger.reserve``) carries its finished bytes and the index it was checked at."""

    __slots__ = ("error", "expect", "fixed", "indexes", "lead", "members", "next", "wake")

    def __init__(self, members: list[Member], fixed: bytes | None = None, expect: int = -1) -> None:
        self.members = members
        self.fixed, self.expect = fixed, expect
        self.indexes: list[int] = []
        self.error: CustodietError | None = None
        self.lead = False
        self.next: _Waiter | None = None
        self.wake = threading.Lock()
        self.wake.acquire()


Ticket = tuple[_Waiter, bool]
"""A queued append and whether its caller leads the next commit (``Ledger.settle``)."""
Reservation = tuple[bytes, Ticket]


class Ledger:
    """An append-only Merkle log over a store. Thread-safe; several processes may share a store."""

    def __init__(
        self,
        store: LedgerStore,
        origin: str,
        key_path: Path | None = None,
        *,
        vkey: str | None = None,
        pin: LogPin | None = None,
        pin_interval: float = PIN_INTERVAL,
        history: KeyHistory = (),
    ) -> None:
        self.store = store
        self.origin = origin
        self._key_path = key_path
        self._key: Ed25519PrivateKey | None = None
        self._pinned_vkey = vkey
        self._log_key: VerifierKey | None = parse_vkey(vkey) if vkey else None
        self._history = history
        self._keys: dict[str, VerifierKey] = {}
        self._pin, self._pin_interval = pin, pin_interval
        self._pinned_at = clock.monotonic()
        self._sealed: sealing.Sealed | None = None
        self._queue_lock = threading.Lock()
        self._queue: list[_Waiter] = []
        self._leading = False

    # --- appending ------------------------------------------------------------------------------

    def append(self, entry: Mapping[str, Any]) -> int:
        """Record an entry; return its index once it is durable. Raises SystemFailure if not."""
        return self.append_many([entry])[0]

    def append_many(self, entries: Sequence[Mapping[str, Any]]) -> list[int]:
        """Record entries at consecutive indexes, in one durable transaction with any others
        queued at the same moment; return their indexes."""
        waiter = _Waiter([canonical_members(entry) for entry in entries])
        if not waiter.members:
            return []
        return self.settle(self._enqueue(waiter))

    def reserve(self, entry: Mapping[str, Any], index: int, time: str) -> Reservation:
        """Queue ``entry`` to be recorded at exactly ``index`` with ``time`` (as ``time_text``
        writes it); its finished bytes and a ticket for ``settle``. Queue order is
        index order: the caller reserves consecutive indexes in the order it calls this. If the
        ledger does not hold exactly ``index`` entries when the entry's batch is committed, the
        batch fails (CUST138) and nothing of it is recorded."""
        members = canonical_members(entry)
        data = canonical_entry(members, index, canonical.dumps(time))
        return data, self._enqueue(_Waiter([members], data, index))

    def _enqueue(self, waiter: _Waiter) -> Ticket:
        with self._queue_lock:
            self._queue.append(waiter)
            lead, self._leading = not self._leading, True
        return waiter, lead

    def settle(self, ticket: Ticket) -> list[int]:
        """Wait until the ticket's entries are durable (committing them, and whatever is queued
        with them, if this caller leads); their indexes. Raises why not, and then nothing of
        them was recorded."""
        waiter, lead = ticket
        if not lead:
            waiter.wake.acquire()
            lead = waiter.lead
            if not lead:
                self._pass_on(waiter)
        if lead:
            self._lead(waiter)
        if waiter.error is not None:
            raise waiter.error
        return waiter.indexes

    def _pass_on(self, waiter: _Waiter) -> None:
        """Wake the next waiter of the committed batch, or after the last one, the next leader."""
        if waiter.next is not None:
            waiter.next.wake.release()
        else:
            self._hand_off()

    def _hand_off(self) -> None:
        """Make the first waiter queued meanwhile the leader, or let the next arrival lead."""
        with self._queue_lock:
            if self._queue:
                self._queue[0].lead = True
                self._queue[0].wake.release()
            else:
                self._leading = False

    def _lead(self, mine: _Waiter) -> None:
        """Commit everything queued (``mine`` among it), then start the chain that wakes the
        other committed waiters and, at its end, hands the role on."""
        batch: list[_Waiter] = []
        failure: CustodietError | None = _append_failure(None)
        try:
            failure = self._commit(batch)
            if failure is None:
                with suppress(CustodietError):  # committed all the same; close() pins or says
                    self._refresh_pin()
        finally:
            with self._queue_lock:
                if not batch:
                    batch, self._queue = self._queue, []
            if failure is not None:
                for waiter in batch:
                    waiter.indexes, waiter.error = [], failure
            others = [waiter for waiter in batch if waiter is not mine]
            for earlier, later in pairwise(others):
                earlier.next = later
            if others:
                others[0].wake.release()
            else:
                self._hand_off()

    def _commit(self, batch: list[_Waiter]) -> CustodietError | None:
        """None once the batch is durable, else why it is not (nothing of it was recorded).
        The batch is taken from the queue only once the store's lock is held, so appends that
        arrive while another process commits join this transaction instead of the next."""
        signed: list[sealing.Sealed] = []
        try:
            key = self._signing_key()
            self.store.append(
                lambda size, read, latest: self._build(
                    self._taken(batch), size, read, latest, (key, self._verifier_at, signed)
                )
            )
        except Exception as exc:
            return exc if isinstance(exc, CustodietError) else _append_failure(exc)
        self._sealed = signed[-1]
        return None

    def _refresh_pin(self, force: bool = False) -> None:
        """Advance the external pin to the last checkpoint this writer signed, if due."""
        now = clock.monotonic()
        if self._pin is None or self._sealed is None:
            return
        if force or now - self._pinned_at >= self._pin_interval:
            self._pin.advance(self._sealed[0], self._verifier_at(self._sealed[1].size))
            self._pinned_at = now

    def _taken(self, batch: list[_Waiter]) -> list[_Waiter]:
        """``batch`` with every waiter queued so far moved into it."""
        with self._queue_lock:
            batch += self._queue
            self._queue = []
        return batch

    def _build(
        self,
        batch: list[_Waiter],
        size: int,
        read: TileReader,
        latest: CheckpointReader,
        signing: tuple[Ed25519PrivateKey, Callable[[int], VerifierKey], list[sealing.Sealed]],
    ) -> Batch:
        """The rows of one transaction: the entries, the tiles they change, and the checkpoint
        covering them, signed once the stored tail is proven consistent with the last one."""
        key, verifier_at, signed = signing
        partial = read(tree.partial_tiles(size))
        sealing.check_tail(size, latest(), verifier_at(size), partial, self._sealed)
        time, index, data = canonical.dumps(utc_now()), size, list[bytes]()
        for waiter in batch:
            waiter.indexes = list(range(index, index + len(waiter.members)))
            if waiter.fixed is None:
                data += map(canonical_entry, waiter.members, waiter.indexes, repeat(time))
            elif waiter.expect == index:
                data.append(waiter.fixed)
            else:
                raise _misplaced(waiter.expect, index)
            index += len(waiter.members)
        written = tree.grow(size, partial, leaf_hashes(data))
        signed.append(sealing.seal(self.origin, key, index, {**partial, **written}))
        entries = list(zip(range(size, index), data, strict=True))
        return Batch(entries, list(written.items()), (index, signed[-1][0]))

    # --- reading --------------------------------------------------------------------------------

    def size(self) -> int:
        return self.store.size()

    def entry(self, index: int) -> bytes:
        for _, data in self.store.entries(index, index + 1):
            return data
        raise InputError(
            f"no ledger entry {index} (the ledger holds {self.size()})",
            hint="pick an index below the ledger size",
            code="CUST223",
        )

    def entries(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, bytes]]:
        return self.store.entries(start, self.size() if end is None else end)

    def _hashes(self, ranges: Sequence[tree.Range]) -> list[bytes]:
        keys = tree.keys_for(ranges)
        tiles = self.store.tiles(tree.tile_keys(keys))
        try:
            nodes = {key: tree.node_from_tiles(key, tiles) for key in keys}
            return [tree.range_hash(start, end, nodes.__getitem__) for start, end in ranges]
        except KeyError:
            raise _missing_nodes() from None

    def root(self, size: int) -> bytes:
        return self._hashes([(0, size)])[0] if size else tree.EMPTY_ROOT

    def _check_size(self, size: int, what: str) -> int:
        current = self.size()
        if not 0 <= size <= current:
            raise InputError(
                f"{what} {size} is outside the ledger (size {current})",
                hint=f"use a size between 0 and {current}",
                code="CUST224",
            )
        return size

    def inclusion_proof(self, index: int, size: int | None = None) -> InclusionProof:
        tree_size = self._check_size(self.size() if size is None else size, "tree size")
        if not 0 <= index < tree_size:
            raise InputError(
                f"index {index} is not in a tree of size {tree_size}",
                hint="pick an index below the tree size",
                code="CUST225",
            )
        ranges = tree.inclusion_ranges(index, tree_size)
        hashes = self._hashes([(index, index + 1), (0, tree_size), *ranges])
        return InclusionProof(index, tree_size, hashes[0], hashes[2:], hashes[1])

    def consistency_proof(self, old: int, new: int) -> ConsistencyProof:
        self._check_size(new, "new size")
        if not 0 < old <= new:
            raise InputError(
                f"old size {old} must be between 1 and the new size {new}",
                hint="give OLD and NEW with 1 <= OLD <= NEW",
                code="CUST226",
            )
        ranges = tree.consistency_ranges(old, new)
        hashes = self._hashes([(0, old), (0, new), *ranges])
        return ConsistencyProof(old, new, hashes[2:], hashes[0], hashes[1])

    # --- checkpoints ----------------------------------------------------------------------------

    def _signing_key(self) -> Ed25519PrivateKey:
        """The log's key, refused (CUST127) unless its vkey is the pinned one."""
        if self._key is None:
            if self._key_path is None:
                raise SystemFailure(
                    "this ledger was opened without its signing key", code="CUST131"
                )
            key = note.load_private_key(self._key_path)
            vkey = note.vkey(self.origin, key)
            if self._pinned_vkey is not None and vkey != self._pinned_vkey:
                retired = any(vkey == old for old, _ in self._history)
                raise TamperedError(
                    f"{self._key_path}: the signing key is "
                    + ("a retired key of this log" if retired else "not the log's pinned key"),
                    hint="put back the log's current key (`custodiet ledger key --all` lists its"
                    " keys; see docs/ledger.md, 'Restoring from a backup'); nothing was signed"
                    " with this one",
                    code="CUST127",
                )
            self._key = key
        return self._key

    def _verifier(self) -> VerifierKey:
        """The log's verifier key: the pinned one, else the signing key's."""
        if self._log_key is None:
            self._log_key = parse_vkey(self.vkey())
        return self._log_key

    def _verifier_at(self, size: int) -> VerifierKey:
        """The verifier key of the checkpoint of ``size`` entries: the key in force then."""
        if not self._history:
            return self._verifier()
        vkey = key_at(self._history, size)
        if vkey not in self._keys:
            self._keys[vkey] = parse_vkey(vkey)
        return self._keys[vkey]

    def vkey(self) -> str:
        return note.vkey(self.origin, self._signing_key())

    def rotated(self, history: KeyHistory) -> None:
        """The log's key moved: sign from now on with the key file as it is now, which must be
        the last key of ``history`` (the checkpoints before it verify under the older ones)."""
        with self._queue_lock:
            self._history = history
            self._pinned_vkey = history[-1][0]
            self._log_key = parse_vkey(self._pinned_vkey)
            self._key = None

    @property
    def current_vkey(self) -> str | None:
        """The pinned key this writer signs with (None if opened without a pin)."""
        return self._pinned_vkey

    def signed_checkpoint(self) -> tuple[Checkpoint, str]:
        """The latest stored signed checkpoint, verified, and its note, after checking it covers
        every stored entry and its root is the stored tree's. Never signs. Entries and their
        checkpoint are committed together, so more entries than the latest checkpoint covers
        while that checkpoint stays the latest is a fault, not a race."""
        for _ in range(SIGNED_CHECKPOINT_ATTEMPTS):
            latest = self.store.latest_checkpoint()
            if latest is None:
                break
            signed = sealing.checked_note(
                latest[1], self._verifier_at(latest[0]), "latest stored checkpoint"
            )
            try:
                root = self.root(signed.size) if signed.size == latest[0] else None
            except SystemFailure as exc:
                if exc.code != "CUST133":
                    raise
                root = None
            if root != signed.root:
                raise TamperedError(
                    "ledger: stored tree hashes disagree with the latest signed checkpoint",
                    hint=RESTORE_HINT,
                    code="CUST125",
                )
            size = self.size()
            if size == signed.size:
                return signed, latest[1]
            if size < signed.size or self.store.latest_checkpoint() == latest:
                break
        raise TamperedError(
            "ledger: no signed checkpoint covers every stored entry",
            hint=RESTORE_HINT,
            code="CUST126",
        )

    def checkpoint(self) -> str:
        """The latest stored signed checkpoint with every cosignature held (see
        ``signed_checkpoint``). Never signs."""
        signed, text = self.signed_checkpoint()
        return note.with_cosignatures(text, self.store.cosignatures(signed.size))

    def add_cosignature(self, size: int, witness: str, line: str) -> None:
        """Hold a witness's cosignature line; ``checkpoint()`` prints it under the note."""
        self.store.put_cosignature(size, witness, line)

    def close(self) -> None:
        """Advance the external pin to the last checkpoint signed here, then close the store."""
        try:
            self._refresh_pin(force=True)
        finally:
            self.store.close()


def _append_failure(exc: Exception | None) -> SystemFailure:
    if isinstance(exc, KeyError):
        return _missing_nodes()
    return SystemFailure(
        f"cannot record the ledger entry ({type(exc).__name__ if exc else 'interrupted'})",
        hint="nothing was recorded; check the ledger store and retry",
        code="CUST132",
    )


def _misplaced(expected: int, index: int) -> SystemFailure:
    return SystemFailure(
        f"the ledger entry was checked for index {expected} but would land at {index}",
        hint="nothing was recorded (an earlier append failed, or the ledger changed under"
        " the writer); retry",
        code="CUST138",
    )


def _missing_nodes() -> SystemFailure:
    return SystemFailure(
        "the ledger store lacks tree nodes it should hold",
        hint="run `custodiet ledger verify`: the store may have been tampered with",
        code="CUST133",
    )


def open_ledger(
    url: str,
    origin: str,
    key_path: Path | None = None,
    *,
    create: bool = False,
    vkey: str | None = None,
    pin: LogPin | None = None,
    pin_interval: float = PIN_INTERVAL,
    history: KeyHistory = (),
) -> Ledger:
    """A ledger on the store at ``url``; only ``create`` makes a missing store (``init``)."""
    store = open_store(url, create=create)
    return Ledger(
        store, origin, key_path, vkey=vkey, pin=pin, pin_interval=pin_interval, history=history
    )
