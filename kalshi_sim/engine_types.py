"""The matching engine's vocabulary: requests, rejections, frozen views and options.

Kept apart from :mod:`kalshi_sim.matching` so the wire (REST routes, WS channels) can
import the shapes without the engine, and so the engine module holds only behaviour.

Units everywhere: money in integer micro-dollars (``*_micros``), counts in integer
centi-contracts (``*_centi``), time in integer milliseconds (``*_ms``) passed in by the
caller, expiration times in Unix seconds as on the wire (``expiration_time_s``). Prices are
always the YES price unless a name says ``leg``.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

Side = Literal["bid", "ask"]
"""The YES-leg book side: ``bid`` = buy YES (= sell NO), ``ask`` = sell YES (= buy NO)."""
Leg = Literal["yes", "no"]
TimeInForce = Literal["good_till_canceled", "immediate_or_cancel", "fill_or_kill"]
SelfTradePrevention = Literal["taker_at_cross", "maker"]
OrderStatus = Literal["resting", "canceled", "executed"]
GroupEventType = Literal["created", "triggered", "reset", "deleted", "limit_updated"]

TIME_IN_FORCE: tuple[str, ...] = ("good_till_canceled", "immediate_or_cancel", "fill_or_kill")
STP_TYPES: tuple[str, ...] = ("taker_at_cross", "maker")


class Reject(Exception):
    """Why the engine refused a call, as the REST error body will say it (§8.3).

    ``status`` is the HTTP status, ``code`` the ``error.code`` string, ``details`` the
    optional ``error.details``. The engine's state is unchanged by a rejected call, except
    where Kalshi spends something anyway (a FOK kill spends its ``client_order_id``).
    """

    def __init__(self, status: int, code: str, message: str, details: str | None = None) -> None:
        super().__init__(f"{status} {code}: {message}" + (f" ({details})" if details else ""))
        self.status = status
        self.code = code
        self.message = message
        self.details = details


@dataclass(frozen=True, slots=True)
class PriceRange:
    """One ``price_ranges`` entry: prices ``start..end`` (inclusive) in steps of ``step``."""

    start_micros: int
    end_micros: int
    step_micros: int


@dataclass(frozen=True, slots=True)
class MarketRules:
    """What the engine needs to know about one market to trade it."""

    ticker: str
    event_ticker: str
    series_ticker: str
    exchange_index: int = 0
    price_ranges: tuple[PriceRange, ...] = (PriceRange(0, 1_000_000, 10_000),)
    fee_type: str = "quadratic"
    """``quadratic`` (taker fees only), ``quadratic_with_maker_fees``, or ``flat`` (no fee here)."""
    fee_multiplier: Fraction = Fraction(1)
    status: str = "active"
    """``active``, ``inactive`` (deactivated), ``closed``, ``settled``."""


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """One create (``POST /portfolio/events/orders``), already parsed into engine units."""

    member: str
    ticker: str
    side: Side
    count_centi: int
    price_micros: int
    """The YES price, on the market's ``price_ranges`` grid."""
    time_in_force: TimeInForce = "good_till_canceled"
    self_trade_prevention_type: SelfTradePrevention = "taker_at_cross"
    client_order_id: str | None = None
    expiration_time_s: int | None = None
    post_only: bool = False
    reduce_only: bool = False
    cancel_order_on_pause: bool = False
    order_group_id: str | None = None
    subaccount: int = 0


@dataclass(frozen=True, slots=True)
class EngineOrder:
    """An order as it stands after a call (immutable; the engine keeps its own mutable copy)."""

    order_id: str
    client_order_id: str | None
    member: str
    subaccount: int
    ticker: str
    event_ticker: str
    exchange_index: int
    side: Side
    price_micros: int
    initial_centi: int
    fill_centi: int
    remaining_centi: int
    status: OrderStatus
    time_in_force: str
    self_trade_prevention_type: str
    post_only: bool
    reduce_only: bool
    cancel_order_on_pause: bool
    order_group_id: str | None
    expiration_time_s: int | None
    created_ms: int
    last_update_ms: int
    last_update_reason: str | None
    """The reasons of §3.8: ``Trade``, ``Amend``, ``Decrease``, ``SelfTradeCancel``,
    ``ExpiryCancel``, ``CloseCancel`` (close, settlement), ``HaltCancel`` (pause, reactivation),
    ``PostOnlyCrossCancel``, ``ReduceOnlyCancel``, the group option's reason (``GroupCancel``);
    None while untouched and after a plain user cancel (no documented reason exists)."""
    seq: int
    """The order's number among its member's orders, from 1 (listings and cursors follow it)."""
    taker_fill_cost_micros: int = 0
    maker_fill_cost_micros: int = 0
    taker_fees_micros: int = 0
    maker_fees_micros: int = 0

    @property
    def no_price_micros(self) -> int:
        return 1_000_000 - self.price_micros

    @property
    def outcome_side(self) -> Leg:
        return "yes" if self.side == "bid" else "no"


