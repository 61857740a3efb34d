"""The engine's mutable records: orders, positions, groups, accounts, books, and the
changes one call gathers.

The engine mutates these in place (a fill touches an order, a position and an account many
times per call); callers only ever see their frozen views (:mod:`kalshi_sim.engine_types`),
made by each record's ``view()``.
"""

from __future__ import annotations

from collections import deque

from kalshi_sim.engine_types import (
    BookChange,
    EngineOrder,
    Fill,
    GroupEvent,
    MarketRules,
    OrderGroup,
    OrderRequest,
    Outcome,
    Position,
    Settlement,
    Trade,
)

DOLLAR = 1_000_000
PAYOUT_PER_CENTI = DOLLAR // 100
"""What one centi-contract pays at settlement (and what netting a YES against a NO returns)."""
CLOSED_STATUSES = ("closed", "settled")


class OrderRecord:
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
    ) -> OrderRecord:
        """A plain GTC resting order of subaccount 0 (seeding, fixtures)."""
        req = OrderRequest(member, rules.ticker, side, size, price)  # type: ignore[arg-type]
        return cls(order_id, seq, req, rules, now)

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


class PositionRecord:
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


class GroupRecord:
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
        self.orders: dict[str, OrderRecord] = {}
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


class AccountRecord:
    """One member: cash, orders, fills, positions, settlements, groups."""

    __slots__ = (
        "by_ticker",
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
        self.orders: dict[str, OrderRecord] = {}
        """Every order still readable, in creation order."""
        self.by_ticker: dict[str, dict[str, OrderRecord]] = {}
        """``orders`` by market, each in creation order: a read naming a ticker visits only
        that market's orders, however many the member has elsewhere."""
        self.live: dict[str, OrderRecord] = {}
        """The resting orders (in the order they last went onto a book)."""
        self.dead: deque[str] = deque()
        self.fills: deque[Fill] = deque(maxlen=fills_kept)
        self.dead_kept: int | None = None
        """This member's own finished-order budget (None: the engine option's)."""
        self.positions: dict[tuple[int, str], PositionRecord] = {}
        self.settlements: list[Settlement] = []
        self.groups: dict[str, GroupRecord] = {}
        self.client_ids: set[str] = set()
        """Every ``client_order_id`` ever used (spent for good, even by a killed FOK)."""

    def add_order(self, order: OrderRecord) -> None:
        """Make a new order readable (by id and by ticker)."""
        self.orders[order.order_id] = order
        self.by_ticker.setdefault(order.ticker, {})[order.order_id] = order

    def forget_order(self, order_id: str) -> None:
        """Drop a finished order from the reads (the dead-order budget ran out)."""
        order = self.orders.pop(order_id, None)
        if order is None:
            return
        same_market = self.by_ticker[order.ticker]
        del same_market[order_id]
        if not same_market:
            del self.by_ticker[order.ticker]


class Book:
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
        self.bids: dict[int, dict[str, OrderRecord]] = {}
        self.asks: dict[int, dict[str, OrderRecord]] = {}
        self.bid_prices: list[int] = []
        self.ask_prices: list[int] = []
        self.yes: dict[int, int] = {}
        """Public YES leg: bid price -> resting centi."""
        self.no: dict[int, int] = {}
        """Public NO leg: ``1 - ask price`` -> resting centi."""
        self.grid = rules.price_ranges
        self.fee_hold = 0
        """Micro-dollars a resting centi-contract holds for its worst-case fee."""
        self.seed_member: str | None = None
        """Whose seeded levels have no order objects yet (see ``seed_orders``)."""
        self.seed_ms = 0
        self.version = 0
        """Changes to the public levels so far (``BookChange.book_seq``)."""

    def queues(self, side: str) -> tuple[dict[int, dict[str, OrderRecord]], list[int]]:
        """One side's queues by YES price and its sorted prices (ascending)."""
        if side == "bid":
            return self.bids, self.bid_prices
        return self.asks, self.ask_prices

    def level(self, side: str, price: int) -> dict[str, OrderRecord]:
        """The orders resting at one YES price of one side, in time priority (may be empty)."""
        return (self.bids if side == "bid" else self.asks).get(price, {})

    def leg(self, side: str, price: int) -> tuple[str, int, dict[int, int]]:
        """Where an order shows publicly: (leg, leg price, that leg's levels)."""
        if side == "bid":
            return "yes", price, self.yes
        return "no", DOLLAR - price, self.no

    def best_opposite(self, side: str) -> int | None:
        """The best price an incoming order of ``side`` could take."""
        if side == "bid":
            return self.ask_prices[0] if self.ask_prices else None
        return self.bid_prices[-1] if self.bid_prices else None

    def set_status(self, status: str) -> None:
        """The market changed status (its rules are frozen: a new copy)."""
        rules = self.rules
        self.rules = MarketRules(
            rules.ticker,
            rules.event_ticker,
            rules.series_ticker,
            rules.exchange_index,
            rules.price_ranges,
            rules.fee_type,
            rules.fee_multiplier,
            status,
        )


class Changes:
    """What one call changed, gathered as it happens and frozen into an Outcome at the end."""

    __slots__ = ("book", "fills", "groups", "orders", "positions", "settlements", "trades")

    def __init__(self) -> None:
        self.fills: list[Fill] = []
        self.orders: dict[str, OrderRecord] = {}
        self.positions: dict[int, PositionRecord] = {}
        self.trades: list[Trade] = []
        self.book: list[BookChange] = []
        self.groups: list[GroupEvent] = []
        self.settlements: list[Settlement] = []

    def outcome(self, order: OrderRecord | None, now: int) -> Outcome:
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


def leg_cost(side: str, price: int, count: int) -> int:
    """What ``count`` centi-contracts cost on the order's leg: ``p`` for a bid, ``1-p`` an ask."""
    return count * (price if side == "bid" else DOLLAR - price) // 100


def crosses(side: str, limit: int, resting: int) -> bool:
    """Whether an order of ``side`` at ``limit`` takes a resting order at ``resting``."""
    return resting <= limit if side == "bid" else resting >= limit
