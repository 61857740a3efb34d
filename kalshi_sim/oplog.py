"""A timestamped record of what the exchange did, so tests can prove *when* it happened.

The supervisor claims that the WebSocket handshake happens in ORDERBOOK_CONNECT and the
balance fetch in KALSHI_DATA_SYNC; this log is the exchange-side evidence for that claim.
Timestamps are wall-clock seconds (``time.time()``), the same clock the supervisor stamps
its transitions with.

The exchange runs for weeks under ``kalshi-supervisor run``, so the log is bounded: a
ring of the most recent :data:`DEFAULT_CAPACITY` operations (what tests look at) plus a
per-kind counter that never drops anything (what a long-running process reports).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

DEFAULT_CAPACITY = 10_000
"""Operations kept for inspection; older ones are forgotten but still counted."""


@dataclass(frozen=True, slots=True)
class Operation:
    """One thing the exchange served: ``kind`` is e.g. ``ws_handshake``, ``rest``."""

    kind: str
    at: float
    detail: str = ""


class OperationLog:
    """Thread-safe bounded log; REST handlers, the WS feed and tests all touch it."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._entries: deque[Operation] = deque(maxlen=capacity)
        self._counts: Counter[str] = Counter()
        self._lock = threading.Condition()

    def record(self, kind: str, detail: str = "") -> None:
        entry = Operation(kind=kind, at=time.time(), detail=detail)
        with self._lock:
            self._entries.append(entry)
            self._counts[kind] += 1
            self._lock.notify_all()

    def wait_for(self, predicate: Callable[[Iterable[Operation]], bool], timeout: float) -> bool:
        """Block until ``predicate(entries)`` holds (re-checked on each record) or timeout.

        Why: a test waiting for the supervisor to do something only the exchange sees
        (e.g. re-reading the status during a pause) must wait on a condition, not sleep.
        The predicate runs under the log's lock on the retained entries: keep it quick.
        """
        with self._lock:
            return self._lock.wait_for(lambda: predicate(self._entries), timeout=timeout)

    def entries(self, kind: str | None = None) -> list[Operation]:
        """The retained operations (at most ``capacity``), oldest first."""
        with self._lock:
            return [e for e in self._entries if kind is None or e.kind == kind]

    def count(self, kind: str) -> int:
        """Every operation of ``kind`` since start or the last :meth:`clear`, retained or not."""
        with self._lock:
            return self._counts[kind]

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def clear(self) -> None:
        """Forget entries and counters alike (tests reset the shared exchange with this)."""
        with self._lock:
            self._entries.clear()
            self._counts.clear()
