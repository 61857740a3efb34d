"""A timestamped record of what the exchange did, so tests can prove *when* it happened.

The supervisor claims that the WebSocket handshake happens in ORDERBOOK_CONNECT and the
balance fetch in KALSHI_DATA_SYNC; this log is the exchange-side evidence for that claim.
Timestamps are wall-clock seconds (``time.time()``), the same clock the supervisor stamps
its transitions with.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Operation:
    """One thing the exchange served: ``kind`` is e.g. ``ws_handshake``, ``rest``."""

    kind: str
    at: float
    detail: str = ""


@dataclass
class OperationLog:
    """Thread-safe append-only log; the REST thread and the WS loop both write to it."""

    _entries: list[Operation] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, detail: str = "") -> None:
        entry = Operation(kind=kind, at=time.time(), detail=detail)
        with self._lock:
            self._entries.append(entry)

    def entries(self, kind: str | None = None) -> list[Operation]:
        with self._lock:
            return [e for e in self._entries if kind is None or e.kind == kind]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
