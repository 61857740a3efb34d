"""Order entry and an order's own lifecycle: place, amend, decrease, cancel, cancel-all,
expiry.

Each call checks everything that can refuse it first (raising :class:`Reject` with the
status and code Kalshi answers), then applies the change, which cannot fail halfway: a
refused call leaves no trace except what Kalshi also spends (a killed FOK's
``client_order_id`` and order id).
"""

from __future__ import annotations

import heapq

from kalshi_sim.engine_types import TIME_IN_FORCE, OrderRequest, Outcome, Reject
from kalshi_sim.matching.crossing import Crossing
from kalshi_sim.matching.records import (
    AccountRecord,
    Book,
    Changes,
    GroupRecord,
    OrderRecord,
    crosses,
)


def _post_only_cross() -> Reject:
    return Reject(400, "invalid_order", "post only order would cross", "post only cross")


class OrderEntry(Crossing):
    """The order calls a member makes."""

    def place(
        self,
        req: OrderRequest,
        now_ms: int,
        *,
        order_id: str | None = None,
        funded: bool = True,
        ignore_pause: bool = False,
    ) -> Outcome:
        """Create an order; it matches, then rests (GTC) or ends (IOC/FOK). Raises Reject.

        ``order_id``, ``funded=False`` and ``ignore_pause`` are for the simulator's fixtures
        only (the demo account's deterministic orders, test mutators): a given id (ValueError
        if taken); an order that is not checked against, and holds nothing of, the balance;
        an order placed whatever pause or deactivation is in force (not on a closed market)."""
        book = self._tradable_book(req.ticker, ignore_pause=ignore_pause)
        self._check_request(req, book, now_ms)
        account = self._account(req.member)
        if req.client_order_id is not None and req.client_order_id in account.client_ids:
            raise Reject(409, "order_already_exists", "client_order_id was already used")
        group = None
        if req.order_group_id is not None:
            group = self._member_group(req.member, req.order_group_id)
            if group.triggered:
                raise Reject(
                    self.options.group_triggered_status,
                    self.options.group_triggered_code,
                    "the order group is triggered; reset it first",
                )
        if len(account.live) >= self.options.max_resting_per_member:
            raise Reject(400, "invalid_order", "too many resting orders")
        count = req.count_centi
        if req.reduce_only:
            count = min(count, self._reducible(account, req.subaccount, req.ticker, req.side))
            if count == 0 and self.options.reduce_only_empty_rejects:
                raise Reject(400, "invalid_order", "reduce only order would not reduce a position")
        opposite = book.best_opposite(req.side)
        crossing = opposite is not None and crosses(req.side, req.price_micros, opposite)
        if req.post_only and crossing:
            raise _post_only_cross()
        if req.time_in_force == "fill_or_kill" and (
            count < req.count_centi or self._fillable(book, req, count) < count
        ):
            if req.client_order_id is not None:
                account.client_ids.add(req.client_order_id)  # spent even by a kill [FORT]
            self._new_id()
            raise Reject(
                409,
                "fill_or_kill_insufficient_resting_volume",
                "not enough resting volume to fill the whole order",
            )
        if order_id is not None and order_id in self._orders:
            raise ValueError(f"duplicate order id {order_id}")
        exempt = req.reduce_only and not self.options.reduce_only_holds_collateral
        hold = self._hold(book, req.side, req.price_micros, count) if funded and not exempt else 0
        shard = book.rules.exchange_index
        if account.cash.get(shard, 0) < hold:
            raise Reject(400, "insufficient_balance", "insufficient balance for this order")
        # -- accepted: from here on nothing raises
        if req.client_order_id is not None:
            account.client_ids.add(req.client_order_id)
        account.seq += 1
        account.updated_ms = now_ms
        order = OrderRecord(order_id or self._new_id(), account.seq, req, book.rules, now_ms)
        if count:  # a reduce-only order capped by the position: the capped count is its count
            order.initial_centi = order.remaining_centi = count
        self._add_order(account, order)
        changes = Changes()
        changes.orders[order.order_id] = order
        if count == 0:
            self._end(order, "canceled", "ReduceOnlyCancel", now_ms, changes)
            return changes.outcome(order, now_ms)
        self._reserve(account, order, hold)
        self._take_then_rest(book, order, account, group, crossing, now_ms, changes)
        return changes.outcome(order, now_ms)

    def cancel(
        self,
        member: str,
        order_id: str,
        now_ms: int,
        subaccount: int | None = None,
        *,
        ignore_pause: bool = False,
    ) -> Outcome:
        """Cancel a resting order (the reply's ``reduced_by`` is what was resting, i.e.
        ``reduced_by_centi(outcome)``); 404 ``not_found`` if dead/unknown. ``ignore_pause``
        is for fixtures: cancel whatever pause is in force."""
        order = self._live_order(member, order_id, subaccount)
        if not ignore_pause:
            self._check_cancel_allowed(order.ticker)
        changes = Changes()
        self._cancel_resting(order, None, now_ms, changes)
        return changes.outcome(order, now_ms)

    def amend(
        self,
        member: str,
        order_id: str,
        *,
        ticker: str,
        side: str,
        price_micros: int,
        count_centi: int,
        now_ms: int,
        updated_client_order_id: str | None = None,
        expiration_time_s: int | None = None,
    ) -> Outcome:
        """Change price and/or total count (filled + resting). A size decrease or an
        expiry-only change keeps queue position; anything else re-queues (and may cross).
        ``expiration_time_s``: None keeps it, 0 clears it ([CONF])."""
        order = self._live_order(member, order_id, None)
        book = self._tradable_book(order.ticker)
        if ticker != order.ticker or side != order.side:
            raise Reject(400, "invalid_order", "amend cannot change the ticker or side")
        self._check_price(book, price_micros)
        account = self._accounts[member]
        if updated_client_order_id is not None and updated_client_order_id in account.client_ids:
            raise Reject(409, "order_already_exists", "updated_client_order_id was already used")
        if expiration_time_s and expiration_time_s * 1000 <= now_ms:
            raise Reject(400, "invalid_order", "expiration_time is in the past")
        new_remaining = count_centi - order.fill_centi
        if new_remaining < 0 or (new_remaining == 0 and not self.options.amend_to_filled_cancels):
            raise Reject(400, "invalid_order", "count is below the filled count")
        opposite = book.best_opposite(order.side)
        crossing = opposite is not None and crosses(order.side, price_micros, opposite)
        repriced = price_micros != order.price_micros
        if order.post_only and crossing and repriced and self.options.post_only_amend == "reject":
            raise _post_only_cross()
        new_hold = self._hold(book, order.side, price_micros, max(new_remaining, 0))
        if order.reduce_only and not self.options.reduce_only_holds_collateral:
            new_hold = 0
        needed = new_hold
        if self.options.reserve_resting_balance:
            needed -= order.reserved_micros
        if needed > 0 and account.cash.get(book.rules.exchange_index, 0) < needed:
            raise Reject(400, "insufficient_balance", "insufficient balance for this amend")
        # -- accepted
        changes = Changes()
        if updated_client_order_id is not None:
            account.client_ids.add(updated_client_order_id)
            order.client_order_id = updated_client_order_id
        if expiration_time_s is not None:
            order.expiration_time_s = expiration_time_s or None
            if order.expiration_time_s:
                self._push_expiry(order)
        changes.orders[order.order_id] = order
        if new_remaining == 0:
            self._cancel_resting(order, "Amend", now_ms, changes)
            return changes.outcome(order, now_ms)
        if not repriced and new_remaining <= order.remaining_centi:
            self._shrink(book, order, order.remaining_centi - new_remaining, now_ms, changes)
            order.initial_centi = count_centi
            order.last_update_reason = "Amend"
            return changes.outcome(order, now_ms)
        group = self._groups.get(order.order_group_id) if order.order_group_id else None
        self._unrest(book, order, changes)
        self._release(account, order, order.reserved_micros)
        order.price_micros = price_micros
        order.remaining_centi = new_remaining
        order.initial_centi = count_centi
        order.last_update_ms = now_ms
        order.last_update_reason = "Amend"
        if order.post_only and crossing:
            self._end(order, "canceled", "PostOnlyCrossCancel", now_ms, changes)
            return changes.outcome(order, now_ms)
        self._reserve(account, order, new_hold)
        self._take_then_rest(book, order, account, group, crossing, now_ms, changes)
        return changes.outcome(order, now_ms)

    def decrease(
        self,
        member: str,
        order_id: str,
        now_ms: int,
        reduce_by_centi: int | None = None,
        reduce_to_centi: int | None = None,
        *,
        ignore_pause: bool = False,
    ) -> Outcome:
        """Shrink the resting count (exactly one of ``reduce_by``/``reduce_to``, the latter
        being the new remaining count); keeps queue position; 0 left cancels. ``ignore_pause``
        is for fixtures."""
        if (reduce_by_centi is None) == (reduce_to_centi is None):
            raise Reject(400, "invalid_parameters", "give exactly one of reduce_by, reduce_to")
        order = self._live_order(member, order_id, None)
        if not ignore_pause:  # a decrease is a partial cancel: allowed in a weekly pause
            self._check_cancel_allowed(order.ticker)
        book = self._book(order.ticker)
        if reduce_by_centi is not None:
            if reduce_by_centi <= 0:
                raise Reject(400, "invalid_parameters", "reduce_by must be positive")
            target = max(order.remaining_centi - reduce_by_centi, 0)
        else:
            assert reduce_to_centi is not None
            if reduce_to_centi < 0 or reduce_to_centi > order.remaining_centi:
                raise Reject(400, "invalid_parameters", "reduce_to must be 0..remaining")
            target = reduce_to_centi
        changes = Changes()
        changes.orders[order.order_id] = order
        if target == 0:
            self._cancel_resting(order, "Decrease", now_ms, changes)
        else:
            self._shrink(book, order, order.remaining_centi - target, now_ms, changes)
            order.initial_centi = order.fill_centi + target
            order.last_update_reason = "Decrease"
        return changes.outcome(order, now_ms)

    def cancel_all(self, member: str, now_ms: int, subaccount: int | None = None) -> Outcome:
        """Cancel every resting order of the member (one subaccount or all); orders on
        markets that refuse cancels (closed, exchange paused) are left alone."""
        account = self._accounts.get(member)
        changes = Changes()
        if account is None:
            return changes.outcome(None, now_ms)
        for order in list(account.live.values()):
            if subaccount is not None and order.subaccount != subaccount:
                continue
            try:
                self._check_cancel_allowed(order.ticker)
            except Reject:
                continue
            self._cancel_resting(order, None, now_ms, changes)
        return changes.outcome(None, now_ms)

    def expire(self, now_ms: int) -> Outcome:
        """Cancel (``ExpiryCancel``) every GTC order whose ``expiration_time`` is due."""
        changes = Changes()
        heap = self._expiries
        while heap and heap[0][0] <= now_ms:
            due, _, order = heapq.heappop(heap)
            if order.status != "resting" or order.expiration_time_s is None:
                continue
            if order.expiration_time_s * 1000 != due:
                continue  # amended since: a later entry stands for it
            self._cancel_resting(order, "ExpiryCancel", now_ms, changes)
        return changes.outcome(None, now_ms)

    # -- internals -----------------------------------------------------------------------------
    def _take_then_rest(
        self,
        book: Book,
        order: OrderRecord,
        account: AccountRecord,
        group: GroupRecord | None,
        crossing: bool,
        now: int,
        changes: Changes,
    ) -> None:
        """An accepted order (new or re-priced) takes what it crosses, then what is left
        rests (GTC) or ends (IOC/FOK); a fully filled order ends ``executed``."""
        if crossing:
            self._match(book, order, account, now, changes)
        if order.status != "resting":
            return  # ended while matching (self-trade prevention, its group triggered)
        if order.remaining_centi == 0:
            self._end(order, "executed", order.last_update_reason, now, changes)
        elif order.time_in_force == "good_till_canceled":
            self._rest(book, order, account, group, changes)
        else:
            status = "canceled"
            if order.fill_centi and order.time_in_force == "immediate_or_cancel":
                status = self.options.ioc_partial_status
            self._end(order, status, None, now, changes)

    def _check_request(self, req: OrderRequest, book: Book, now_ms: int) -> None:
        if req.side not in ("bid", "ask"):
            raise Reject(400, "invalid_order", f"side must be bid or ask, got {req.side!r}")
        if req.time_in_force not in TIME_IN_FORCE:
            raise Reject(400, "invalid_order", f"unknown time_in_force {req.time_in_force!r}")
        if req.self_trade_prevention_type not in ("taker_at_cross", "maker"):
            raise Reject(400, "invalid_order", "unknown self_trade_prevention_type")
        if req.count_centi <= 0:
            raise Reject(400, "invalid_order", "count must be positive")
        if not 0 <= req.subaccount <= 63:
            raise Reject(400, "invalid_parameters", "subaccount must be 0-63")
        self._check_price(book, req.price_micros)
        if req.expiration_time_s is not None:
            if req.time_in_force != "good_till_canceled":
                raise Reject(400, "invalid_order", "expiration_time is for GTC orders only")
            if req.expiration_time_s * 1000 <= now_ms:
                raise Reject(400, "invalid_order", "expiration_time is in the past")
        if req.reduce_only and (
            self.options.reduce_only_ioc_only and req.time_in_force != "immediate_or_cancel"
        ):
            raise Reject(400, "invalid_order", "reduce_only orders must be immediate_or_cancel")
        if req.post_only and req.time_in_force != "good_till_canceled":
            raise Reject(400, "invalid_order", "post_only orders must be good_till_canceled")
