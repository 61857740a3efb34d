"""Trading facts counted from the events as the recorder records them, for ``/metrics``.

Why counted here and not asked of the gateway: a scrape must never wait on an actor, and
the counts must survive the gateway restarting. Bounded: a counter per order status, and
per market at most :data:`MAX_MARKETS` entries (the oldest market dropped first).
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from messages.orders import TradingState
from messages.trading_events import (
    FillEvent,
    HaltCompleted,
    OrderUpdateEvent,
    PositionChanged,
    TradingStateChanged,
)

MAX_MARKETS = 1000
"""Markets the tally keeps a position for (oldest dropped first): memory stays bounded."""


@dataclass(frozen=True, slots=True)
class MarketLine:
    """The latest ``position_changed`` of one market (the account's, not a service's)."""

    position: Decimal
    realized: Decimal
    unrealized: Decimal
    fees: Decimal


class TradingTally:
    """Trading counters from the events as they are recorded; thread-safe, bounded."""

    def __init__(self, max_markets: int = MAX_MARKETS) -> None:
        self._lock = threading.Lock()
        self._max_markets = max_markets
        self.order_updates: Counter[str] = Counter()
        """``order_update`` events by status (``pending`` is an order sent)."""
        self.fills: Counter[str] = Counter()
        """Fills per market."""
        self.filled_contracts: dict[str, Decimal] = {}
        self.markets: OrderedDict[str, MarketLine] = OrderedDict()
        self.state: TradingState | None = None
        self.state_reason: str | None = None
        self.halts = 0
        self.last_halt: HaltCompleted | None = None

    def record(self, event: object) -> None:
        with self._lock:
            if isinstance(event, OrderUpdateEvent):
                self.order_updates[event.status.value] += 1
            elif isinstance(event, FillEvent):
                self.fills[event.ticker] += 1
                if event.ticker in self.filled_contracts or len(self.filled_contracts) < (
                    self._max_markets
                ):
                    before = self.filled_contracts.get(event.ticker, Decimal(0))
                    self.filled_contracts[event.ticker] = before + Decimal(event.count)
            elif isinstance(event, PositionChanged) and event.service is None:
                self.markets[event.ticker] = MarketLine(
                    Decimal(event.position),
                    Decimal(event.realized_pnl),
                    Decimal(event.unrealized_pnl),
                    Decimal(event.fees),
                )
                self.markets.move_to_end(event.ticker)
                while len(self.markets) > self._max_markets:
                    self.markets.popitem(last=False)
            elif isinstance(event, TradingStateChanged):
                self.state, self.state_reason = event.state, event.reason
            elif isinstance(event, HaltCompleted):
                self.halts += 1
                self.last_halt = event

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "order_updates": dict(self.order_updates),
                "fills": dict(self.fills),
                "filled_contracts": dict(self.filled_contracts),
                "markets": dict(self.markets),
                "state": self.state,
                "halts": self.halts,
            }
