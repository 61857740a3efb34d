"""What the engine answers without changing anything: orders, fills, positions, cash,
settlements, groups, the public book and queue positions.

Every answer is a frozen view (or a copy); ``book()`` alone hands out the engine's live
level dicts, to be read under the caller's lock.
"""

from __future__ import annotations

from kalshi_sim.engine_types import (
    EngineOrder,
    Fill,
    Leg,
    MemberTruth,
    OrderGroup,
    Outcome,
    Position,
    Reject,
    Settlement,
)
from kalshi_sim.matching.core import EngineCore
from kalshi_sim.matching.records import OrderRecord


class EngineReads(EngineCore):
    """The engine's queries."""

    # -- a member's orders and fills ---------------------------------------------------------
    def orders(
        self,
        member: str,
        *,
        ticker: str | None = None,
        status: str | None = None,
        subaccount: int | None = None,
    ) -> list[EngineOrder]:
        """The member's readable orders in creation order.

        Indexed, so a read costs what it returns, not what the member holds: a ``ticker``
        visits that market's orders only, ``resting`` the live orders only."""
        account = self._accounts.get(member)
        if account is None:
            return []
        if ticker is not None:
            source = list(account.by_ticker.get(ticker, {}).values())
        elif status == "resting":
            source = sorted(account.live.values(), key=_by_seq)  # live is in resting order
        else:
            source = list(account.orders.values())
        return [
            o.view()
            for o in source
            if (ticker is None or o.ticker == ticker)
            and (status is None or o.status == status)
            and (subaccount is None or o.subaccount == subaccount)
        ]

    def order(self, member: str, order_id: str) -> EngineOrder:
        """One of the member's orders; 404 ``not_found`` if unknown (dead orders are found)."""
        account = self._accounts.get(member)
        order = account.orders.get(order_id) if account is not None else None
        if order is None:
            raise Reject(404, "not_found", "order not found")
        return order.view()

    def live_order_count(self, member: str) -> int:
        account = self._accounts.get(member)
        return len(account.live) if account is not None else 0

    def fills(self, member: str, *, ticker: str | None = None) -> list[Fill]:
        account = self._accounts.get(member)
        if account is None:
            return []
        return [f for f in account.fills if ticker is None or f.ticker == ticker]

    def queue_position(self, member: str, order_id: str) -> int:
        """Centi-contracts resting ahead of the order at its price."""
        order = self._live_order(member, order_id, None)
        ahead = 0
        for other in self._books[order.ticker].level(order.side, order.price_micros).values():
            if other is order:
                return ahead
            ahead += other.remaining_centi
        return ahead

    # -- a member's money and positions --------------------------------------------------------
    def positions(self, member: str) -> list[Position]:
        """The member's positions (rows stay after they net to zero), by ticker."""
        account = self._accounts.get(member)
        if account is None:
            return []
        return [p.view() for _, p in sorted(account.positions.items(), key=lambda kv: kv[0][::-1])]

    def position(self, member: str, ticker: str, subaccount: int = 0) -> Position | None:
        account = self._accounts.get(member)
        found = account.positions.get((subaccount, ticker)) if account is not None else None
        return found.view() if found is not None else None

    def cash_micros(self, member: str, exchange_index: int | None = None) -> int:
        """Available cash on one shard or in total (resting reservations excluded)."""
        account = self._accounts.get(member)
        return _shard_sum(account.cash if account else {}, exchange_index)

    def reserved_micros(self, member: str, exchange_index: int | None = None) -> int:
        """Cash held by the member's resting orders (0 unless ``reserve_resting_balance``)."""
        account = self._accounts.get(member)
        return _shard_sum(account.reserved if account else {}, exchange_index)

    def shards(self, member: str) -> tuple[int, ...]:
        account = self._accounts.get(member)
        return tuple(sorted(account.cash)) if account is not None else ()

    def settlements(self, member: str) -> list[Settlement]:
        account = self._accounts.get(member)
        return list(account.settlements) if account is not None else []

    def groups(self, member: str) -> list[OrderGroup]:
        account = self._accounts.get(member)
        return [g.view() for g in account.groups.values()] if account is not None else []

    def group(self, member: str, group_id: str) -> OrderGroup:
        return self._member_group(member, group_id).view()

    def truth(self, member: str) -> MemberTruth:
        """Everything the engine holds for ``member``; KeyError if unknown."""
        account = self._accounts.get(member)
        if account is None:
            raise KeyError(member)
        return MemberTruth(
            member,
            dict(account.cash),
            dict(account.reserved),
            tuple(o.view() for o in account.orders.values()),
            tuple(account.fills),
            tuple(self.positions(member)),
            tuple(account.settlements),
            tuple(g.view() for g in account.groups.values()),
        )

    def updated_ms(self, member: str) -> int:
        """When the member's cash, orders or positions last changed (0: never)."""
        account = self._accounts.get(member)
        return account.updated_ms if account is not None else 0

    def members(self) -> list[str]:
        return list(self._accounts)

    def fees_collected_micros(self) -> int:
        """Every fee the exchange has taken (for conservation checks)."""
        return self._fees_collected

    # -- the public book -------------------------------------------------------------------------
    def book(self, ticker: str) -> dict[Leg, dict[int, int]]:
        """The public book: per leg, leg price -> resting centi-contracts (live dicts owned by
        the engine: read under the caller's lock, never mutate)."""
        book = self._levels_book(ticker)
        return {"yes": book.yes, "no": book.no}

    def book_seq(self, ticker: str) -> int:
        """The book's version: the ``book_seq`` of the last change to its public levels (a
        snapshot of ``book(ticker)`` taken under the same lock is as of this version)."""
        return self._levels_book(ticker).version

    def best_prices(self, ticker: str) -> tuple[int | None, int | None]:
        """(best bid, best ask) in YES prices, None for an empty side."""
        book = self._book(ticker)
        return (
            book.bid_prices[-1] if book.bid_prices else None,
            book.ask_prices[0] if book.ask_prices else None,
        )

    def level_orders(self, ticker: str, side: str, price_micros: int) -> list[EngineOrder]:
        """The resting orders at one YES price of one side, in time priority."""
        return [order.view() for order in self._level(ticker, side, price_micros)]

    def member_volume(self, ticker: str, side: str, price_micros: int, member: str) -> int:
        """Centi-contracts ``member`` rests at one YES price of one side."""
        level = self._level(ticker, side, price_micros)
        return sum(o.remaining_centi for o in level if o.member == member)

    def _level(self, ticker: str, side: str, price_micros: int) -> list[OrderRecord]:
        return list(self._book(ticker).level(side, price_micros).values())


def _by_seq(order: OrderRecord) -> int:
    return order.seq


def _shard_sum(by_shard: dict[int, int], exchange_index: int | None) -> int:
    """One shard's amount, or every shard's together."""
    if exchange_index is None:
        return sum(by_shard.values())
    return by_shard.get(exchange_index, 0)


def reduced_by_centi(outcome: Outcome) -> int:
    """What a cancel took off the book (the cancel reply's ``reduced_by``)."""
    if outcome.order is None:
        return 0
    return -sum(
        change.delta_centi
        for change in outcome.book_changes
        if change.order_id == outcome.order.order_id
    )
