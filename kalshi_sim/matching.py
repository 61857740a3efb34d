"""The embedded exchange's matching engine: books, orders, fills, positions, cash, groups.

A pure module: no I/O, no threads, no clock (every mutating call takes ``now_ms``), so the
same calls give the same results and tests and property checks can drive it directly.
The exchange wraps it with a lock and turns each :class:`Outcome` into REST replies and
WebSocket frames.

What it reproduces (KALSHI_PROTOCOL.md §8.5-8.9; every UNCONFIRMED choice is an
:class:`EngineOptions` field, documented in docs/embedded_exchange.md):

* one book per market, in YES terms: a bid at ``p`` rests on ``yes@p``, an ask at ``p`` on
  ``no@(1-p)``; price-time priority; an incoming bid takes asks at ``a <= p``, an ask takes
  bids at ``b >= p``; executions at the resting order's price;
* GTC (optionally with ``expiration_time``), IOC, FOK; post-only, reduce-only, both
  self-trade-prevention types; off-grid prices; spent ``client_order_id``s;
* taker fees ``0.07 m C P (1-P)`` and, for ``quadratic_with_maker_fees`` series, maker fees
  ``0.0175 m C P (1-P)``, each ceiled to the fee quantum (:mod:`kalshi_sim.fees`);
* signed netted positions per member and market, cost, realized P&L, fees; cash per shard
  (a bid costs ``p``, an ask ``1-p``; netting a YES against a NO returns $1);
* order groups with a rolling 15 s filled-contracts window;
* close, deactivation/reactivation, trading pauses, settlement.
"""

from __future__ import annotations

import heapq
import random
from bisect import insort
from collections import deque
from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import Literal

from kalshi_sim.engine_types import (
    TIME_IN_FORCE,
    BookChange,
    EngineOptions,
    EngineOrder,
    Fill,
    GroupEvent,
    Leg,
    MarketRules,
    MemberTruth,
    OrderGroup,
    OrderRequest,
    Outcome,
    Position,
    PriceRange,
    Reject,
    Settlement,
    Trade,
)
from kalshi_sim.fees import fee_reserve_per_centi, maker_fee_micros, taker_fee_micros

__all__ = [
    "BookChange",
    "EngineOptions",
    "EngineOrder",
    "Fill",
    "GroupEvent",
    "MarketRules",
    "MatchingEngine",
    "MemberTruth",
    "OrderGroup",
    "OrderRequest",
    "Outcome",
    "Position",
    "PriceRange",
    "Reject",
    "Settlement",
    "Trade",
]

DOLLAR = 1_000_000
PAYOUT_PER_CENTI = DOLLAR // 100
"""What one centi-contract pays at settlement (and what netting a YES against a NO returns)."""
MIN_GROUP_LIMIT_CENTI = 100
MAX_GROUP_LIMIT_CENTI = 1_000_000 * 100
_UUID_KEEP = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)
"""Version nibble 4 and RFC 4122 variant bits ``10`` of a random 128-bit id."""
_CLOSED_STATUSES = ("closed", "settled")


class _Order:
    """The engine's mutable order (``EngineOrder`` is its frozen view)."""

    __slots__ = (
        "cancel_order_on_pause",
        "client_order_id",
        "created_ms",
        "event_ticker",
        "exchange_index",
        "expiration_time_s",
        "fill_centi",
        "initial_centi",
        "last_update_ms",
        "last_update_reason",
        "maker_fees_micros",
        "maker_fill_cost_micros",
        "member",
        "order_group_id",
        "order_id",
        "post_only",
        "price_micros",
        "reduce_only",
        "remaining_centi",
        "reserved_micros",
        "seq",
        "side",
        "status",
        "stp",
        "subaccount",
        "taker_fees_micros",
        "taker_fill_cost_micros",
        "ticker",
        "time_in_force",
    )

    def __init__(self, order_id: str, seq: int, req: OrderRequest, rules: MarketRules, now: int):
        self.order_id = order_id
        self.seq = seq
        self.client_order_id = req.client_order_id
        self.member = req.member
        self.subaccount = req.subaccount
        self.ticker = req.ticker
        self.event_ticker = rules.event_ticker
        self.exchange_index = rules.exchange_index
        self.side = req.side
        self.price_micros = req.price_micros
        self.initial_centi = req.count_centi
        self.fill_centi = 0
        self.remaining_centi = req.count_centi
        self.status = "resting"
        self.time_in_force = req.time_in_force
        self.stp = req.self_trade_prevention_type
        self.post_only = req.post_only
        self.reduce_only = req.reduce_only
        self.cancel_order_on_pause = req.cancel_order_on_pause
        self.order_group_id = req.order_group_id
        self.expiration_time_s = req.expiration_time_s
        self.created_ms = now
        self.last_update_ms = now
        self.last_update_reason: str | None = None
        self.reserved_micros = 0
        self.taker_fill_cost_micros = 0
        self.maker_fill_cost_micros = 0
        self.taker_fees_micros = 0
        self.maker_fees_micros = 0

    @classmethod
    def seeded(
        cls,
        order_id: str,
        seq: int,
        member: str,
        rules: MarketRules,
        side: str,
        price: int,
        size: int,
        now: int,
    ) -> _Order:
        """A plain GTC resting order without an ``OrderRequest`` (seeding, fixtures)."""
        order = cls.__new__(cls)
        order.order_id = order_id
        order.seq = seq
        order.client_order_id = None
        order.member = member
        order.subaccount = 0
        order.ticker = rules.ticker
        order.event_ticker = rules.event_ticker
        order.exchange_index = rules.exchange_index
        order.side = side
        order.price_micros = price
        order.initial_centi = size
        order.fill_centi = 0
        order.remaining_centi = size
        order.status = "resting"
        order.time_in_force = "good_till_canceled"
        order.stp = "taker_at_cross"
        order.post_only = False
        order.reduce_only = False
        order.cancel_order_on_pause = False
        order.order_group_id = None
        order.expiration_time_s = None
        order.created_ms = now
        order.last_update_ms = now
        order.last_update_reason = None
        order.reserved_micros = 0
        order.taker_fill_cost_micros = 0
        order.maker_fill_cost_micros = 0
        order.taker_fees_micros = 0
        order.maker_fees_micros = 0
        return order

    def view(self) -> EngineOrder:
        return EngineOrder(
            self.order_id,
            self.client_order_id,
            self.member,
            self.subaccount,
            self.ticker,
            self.event_ticker,
            self.exchange_index,
            self.side,  # type: ignore[arg-type]
            self.price_micros,
            self.initial_centi,
            self.fill_centi,
            self.remaining_centi,
            self.status,  # type: ignore[arg-type]
            self.time_in_force,
            self.stp,
            self.post_only,
            self.reduce_only,
            self.cancel_order_on_pause,
            self.order_group_id,
            self.expiration_time_s,
            self.created_ms,
            self.last_update_ms,
            self.last_update_reason,
            self.seq,
            self.taker_fill_cost_micros,
            self.maker_fill_cost_micros,
            self.taker_fees_micros,
            self.maker_fees_micros,
        )


