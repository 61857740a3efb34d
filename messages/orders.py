"""Orders as the product speaks of them: intents, exchange views, fills, positions, trading state.

Every price is the YES price in dollars and every count is in contracts, both exact
``Decimal`` (KALSHI_PROTOCOL.md §8.1: prices 2-4 dp on requests, up to 6 dp on responses;
counts 0-2 dp): a float here is how a position ends up 0.30000000000000004 contracts long.
``bid`` buys YES at ``price``; ``ask`` sells YES at ``price``, which is buying NO at
``1 - price`` (§8.5); positions are signed YES contracts (> 0 long YES, < 0 long NO).

These are the vocabulary of the ``trading`` package (ids, the order state machine,
reconciliation, risk, P&L) and, later, of the order gateway and its services (issue 16).
Exchange facts arrive through two models so that every source says the same thing:
``ExchangeOrder`` (a REST order read or a WS ``user_order``) and ``Fill`` (a REST fill or a
WS ``fill``); the REST writes' replies are ``PlaceAccepted`` / ``PlaceRejected`` /
``WriteUnknown`` / ``CancelAccepted`` / ``CancelNotFound``.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from messages.base import Message

CLIENT_ORDER_ID_MAX = 64
CLIENT_ORDER_ID_PATTERN = r"^[-A-Za-z0-9_:+=/]{1,64}$"
"""FIX's ClOrdID rule ``^[\\-\\w:+=/]*$``, ≤ 64 chars (§8.4), narrowed to ASCII (Python's
``\\w`` is Unicode) and to non-empty: an empty id is no idempotency handle at all."""

_CLIENT_ORDER_ID = re.compile(CLIENT_ORDER_ID_PATTERN)

SERVICE_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
"""A service's name (the same shape as ``messages.services.SERVICE_NAME_PATTERN``)."""

PRICE_MIN = Decimal("0")
PRICE_MAX = Decimal("1")
ONE = Decimal(1)

Side = Literal["bid", "ask"]
"""The YES leg: ``bid`` buys YES (≡ sells NO), ``ask`` sells YES (≡ buys NO at 1 - p)."""

TimeInForce = Literal["good_till_canceled", "immediate_or_cancel", "fill_or_kill"]

ExchangeStatus = Literal["resting", "canceled", "executed", "unknown"]
"""What the exchange calls an order's state (REST has the first three, WS adds ``unknown``)."""


def _no_float(value: object) -> object:
    if isinstance(value, float):
        raise ValueError("give an exact Decimal, int or string, not a float")
    return value


Exact = Annotated[Decimal, BeforeValidator(_no_float)]
"""A Decimal field that refuses floats: money and counts are exact or nothing."""


def is_client_order_id(text: str) -> bool:
    """True when ``text`` is a legal ``client_order_id`` (FIX's alphabet, 1-64 chars)."""
    return bool(_CLIENT_ORDER_ID.fullmatch(text))


def _places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def exact_count(value: Decimal, *, allow_zero: bool = True) -> Decimal:
    """A count: finite, ≥ 0 (> 0 unless ``allow_zero``), at most 2 decimal places (§8.1)."""
    if not value.is_finite():
        raise ValueError(f"count {value} is not a finite number")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"count {value} must be {'≥' if allow_zero else '>'} 0")
    if _places(value.normalize()) > 2:
        raise ValueError(f"count {value} has more than 2 decimal places")
    return value


def exact_price(value: Decimal, *, places: int = 4) -> Decimal:
    """A YES price in dollars: finite, 0 ≤ p ≤ 1, at most ``places`` decimal places."""
    if not value.is_finite():
        raise ValueError(f"price {value} is not a finite number")
    if not PRICE_MIN <= value <= PRICE_MAX:
        raise ValueError(f"price {value} is outside [0, 1]")
    if _places(value.normalize()) > places:
        raise ValueError(f"price {value} has more than {places} decimal places")
    return value


