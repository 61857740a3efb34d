"""Typed V2 order entry: requests checked before they leave, replies read exactly (§8.1).

Requests are frozen dataclasses validated on construction, so a bad order fails here with a
one-line ``ValueError`` and never spends a write token: counts and prices are exact
``Decimal`` (a float is refused outright), prices lie in (0, 1) with at most 4 decimals,
counts are positive with at most 2, and ``client_order_id`` stays inside FIX's ClOrdID rule
(``^[\\-\\w:+=/]*$``, at most 64 characters; §8.4). On the wire both travel as strings
(``"0.5600"``, ``"10.00"``): Kalshi refuses numeric JSON with a flat 400.

Replies are frozen pydantic models that tolerate §8's variants: fields Kalshi may omit are
optional, ``reduced_by`` is what the cancel took off, averages exist only once something
filled, batch items may carry ``error`` instead of a result, and counts arrive under either
``fill_count`` or ``fill_count_fp``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

from kalshi_api.errors import (
    CODE_CLASSES,
    KalshiError,
    RequestRejectedError,
)
from kalshi_api.models import ExactDecimal, NonNegativeDecimal, OptionalTime

__all__ = [
    "AmendOrder",
    "AmendOrderResult",
    "BatchCancelItem",
    "BatchCreateItem",
    "CancelOrderResult",
    "CancelTarget",
    "CreateOrder",
    "CreateOrderResult",
    "DecreaseOrder",
    "DecreaseOrderResult",
    "Fill",
    "ItemError",
    "Settlement",
    "check_client_order_id",
    "count_text",
    "price_text",
]

Side = Literal["bid", "ask"]
TimeInForce = Literal["good_till_canceled", "immediate_or_cancel", "fill_or_kill"]
SelfTradePrevention = Literal["taker_at_cross", "maker"]

SIDES: Final = frozenset({"bid", "ask"})
TIMES_IN_FORCE: Final = frozenset({"good_till_canceled", "immediate_or_cancel", "fill_or_kill"})
STP_TYPES: Final = frozenset({"taker_at_cross", "maker"})
CLIENT_ORDER_ID_MAX: Final = 64
_CLIENT_ORDER_ID: Final = re.compile(r"[\-\w:+=/]+", re.ASCII)
MAX_SUBACCOUNT: Final = 63
_ONE: Final = Decimal(1)
_ZERO: Final = Decimal(0)


# -- wire values ------------------------------------------------------------------------------
def _decimal(value: object, what: str) -> Decimal:
    if isinstance(value, bool | float):
        kind = type(value).__name__
        raise ValueError(f"{what} must be a Decimal, an int or a decimal string, not a {kind}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except ArithmeticError:
            raise ValueError(f"{what} is not a decimal: {value[:40]!r}") from None
    else:
        raise ValueError(f"{what} must be a Decimal, not {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"{what} must be finite, got {result}")
    return result


def _places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(-exponent, 0) if isinstance(exponent, int) else 0


def price_text(price: object) -> str:
    """A YES price as Kalshi's request string: in (0, 1), 2 to 4 decimals (``"0.5600"``
    style: at least 2 places, more only when needed)."""
    value = _decimal(price, "price")
    if not _ZERO < value < _ONE:
        raise ValueError(f"price must be between 0 and 1 dollar exclusive, got {value}")
    places = _places(value)
    if places > 4:
        raise ValueError(f"price {value} has more than 4 decimals")
    return f"{value:.{max(places, 2)}f}"


def count_text(count: object, what: str = "count") -> str:
    """A contract count as Kalshi's ``_fp`` request string: positive, 2 decimals."""
    value = _decimal(count, what)
    if value <= 0:
        raise ValueError(f"{what} must be positive, got {value}")
    if _places(value) > 2:
        raise ValueError(f"{what} {value} has more than 2 decimals (0.01-contract granularity)")
    return f"{value:.2f}"


