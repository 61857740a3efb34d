"""``GET /exchange/status`` reduced to the pauses the supervisor acts on.

Why here and not in the core: the core knows no protocol. Stages and the shell's status
probe read the exchange with ``kalshi_api`` and hand the core an ``ExchangeCondition``.

How the status maps to pauses (top-level flags describe shard 0 [O-exs]; shards [SH]):

* a 503 answer, or ``exchange_active`` false: the whole exchange is paused (nothing allowed);
* ``trading_active`` false everywhere (top level, and every listed shard): trading is paused
  on the whole exchange (the weekly pause: cancels allowed, new orders refused);
* otherwise each listed shard whose ``trading_active`` (or ``exchange_active``) is false is
  paused on its own; a false top-level ``trading_active`` pauses shard 0.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from kalshi_api.errors import ExchangePausedError
from kalshi_api.models import ExchangeStatus
from kalshi_api.rest import KalshiRestClient, RetryPolicy
from messages.exchange import ExchangeCondition, PauseScope, ShardPause

logger = logging.getLogger("kalshi_supervisor.actors.exchange_status")

PROBE_TIMEOUT = 5.0
"""Bound on one status read by the shell's probe (it runs off the supervisor's thread)."""
REFUSAL_CHECK_INTERVAL = 5.0
"""Fewest seconds between two status reads prompted by refused stream upgrades."""


def condition_from_status(
    status: ExchangeStatus, observed_at: datetime | None = None
) -> ExchangeCondition:
    """The pauses ``status`` declares, stamped with the wall time it was read at."""
    http_status = status.http_status
    pauses: list[ShardPause] = []
    if not 200 <= http_status <= 299 or not status.exchange_active:
        pauses.append(ShardPause(exchange_index=None, scope="exchange"))
    else:
        shards = status.exchange_index_statuses
        paused: dict[int, PauseScope] = {}
        for shard in shards:
            if shard.exchange_active is False:
                paused[shard.exchange_index] = "exchange"
            elif shard.trading_active is False:
                paused[shard.exchange_index] = "trading"
        if not status.trading_active:
            paused.setdefault(0, "trading")
        listed = {s.exchange_index for s in shards} or {0}
        if paused and set(paused) >= listed and set(paused.values()) == {"trading"}:
            pauses.append(ShardPause(exchange_index=None, scope="trading"))
        else:
            pauses.extend(
                ShardPause(exchange_index=index, scope=scope)
                for index, scope in sorted(paused.items())
            )
    return ExchangeCondition(
        pauses=tuple(pauses),
        resume_estimate=status.exchange_estimated_resume_time,
        observed_at=observed_at or datetime.now(UTC),
        http_status=http_status,
    )


def condition_from_pause(error: ExchangePausedError) -> ExchangeCondition:
    """The whole-exchange pause an ``ExchangePausedError`` stands for."""
    return ExchangeCondition(
        pauses=(ShardPause(exchange_index=None, scope="exchange"),),
        resume_estimate=error.resume_time,
        observed_at=datetime.now(UTC),
        http_status=error.status or 503,
    )


def read_condition(rest_url: str, timeout: float = PROBE_TIMEOUT) -> ExchangeCondition:
    """One unsigned read of the public status endpoint, no retries (the caller re-polls)."""
    with KalshiRestClient(rest_url, timeout=timeout, retry=RetryPolicy(max_attempts=1)) as client:
        return condition_from_status(client.get_exchange_status())


class RefusalCheck:
    """Reads the status, off the caller's thread, when the exchange refuses a stream upgrade.

    Why: a 5xx on the WebSocket upgrade is what an exchange pause looks like to the stream
    [MP]. Reading ``/exchange/status`` then lets the supervisor see the pause at once (and
    hold its heal timeout / deadline) instead of when the bound expires. At most one read in
    flight and one per ``interval`` seconds: refusals repeat for the whole pause, and the
    supervisor re-checks the status itself once it knows. The read is bounded by ``timeout``.
    """

    def __init__(
        self,
        rest_url: str,
        timeout: float,
        report: Callable[[ExchangeCondition], None],
        interval: float = REFUSAL_CHECK_INTERVAL,
    ) -> None:
        self._rest_url = rest_url
        self._timeout = min(timeout, PROBE_TIMEOUT)
        self._report = report
        self._interval = interval
        self._lock = threading.Lock()
        self._running = False
        self._last: float | None = None
        self._thread: threading.Thread | None = None

    def refused(self, status: int | None) -> None:
        """The stream's upgrade was refused with ``status``; only a 5xx prompts a read."""
        if status is None or not 500 <= status <= 599:
            return
        now = time.monotonic()
        with self._lock:
            if self._running or (self._last is not None and now - self._last < self._interval):
                return
            self._running, self._last = True, now
            self._thread = threading.Thread(
                target=self._read, name="exchange-status-check", daemon=True
            )
            self._thread.start()

    def close(self, timeout: float = PROBE_TIMEOUT) -> None:
        """Wait (bounded by the read's own timeout) for a read in flight: the stage that owns
        this check stops, and no thread of it should outlive it."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def _read(self) -> None:
        try:
            condition = read_condition(self._rest_url, self._timeout)
        except Exception as exc:
            logger.info("exchange status unreadable after a refused upgrade: %s", exc)
            return
        finally:
            with self._lock:
                self._running = False
        self._report(condition)