class OrderStatus(StrEnum):
    """One tracked order's state (docs/trading.md has the machine)."""

    PENDING = "pending"
    """Recorded and (about to be) sent; nothing heard back."""
    RESTING = "resting"
    PARTIALLY_FILLED = "partially_filled"
    EXECUTED = "executed"
    CANCELED = "canceled"
    """Closed by the exchange (cancel, IOC remainder, expiry, pause...) with part unfilled."""
    REJECTED = "rejected"
    """The exchange refused the create: the order never existed."""
    OUTCOME_UNKNOWN = "outcome_unknown"
    """The create may or may not have reached the book: resolved by lookup, never a new id."""

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES

    @property
    def is_open(self) -> bool:
        """May still rest or fill at the exchange (unknown counts as open: worst case)."""
        return not self.is_final


FINAL_STATUSES = frozenset({OrderStatus.EXECUTED, OrderStatus.CANCELED, OrderStatus.REJECTED})


def _words(text: str) -> str:
    return " ".join(text.lower().replace("_", " ").replace("cancelled", "canceled").split())


def reason_beyond(status: OrderStatus, reason: str | None) -> str | None:
    """``reason`` when it says something ``status`` does not; None when it is empty or only
    repeats the status (``canceled`` beside ``canceled``: the terminal, the console and
    the events show both, and "canceled (canceled)" tells a person nothing)."""
    if reason is None or not reason.strip():
        return None
    return None if _words(reason) == _words(status.value) else reason


class TradingState(StrEnum):
    """What the gateway lets through: everything, cancels and reduce-only orders, or cancels."""

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


class HaltReason(StrEnum):
    """Why trading left ACTIVE (the halt policies of issue 16 name these)."""

    MANUAL = "manual"
    LEFT_READY = "left_ready"
    SHUTDOWN = "shutdown"
    EXCHANGE_PAUSE = "exchange_pause"
    TRADING_PAUSE = "trading_pause"
    RISK_BREACH = "risk_breach"
    DAILY_LOSS = "daily_loss"
    ORDER_GROUP_TRIGGERED = "order_group_triggered"
    RECONCILIATION_FAILED = "reconciliation_failed"


class OrderIntent(Message):
    """What a service asks for. The gateway gives it a ``client_order_id`` before sending."""

    service: str = Field(pattern=SERVICE_PATTERN)
    ticker: str = Field(min_length=1, max_length=128)
    side: Side
    count: Exact
    price: Exact
    time_in_force: TimeInForce = "good_till_canceled"
    post_only: bool = False
    reduce_only: bool = False
    cancel_order_on_pause: bool = True
    """Default on: a pause should not leave our orders resting (§8.10)."""
    expiration_time: int | None = Field(default=None, gt=0)
    """Unix seconds; good-till-canceled orders only (§8.1)."""

    @field_validator("count")
    @classmethod
    def _count(cls, value: Decimal) -> Decimal:
        return exact_count(value, allow_zero=False)

    @field_validator("price")
    @classmethod
    def _price(cls, value: Decimal) -> Decimal:
        exact_price(value)
        if not PRICE_MIN < value < PRICE_MAX:
            raise ValueError(f"price {value} must be strictly between 0 and 1")
        return value

    @model_validator(mode="after")
    def _expiry_needs_gtc(self) -> OrderIntent:
        if self.expiration_time is not None and self.time_in_force != "good_till_canceled":
            raise ValueError("expiration_time is only valid with good_till_canceled")
        return self

    @property
    def cost_per_contract(self) -> Decimal:
        """Collateral one contract ties up: ``p`` for a bid, ``1 - p`` for an ask (§8.5)."""
        return self.price if self.side == "bid" else ONE - self.price

    @property
    def signed_count(self) -> Decimal:
        """The YES position change if it all fills: ``+count`` for a bid, ``-count`` for an ask."""
        return self.count if self.side == "bid" else -self.count


class RiskLimits(Message):
    """Pre-trade limits for one service or for the whole process; None: no limit.

    Counts in contracts, money in dollars (exact). ``max_daily_loss`` is a positive amount:
    a day's realized + unrealized (at exit) - fees at or below ``-max_daily_loss`` halts.
    """

    max_order_count: Exact | None = Field(default=None, gt=0)
    max_position: Exact | None = Field(default=None, ge=0)
    """Largest |signed YES position| per market, counting every resting order on the
    order's side as filled (the worst case)."""
    max_open_orders: int | None = Field(default=None, ge=0)
    max_notional: Exact | None = Field(default=None, ge=0)
    """Dollars at risk in open orders: Σ remaining · (p for bids, 1 - p for asks)."""
    max_daily_loss: Exact | None = Field(default=None, gt=0)