def check_client_order_id(value: object, what: str = "client_order_id") -> str:
    """``value`` if it is a usable ``client_order_id``, else a one-line ``ValueError``."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} is required (it is the only idempotency handle)")
    if len(value) > CLIENT_ORDER_ID_MAX:
        raise ValueError(f"{what} is {len(value)} characters, more than {CLIENT_ORDER_ID_MAX}")
    if _CLIENT_ORDER_ID.fullmatch(value) is None:
        raise ValueError(f"{what} {value[:70]!r} has characters outside [-A-Za-z0-9_:+=/]")
    return value


def _check_choice(value: object, allowed: frozenset[str], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {sorted(allowed)}, got {value!r}")


def _check_ticker(ticker: object, what: str = "ticker") -> None:
    if not isinstance(ticker, str) or not ticker.strip():
        raise ValueError(f"{what} is required")


def _check_index(value: int | None, what: str, low: int, high: int | None = None) -> None:
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"{what} must be an integer {bound}, got {value!r}")


def _optional(wire: dict[str, Any], **fields: Any) -> dict[str, Any]:
    wire.update({k: v for k, v in fields.items() if v is not None})
    return wire


# -- requests ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CreateOrder:
    """``POST /portfolio/events/orders``: ``side`` is the YES leg (``bid`` buys YES,
    ``ask`` sells YES), ``price`` the YES price, ``count`` contracts."""

    ticker: str
    side: Side
    count: Decimal
    price: Decimal
    client_order_id: str
    time_in_force: TimeInForce = "good_till_canceled"
    self_trade_prevention_type: SelfTradePrevention = "taker_at_cross"
    expiration_time: int | None = None
    post_only: bool = False
    reduce_only: bool = False
    cancel_order_on_pause: bool | None = None
    order_group_id: str | None = None
    subaccount: int | None = None
    exchange_index: int | None = None

    def __post_init__(self) -> None:
        _check_ticker(self.ticker)
        _check_choice(self.side, SIDES, "side")
        _check_choice(self.time_in_force, TIMES_IN_FORCE, "time_in_force")
        _check_choice(self.self_trade_prevention_type, STP_TYPES, "self_trade_prevention_type")
        object.__setattr__(self, "count", _decimal(self.count, "count"))
        object.__setattr__(self, "price", _decimal(self.price, "price"))
        count_text(self.count)
        price_text(self.price)
        check_client_order_id(self.client_order_id)
        if self.expiration_time is not None:
            if self.time_in_force != "good_till_canceled":
                raise ValueError("expiration_time applies to good_till_canceled orders only")
            _check_index(self.expiration_time, "expiration_time", 1)
        _check_index(self.subaccount, "subaccount", 0, MAX_SUBACCOUNT)
        _check_index(self.exchange_index, "exchange_index", -1)

    def wire(self) -> dict[str, Any]:
        """The JSON body: every number a string, optional fields only when set."""
        return _optional(
            {
                "ticker": self.ticker,
                "side": self.side,
                "count": count_text(self.count),
                "price": price_text(self.price),
                "time_in_force": self.time_in_force,
                "self_trade_prevention_type": self.self_trade_prevention_type,
                "client_order_id": self.client_order_id,
            },
            expiration_time=self.expiration_time,
            post_only=self.post_only or None,
            reduce_only=self.reduce_only or None,
            cancel_order_on_pause=self.cancel_order_on_pause,
            order_group_id=self.order_group_id,
            subaccount=self.subaccount,
            exchange_index=self.exchange_index,
        )


@dataclass(frozen=True, slots=True)
class AmendOrder:
    """``POST …/orders/{order_id}/amend``: ``count`` is the new *total* (filled + resting);
    only a size decrease keeps queue position. ``updated_client_order_id`` renames it."""

    order_id: str
    ticker: str
    side: Side
    price: Decimal
    count: Decimal
    client_order_id: str | None = None
    updated_client_order_id: str | None = None
    expiration_time: int | None = None
    exchange_index: int | None = None

    def __post_init__(self) -> None:
        _check_ticker(self.order_id, "order_id")
        _check_ticker(self.ticker)
        _check_choice(self.side, SIDES, "side")
        object.__setattr__(self, "count", _decimal(self.count, "count"))
        object.__setattr__(self, "price", _decimal(self.price, "price"))
        count_text(self.count)
        price_text(self.price)
        if self.client_order_id is not None:
            check_client_order_id(self.client_order_id)
        if self.updated_client_order_id is not None:
            check_client_order_id(self.updated_client_order_id, "updated_client_order_id")
        _check_index(self.expiration_time, "expiration_time", 0)
        _check_index(self.exchange_index, "exchange_index", -1)

    def wire(self) -> dict[str, Any]:
        return _optional(
            {
                "ticker": self.ticker,
                "side": self.side,
                "price": price_text(self.price),
                "count": count_text(self.count),
            },
            client_order_id=self.client_order_id,
            updated_client_order_id=self.updated_client_order_id,
            expiration_time=self.expiration_time,
            exchange_index=self.exchange_index,
        )


@dataclass(frozen=True, slots=True)
class DecreaseOrder:
    """``POST …/orders/{order_id}/decrease``: exactly one of ``reduce_by`` / ``reduce_to``."""

    order_id: str
    reduce_by: Decimal | None = None
    reduce_to: Decimal | None = None
    exchange_index: int | None = None
    market_ticker: str | None = None

    def __post_init__(self) -> None:
        _check_ticker(self.order_id, "order_id")
        if (self.reduce_by is None) == (self.reduce_to is None):
            raise ValueError("give exactly one of reduce_by and reduce_to")
        if self.reduce_by is not None:
            object.__setattr__(self, "reduce_by", _decimal(self.reduce_by, "reduce_by"))
            count_text(self.reduce_by, "reduce_by")
        if self.reduce_to is not None:
            value = _decimal(self.reduce_to, "reduce_to")
            object.__setattr__(self, "reduce_to", value)
            if value < 0 or _places(value) > 2:
                raise ValueError(f"reduce_to must be >= 0 with at most 2 decimals, got {value}")
        _check_index(self.exchange_index, "exchange_index", -1)

    def wire(self) -> dict[str, Any]:
        return _optional(
            {},
            reduce_by=count_text(self.reduce_by, "reduce_by")
            if self.reduce_by is not None
            else None,
            reduce_to=f"{self.reduce_to:.2f}" if self.reduce_to is not None else None,
            exchange_index=self.exchange_index,
            market_ticker=self.market_ticker,
        )


@dataclass(frozen=True, slots=True)
class CancelTarget:
    """One order of a batch cancel (the id alone does not name the shard: add what you know)."""

    order_id: str
    subaccount: int | None = None
    exchange_index: int | None = None
    market_ticker: str | None = None

    def __post_init__(self) -> None:
        _check_ticker(self.order_id, "order_id")
        _check_index(self.subaccount, "subaccount", 0, MAX_SUBACCOUNT)
        _check_index(self.exchange_index, "exchange_index", -1)

    def wire(self) -> dict[str, Any]:
        return _optional(
            {"order_id": self.order_id},
            subaccount=self.subaccount,
            exchange_index=self.exchange_index,
            market_ticker=self.market_ticker,
        )


# -- replies ----------------------------------------------------------------------------------
class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


def _count(name: str) -> Any:
    """A count field read under its name or its ``_fp`` twin."""
    return Field(default=None, validation_alias=AliasChoices(name, f"{name}_fp"))


OptionalCount = NonNegativeDecimal | None


class ItemError(_Model):
    """The ``error`` of one batch item (or of a 2xx body): code matched exactly."""

    code: str | None = None
    message: str = ""
    details: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _text(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"message": data}
        if isinstance(data, dict) and data.get("details") is not None:
            details = data["details"]
            if not isinstance(details, str):
                return {**data, "details": str(details)}
        return data

    def as_error(self) -> KalshiError:
        """The typed refusal this item's error means (by exact code)."""
        kind = CODE_CLASSES.get(self.code, RequestRejectedError) if self.code else None
        kind = kind or RequestRejectedError
        return kind(self.message or self.code or "refused", code=self.code, details=self.details)


