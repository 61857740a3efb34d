"""A market's and the exchange's state changes: close, deactivation and reactivation,
trading pauses, settlement (KALSHI_PROTOCOL.md §8.6), and what each does to resting orders.
"""

from __future__ import annotations

from kalshi_sim.engine_types import Outcome, Settlement
from kalshi_sim.matching.core import EngineCore
from kalshi_sim.matching.records import CLOSED_STATUSES, DOLLAR, Book, Changes


class MarketStates(EngineCore):
    """Calls the exchange's calendar and operators make."""

    def close_market(self, ticker: str, now_ms: int) -> Outcome:
        """The market passed ``close_time``: resting orders cancelled (``CloseCancel``),
        further place/amend/cancel rejected with the closed code."""
        book = self._book(ticker)
        changes = Changes()
        self._cancel_book(book, "CloseCancel", now_ms, changes)
        book.set_status("closed")
        return changes.outcome(None, now_ms)

    def deactivate(self, ticker: str, now_ms: int) -> Outcome:
        """Deactivated: orders refused with the paused code; resting orders stay (for now)."""
        book = self._open_book(ticker)
        book.set_status("inactive")
        return Outcome(ts_ms=now_ms)

    def reactivate(self, ticker: str, now_ms: int) -> Outcome:
        """Back to active; every order that was resting is cancelled (``HaltCancel``, §8.6)."""
        book = self._open_book(ticker)
        changes = Changes()
        was_inactive = book.rules.status == "inactive"
        book.set_status("active")
        if was_inactive:
            self._cancel_book(book, "HaltCancel", now_ms, changes)
        return changes.outcome(None, now_ms)

    def trading_pause(
        self, now_ms: int, exchange_index: int | None = None, *, cancels_allowed: bool = True
    ) -> Outcome:
        """Pause trading (one shard or all): creates/amends refused, ``cancel_order_on_pause``
        orders cancelled (``HaltCancel``). ``cancels_allowed=False`` is the exchange pause."""
        if exchange_index is None:
            self._all_paused = True
        else:
            self._paused_shards.add(exchange_index)
        if not cancels_allowed:
            self._cancels_refused = True
        changes = Changes()
        for order in list(self._pause_cancellable.values()):
            if exchange_index is None or order.exchange_index == exchange_index:
                self._cancel_resting(order, "HaltCancel", now_ms, changes)
        return changes.outcome(None, now_ms)

    def trading_resume(self, now_ms: int, exchange_index: int | None = None) -> Outcome:
        """End a pause (one shard's, or every pause when ``exchange_index`` is None)."""
        if exchange_index is None:
            self._all_paused = False
            self._paused_shards.clear()
            self._cancels_refused = False
        else:
            self._paused_shards.discard(exchange_index)
        return Outcome(ts_ms=now_ms)

    def settle(
        self, ticker: str, result: str, now_ms: int, value_micros: int | None = None
    ) -> Outcome:
        """Settle on ``yes`` ($1 per YES contract), ``no`` ($1 per NO contract), or a scalar
        ``value_micros`` per YES contract (NO gets the rest): resting orders cancelled,
        positions closed into realized P&L, a settlement recorded per holder."""
        book = self._book(ticker)
        if book.rules.status == "settled":
            raise self._closed("already settled")
        if value_micros is None:
            if result not in ("yes", "no"):
                raise ValueError(f"result must be yes or no without a value, got {result!r}")
            value_micros = DOLLAR if result == "yes" else 0
        if not 0 <= value_micros <= DOLLAR:
            raise ValueError(f"settlement value {value_micros} is outside 0..1 dollar")
        changes = Changes()
        self._cancel_book(book, "CloseCancel", now_ms, changes)
        book.set_status("settled")
        for position in self._positions_by_ticker.get(ticker, ()):
            held = position.position
            if held == 0:
                continue
            account = self._accounts[position.member]
            per_contract = value_micros if held > 0 else DOLLAR - value_micros
            revenue = abs(held) * per_contract // 100
            shard = position.exchange_index
            account.cash[shard] = account.cash.get(shard, 0) + revenue
            record = Settlement(
                position.member,
                position.subaccount,
                ticker,
                position.event_ticker,
                shard,
                result,
                max(held, 0),
                position.cost if held > 0 else 0,
                max(-held, 0),
                position.cost if held < 0 else 0,
                revenue,
                position.fees,
                now_ms,
            )
            position.realized += revenue - position.cost
            position.cost = 0
            position.position = 0
            position.last_ms = now_ms
            account.settlements.append(record)
            changes.settlements.append(record)
            changes.positions[id(position)] = position
        return changes.outcome(None, now_ms)

    def _open_book(self, ticker: str) -> Book:
        """The book of a market that is neither closed nor settled (else the closed Reject)."""
        book = self._book(ticker)
        if book.rules.status in CLOSED_STATUSES:
            raise self._closed("market closed")
        return book
