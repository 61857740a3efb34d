"""The kill switch: the trading state, one halt at a time, the halt thread's view of our
orders, and the report a finished halt leaves.

Why a view shared with a thread: the halt runs on a thread of its own (it loops until
none of ours rest and must never queue behind held writes), yet which order ids are ours
and how many creates are still in flight is the actor's knowledge. ``HaltView`` is that
knowledge, copied under a lock: the actor refreshes it, the halt thread reads it.

``KillSwitch`` holds the trading state (mirrored on the ``TradingLink``, so a new
incarnation of the gateway starts where the last one stopped) and the callers waiting
for the halt in progress: a second ``Halt`` while one runs joins it rather than starting
another. When to halt (the automatic triggers) is decided by the actor with the pure
rules of ``trading.halt``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from typing import Any

from actors.gateway_io import HaltOutcome
from actors.gateway_messages import Halt, IoDone
from actors.trading_link import TradingLink
from messages.orders import HaltReason, OrderStatus, TradingState
from messages.text import one_line
from messages.trading_events import HaltCompleted, TradingStateChanged
from messages.trading_status import HaltReport
from trading.order_state import OrderRecord

logger = logging.getLogger("kalshi_supervisor.actors.gateway_halting")


def pause_trigger(
    exchange_index: int | None,
    scope: str,
    pauses: Mapping[int | None, str],
    order_shards: Iterable[int],
) -> tuple[HaltReason, str] | None:
    """The automatic trigger an ``exchange_paused`` is, and why; or None (docs/trading.md,
    "Halts").

    A pause of the whole exchange is ``EXCHANGE_PAUSE`` (scope ``exchange``: halts by
    default) or ``TRADING_PAUSE`` (the weekly pause: changes nothing by default). A pause
    of one shard only refuses new orders on that shard's markets (admission), and trading
    goes on elsewhere; it is the same trigger as a whole-exchange pause of its scope only
    when every shard we have open orders on is now paused (``pauses``, the pauses in force
    with this one). With no open orders, a shard pause triggers nothing.
    """
    reason = HaltReason.EXCHANGE_PAUSE if scope == "exchange" else HaltReason.TRADING_PAUSE
    if exchange_index is None:
        return reason, f"{scope} pause on every shard"
    shards = set(order_shards)
    if shards and (None in pauses or shards <= set(pauses)):
        return reason, f"{scope} pause on shard {exchange_index}, where our orders are"
    return None


class HaltView:
    """Our order ids at the exchange and our creates in flight, for the halt thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: set[str] = set()
        self._in_flight = 0
        self._asked = False

    def changed(self, ask: Callable[[], None], *, created: bool = False) -> None:
        """Open orders changed; ``ask()`` has the actor run ``refresh`` soon (once per burst).

        The view is recomputed by walking every open order; doing that on each fact made a
        halt of N orders cost N walks of N (the actor went unresponsive at 1,000). So facts
        only ask for one refresh, told to the actor and run after the burst already
        queued; a new create counts at once, so the view never shows fewer creates in
        flight than there are (only, briefly, more)."""
        if created:
            self.created()
        if not self._asked:
            self._asked = True
            ask()

    def __call__(self) -> tuple[set[str], int]:
        """What the halt thread reads (thread-safe copy)."""
        with self._lock:
            return set(self._known), self._in_flight

    def created(self) -> None:
        """A create is about to be sent: it counts at once, before any refresh."""
        with self._lock:
            self._in_flight += 1

    def refresh(self, open_orders: Iterable[OrderRecord]) -> None:
        """Recomputed from every open order (one walk; the actor batches the asks)."""
        self._asked = False
        in_flight = 0
        known: set[str] = set()
        for record in open_orders:
            if record.status in (OrderStatus.PENDING, OrderStatus.OUTCOME_UNKNOWN):
                in_flight += 1
            if record.order_id is not None:
                known.add(record.order_id)
        with self._lock:
            self._in_flight, self._known = in_flight, known


def halt_report(
    context: tuple[str, int], state: TradingState, outcome: HaltOutcome
) -> tuple[HaltReport, HaltCompleted]:
    """What a finished halt answers its callers, and the event it publishes; ``context``
    is the halt's reason and how many of our orders were open when it began."""
    reason, open_at_start = context
    report = HaltReport(
        reason=reason, open_at_start=open_at_start, state=state, duration_ms=outcome.duration_ms,
        cancel_all_calls=outcome.cancel_all_calls, verify_reads=outcome.verify_reads,
        remaining=outcome.remaining,
    )
    event = HaltCompleted(
        reason=report.reason, duration_ms=report.duration_ms,
        cancel_all_calls=report.cancel_all_calls, verify_reads=report.verify_reads,
        remaining=report.remaining,
    )
    return report, event


class KillSwitch:
    """The trading state and the halt in progress (see the module docstring)."""

    def __init__(self, link: TradingLink) -> None:
        self.link = link
        self.state: TradingState = link.state
        self.reason: str | None = link.state_reason
        self.view = HaltView()
        self._waiting: list[Future[Any]] | None = None

    @property
    def halting(self) -> bool:
        return self._waiting is not None

    def set(self, state: TradingState, reason: str) -> None:
        """The new state (published when it or its reason changed)."""
        changed = state is not self.state or reason != self.reason
        self.state, self.reason = state, reason
        self.link.state, self.link.state_reason = state, reason
        if changed:
            self.link.publish(TradingStateChanged(state=state, reason=reason))

    def begin(self, message: Halt) -> str | None:
        """HALTED now; the reason, if a halt thread is to start (None: one is running, and
        this caller waits for it)."""
        reason = message.reason.value if isinstance(message.reason, HaltReason) else str(
            message.reason)
        if self._waiting is not None:  # one halt at a time; the next caller waits for it
            if message.reply is not None:
                self._waiting.append(message.reply)
            return None
        self.set(TradingState.HALTED, reason)
        self._waiting = [message.reply] if message.reply is not None else []
        return reason

    def finish(self, done: IoDone, still_open: int) -> HaltReport:
        """The halt thread ended: its report published and answered to every caller."""
        waiting, self._waiting = self._waiting or [], None
        if done.error is not None:
            outcome = HaltOutcome(0, 0, 0, still_open)
            logger.error("gateway: halt failed: %s", one_line(str(done.error)))
        else:
            outcome = done.result
        report, event = halt_report(done.context, self.state, outcome)
        self.link.publish(event)
        for future in waiting:
            if not future.done():
                future.set_result(report)
        return report
