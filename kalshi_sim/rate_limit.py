"""Kalshi's token-bucket rate limit (since 2026-04-23), read bucket only.

Every request costs tokens (10 by default, 2 for ``GET /portfolio/orders/{id}``); the
read bucket refills at the tier's budget per second and holds one second of it. An
empty bucket means 429 ``{"error": "too many requests"}`` with no Retry-After, which is
what makes client-side backoff necessary rather than optional.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

from kalshi_api.protocol import REST_PREFIX

DEFAULT_COST = 10
SINGLE_ORDER_COST = 2
_EPSILON = 1e-9
_SINGLE_ORDER = re.compile(re.escape(REST_PREFIX) + r"/portfolio/orders/[^/]+")


def request_cost(method: str, path: str) -> int:
    """Tokens a request costs, per Kalshi's published exceptions to the default."""
    if method.upper() == "GET" and _SINGLE_ORDER.fullmatch(path):
        return SINGLE_ORDER_COST
    return DEFAULT_COST


class TokenBucket:
    """A thread-safe token bucket that starts full; the clock is injectable for tests."""

    def __init__(
        self,
        tokens_per_second: float,
        capacity: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if tokens_per_second <= 0:
            raise ValueError(f"tokens_per_second must be positive, got {tokens_per_second}")
        self._rate = float(tokens_per_second)
        self._capacity = float(capacity if capacity is not None else tokens_per_second)
        if self._capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self._clock = clock
        self._tokens = self._capacity
        self._stamp = clock()
        self._lock = threading.Lock()

    def try_take(self, cost: float = DEFAULT_COST) -> bool:
        """Spend ``cost`` tokens if the bucket holds them; False (and nothing spent) if not."""
        with self._lock:
            now = self._clock()
            elapsed = max(0.0, now - self._stamp)
            self._stamp = now
            self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
            if self._tokens + _EPSILON < cost:  # refill arithmetic is float: 9.999999 is 10
                return False
            self._tokens = max(0.0, self._tokens - cost)
            return True

    @property
    def tokens(self) -> float:
        """Tokens available as of the last request (refill is applied lazily)."""
        with self._lock:
            return self._tokens
