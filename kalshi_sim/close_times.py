"""When each market closes, and what it reads as once it has (closes by time are silent).

Why a schedule beside the markets: on Kalshi a market closes *by time* without any
WebSocket event (protocol §7.3): its ``close_time`` passes and its REST ``status`` turns
``closed``. Tests need to make that happen a second from now, deterministically, so the
effective status of a market is computed from its close time at each read instead of
being flipped by a timer that could race the reader.

Markets with no scheduled close read the default close time, fixed when the exchange is
built at :data:`DEFAULT_CLOSE_AFTER` from then, so a demo or test never meets a close it
did not ask for.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

__all__ = ["DEFAULT_CLOSE_AFTER", "CloseSchedule"]

DEFAULT_CLOSE_AFTER = timedelta(days=30)
"""How far ahead an unscheduled market closes (far beyond any run of the simulator)."""


class CloseSchedule:
    """Per-market close times; a market past its close time reads as closed."""

    def __init__(self, now: datetime | None = None) -> None:
        start = now or datetime.now(UTC)
        self.default = (start + DEFAULT_CLOSE_AFTER).replace(
            hour=21, minute=0, second=0, microsecond=0
        )
        """Every unscheduled market's close time (21:00 UTC, as daily markets close)."""
        self._lock = threading.Lock()
        self._scheduled: dict[str, tuple[datetime, str]] = {}

    def close_at(self, ticker: str, when: datetime, status: str = "closed") -> None:
        """``ticker`` closes at ``when`` (aware datetime) and then reads as ``status``.

        A time in the future also reopens a market that closed by time (a close time
        extended, as Kalshi does); the market's own ``status`` is never changed here.
        """
        if when.tzinfo is None:
            raise ValueError("a close time must be timezone-aware")
        with self._lock:
            self._scheduled[ticker] = (when, status)

    def scheduled_tickers(self) -> list[str]:
        """Markets with a scheduled close (the trading desk checks only these for closes)."""
        with self._lock:
            return list(self._scheduled)

    def close_time(self, ticker: str) -> datetime:
        scheduled = self._scheduled.get(ticker)
        return self.default if scheduled is None else scheduled[0]

    def status(self, ticker: str, status: str, now: datetime | None = None) -> str:
        """What a market whose own status is ``status`` reads as now: an ``active`` market
        past its scheduled close time reads as that schedule's closed status."""
        scheduled = self._scheduled.get(ticker)
        if scheduled is None or status != "active":
            return status
        when, closed = scheduled
        return closed if (now or datetime.now(UTC)) >= when else status
