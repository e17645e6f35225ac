"""The server's own limits: body size, and per-principal concurrency and rate.

A ``Governor`` belongs to one app (no module-level state). A principal's budget is spent only
by requests their signature authenticated; requests refused before that are counted per client
address (``api.app.perform``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from custodiet.errors import RefusedError


@dataclass(frozen=True)
class Limits:
    body_bytes: int = 1 << 20  # a signed request larger than this is refused (413)
    concurrent: int = 4  # requests of one principal in flight at once (429 beyond)
    rate: float = 20.0  # requests per second per principal, sustained (token bucket)
    burst: float = 20.0  # the bucket's size: requests one principal may send at once


def too_many_in_flight(limit: int) -> RefusedError:
    return RefusedError(
        f"more than {limit} requests of this principal are in flight",
        hint="wait for your earlier requests to finish, then retry",
        code="CUST602",
    )


def too_fast(rate: float) -> RefusedError:
    return RefusedError(
        f"more than {rate:g} requests per second from this principal",
        hint="slow down and retry in a moment",
        code="CUST603",
    )


MAX_TRACKED = 10_000  # principals' buckets held before the idle, refilled ones are dropped


@dataclass
class _Bucket:
    tokens: float
    stamp: float
    in_flight: int = 0


@dataclass
class Governor:
    """Per-principal token buckets and in-flight counts, under one lock."""

    limits: Limits = field(default_factory=Limits)
    clock: Callable[[], float] = time.monotonic
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def _now(self) -> float:
        return float(self.clock())

    @contextmanager
    def admit(self, principal: str) -> Iterator[None]:
        """Count one request of ``principal`` in flight for the block; RefusedError (429) when
        they have too many in flight or spent their rate."""
        limits, now = self.limits, self._now()
        with self._lock:
            bucket = self._buckets.get(principal)
            if bucket is None:
                if len(self._buckets) >= MAX_TRACKED:
                    self._forget_idle(now)
                bucket = self._buckets[principal] = _Bucket(limits.burst, now)
            bucket.tokens = min(limits.burst, bucket.tokens + (now - bucket.stamp) * limits.rate)
            bucket.stamp = now
            if bucket.in_flight >= limits.concurrent:
                raise too_many_in_flight(limits.concurrent)
            if bucket.tokens < 1:
                raise too_fast(limits.rate)
            bucket.tokens -= 1
            bucket.in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                bucket.in_flight -= 1
                if bucket.in_flight == 0 and bucket.tokens >= limits.burst:
                    self._buckets.pop(principal, None)

    def _forget_idle(self, now: float) -> None:
        limits = self.limits
        for name, bucket in list(self._buckets.items()):
            refilled = bucket.tokens + (now - bucket.stamp) * limits.rate >= limits.burst
            if bucket.in_flight == 0 and refilled:
                del self._buckets[name]
