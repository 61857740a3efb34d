"""The simulator's own calls on the engine (not Kalshi behaviour): seeding generated
liquidity, lazy listing, and the test and demo-account mutators.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from kalshi_sim.engine_types import MarketRules, Outcome, Position
from kalshi_sim.matching.crossing import Crossing
from kalshi_sim.matching.records import DOLLAR, Changes, OrderRecord, PositionRecord


class EngineFixtures(Crossing):
    """Seeding, resetting and mutating members outside the order calls."""

    def set_market_loader(self, loader: Callable[[str], object] | None) -> None:
        """``loader(ticker)`` is called when a call names a market the engine does not list
        yet; it may ``add_market`` (and ``seed_orders``) it. Lets the exchange list 20,000
        markets lazily, growing each book on first use."""
        self._loader = loader

    def seed_orders(
        self,
        member: str,
        ticker: str,
        quotes: Iterable[tuple[str, int, int]],
        now_ms: int,
    ) -> int:
        """Rest ``(side, yes_price, centi)`` quotes of ``member`` in an empty book at once: the
        generated liquidity of a book as it first grows. No checks, no cash held, no Outcome
        (nobody has seen the book yet). The quotes must not cross, nor share a price.

        Only the public levels are written now; the orders themselves are made the first
        time a call needs the book's queues (any order entry or lifecycle call on it), so
        20,000 books read once cost dict writes, not 280,000 order objects. Their ids are
        ``{ticker}:{member}:{n}``, independent of which books grew first. Returns the count.
        """
        book = self._books[ticker]
        if book.bids or book.asks or book.yes or book.no:
            raise ValueError(f"book {ticker} is not empty")
        yes, no = book.yes, book.no
        count = 0
        for side, price, size in quotes:
            if side == "bid":
                yes[price] = size
            else:
                no[DOLLAR - price] = size
            count += 1
        if count:
            book.seed_member = member
            book.seed_ms = now_ms
            self._account(member)
        return count

    def limit_history(self, member: str, *, orders: int, fills: int) -> None:
        """Keep fewer finished orders and fills for one member than the options say (the
        exchange's own busy members: their history is nobody's to read)."""
        account = self._account(member)
        account.dead_kept = orders
        account.fills = deque(account.fills, maxlen=fills)

    def reset_member(self, member: str, now_ms: int) -> Outcome:
        """Forget a member entirely (a fresh demo account over the same books): its resting
        orders are cancelled off the books (the Outcome says which levels moved), then its
        orders, ids, positions, groups and cash are dropped."""
        changes = Changes()
        account = self._accounts.get(member)
        if account is None:
            return changes.outcome(None, now_ms)
        for order in list(account.live.values()):
            self._cancel_resting(order, None, now_ms, changes)
        for order_id in account.orders:
            self._orders.pop(order_id, None)
        for (_, ticker), position in account.positions.items():
            self._positions_by_ticker[ticker].remove(position)
        for group_id in account.groups:
            self._groups.pop(group_id, None)
        del self._accounts[member]
        return changes.outcome(None, now_ms)

    def set_position(
        self,
        member: str,
        ticker: str,
        position_centi: int,
        *,
        cost_micros: int,
        realized_pnl_micros: int = 0,
        fees_paid_micros: int = 0,
        total_traded_micros: int = 0,
        event_ticker: str,
        exchange_index: int,
        now_ms: int,
        subaccount: int = 0,
    ) -> Position:
        """Replace a position outright, on a listed market or not (the demo account and tests:
        contracts are not conserved by this)."""
        account = self._account(member)
        key = (subaccount, ticker)
        position = account.positions.get(key)
        if position is None:
            rules = MarketRules(ticker, event_ticker, "", exchange_index)
            position = account.positions[key] = PositionRecord(member, subaccount, rules)
            self._positions_by_ticker.setdefault(ticker, []).append(position)
        position.event_ticker = event_ticker
        position.exchange_index = exchange_index
        position.position = position_centi
        position.cost = cost_micros
        position.realized = realized_pnl_micros
        position.fees = fees_paid_micros
        position.traded = total_traded_micros
        position.last_ms = now_ms
        account.updated_ms = now_ms
        return position.view()

    def remove_position(self, member: str, ticker: str, now_ms: int, subaccount: int = 0) -> bool:
        """Forget a position row (tests); False if there was none."""
        account = self._accounts.get(member)
        position = account.positions.pop((subaccount, ticker), None) if account else None
        if position is None or account is None:
            return False
        self._positions_by_ticker[ticker].remove(position)
        account.updated_ms = now_ms
        return True

    def fill_resting(self, member: str, order_id: str, now_ms: int, counterparty: str) -> Outcome:
        """Fill a resting order completely now, ``counterparty`` taking the other side at its
        price whatever the queue (a test mutator: ``Account.execute_order``)."""
        maker = self._live_order(member, order_id, None)
        book = self._book(maker.ticker)
        other = self._account(counterparty)
        other.seq += 1
        taker = OrderRecord.seeded(
            self._new_id(),
            other.seq,
            counterparty,
            book.rules,
            "ask" if maker.side == "bid" else "bid",
            maker.price_micros,
            maker.remaining_centi,
            now_ms,
        )
        taker.time_in_force = "immediate_or_cancel"
        self._add_order(other, taker)
        changes = Changes()
        changes.orders[taker.order_id] = taker
        self._execute(book, taker, maker, now_ms, changes)
        self._end(taker, "executed", "Trade", now_ms, changes)
        return changes.outcome(maker, now_ms)
