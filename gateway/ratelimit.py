"""A per-API-key token bucket, in memory (one gateway process holds all its buckets)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from gateway.errors import ApiError


class RateLimiter:
    """``rate`` requests per second per key, bursts of up to ``burst``; rate 0 = no limit."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = float(rate)
        self.burst = float(max(1, burst))
        self.clock = clock
        self._buckets: dict[object, tuple[float, float]] = {}  # key → (tokens, at)

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def acquire(self, key: object) -> float:
        """Take one token: 0.0 when allowed, else the seconds until a token is available."""
        if not self.enabled:
            return 0.0
        now = self.clock()
        tokens, at = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def admit(self, key: object) -> None:
        """Take a token from ``key``'s bucket or refuse with 4029 and ``Retry-After``."""
        wait = self.acquire(key)
        if wait > 0:
            retry = self.retry_after(wait)
            raise ApiError(
                "4029",
                f"too many requests; retry after {retry} s",
                {"retryAfter": int(retry)},
                headers={"Retry-After": retry},
            )

    @staticmethod
    def retry_after(wait: float) -> str:
        """The ``Retry-After`` header: whole seconds, at least 1."""
        return str(max(1, math.ceil(wait)))

    def prune(self) -> None:
        """Drop buckets that have refilled completely: they hold nothing worth keeping."""
        now = self.clock()
        full = [
            key
            for key, (tokens, at) in self._buckets.items()
            if tokens + (now - at) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]