class _Position:
    __slots__ = (
        "cost",
        "event_ticker",
        "exchange_index",
        "fees",
        "last_ms",
        "member",
        "position",
        "realized",
        "subaccount",
        "ticker",
        "traded",
    )

    def __init__(self, member: str, subaccount: int, rules: MarketRules) -> None:
        self.member = member
        self.subaccount = subaccount
        self.ticker = rules.ticker
        self.event_ticker = rules.event_ticker
        self.exchange_index = rules.exchange_index
        self.position = 0
        self.cost = 0
        self.realized = 0
        self.fees = 0
        self.traded = 0
        self.last_ms = 0

    def view(self) -> Position:
        return Position(
            self.member,
            self.subaccount,
            self.ticker,
            self.event_ticker,
            self.exchange_index,
            self.position,
            self.cost,
            self.realized,
            self.fees,
            self.traded,
            self.last_ms,
        )


class _Group:
    __slots__ = (
        "exchange_index",
        "group_id",
        "limit",
        "member",
        "orders",
        "subaccount",
        "triggered",
        "window",
        "window_total",
    )

    def __init__(self, group_id: str, member: str, sub: int, shard: int, limit: int) -> None:
        self.group_id = group_id
        self.member = member
        self.subaccount = sub
        self.exchange_index = shard
        self.limit = limit
        self.triggered = False
        self.window: deque[tuple[int, int]] = deque()
        self.window_total = 0
        self.orders: dict[str, _Order] = {}
        """Its resting orders."""

    def view(self) -> OrderGroup:
        return OrderGroup(
            self.group_id,
            self.member,
            self.subaccount,
            self.exchange_index,
            self.limit,
            self.triggered,
            self.window_total,
            tuple(self.orders),
        )


class _Account:
    __slots__ = (
        "cash",
        "client_ids",
        "dead",
        "dead_kept",
        "fills",
        "groups",
        "live",
        "member",
        "orders",
        "positions",
        "reserved",
        "seq",
        "settlements",
        "updated_ms",
    )

    def __init__(self, member: str, fills_kept: int) -> None:
        self.member = member
        self.seq = 0
        """The member's orders so far (an order's ``seq`` is its number among them)."""
        self.updated_ms = 0
        """When the member's cash, orders or positions last changed."""
        self.cash: dict[int, int] = {}
        self.reserved: dict[int, int] = {}
        self.orders: dict[str, _Order] = {}
        """Every order still readable, in creation order."""
        self.live: dict[str, _Order] = {}
        self.dead: deque[str] = deque()
        self.fills: deque[Fill] = deque(maxlen=fills_kept)
        self.dead_kept: int | None = None
        """This member's own finished-order budget (None: the engine option's)."""
        self.positions: dict[tuple[int, str], _Position] = {}
        self.settlements: list[Settlement] = []
        self.groups: dict[str, _Group] = {}
        self.client_ids: set[str] = set()


class _Book:
    """One market: its rules, status, and both sides of its book in YES terms."""

    __slots__ = (
        "ask_prices",
        "asks",
        "bid_prices",
        "bids",
        "fee_hold",
        "grid",
        "no",
        "rules",
        "seed_member",
        "seed_ms",
        "version",
        "yes",
    )

    def __init__(self, rules: MarketRules) -> None:
        self.rules = rules
        self.bids: dict[int, dict[str, _Order]] = {}
        self.asks: dict[int, dict[str, _Order]] = {}
        self.bid_prices: list[int] = []
        self.ask_prices: list[int] = []
        self.yes: dict[int, int] = {}
        """Public YES leg: bid price -> resting centi."""
        self.no: dict[int, int] = {}
        """Public NO leg: ``1 - ask price`` -> resting centi."""
        self.grid = rules.price_ranges
        self.fee_hold = 0
        self.seed_member: str | None = None
        """Whose seeded levels have no order objects yet (see ``seed_orders``)."""
        self.seed_ms = 0
        self.version = 0
        """Changes to the public levels so far (``BookChange.book_seq``)."""
        """Micro-dollars a resting centi-contract holds for its worst-case fee."""


