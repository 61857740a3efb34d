"""The embedded exchange's status board: per-shard trading flags and the two kinds of pause.

Kalshi pauses trading weekly (Thursday 3-5 AM ET; cancels still allowed) and, rarely, the
whole exchange, when ``GET /exchange/status`` answers **503 with the status body**
(``exchange_active``, ``trading_active``, ``exchange_estimated_resume_time``) [MP]. Each
shard also reports its own ``trading_active`` [SH]. Tests flip these switches and watch
the client treat a pause as a condition, not as a failure.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kalshi_sim.markets import SHARD_DESCRIPTIONS

EXCHANGE_PAUSED_ERROR: dict[str, Any] = {
    "error": {"code": "exchange_unavailable", "message": "exchange is paused"}
}
"""What every other endpoint answers (503) while the whole exchange is paused."""


class ExchangeStatusBoard:
    """Thread-safe pause switches; ``response()`` is what ``/exchange/status`` answers."""

    def __init__(self, shards: dict[int, str] | None = None) -> None:
        self._lock = threading.Lock()
        self._shards = dict(shards or SHARD_DESCRIPTIONS)
        self._trading_paused: set[int] = set()
        self._exchange_paused = False
        self._resume_at: datetime | None = None
        self._pause_at_path: tuple[str, datetime | None] | None = None
        self._on_exchange_pause: list[Callable[[], None]] = []

    def on_exchange_pause(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (outside the lock) each time the whole exchange becomes paused.

        Why: an exchange pause is more than a flag on ``/exchange/status``; the WebSocket feed
        listens here to drop its open sessions when the pause begins [MP].
        """
        self._on_exchange_pause.append(listener)

    # -- switches -------------------------------------------------------------------------------
    def pause_trading(
        self, exchange_index: int | None = None, *, resume_at: datetime | None = None
    ) -> None:
        """Pause trading on one shard, or on every shard (the weekly pause) when None."""
        with self._lock:
            if exchange_index is None:
                self._trading_paused = set(self._shards)
            else:
                if exchange_index not in self._shards:
                    raise ValueError(f"no exchange shard {exchange_index}")
                self._trading_paused.add(exchange_index)
            self._resume_at = resume_at

    def pause_exchange(self, *, resume_at: datetime | None = None) -> None:
        """Pause the whole exchange: status answers 503 with its body, other endpoints 503,
        WebSocket upgrades are refused and (by default) open sessions are dropped."""
        with self._lock:
            began = not self._exchange_paused
            self._exchange_paused = True
            self._resume_at = resume_at
            self._pause_at_path = None
        if began:
            for listener in self._on_exchange_pause:
                listener()

    def pause_exchange_at(self, path_suffix: str, *, resume_at: datetime | None = None) -> None:
        """Pause the whole exchange the instant a request for a path ending in ``path_suffix``
        arrives, so that very request is the first one refused.

        Why: a pause begins between two requests of a stage's work; a test needs the pause to
        start exactly there (the status read just said "active", the next read gets 503).
        """
        with self._lock:
            self._pause_at_path = (path_suffix, resume_at)

    def before_request(self, path: str) -> None:
        """Called by the REST server for each request: starts an armed ``pause_exchange_at``."""
        with self._lock:
            armed = self._pause_at_path
        if armed is not None and path.endswith(armed[0]):
            self.pause_exchange(resume_at=armed[1])

    def resume(self) -> None:
        """End every pause."""
        with self._lock:
            self._exchange_paused = False
            self._trading_paused.clear()
            self._resume_at = None
            self._pause_at_path = None

    def resume_exchange(self) -> None:
        """End the whole-exchange pause only; trading pauses stay (with their estimate)."""
        with self._lock:
            self._exchange_paused = False
            self._forget_estimate_if_nothing_paused()

    def resume_trading(self, exchange_index: int | None = None) -> None:
        """End the trading pause on one shard, or on every shard when None."""
        with self._lock:
            if exchange_index is None:
                self._trading_paused.clear()
            else:
                self._trading_paused.discard(exchange_index)
            self._forget_estimate_if_nothing_paused()

    def _forget_estimate_if_nothing_paused(self) -> None:
        if not self._exchange_paused and not self._trading_paused:
            self._resume_at = None

    # -- reads ----------------------------------------------------------------------------------
    @property
    def shards(self) -> tuple[int, ...]:
        """The shards (``exchange_index`` values) this exchange runs, ascending."""
        return tuple(sorted(self._shards))

    @property
    def exchange_paused(self) -> bool:
        with self._lock:
            return self._exchange_paused

    def response(self) -> tuple[int, dict[str, Any]]:
        """``(http_status, body)`` of ``GET /exchange/status``: 503 during an exchange pause."""
        with self._lock:
            exchange_active = not self._exchange_paused
            resume = self._resume_at
            shards = [
                {
                    "exchange_index": index,
                    "description": description,
                    "exchange_active": exchange_active,
                    "trading_active": exchange_active and index not in self._trading_paused,
                    "intra_exchange_transfers_active": exchange_active,
                }
                for index, description in sorted(self._shards.items())
            ]
            paused_default = 0 in self._trading_paused
        body = {
            "exchange_active": exchange_active,
            "trading_active": exchange_active and not paused_default,
            "exchange_estimated_resume_time": _iso(resume),
            "intra_exchange_transfers_active": exchange_active,
            "exchange_index_statuses": shards,
        }
        return (503 if not exchange_active else 200), body


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