@dataclass(frozen=True, slots=True)
class Fill:
    """One side of one execution; a trade makes two (taker and maker), sharing ``trade_id``.

    ``fill_id == trade_id`` per member view [P-fills]; here each side gets its own
    ``fill_id`` (``trade_id`` + ``-t``/``-m``) so the two members' fills never collide,
    while ``trade_id`` is the public trade's id.
    """

    fill_id: str
    trade_id: str
    order_id: str
    client_order_id: str | None
    member: str
    subaccount: int
    ticker: str
    exchange_index: int
    side: Side
    """The order's YES-book side (``book_side``)."""
    is_taker: bool
    count_centi: int
    yes_price_micros: int
    fee_micros: int
    ts_ms: int
    post_position_centi: int
    """The member's signed position in the market after this fill (> 0 YES)."""

    @property
    def outcome_side(self) -> Leg:
        return "yes" if self.side == "bid" else "no"

    @property
    def no_price_micros(self) -> int:
        return 1_000_000 - self.yes_price_micros


@dataclass(frozen=True, slots=True)
class Position:
    """One member's netted position in one market (signed: > 0 holds YES, < 0 holds NO)."""

    member: str
    subaccount: int
    ticker: str
    event_ticker: str
    exchange_index: int
    position_centi: int
    cost_micros: int
    """What the open contracts cost (market exposure), fees excluded."""
    realized_pnl_micros: int
    fees_paid_micros: int
    total_traded_micros: int
    last_update_ms: int


@dataclass(frozen=True, slots=True)
class Trade:
    """A public trade (the ``trade`` channel): ``taker_side`` is ``yes`` for a taking bid."""

    trade_id: str
    ticker: str
    count_centi: int
    yes_price_micros: int
    taker_side: Leg
    ts_ms: int

    @property
    def no_price_micros(self) -> int:
        return 1_000_000 - self.yes_price_micros


@dataclass(frozen=True, slots=True)
class BookChange:
    """One public level change: the ``orderbook_delta`` a WS subscriber sees.

    ``leg``/``price_micros`` are the public book's (a resting ask at YES price ``p`` shows
    on ``no@(1-p)``); ``yes_price_micros`` is the same level on the YES scale, for
    subscribers with ``use_yes_price``. ``member``/``client_order_id`` name the order that
    caused the change, so the server can annotate that member's own deltas (§3.6).
    """

    ticker: str
    leg: Leg
    price_micros: int
    yes_price_micros: int
    delta_centi: int
    member: str | None = None
    client_order_id: str | None = None
    order_id: str | None = None
    subaccount: int = 0
    book_seq: int = 0
    """The market's book version after this change (1, 2, ... per market, every change of its
    public levels counted). A snapshot taken at version ``v`` already holds every change with
    ``book_seq <= v``: a feed that publishes changes from another thread skips those, so no
    change is applied twice or lost (``MatchingEngine.book_seq``)."""


@dataclass(frozen=True, slots=True)
class GroupEvent:
    """An ``order_group_updates`` event."""

    member: str
    subaccount: int
    order_group_id: str
    event_type: GroupEventType
    contracts_limit_centi: int | None
    ts_ms: int


@dataclass(frozen=True, slots=True)
class OrderGroup:
    """An order group as ``GET /portfolio/order_groups`` reads it."""

    order_group_id: str
    member: str
    subaccount: int
    exchange_index: int
    contracts_limit_centi: int
    triggered: bool
    window_filled_centi: int
    order_ids: tuple[str, ...]
    """Its resting orders."""


@dataclass(frozen=True, slots=True)
class Settlement:
    """One member's settlement of one market (``GET /portfolio/settlements``)."""

    member: str
    subaccount: int
    ticker: str
    event_ticker: str
    exchange_index: int
    market_result: str
    yes_count_centi: int
    yes_total_cost_micros: int
    no_count_centi: int
    no_total_cost_micros: int
    revenue_micros: int
    fee_cost_micros: int
    settled_ms: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """Everything one mutating call changed, in the order it happened.

    ``order`` is the order the call acted on (None for calls on no single order);
    ``fills`` holds every member's fills (taker and makers) in execution order;
    ``orders_changed`` every order whose state changed, makers included (last state each);
    ``positions_changed`` every position touched (last state each). The server turns one
    Outcome into the REST reply and the ``fill``/``user_order``/``market_position``/
    ``order_group_updates``/``trade``/``orderbook_delta`` frames.
    """

    order: EngineOrder | None = None
    fills: tuple[Fill, ...] = ()
    orders_changed: tuple[EngineOrder, ...] = ()
    positions_changed: tuple[Position, ...] = ()
    trades: tuple[Trade, ...] = ()
    book_changes: tuple[BookChange, ...] = ()
    group_events: tuple[GroupEvent, ...] = ()
    settlements: tuple[Settlement, ...] = ()
    ts_ms: int = 0

    @property
    def fill_centi(self) -> int:
        """What ``order`` filled in this call (the create reply's ``fill_count``)."""
        if self.order is None:
            return 0
        return sum(f.count_centi for f in self.fills if f.order_id == self.order.order_id)