class _Changes:
    """What one call changed, gathered as it happens and frozen into an Outcome at the end."""

    __slots__ = ("book", "fills", "groups", "orders", "positions", "settlements", "trades")

    def __init__(self) -> None:
        self.fills: list[Fill] = []
        self.orders: dict[str, _Order] = {}
        self.positions: dict[int, _Position] = {}
        self.trades: list[Trade] = []
        self.book: list[BookChange] = []
        self.groups: list[GroupEvent] = []
        self.settlements: list[Settlement] = []

    def outcome(self, order: _Order | None, now: int) -> Outcome:
        views = {order_id: o.view() for order_id, o in self.orders.items()}
        acted = None
        if order is not None:
            acted = views.get(order.order_id) or order.view()
        return Outcome(
            order=acted,
            fills=tuple(self.fills),
            orders_changed=tuple(views.values()),
            positions_changed=tuple(p.view() for p in self.positions.values()),
            trades=tuple(self.trades),
            book_changes=tuple(self.book),
            group_events=tuple(self.groups),
            settlements=tuple(self.settlements),
            ts_ms=now,
        )


def _leg_cost(side: str, price: int, count: int) -> int:
    """What ``count`` centi-contracts cost on the order's leg: ``p`` for a bid, ``1-p`` an ask."""
    return count * (price if side == "bid" else DOLLAR - price) // 100


def _crosses(side: str, limit: int, resting: int) -> bool:
    return resting <= limit if side == "bid" else resting >= limit