class CreateOrderResult(_Model):
    """Create's 201 (and a batch item's result). **201 is not "resting"**: read the counts.
    ``average_fill_price``/``average_fee_paid`` exist only once something filled."""

    order_id: str
    fill_count: OptionalCount = _count("fill_count")
    remaining_count: OptionalCount = _count("remaining_count")
    ts_ms: int | None = None
    client_order_id: str | None = None
    average_fill_price: ExactDecimal | None = None
    average_fee_paid: ExactDecimal | None = None

    @model_validator(mode="after")
    def _averages_need_fills(self) -> CreateOrderResult:
        if not self.fill_count and (
            self.average_fill_price is not None or self.average_fee_paid is not None
        ):
            object.__setattr__(self, "average_fill_price", None)
            object.__setattr__(self, "average_fee_paid", None)
        return self

    @property
    def filled(self) -> Decimal:
        return self.fill_count or _ZERO

    @property
    def resting(self) -> Decimal:
        return self.remaining_count or _ZERO


class AmendOrderResult(CreateOrderResult):
    """Amend's 200: the create fields, all optional but ``order_id`` (and ``ts_ms``)."""


class CancelOrderResult(_Model):
    """Cancel's 200: ``reduced_by`` is the count the cancel took off the book."""

    order_id: str
    reduced_by: OptionalCount = _count("reduced_by")
    ts_ms: int | None = None
    client_order_id: str | None = None


