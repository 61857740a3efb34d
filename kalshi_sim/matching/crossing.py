"""Crossing: a taker against the resting orders it reaches, in price-time priority.

Each execution moves both sides' cash and positions, charges fees, records a trade and two
fills, counts toward order groups, and trims resting reduce-only orders a fill has left too
large. Self-trade prevention is applied as the taker meets its own member's orders:
``taker_at_cross`` ends the taker, ``maker`` cancels the resting order and goes on.
"""

from __future__ import annotations

from kalshi_sim.engine_types import Fill, OrderRequest, Trade
from kalshi_sim.fees import maker_fee_micros, taker_fee_micros
from kalshi_sim.matching.groups import GroupRules
from kalshi_sim.matching.records import (
    PAYOUT_PER_CENTI,
    AccountRecord,
    Book,
    Changes,
    OrderRecord,
    PositionRecord,
    crosses,
    leg_cost,
)


class Crossing(GroupRules):
    """Matching a taker, one execution at a time."""

    def _fillable(self, book: Book, req: OrderRequest, wanted: int) -> int:
        """What a taker could fill now (STP included), stopping once ``wanted`` is reached."""
        found = 0
        levels, prices = book.queues("ask" if req.side == "bid" else "bid")
        for price in prices if req.side == "bid" else reversed(prices):
            if not crosses(req.side, req.price_micros, price):
                break
            for maker in levels[price].values():
                if maker.member == req.member:
                    if req.self_trade_prevention_type == "taker_at_cross":
                        return found
                    continue
                found += maker.remaining_centi
                if found >= wanted:
                    return found
        return found

    def _match(
        self, book: Book, taker: OrderRecord, account: AccountRecord, now: int, changes: Changes
    ) -> None:
        """Fill ``taker`` against the opposite side in price-time priority until it is filled,
        stops crossing, or self-trade prevention / its group stops it."""
        side = taker.side
        levels, prices = book.queues("ask" if side == "bid" else "bid")
        limit = taker.price_micros
        while taker.remaining_centi > 0 and prices:
            price = prices[0] if side == "bid" else prices[-1]
            if not crosses(side, limit, price):
                return
            for maker in list(levels[price].values()):
                if maker.status != "resting":
                    continue  # cancelled during this match (its group triggered, STP, ...)
                if maker.member == taker.member:
                    if taker.stp == "taker_at_cross":
                        self._end(taker, "canceled", "SelfTradeCancel", now, changes)
                        return
                    self._cancel_resting(maker, "SelfTradeCancel", now, changes)
                    continue
                self._execute(book, taker, maker, now, changes)
                if taker.status != "resting" or taker.remaining_centi == 0:
                    return

    def _execute(
        self, book: Book, taker: OrderRecord, maker: OrderRecord, now: int, changes: Changes
    ) -> None:
        """One execution between a taker and a resting maker."""
        rules = book.rules
        options = self.options
        quantity = min(taker.remaining_centi, maker.remaining_centi)
        price = maker.price_micros if options.fill_at_maker_price else taker.price_micros
        trade_id = self._new_id()
        fee_args = (rules.fee_type, rules.fee_multiplier, quantity, price)
        taker_fee = taker_fee_micros(*fee_args, options.fee_quantum_micros)
        maker_fee = maker_fee_micros(*fee_args, options.fee_quantum_micros)
        # the maker leaves the book first (its public level shrinks by what traded)
        self._level_change(book, maker, -quantity, changes)
        maker.remaining_centi -= quantity
        taker.remaining_centi -= quantity
        taker_side = "yes" if taker.side == "bid" else "no"
        changes.trades.append(Trade(trade_id, rules.ticker, quantity, price, taker_side, now))  # type: ignore[arg-type]
        for order, fee, is_taker in ((taker, taker_fee, True), (maker, maker_fee, False)):
            self._settle_fill(book, order, quantity, price, fee, is_taker, trade_id, now, changes)
        if maker.remaining_centi == 0:
            self._unrest(book, maker, changes)
            self._end(maker, "executed", "Trade", now, changes)
        for order, counted in ((taker, True), (maker, options.group_counts_maker_fills)):
            if counted and order.order_group_id is not None:
                group = self._groups.get(order.order_group_id)
                if group is not None:
                    self._count_group_fill(group, quantity, now, changes)
        if self._reduce_only_live:
            for order in (taker, maker):
                self._enforce_reduce_only(
                    order.member, order.subaccount, order.ticker, now, changes
                )

    def _settle_fill(
        self,
        book: Book,
        order: OrderRecord,
        quantity: int,
        price: int,
        fee: int,
        is_taker: bool,
        trade_id: str,
        now: int,
        changes: Changes,
    ) -> None:
        """Move one side's cash and position for one execution."""
        rules = book.rules
        account = self._accounts[order.member]
        account.updated_ms = now
        shard = rules.exchange_index
        # the hold for these contracts (at the order's limit) goes back, the real cost comes out
        self._release(account, order, self._hold(book, order.side, order.price_micros, quantity))
        cost = leg_cost(order.side, price, quantity)
        key = (order.subaccount, rules.ticker)
        position = account.positions.get(key)
        if position is None:
            position = PositionRecord(order.member, order.subaccount, rules)
            account.positions[key] = position
            self._positions_by_ticker.setdefault(rules.ticker, []).append(position)
        held = position.position
        signed = quantity if order.side == "bid" else -quantity
        netted = min(quantity, abs(held)) if held * signed < 0 else 0
        credit = netted * PAYOUT_PER_CENTI
        account.cash[shard] = account.cash.get(shard, 0) - cost - fee + credit
        self._fees_collected += fee
        netted_cost = leg_cost(order.side, price, netted)
        if netted:
            released = position.cost if netted == abs(held) else position.cost * netted // abs(held)
            position.cost -= released
            position.realized += credit - netted_cost - released
        position.cost += cost - netted_cost
        position.position = held + signed
        position.fees += fee
        position.traded += cost
        position.last_ms = now
        changes.positions[id(position)] = position
        order.fill_centi += quantity
        order.last_update_ms = now
        order.last_update_reason = "Trade"
        if is_taker:
            order.taker_fill_cost_micros += cost
            order.taker_fees_micros += fee
        else:
            order.maker_fill_cost_micros += cost
            order.maker_fees_micros += fee
        changes.orders[order.order_id] = order
        fill = Fill(
            f"{trade_id}-{'t' if is_taker else 'm'}",
            trade_id,
            order.order_id,
            order.client_order_id,
            order.member,
            order.subaccount,
            rules.ticker,
            shard,
            order.side,  # type: ignore[arg-type]
            is_taker,
            quantity,
            price,
            fee,
            now,
            position.position,
        )
        account.fills.append(fill)
        changes.fills.append(fill)

    def _enforce_reduce_only(
        self, member: str, subaccount: int, ticker: str, now: int, changes: Changes
    ) -> None:
        """Shrink (or cancel, ``ReduceOnlyCancel``) resting reduce-only orders that a fill has
        left larger than what they could reduce."""
        account = self._accounts[member]
        for order in [
            o
            for o in self._reduce_only_live.values()
            if o.member == member and o.subaccount == subaccount and o.ticker == ticker
        ]:
            if order.status != "resting":
                continue
            room = self._reducible(account, subaccount, ticker, order.side)
            if room == 0:
                self._cancel_resting(order, "ReduceOnlyCancel", now, changes)
            elif order.remaining_centi > room:
                book = self._books[ticker]
                self._shrink(book, order, order.remaining_centi - room, now, changes)
                order.last_update_reason = "ReduceOnlyCancel"