class MatchingEngine:
    """All markets' books and all members' accounts of one exchange (not thread-safe:
    the caller serialises calls, e.g. under ``MarketSet.lock``)."""

    def __init__(self, options: EngineOptions | None = None) -> None:
        self.options = options or EngineOptions()
        self._rng = random.Random(self.options.id_seed)
        self._books: dict[str, _Book] = {}
        self._accounts: dict[str, _Account] = {}
        self._orders: dict[str, _Order] = {}
        """Every readable order by id (live and recently finished)."""
        self._groups: dict[str, _Group] = {}
        self._expiries: list[tuple[int, int, _Order]] = []
        self._pause_cancellable: dict[str, _Order] = {}
        self._reduce_only_live: dict[str, _Order] = {}
        self._positions_by_ticker: dict[str, list[_Position]] = {}
        self._paused_shards: set[int] = set()
        self._all_paused = False
        self._cancels_refused = False
        self._loader: Callable[[str], object] | None = None
        self._fee_holds: dict[Fraction, int] = {}
        self._fees_collected = 0
        self._expiry_tick = 0

    # -- setup ---------------------------------------------------------------------------
    def add_market(self, rules: MarketRules) -> None:
        """List a market (its status is ``rules.status``); re-adding a ticker raises ValueError.

        Grid steps and starts must be whole multiples of $0.0001, so every cost
        (``count x price / 100``) is an exact integer of micro-dollars.
        """
        if rules.ticker in self._books:
            raise ValueError(f"market {rules.ticker} is already listed")
        for grid in rules.price_ranges:
            if grid.step_micros <= 0 or grid.step_micros % 100 or grid.start_micros % 100:
                raise ValueError(f"price range {grid} is not on a $0.0001 grid")
        book = self._books[rules.ticker] = _Book(rules)
        if rules.fee_type != "flat":
            hold = self._fee_holds.get(rules.fee_multiplier)
            if hold is None:
                hold = fee_reserve_per_centi(rules.fee_multiplier, self.options.fee_quantum_micros)
                self._fee_holds[rules.fee_multiplier] = hold
            book.fee_hold = hold

    def has_market(self, ticker: str) -> bool:
        return ticker in self._books

    def rules(self, ticker: str) -> MarketRules:
        """The market's rules as they stand (status included); KeyError if unknown."""
        return self._books[ticker].rules

    def open_account(self, member: str, cash_by_shard_micros: dict[int, int]) -> None:
        """Create a member (or add cash to an existing one), cash per ``exchange_index``."""
        account = self._account(member)
        for shard, micros in cash_by_shard_micros.items():
            account.cash[shard] = account.cash.get(shard, 0) + int(micros)
            account.reserved.setdefault(shard, 0)

    def set_cash(self, member: str, cash_micros: int, exchange_index: int = 0) -> None:
        """Set one shard's cash outright (tests and the demo account's ``set_balance``)."""
        account = self._account(member)
        account.cash[exchange_index] = int(cash_micros)
        account.reserved.setdefault(exchange_index, 0)

    def has_member(self, member: str) -> bool:
        return member in self._accounts

    # -- order entry -----------------------------------------------------------------------
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
        opposite = self._best_opposite(book, req.side)
        crossing = opposite is not None and _crosses(req.side, req.price_micros, opposite)
        if req.post_only and crossing:
            raise Reject(400, "invalid_order", "post only order would cross", "post only cross")
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
        order = _Order(order_id or self._new_id(), account.seq, req, book.rules, now_ms)
        if count:  # a reduce-only order capped by the position: the capped count is its count
            order.initial_centi = order.remaining_centi = count
        self._orders[order.order_id] = order
        account.orders[order.order_id] = order
        changes = _Changes()
        changes.orders[order.order_id] = order
        if count == 0:
            self._end(order, "canceled", "ReduceOnlyCancel", now_ms, changes)
            return changes.outcome(order, now_ms)
        self._reserve(account, order, hold)
        if crossing:
            self._match(book, order, account, now_ms, changes)
        if order.status == "resting" and order.remaining_centi > 0:
            if req.time_in_force == "good_till_canceled":
                self._rest(book, order, account, group, now_ms, changes)
            else:
                status = "canceled"
                if order.fill_centi and req.time_in_force == "immediate_or_cancel":
                    status = self.options.ioc_partial_status
                self._end(order, status, None, now_ms, changes)
        elif order.status == "resting":  # fully filled
            self._end(order, "executed", order.last_update_reason, now_ms, changes)
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
        changes = _Changes()
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
        changes = _Changes()
        if new_remaining < 0 or (new_remaining == 0 and not self.options.amend_to_filled_cancels):
            raise Reject(400, "invalid_order", "count is below the filled count")
        opposite = self._best_opposite(book, order.side)
        crossing = opposite is not None and _crosses(order.side, price_micros, opposite)
        if (
            order.post_only
            and crossing
            and price_micros != order.price_micros
            and self.options.post_only_amend == "reject"
        ):
            raise Reject(400, "invalid_order", "post only order would cross", "post only cross")
        shard = book.rules.exchange_index
        new_hold = self._hold(book, order.side, price_micros, max(new_remaining, 0))
        if order.reduce_only and not self.options.reduce_only_holds_collateral:
            new_hold = 0
        if self.options.reserve_resting_balance:
            needed = new_hold - order.reserved_micros
        else:
            needed = new_hold
        if needed > 0 and account.cash.get(shard, 0) < needed:
            raise Reject(400, "insufficient_balance", "insufficient balance for this amend")
        # -- accepted
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
        if price_micros == order.price_micros and new_remaining <= order.remaining_centi:
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
        if crossing:
            self._match(book, order, account, now_ms, changes)
        if order.status == "resting" and order.remaining_centi > 0:
            self._rest(book, order, account, group, now_ms, changes)
        elif order.status == "resting":
            self._end(order, "executed", order.last_update_reason, now_ms, changes)
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
        changes = _Changes()
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
        changes = _Changes()
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
        changes = _Changes()
        heap = self._expiries
        while heap and heap[0][0] <= now_ms:
            due, _, order = heapq.heappop(heap)
            if order.status != "resting" or order.expiration_time_s is None:
                continue
            if order.expiration_time_s * 1000 != due:
                continue  # amended since: a later entry stands for it
            self._cancel_resting(order, "ExpiryCancel", now_ms, changes)
        return changes.outcome(None, now_ms)

    # -- market lifecycle ---------------------------------------------------------------------
    def close_market(self, ticker: str, now_ms: int) -> Outcome:
        """The market passed ``close_time``: resting orders cancelled (``CloseCancel``),
        further place/amend/cancel rejected with the closed code."""
        book = self._book(ticker)
        changes = _Changes()
        self._cancel_book(book, "CloseCancel", now_ms, changes)
        self._set_status(book, "closed")
        return changes.outcome(None, now_ms)

    def deactivate(self, ticker: str, now_ms: int) -> Outcome:
        """Deactivated: orders refused with the paused code; resting orders stay (for now)."""
        book = self._book(ticker)
        if book.rules.status in _CLOSED_STATUSES:
            raise Reject(self.options.closed_status, self.options.closed_code, "market closed")
        self._set_status(book, "inactive")
        return Outcome(ts_ms=now_ms)

    def reactivate(self, ticker: str, now_ms: int) -> Outcome:
        """Back to active; every order that was resting is cancelled (``HaltCancel``, §8.6)."""
        book = self._book(ticker)
        if book.rules.status in _CLOSED_STATUSES:
            raise Reject(self.options.closed_status, self.options.closed_code, "market closed")
        changes = _Changes()
        was_inactive = book.rules.status == "inactive"
        self._set_status(book, "active")
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
        changes = _Changes()
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
            raise Reject(self.options.closed_status, self.options.closed_code, "already settled")
        if value_micros is None:
            if result not in ("yes", "no"):
                raise ValueError(f"result must be yes or no without a value, got {result!r}")
            value_micros = DOLLAR if result == "yes" else 0
        if not 0 <= value_micros <= DOLLAR:
            raise ValueError(f"settlement value {value_micros} is outside 0..1 dollar")
        changes = _Changes()
        self._cancel_book(book, "CloseCancel", now_ms, changes)
        self._set_status(book, "settled")
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

    # -- order groups ------------------------------------------------------------------------
    def create_group(
        self,
        member: str,
        limit_centi: int,
        now_ms: int,
        subaccount: int = 0,
        exchange_index: int = 0,
    ) -> tuple[str, Outcome]:
        """A new, active group with a filled-contracts limit of 1-1,000,000 contracts."""
        self._check_group_limit(limit_centi)
        account = self._account(member)
        if len(account.groups) >= self.options.max_groups_per_member:
            raise Reject(400, "invalid_parameters", "too many order groups")
        group = _Group(self._new_id(), member, subaccount, exchange_index, limit_centi)
        self._groups[group.group_id] = group
        account.groups[group.group_id] = group
        changes = _Changes()
        self._group_event(group, "created", now_ms, changes)
        return group.group_id, changes.outcome(None, now_ms)

    def trigger_group(self, member: str, group_id: str, now_ms: int) -> Outcome:
        group = self._member_group(member, group_id)
        changes = _Changes()
        self._trigger(group, now_ms, changes)
        return changes.outcome(None, now_ms)

    def reset_group(self, member: str, group_id: str, now_ms: int) -> Outcome:
        """Active again, its window emptied."""
        group = self._member_group(member, group_id)
        group.triggered = False
        group.window.clear()
        group.window_total = 0
        changes = _Changes()
        self._group_event(group, "reset", now_ms, changes)
        return changes.outcome(None, now_ms)

    def delete_group(self, member: str, group_id: str, now_ms: int) -> Outcome:
        """Cancel its resting orders and forget it (a later read is 404)."""
        group = self._member_group(member, group_id)
        changes = _Changes()
        for order in list(group.orders.values()):
            self._cancel_resting(order, self.options.group_cancel_reason, now_ms, changes)
        del self._groups[group_id]
        del self._accounts[member].groups[group_id]
        self._group_event(group, "deleted", now_ms, changes)
        return changes.outcome(None, now_ms)

    def set_group_limit(self, member: str, group_id: str, limit_centi: int, now_ms: int) -> Outcome:
        """A new limit; cut below the window's volume, the group triggers."""
        self._check_group_limit(limit_centi)
        group = self._member_group(member, group_id)
        group.limit = limit_centi
        changes = _Changes()
        self._group_event(group, "limit_updated", now_ms, changes)
        self._roll_window(group, now_ms)
        if not group.triggered and group.window_total > group.limit:
            self._trigger(group, now_ms, changes)
        return changes.outcome(None, now_ms)

    # -- reads ---------------------------------------------------------------------------------
    def orders(
        self,
        member: str,
        *,
        ticker: str | None = None,
        status: str | None = None,
        subaccount: int | None = None,
    ) -> list[EngineOrder]:
        """The member's readable orders in creation order."""
        account = self._accounts.get(member)
        if account is None:
            return []
        source = account.live if status == "resting" else account.orders
        return [
            o.view()
            for o in source.values()
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

    def fills(self, member: str, *, ticker: str | None = None) -> list[Fill]:
        account = self._accounts.get(member)
        if account is None:
            return []
        return [f for f in account.fills if ticker is None or f.ticker == ticker]

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
        if account is None:
            return 0
        if exchange_index is None:
            return sum(account.cash.values())
        return account.cash.get(exchange_index, 0)

    def reserved_micros(self, member: str, exchange_index: int | None = None) -> int:
        """Cash held by the member's resting orders (0 unless ``reserve_resting_balance``)."""
        account = self._accounts.get(member)
        if account is None:
            return 0
        if exchange_index is None:
            return sum(account.reserved.values())
        return account.reserved.get(exchange_index, 0)

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

    def queue_position(self, member: str, order_id: str) -> int:
        """Centi-contracts resting ahead of the order at its price."""
        order = self._live_order(member, order_id, None)
        book = self._books[order.ticker]
        level = (book.bids if order.side == "bid" else book.asks)[order.price_micros]
        ahead = 0
        for other in level.values():
            if other is order:
                return ahead
            ahead += other.remaining_centi
        return ahead

    def truth(self, member: str) -> MemberTruth:
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

    def fees_collected_micros(self) -> int:
        """Every fee the exchange has taken (for conservation checks)."""
        return self._fees_collected

    def members(self) -> list[str]:
        return list(self._accounts)

    def live_order_count(self, member: str) -> int:
        account = self._accounts.get(member)
        return len(account.live) if account is not None else 0

    def limit_history(self, member: str, *, orders: int, fills: int) -> None:
        """Keep fewer finished orders and fills for one member than the options say (the
        exchange's own busy members: their history is nobody's to read)."""
        account = self._account(member)
        account.dead_kept = orders
        account.fills = deque(account.fills, maxlen=fills)

    def updated_ms(self, member: str) -> int:
        """When the member's cash, orders or positions last changed (0: never)."""
        account = self._accounts.get(member)
        return account.updated_ms if account is not None else 0

    def level_orders(self, ticker: str, side: str, price_micros: int) -> list[EngineOrder]:
        """The resting orders at one YES price of one side, in time priority."""
        book = self._book(ticker)
        level = (book.bids if side == "bid" else book.asks).get(price_micros, {})
        return [order.view() for order in level.values()]

    def member_volume(self, ticker: str, side: str, price_micros: int, member: str) -> int:
        """Centi-contracts ``member`` rests at one YES price of one side."""
        book = self._book(ticker)
        level = (book.bids if side == "bid" else book.asks).get(price_micros, {})
        return sum(o.remaining_centi for o in level.values() if o.member == member)

    # -- simulator fixtures (not Kalshi behaviour: seeding and test mutators) -------------
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

    def _materialize(self, book: _Book) -> None:
        """Turn a seeded book's levels into its member's resting orders (see seed_orders)."""
        member, now = book.seed_member, book.seed_ms
        assert member is not None
        book.seed_member = None
        account = self._accounts[member]
        rules = book.rules
        ticker = rules.ticker
        index = 0
        for side, levels, queues, prices in (
            ("bid", book.yes, book.bids, book.bid_prices),
            ("ask", book.no, book.asks, book.ask_prices),
        ):
            for leg_price, size in levels.items():
                price = leg_price if side == "bid" else DOLLAR - leg_price
                index += 1
                account.seq += 1
                order = _Order.seeded(
                    f"{ticker}:{member}:{index}", account.seq, member, rules, side, price, size, now
                )
                self._orders[order.order_id] = order
                account.orders[order.order_id] = order
                account.live[order.order_id] = order
                queues[price] = {order.order_id: order}
            prices.extend(sorted(queues))

    def reset_member(self, member: str, now_ms: int) -> Outcome:
        """Forget a member entirely (a fresh demo account over the same books): its resting
        orders are cancelled off the books (the Outcome says which levels moved), then its
        orders, ids, positions, groups and cash are dropped."""
        changes = _Changes()
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
            position = account.positions[key] = _Position(member, subaccount, rules)
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
        taker = _Order.seeded(
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
        self._orders[taker.order_id] = taker
        other.orders[taker.order_id] = taker
        changes = _Changes()
        changes.orders[taker.order_id] = taker
        self._execute(book, taker, maker, now_ms, changes)
        self._end(taker, "executed", "Trade", now_ms, changes)
        return changes.outcome(maker, now_ms)

    # -- internals: checks -----------------------------------------------------------------
    def _account(self, member: str) -> _Account:
        account = self._accounts.get(member)
        if account is None:
            account = _Account(member, self.options.fills_kept_per_member)
            self._accounts[member] = account
        return account

    def _book(self, ticker: str) -> _Book:
        """The market's book with its queues (seeded orders made on first need)."""
        book = self._levels_book(ticker)
        if book.seed_member is not None:
            self._materialize(book)
        return book

    def _levels_book(self, ticker: str) -> _Book:
        """The market's book, listing it through the loader if needed; its queues may still
        be seeded levels only (``book.yes``/``book.no`` are always right)."""
        book = self._books.get(ticker)
        if book is None and self._loader is not None:
            self._loader(ticker)  # lists it (and seeds its book) if the caller knows it
            book = self._books.get(ticker)
        if book is None:
            raise Reject(404, "market_not_found", f"market {ticker} not found")
        return book

    def _tradable_book(self, ticker: str, *, ignore_pause: bool = False) -> _Book:
        """The book, or the Reject a place/amend gets on a closed, inactive or paused market."""
        book = self._book(ticker)
        status = book.rules.status
        options = self.options
        if status in _CLOSED_STATUSES:
            raise Reject(options.closed_status, options.closed_code, "market is closed")
        if ignore_pause:
            return book
        if (
            status == "inactive"
            or self._all_paused
            or book.rules.exchange_index in self._paused_shards
        ):
            raise Reject(options.paused_status, options.paused_code, "trading is paused")
        return book

    def _check_cancel_allowed(self, ticker: str) -> None:
        book = self._book(ticker)
        options = self.options
        if book.rules.status in _CLOSED_STATUSES:
            raise Reject(options.closed_status, options.closed_code, "market is closed")
        if self._cancels_refused or (
            book.rules.status == "inactive" and not options.cancel_when_inactive
        ):
            raise Reject(options.paused_status, options.paused_code, "trading is paused")

    def _check_request(self, req: OrderRequest, book: _Book, now_ms: int) -> None:
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

    def _check_price(self, book: _Book, price: int) -> None:
        if 0 < price < DOLLAR:
            for grid in book.grid:
                if grid.start_micros <= price <= grid.end_micros and not (
                    (price - grid.start_micros) % grid.step_micros
                ):
                    return
        raise Reject(400, "invalid_price", f"price {price / DOLLAR:.4f} is not on the market grid")

    def _check_group_limit(self, limit_centi: int) -> None:
        if not MIN_GROUP_LIMIT_CENTI <= limit_centi <= MAX_GROUP_LIMIT_CENTI:
            raise Reject(400, "invalid_parameters", "contracts_limit must be 1-1,000,000")

    def _member_group(self, member: str, group_id: str) -> _Group:
        group = self._groups.get(group_id)
        if group is None or group.member != member:
            raise Reject(404, self.options.group_not_found_code, "order group not found")
        return group

    def _live_order(self, member: str, order_id: str, subaccount: int | None) -> _Order:
        account = self._accounts.get(member)
        order = account.live.get(order_id) if account is not None else None
        if order is None or (subaccount is not None and order.subaccount != subaccount):
            raise Reject(404, "not_found", "order not found")
        return order

    def _reducible(self, account: _Account, subaccount: int, ticker: str, side: str) -> int:
        position = account.positions.get((subaccount, ticker))
        held = position.position if position is not None else 0
        if side == "bid":
            return max(-held, 0)
        return max(held, 0)

    def _hold(self, book: _Book, side: str, price: int, count: int) -> int:
        """What a resting order holds: its cost at its limit plus its worst-case fee."""
        return _leg_cost(side, price, count) + count * book.fee_hold

    def _best_opposite(self, book: _Book, side: str) -> int | None:
        if side == "bid":
            return book.ask_prices[0] if book.ask_prices else None
        return book.bid_prices[-1] if book.bid_prices else None

    def _fillable(self, book: _Book, req: OrderRequest, wanted: int) -> int:
        """What a taker could fill now (STP included), stopping once ``wanted`` is reached."""
        found = 0
        levels, prices = (
            (book.asks, book.ask_prices)
            if req.side == "bid"
            else (book.bids, reversed(book.bid_prices))
        )
        for price in prices:
            if not _crosses(req.side, req.price_micros, price):
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

    # -- internals: ids, cash --------------------------------------------------------------
    def _new_id(self) -> str:
        """A version-4 UUID string from the seeded generator, formatted as ``uuid.UUID``
        would (by hand: it is on every order's and trade's path)."""
        bits = self._rng.getrandbits(128) & _UUID_KEEP | _UUID_SET
        h = f"{bits:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def _reserve(self, account: _Account, order: _Order, hold: int) -> None:
        if not self.options.reserve_resting_balance:
            return
        shard = order.exchange_index
        account.cash[shard] = account.cash.get(shard, 0) - hold
        account.reserved[shard] = account.reserved.get(shard, 0) + hold
        order.reserved_micros += hold

    def _release(self, account: _Account, order: _Order, amount: int) -> None:
        amount = min(amount, order.reserved_micros)
        if amount <= 0:
            return
        shard = order.exchange_index
        account.cash[shard] += amount
        account.reserved[shard] -= amount
        order.reserved_micros -= amount

    # -- internals: the book ---------------------------------------------------------------
    def _rest(
        self,
        book: _Book,
        order: _Order,
        account: _Account,
        group: _Group | None,
        now: int,
        changes: _Changes,
    ) -> None:
        price, size = order.price_micros, order.remaining_centi
        if order.side == "bid":
            level = book.bids.get(price)
            if level is None:
                level = book.bids[price] = {}
                insort(book.bid_prices, price)
            leg, leg_price, public = "yes", price, book.yes
        else:
            level = book.asks.get(price)
            if level is None:
                level = book.asks[price] = {}
                insort(book.ask_prices, price)
            leg, leg_price, public = "no", DOLLAR - price, book.no
        level[order.order_id] = order
        public[leg_price] = public.get(leg_price, 0) + size
        account.live[order.order_id] = order
        if group is not None:
            group.orders[order.order_id] = order
        if order.expiration_time_s is not None:
            self._push_expiry(order)
        if order.cancel_order_on_pause:
            self._pause_cancellable[order.order_id] = order
        if order.reduce_only:
            self._reduce_only_live[order.order_id] = order
        changes.book.append(
            BookChange(
                order.ticker,
                leg,  # type: ignore[arg-type]
                leg_price,
                price,
                size,
                order.member,
                order.client_order_id,
                order.order_id,
                order.subaccount,
                self._bump(book),
            )
        )

    def _push_expiry(self, order: _Order) -> None:
        """Queue the order's expiry; entries of orders that ended early are dropped when they
        come due, or all at once when they outnumber the live orders (memory stays bounded)."""
        assert order.expiration_time_s is not None
        heap = self._expiries
        self._expiry_tick += 1
        heapq.heappush(heap, (order.expiration_time_s * 1000, self._expiry_tick, order))
        if len(heap) > 1024 and len(heap) > 4 * len(self._orders):
            self._expiries = [entry for entry in heap if entry[2].status == "resting"]
            heapq.heapify(self._expiries)

    @staticmethod
    def _bump(book: _Book) -> int:
        book.version += 1
        return book.version

    def _level_change(self, book: _Book, order: _Order, delta: int, changes: _Changes) -> None:
        """Move the public level of ``order`` by ``delta`` (negative) and record it."""
        price = order.price_micros
        if order.side == "bid":
            leg, leg_price, public = "yes", price, book.yes
        else:
            leg, leg_price, public = "no", DOLLAR - price, book.no
        left = public[leg_price] + delta
        if left:
            public[leg_price] = left
        else:
            del public[leg_price]
        changes.book.append(
            BookChange(
                order.ticker,
                leg,  # type: ignore[arg-type]
                leg_price,
                price,
                delta,
                order.member,
                order.client_order_id,
                order.order_id,
                order.subaccount,
                self._bump(book),
            )
        )

    def _unrest(self, book: _Book, order: _Order, changes: _Changes) -> None:
        """Take a resting order off the book and out of every index (status unchanged)."""
        price = order.price_micros
        levels, prices = (
            (book.bids, book.bid_prices) if order.side == "bid" else (book.asks, book.ask_prices)
        )
        level = levels[price]
        del level[order.order_id]
        if not level:
            del levels[price]
            prices.remove(price)
        if order.remaining_centi:
            self._level_change(book, order, -order.remaining_centi, changes)
        self._accounts[order.member].live.pop(order.order_id, None)
        if order.order_group_id is not None:
            group = self._groups.get(order.order_group_id)
            if group is not None:
                group.orders.pop(order.order_id, None)
        self._pause_cancellable.pop(order.order_id, None)
        self._reduce_only_live.pop(order.order_id, None)

    def _shrink(self, book: _Book, order: _Order, by: int, now: int, changes: _Changes) -> None:
        """Reduce a resting order in place (queue position kept)."""
        if by <= 0:
            order.last_update_ms = now
            return
        self._level_change(book, order, -by, changes)
        order.remaining_centi -= by
        order.initial_centi -= by  # the count shrinks: remaining + filled = initial still
        order.last_update_ms = now
        changes.orders[order.order_id] = order
        account = self._accounts[order.member]
        self._release(account, order, self._hold(book, order.side, order.price_micros, by))

    def _cancel_resting(
        self, order: _Order, reason: str | None, now: int, changes: _Changes
    ) -> None:
        book = self._books[order.ticker]
        self._unrest(book, order, changes)
        self._end(order, "canceled", reason, now, changes)

    def _cancel_book(self, book: _Book, reason: str, now: int, changes: _Changes) -> None:
        for levels in (book.bids, book.asks):
            for level in list(levels.values()):
                for order in list(level.values()):
                    self._cancel_resting(order, reason, now, changes)

    def _end(
        self, order: _Order, status: str, reason: str | None, now: int, changes: _Changes
    ) -> None:
        """Finish an order that is off the book: remaining to 0, hold released, kept readable
        until the member's dead-order budget forgets it."""
        order.status = status
        order.remaining_centi = 0
        order.last_update_ms = now
        order.last_update_reason = reason
        changes.orders[order.order_id] = order
        account = self._accounts[order.member]
        account.updated_ms = now
        self._release(account, order, order.reserved_micros)
        account.dead.append(order.order_id)
        kept = account.dead_kept
        if kept is None:
            kept = self.options.dead_orders_kept_per_member
        while len(account.dead) > kept:
            forgotten = account.dead.popleft()
            account.orders.pop(forgotten, None)
            self._orders.pop(forgotten, None)

    def _set_status(self, book: _Book, status: str) -> None:
        rules = book.rules
        book.rules = MarketRules(
            rules.ticker,
            rules.event_ticker,
            rules.series_ticker,
            rules.exchange_index,
            rules.price_ranges,
            rules.fee_type,
            rules.fee_multiplier,
            status,
        )

    # -- internals: matching ---------------------------------------------------------------
    def _match(
        self, book: _Book, taker: _Order, account: _Account, now: int, changes: _Changes
    ) -> None:
        """Fill ``taker`` against the opposite side in price-time priority until it is filled,
        stops crossing, or self-trade prevention / its group stops it."""
        side = taker.side
        levels, prices = (
            (book.asks, book.ask_prices) if side == "bid" else (book.bids, book.bid_prices)
        )
        limit = taker.price_micros
        while taker.remaining_centi > 0 and prices:
            price = prices[0] if side == "bid" else prices[-1]
            if not _crosses(side, limit, price):
                return
            level = levels[price]
            for maker in list(level.values()):
                if maker.status != "resting":
                    continue  # cancelled during this match (its group triggered, STP, ...)
                if maker.member == taker.member:
                    if taker.stp == "taker_at_cross":
                        self._end(taker, "canceled", "SelfTradeCancel", now, changes)
                        return
                    self._cancel_resting(maker, "SelfTradeCancel", now, changes)
                    continue
                self._execute(book, taker, maker, now, changes)
                if taker.status != "resting":
                    return
                if taker.remaining_centi == 0:
                    return

    def _execute(
        self, book: _Book, taker: _Order, maker: _Order, now: int, changes: _Changes
    ) -> None:
        """One execution between a taker and a resting maker."""
        rules = book.rules
        options = self.options
        quantity = min(taker.remaining_centi, maker.remaining_centi)
        price = maker.price_micros if options.fill_at_maker_price else taker.price_micros
        trade_id = self._new_id()
        taker_fee = taker_fee_micros(
            rules.fee_type, rules.fee_multiplier, quantity, price, options.fee_quantum_micros
        )
        maker_fee = maker_fee_micros(
            rules.fee_type, rules.fee_multiplier, quantity, price, options.fee_quantum_micros
        )
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
        book: _Book,
        order: _Order,
        quantity: int,
        price: int,
        fee: int,
        is_taker: bool,
        trade_id: str,
        now: int,
        changes: _Changes,
    ) -> None:
        """Move one side's cash and position for one execution."""
        rules = book.rules
        account = self._accounts[order.member]
        account.updated_ms = now
        shard = rules.exchange_index
        # the hold for these contracts (at the order's limit) goes back, the real cost comes out
        self._release(account, order, self._hold(book, order.side, order.price_micros, quantity))
        cost = _leg_cost(order.side, price, quantity)
        key = (order.subaccount, rules.ticker)
        position = account.positions.get(key)
        if position is None:
            position = account.positions[key] = _Position(order.member, order.subaccount, rules)
            self._positions_by_ticker.setdefault(rules.ticker, []).append(position)
        held = position.position
        signed = quantity if order.side == "bid" else -quantity
        netted = min(quantity, abs(held)) if held * signed < 0 else 0
        credit = netted * PAYOUT_PER_CENTI
        account.cash[shard] = account.cash.get(shard, 0) - cost - fee + credit
        self._fees_collected += fee
        if netted:
            released = position.cost if netted == abs(held) else position.cost * netted // abs(held)
            position.cost -= released
            netted_cost = _leg_cost(order.side, price, netted)
            position.realized += credit - netted_cost - released
        position.cost += cost - _leg_cost(order.side, price, netted)
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
        self, member: str, subaccount: int, ticker: str, now: int, changes: _Changes
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

    # -- internals: groups -----------------------------------------------------------------
    def _roll_window(self, group: _Group, now: int) -> None:
        horizon = now - self.options.group_window_ms
        window = group.window
        while window and window[0][0] <= horizon:
            group.window_total -= window.popleft()[1]

    def _count_group_fill(self, group: _Group, quantity: int, now: int, changes: _Changes) -> None:
        group.window.append((now, quantity))
        group.window_total += quantity
        self._roll_window(group, now)
        if not group.triggered and group.window_total > group.limit:
            self._trigger(group, now, changes)

    def _trigger(self, group: _Group, now: int, changes: _Changes) -> None:
        """Trigger: the group's resting orders are cancelled, new ones refused until reset.
        A taker of the group still matching is stopped by its caller (status check)."""
        group.triggered = True
        for order in list(group.orders.values()):
            self._cancel_resting(order, self.options.group_cancel_reason, now, changes)
        self._group_event(group, "triggered", now, changes)
        for order in list(changes.orders.values()):
            # a taker of this group mid-match is not resting yet: stop it here
            if (
                order.order_group_id == group.group_id
                and order.status == "resting"
                and order.order_id not in self._accounts[order.member].live
                and order.remaining_centi > 0
            ):
                self._end(order, "canceled", self.options.group_cancel_reason, now, changes)

    def _group_event(
        self,
        group: _Group,
        event_type: Literal["created", "triggered", "reset", "deleted", "limit_updated"],
        now: int,
        changes: _Changes,
    ) -> None:
        changes.groups.append(
            GroupEvent(group.member, group.subaccount, group.group_id, event_type, group.limit, now)
        )


def reduced_by_centi(outcome: Outcome) -> int:
    """What a cancel took off the book (the cancel reply's ``reduced_by``)."""
    if outcome.order is None:
        return 0
    return -sum(
        change.delta_centi
        for change in outcome.book_changes
        if change.order_id == outcome.order.order_id
    )