class DecreaseOrderResult(_Model):
    order_id: str
    remaining_count: OptionalCount = _count("remaining_count")
    ts_ms: int | None = None
    client_order_id: str | None = None


class BatchCreateItem(_Model):
    """One item of a batch create, in request order: a result, or ``error`` (its siblings
    still went through)."""

    order_id: str | None = None
    fill_count: OptionalCount = _count("fill_count")
    remaining_count: OptionalCount = _count("remaining_count")
    ts_ms: int | None = None
    client_order_id: str | None = None
    average_fill_price: ExactDecimal | None = None
    average_fee_paid: ExactDecimal | None = None
    error: ItemError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.order_id is not None


class BatchCancelItem(_Model):
    order_id: str | None = None
    reduced_by: OptionalCount = _count("reduced_by")
    client_order_id: str | None = None
    ts_ms: int | None = None
    error: ItemError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _first(*names: str) -> Any:
    return Field(default=None, validation_alias=AliasChoices(*names))


class Fill(_Model):
    """One fill (``GET /portfolio/fills``). No ``client_order_id``: join on ``order_id``."""

    fill_id: str = Field(validation_alias=AliasChoices("fill_id", "trade_id"))
    trade_id: str | None = None
    order_id: str
    ticker: str | None = _first("ticker", "market_ticker")
    exchange_index: int | None = None
    outcome_side: str | None = None
    book_side: str | None = None
    count_fp: NonNegativeDecimal = Field(validation_alias=AliasChoices("count_fp", "count"))
    yes_price_dollars: ExactDecimal | None = None
    no_price_dollars: ExactDecimal | None = None
    is_taker: bool | None = None
    fee_cost: ExactDecimal | None = None
    created_time: OptionalTime = None
    subaccount_number: int | None = None
    ts: int | None = None


class Settlement(_Model):
    """One settlement (``GET /portfolio/settlements``); ``revenue``/``value`` are cents."""

    ticker: str
    exchange_index: int | None = None
    event_ticker: str | None = None
    market_result: str | None = None
    yes_count_fp: ExactDecimal = _ZERO
    yes_total_cost_dollars: ExactDecimal = _ZERO
    no_count_fp: ExactDecimal = _ZERO
    no_total_cost_dollars: ExactDecimal = _ZERO
    revenue: int = 0
    settled_time: OptionalTime = None
    fee_cost: ExactDecimal | None = None
    value: int | None = None
