"""Switches that make the embedded exchange misbehave on command, like the real one sometimes does.

REST faults are consumed per request by the REST server; authentication rejection also
applies to the WebSocket upgrade. Stream faults (drop, seq gap, malformed frame, stall)
act on live connections and live on the WebSocket server itself.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class ExchangeFaults:
    """Thread-safe fault counters; each ``take_*`` consumes one unit of a pending fault."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _fail_status: int = 0
    _fail_remaining: int = 0
    _reject_auth_remaining: int = 0
    _slow_seconds: float = 0.0
    _slow_remaining: int = 0

    def fail_next_requests(self, count: int, status: int = 500) -> None:
        """The next ``count`` REST requests answer ``status`` (5xx or 429) instead of data."""
        if status not in (429, 500, 502, 503, 504):
            raise ValueError(f"fail status must be 429 or 5xx, got {status}")
        with self._lock:
            self._fail_status, self._fail_remaining = status, count

    def reject_auth(self, count: int) -> None:
        """The next ``count`` authenticated requests or WS upgrades fail auth with 401."""
        with self._lock:
            self._reject_auth_remaining = count

    def slow_responses(self, seconds: float, count: int) -> None:
        """Delay the next ``count`` REST responses by ``seconds`` each."""
        with self._lock:
            self._slow_seconds, self._slow_remaining = seconds, count

    def clear(self) -> None:
        with self._lock:
            self._fail_remaining = self._reject_auth_remaining = self._slow_remaining = 0

    def take_failure(self) -> int | None:
        """The status to fail this request with, or None to serve it normally."""
        with self._lock:
            if self._fail_remaining <= 0:
                return None
            self._fail_remaining -= 1
            return self._fail_status

    def take_auth_rejection(self) -> bool:
        with self._lock:
            if self._reject_auth_remaining <= 0:
                return False
            self._reject_auth_remaining -= 1
            return True

    def take_delay(self) -> float:
        with self._lock:
            if self._slow_remaining <= 0:
                return 0.0
            self._slow_remaining -= 1
            return self._slow_seconds