@dataclass(frozen=True, slots=True)
class MemberTruth:
    """Everything the engine knows about one member, taken at once (tests compare a client's
    view against it)."""

    member: str
    cash_by_shard_micros: dict[int, int]
    reserved_by_shard_micros: dict[int, int]
    orders: tuple[EngineOrder, ...]
    fills: tuple[Fill, ...]
    positions: tuple[Position, ...]
    settlements: tuple[Settlement, ...]
    groups: tuple[OrderGroup, ...]


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """Every UNCONFIRMED choice of KALSHI_PROTOCOL.md §8, with the simulator's default.

    Each default is the most likely reading of the sources (or the documented one where a
    doc exists); tests and the CLI flip them to exercise a client's tolerance.
    """

    fee_quantum_micros: int = 100
    """Fees are ceiled to this per fill: $0.0001 [FR] (pre-2026 guides: a cent, 10_000;
    [CONF]: $0.000001, 1)."""
    ioc_partial_status: OrderStatus = "canceled"
    """Status of an IOC that filled partly (the rest cancelled): ``canceled`` or ``executed``."""
    reduce_only_ioc_only: bool = False
    """[CONF]: ``reduce_only`` only with IOC; True rejects a GTC/FOK reduce-only order
    (400 ``invalid_order``)."""
    reserve_resting_balance: bool = True
    """Resting orders hold their cost (and worst-case fee) out of ``balance`` until they fill
    or end. False: a create is checked against the balance but holds nothing, so cash may go
    negative when a maker fills later."""
    post_only_amend: Literal["cancel", "reject"] = "cancel"
    """A crossing amend of a post-only order: cancel it (``PostOnlyCrossCancel``), or reject
    the amend (400 ``invalid_order``, order untouched)."""
    fill_at_maker_price: bool = True
    """Executions happen at the resting order's price (False: at the taker's limit)."""
    closed_status: int = 409
    closed_code: str = "market_closed"
    """Status/code for any operation on a closed or settled market (seen: 409
    ``market_closed``, 400 ``market_inactive``)."""
    paused_status: int = 409
    paused_code: str = "trading_is_paused"
    """Status/code for a place/amend on a deactivated market or during a trading pause."""
    cancel_when_inactive: bool = True
    """Whether cancels are allowed on a deactivated market (UNCONFIRMED)."""
    group_triggered_status: int = 409
    group_triggered_code: str = "exceeded_order_group_risk_limit"
    """Placing into a triggered group; the code is FIX's ``EXCEEDED_ORDER_GROUP_RISK_LIMIT``
    lower-cased (the REST code is UNCONFIRMED)."""
    group_not_found_code: str = "order_group_not_found"
    """404 code for an unknown or deleted group (kalshiflow matches this one)."""
    group_counts_maker_fills: bool = True
    """Whether fills of a group's resting (maker) orders count towards its limit."""
    group_window_ms: int = 15_000
    group_cancel_reason: str = "GroupCancel"
    reduce_only_holds_collateral: bool = True
    """Whether a reduce-only order (which can only close contracts, §8.5 "collateral for
    reducing asks" is UNCONFIRMED) is checked against and holds balance like any order; False:
    it holds nothing (its fill returns more than it costs). Other orders that happen to reduce a
    position always hold collateral; the netting returns it at the fill."""
    amend_to_filled_cancels: bool = True
    """An amend to a total equal to the filled count cancels the order (FIX); False rejects."""
    reduce_only_empty_rejects: bool = False
    """A reduce-only order with nothing to reduce: False cancels it at once
    (``ReduceOnlyCancel``, 201 with 0 filled); True rejects it (400 ``invalid_order``)."""
    id_seed: int = 0
    """Seed of the order/trade/group id generator (ids are deterministic per seed)."""
    max_resting_per_member: int = 1_000_000
    """Resting orders one member may hold (400 ``invalid_order`` beyond): memory stays bounded."""
    dead_orders_kept_per_member: int = 100_000
    """Finished orders kept readable per member, oldest forgotten first (their
    ``client_order_id`` stays spent)."""
    fills_kept_per_member: int = 100_000
    """Fills kept readable per member, oldest forgotten first."""
    max_groups_per_member: int = 100_000
