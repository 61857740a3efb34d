"""Pauses on command: the status board's switches, each with an optional end in ``resume_in``.

``kalshi-supervisor inject exchange pause_exchange --resume-in 5`` should behave like a real
maintenance window: ``/exchange/status`` advertises when it ends
(``exchange_estimated_resume_time``) and the exchange is back at that time, with nobody at
the keyboard. The board (:mod:`kalshi_sim.status`) only holds switches; this module ends a
pause when its time comes, with one timer per pause (a new pause of the same kind replaces
the old timer), so timers stay as few as the pauses in force and none outlives the exchange.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from kalshi_sim.status import ExchangeStatusBoard

_Key = tuple[str, int | None]
"""``("exchange", None)``, ``("trading", None)`` (every shard) or ``("trading", shard)``."""


class PauseFaults:
    """Pause and resume the embedded exchange, ending timed pauses on their own."""

    def __init__(
        self,
        board: ExchangeStatusBoard,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._board = board
        self._now = now
        self._lock = threading.Lock()
        self._ended = threading.Condition(self._lock)
        """Notified whenever a scheduled end fires or is cancelled (see :meth:`wait_ended`)."""
        self._timers: dict[_Key, threading.Timer] = {}

    def pause_trading(self, shard: int | None = None, resume_in: float | None = None) -> None:
        """Trading paused on ``shard`` (every shard when None); a ValueError names the shards
        this exchange has when ``shard`` is not one of them."""
        board = self._board
        if shard is not None and shard not in board.shards:
            known = ", ".join(str(s) for s in board.shards)
            raise ValueError(f"no exchange shard {shard} (this exchange has shards {known})")
        with self._lock:
            if shard is None:  # every shard: no shard's own end applies any more
                for key in [k for k in self._timers if k[0] == "trading"]:
                    self._timers.pop(key).cancel()
                self._ended.notify_all()
            board.pause_trading(shard, resume_at=self._resume_at(resume_in))
            self._schedule(("trading", shard), resume_in, lambda: board.resume_trading(shard))

    def pause_exchange(self, resume_in: float | None = None) -> None:
        """The whole exchange paused (503 everywhere), until ``resume_in`` or :meth:`resume`."""
        board = self._board
        with self._lock:
            board.pause_exchange(resume_at=self._resume_at(resume_in))
            self._schedule(("exchange", None), resume_in, board.resume_exchange)

    def resume(self) -> None:
        """End every pause now (and forget their scheduled ends)."""
        with self._lock:
            self._cancel_all()
            self._board.resume()

    def stop(self) -> None:
        """The exchange is stopping: no timer may outlive it."""
        with self._lock:
            timers = self._cancel_all()
        for timer in timers:  # cancelled: each wakes at once (joined outside the lock it needs)
            timer.join(timeout=1.0)

    @property
    def scheduled(self) -> int:
        """Pauses with an end scheduled (for tests: timers never pile up)."""
        with self._lock:
            return len(self._timers)

    def wait_ended(self, timeout: float) -> bool:
        """Block until no pause has an end still to come (each has fired or was cancelled);
        False on timeout. Lets a caller wait for a timed pause to end without sleeping."""
        with self._ended:
            return self._ended.wait_for(lambda: not self._timers, timeout)

    # -- internals ----------------------------------------------------------------------------
    def _resume_at(self, resume_in: float | None) -> datetime | None:
        return None if resume_in is None else self._now() + timedelta(seconds=resume_in)

    def _schedule(self, key: _Key, resume_in: float | None, end: Callable[[], None]) -> None:
        """Called under the lock: replace ``key``'s timer (a pause without end has none)."""
        previous = self._timers.pop(key, None)
        if previous is not None:
            previous.cancel()
        if resume_in is None:
            self._ended.notify_all()
            return
        timer: threading.Timer

        def fire() -> None:
            with self._lock:
                if self._timers.get(key) is not timer:
                    return  # replaced or cancelled while this thread was starting
                del self._timers[key]
                end()
                self._ended.notify_all()

        timer = threading.Timer(resume_in, fire)
        timer.name = f"sim-resume-{key[0]}" + ("" if key[1] is None else f"-{key[1]}")
        timer.daemon = True
        self._timers[key] = timer
        timer.start()

    def _cancel_all(self) -> list[threading.Timer]:
        timers, self._timers = list(self._timers.values()), {}
        for timer in timers:
            timer.cancel()
        self._ended.notify_all()
        return timers