class Fill(Message):
    """One execution of one of our orders (REST ``/portfolio/fills`` or WS ``fill``).

    ``trade_id`` (= ``fill_id``) is the dedupe key. REST fills carry no ``client_order_id``:
    they are joined to orders on ``order_id`` (§8.2).
    """

    trade_id: str = Field(min_length=1, max_length=128)
    order_id: str = Field(min_length=1, max_length=128)
    client_order_id: str | None = None
    ticker: str = Field(min_length=1, max_length=128)
    side: Side
    """The order's book side (``book_side``)."""
    count: Exact
    price: Exact
    """The YES price it executed at (``yes_price_dollars``)."""
    fee: Exact = Decimal(0)
    is_taker: bool = False
    ts_ms: int | None = None

    @field_validator("count")
    @classmethod
    def _count(cls, value: Decimal) -> Decimal:
        return exact_count(value, allow_zero=False)

    @field_validator("price")
    @classmethod
    def _price(cls, value: Decimal) -> Decimal:
        return exact_price(value, places=6)

    @field_validator("fee")
    @classmethod
    def _fee(cls, value: Decimal) -> Decimal:
        if not value.is_finite() or value < 0:
            raise ValueError(f"fee {value} must be a finite amount ≥ 0")
        return value

    @property
    def signed_count(self) -> Decimal:
        return self.count if self.side == "bid" else -self.count

    @property
    def cash_flow(self) -> Decimal:
        """Dollars this fill moved, before fees: a bid pays ``c·p``, an ask receives ``c·p``.

        (An ask "buys NO" for ``c·(1 - p)``; with the ``c`` dollars a YES/NO pair is worth, the
        two views agree, and the signed-YES view needs no collateral bookkeeping.)
        """
        return -self.count * self.price if self.side == "bid" else self.count * self.price


class ExchangeOrder(Message):
    """The exchange's view of one order: a REST order read or a WS ``user_order``."""

    order_id: str = Field(min_length=1, max_length=128)
    client_order_id: str | None = None
    ticker: str = Field(min_length=1, max_length=128)
    side: Side
    price: Exact
    status: ExchangeStatus
    fill_count: Exact = Decimal(0)
    remaining_count: Exact = Decimal(0)
    initial_count: Exact | None = None
    """The order's total (filled + resting, + cancelled) as the exchange says; None if not sent."""
    last_update_reason: str | None = None
    ts_ms: int | None = None
    """``last_updated_ts_ms`` (or ``created_ts_ms``): orders two views of the same order."""

    @field_validator("fill_count", "remaining_count")
    @classmethod
    def _counts(cls, value: Decimal) -> Decimal:
        return exact_count(value)

    @field_validator("price")
    @classmethod
    def _price(cls, value: Decimal) -> Decimal:
        return exact_price(value, places=6)


class PlaceAccepted(Message):
    """201 to a create (§8.1). **201 ≠ resting**: the counts say what happened."""

    client_order_id: str = Field(pattern=CLIENT_ORDER_ID_PATTERN)
    order_id: str = Field(min_length=1, max_length=128)
    fill_count: Exact = Decimal(0)
    remaining_count: Exact = Decimal(0)
    ts_ms: int | None = None

    @field_validator("fill_count", "remaining_count")
    @classmethod
    def _counts(cls, value: Decimal) -> Decimal:
        return exact_count(value)


class PlaceRejected(Message):
    """A definite refusal (400, 403, 404, 409, 410, 429: §8.3) with the exchange's code."""

    client_order_id: str = Field(pattern=CLIENT_ORDER_ID_PATTERN)
    status: int
    code: str = Field(max_length=200)
    message: str = Field(default="", max_length=500)

    @property
    def means_exists(self) -> bool:
        """409 ``order_already_exists``: an earlier try with this id may have worked."""
        return self.code.lower() == "order_already_exists"


class WriteUnknown(Message):
    """The write's outcome is unknown (timeout, 408, 5xx, dropped connection: §8.3)."""

    client_order_id: str = Field(pattern=CLIENT_ORDER_ID_PATTERN)
    reason: str = Field(max_length=300)


class CancelAccepted(Message):
    """200 to a cancel: ``reduced_by`` contracts stopped resting; the order is closed."""

    order_id: str = Field(min_length=1, max_length=128)
    reduced_by: Exact = Decimal(0)
    ts_ms: int | None = None


class CancelNotFound(Message):
    """404 to a cancel: the order is gone (cancelled, **executed**, or unknown). Says nothing
    about which: the state machine never concludes "canceled" from it without the fills."""

    order_id: str = Field(min_length=1, max_length=128)


class OrderUpdate(Message):
    """A tracked order as a service, ``/status`` or an event shows it."""

    client_order_id: str = Field(pattern=CLIENT_ORDER_ID_PATTERN)
    order_id: str | None
    service: str
    ticker: str
    side: Side
    price: Exact
    count: Exact
    filled: Exact
    remaining: Exact
    status: OrderStatus
    fees: Exact = Decimal(0)
    reason: str | None = None


class Position(Message):
    """A signed YES position in one market (> 0 long YES, < 0 long NO), per service or total."""

    ticker: str
    position: Exact
    service: str | None = None
    cost: Exact | None = None
    """What the open position cost, when known (the exchange's ``position_cost``)."""


class MarketPnl(Message):
    """P&L in one market, for one service or (``service`` None) the account; dollars."""

    ticker: str
    service: str | None = None
    position: Exact
    realized: Exact
    unrealized_mid: Exact
    """Open lots marked at the mid (the exit mark when a side of the book is empty)."""
    unrealized_exit: Exact
    """Open lots marked where they would leave: a long at the bid, a short at the ask."""
    fees: Exact

    @property
    def net(self) -> Decimal:
        """Realized + unrealized at exit - fees."""
        return self.realized + self.unrealized_exit - self.fees


# -- reconciliation: each difference between our view and the exchange's REST truth ----------
class OrderUnknownLocally(Message):
    """An order rests at the exchange that we do not track (another process, before a
    restart, or lost): the startup policy cancels, adopts or leaves it."""

    order: ExchangeOrder

    def describe(self) -> str:
        o = self.order
        return (
            f"order {o.order_id} ({o.client_order_id or 'no client id'}) rests at the exchange "
            f"untracked: {o.side} {o.remaining_count} {o.ticker} @ {o.price}"
        )


class OrderGoneAtExchange(Message):
    """We think it may rest; the exchange does not list it. Never concluded cancelled from
    this alone: it is looked up (it may have filled: §8.10)."""

    client_order_id: str
    order_id: str
    local_status: OrderStatus

    def describe(self) -> str:
        return (
            f"order {self.client_order_id} ({self.order_id}) is {self.local_status} here but "
            "not listed resting at the exchange: looked up"
        )


class OrderDiffers(Message):
    """The exchange lists it resting with other counts than ours, or while we think it done
    (then the gateway cancels it again)."""

    client_order_id: str
    order_id: str
    local_status: OrderStatus
    local_filled: Exact
    local_remaining: Exact
    exchange_filled: Exact
    exchange_remaining: Exact

    def describe(self) -> str:
        return (
            f"order {self.client_order_id} ({self.order_id}): here {self.local_status}, "
            f"filled {self.local_filled}, resting {self.local_remaining}; at the exchange "
            f"filled {self.exchange_filled}, resting {self.exchange_remaining}"
        )


class FillMissed(Message):
    """A fill the private channel never delivered (or we dropped); it is applied."""

    fill: Fill

    def describe(self) -> str:
        f = self.fill
        return (
            f"missed fill {f.trade_id} of order {f.order_id}: {f.side} {f.count} {f.ticker} "
            f"@ {f.price} (applied)"
        )


class PositionMismatch(Message):
    """Our position (with the missed fills applied) is not the exchange's; the exchange's
    stands."""

    ticker: str
    local: Exact
    exchange: Exact

    def describe(self) -> str:
        return f"position {self.ticker}: {self.local} here, {self.exchange} at the exchange (taken)"


class BalanceChanged(Message):
    """The balance moved since we last read it (integer cents, as Kalshi gives it)."""

    before: int
    after: int

    def describe(self) -> str:
        return f"balance {self.before} -> {self.after} cents"


Difference = (
    OrderUnknownLocally
    | OrderGoneAtExchange
    | OrderDiffers
    | FillMissed
    | PositionMismatch
    | BalanceChanged
)
