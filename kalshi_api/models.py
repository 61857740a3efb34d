"""Frozen pydantic models of the REST responses the supervisor reads (2026 shapes).

Two rules shape this module:

* ``extra="ignore"``: Kalshi adds fields every few weeks; a client that rejects unknown
  fields breaks on a Tuesday for no reason. Optional fields default, so a field Kalshi
  stops sending (Go services omit zero values) does not break us either.
* Money and counts are exact. ``_dollars`` and ``_fp`` strings become ``Decimal`` via a
  validator that refuses JSON floats outright: pydantic would otherwise accept ``0.1`` and
  hand back ``Decimal('0.1000000000000000055511151231257827021181583404541015625')``
  (or silently round), which is exactly the corruption fixed-point strings exist to avoid.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Self, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, field_validator
from pydantic_core import PydanticCustomError

from kalshi_api.fixed_point import parse_count, parse_dollars

_DECIMAL_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


def _exact_decimal(value: object) -> Decimal:
    """A Decimal from a decimal string, an int or a finite Decimal; floats are refused."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("decimal must be finite")
        return value
    if isinstance(value, bool):
        raise ValueError("expected a decimal string, got a boolean")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        text = value.strip()
        if _DECIMAL_TEXT.fullmatch(text) is None:
            raise ValueError(f"not a plain decimal string: {value[:40]!r}")
        return Decimal(text)
    if isinstance(value, float):
        raise ValueError("floats are not accepted for exact money/count fields (send a string)")
    raise ValueError(f"expected a decimal string, got {type(value).__name__}")


def _empty_to_none(value: object) -> object:
    return None if value == "" else value


def _none_to_empty(value: object) -> object:
    return () if value is None else value


ExactDecimal = Annotated[Decimal, BeforeValidator(_exact_decimal)]
"""A ``Decimal`` parsed exactly from Kalshi's fixed-point strings (or ints); never a float."""

IMPOSSIBLE_VALUE = "impossible_value"
"""Validation error type of a value no honest exchange sends: the client's protocol error."""

_N = TypeVar("_N", int, Decimal)


def _not_negative(value: _N) -> _N:
    if value < 0:
        raise PydanticCustomError(
            IMPOSSIBLE_VALUE,
            "impossible value {value}: must not be negative",
            {"value": str(value)},
        )
    return value


NonNegativeInt = Annotated[int, AfterValidator(_not_negative)]
NonNegativeDecimal = Annotated[ExactDecimal, AfterValidator(_not_negative)]

OptionalTime = Annotated[datetime | None, BeforeValidator(_empty_to_none)]
Level = tuple[ExactDecimal, ExactDecimal]
"""One book level: ``(price_dollars, count)``."""
Levels = Annotated[tuple[Level, ...], BeforeValidator(_none_to_empty)]

_ZERO = Decimal(0)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


# -- exchange ---------------------------------------------------------------------------------
class ExchangeIndexStatus(_Model):
    exchange_index: int = 0
    description: str | None = None
    exchange_active: bool | None = None
    trading_active: bool | None = None
    intra_exchange_transfers_active: bool | None = None


class ExchangeStatus(_Model):
    """``GET /exchange/status``; the top-level flags describe exchange index 0.

    ``http_status`` is 503 when the exchange sent this body with a 503 (an exchange
    pause, [MP]); the client returns it as a status rather than raising, so callers can
    treat a pause as a condition to wait out, not as a failure.
    """

    exchange_active: bool
    trading_active: bool
    exchange_estimated_resume_time: OptionalTime = None
    intra_exchange_transfers_active: bool | None = None
    exchange_index_statuses: Annotated[
        tuple[ExchangeIndexStatus, ...], BeforeValidator(_none_to_empty)
    ] = ()
    http_status: int = 200

    @property
    def unavailable(self) -> bool:
        """The exchange answered with an error status (503) while describing itself."""
        return not 200 <= self.http_status <= 299

    @property
    def paused(self) -> bool:
        """Anything is paused: the whole exchange, trading, or trading on any shard."""
        return (
            self.unavailable
            or not self.exchange_active
            or not self.trading_active
            or any(s.trading_active is False for s in self.exchange_index_statuses)
        )

    def shard_indexes(self) -> tuple[int, ...]:
        """The shards the exchange lists (``(0,)`` when it lists none), ascending."""
        listed = sorted({s.exchange_index for s in self.exchange_index_statuses})
        return tuple(listed) or (0,)

    def trading_active_on(self, exchange_index: int) -> bool:
        """Whether orders are accepted on a shard: the exchange, trading and the shard agree."""
        if self.unavailable or not self.exchange_active or not self.trading_active:
            return False
        for shard in self.exchange_index_statuses:
            if shard.exchange_index == exchange_index:
                return shard.trading_active is not False and shard.exchange_active is not False
        return True


# -- portfolio --------------------------------------------------------------------------------
class Balance(_Model):
    """``GET /portfolio/balance``: ``balance``/``portfolio_value`` are integer cents.

    ``balance`` truncates sub-cent amounts; ``balance_dollars`` (added 2026-05-28) is exact.
    """

    balance: NonNegativeInt
    balance_dollars: NonNegativeDecimal | None = None
    portfolio_value: NonNegativeInt
    updated_ts: int | None = None


class MarketPosition(_Model):
    """One entry of ``market_positions``; ``position_fp`` > 0 holds YES, < 0 holds NO."""

    ticker: str
    position_fp: ExactDecimal
    market_exposure_dollars: NonNegativeDecimal = _ZERO
    realized_pnl_dollars: ExactDecimal = _ZERO
    fees_paid_dollars: ExactDecimal = _ZERO
    total_traded_dollars: NonNegativeDecimal = _ZERO
    last_updated_ts: OptionalTime = None
    exchange_index: int | None = None

    @property
    def position_centi(self) -> int:
        """The signed position in integer centi-contracts."""
        return parse_count(format(self.position_fp, "f"))


class Order(_Model):
    """One order from ``GET /portfolio/orders``.

    ``outcome_side``/``book_side`` are the 2026 direction fields; ``side``/``action`` are
    deprecated but still sent, so both are kept and both are optional.
    """

    order_id: str
    ticker: str
    status: str
    outcome_side: str | None = None
    book_side: str | None = None
    type: str | None = None
    yes_price_dollars: ExactDecimal | None = None
    no_price_dollars: ExactDecimal | None = None
    fill_count_fp: NonNegativeDecimal = _ZERO
    remaining_count_fp: NonNegativeDecimal = _ZERO
    initial_count_fp: NonNegativeDecimal = _ZERO
    client_order_id: str | None = None
    user_id: str | None = None
    created_time: OptionalTime = None
    last_update_time: OptionalTime = None
    expiration_time: OptionalTime = None
    side: str | None = None
    action: str | None = None
    order_group_id: str | None = None
    subaccount_number: int | None = None
    exchange_index: int | None = None
    time_in_force: str | None = None
    self_trade_prevention_type: str | None = None
    cancel_order_on_pause: bool | None = None
    last_update_reason: str | None = None
    taker_fees_dollars: ExactDecimal | None = None
    maker_fees_dollars: ExactDecimal | None = None
    taker_fill_cost_dollars: ExactDecimal | None = None
    maker_fill_cost_dollars: ExactDecimal | None = None


# -- markets ----------------------------------------------------------------------------------
class PriceRange(_Model):
    """One band of a market's tick grid: prices in ``[start, end]`` move by ``step``."""

    start: ExactDecimal
    end: ExactDecimal
    step: ExactDecimal


class Market(_Model):
    """A market listing; only ``ticker`` and ``status`` are needed to be useful.

    ``status`` is the response vocabulary (``active`` = tradable), not the ``open``
    used by the ``/markets`` status filter.
    """

    ticker: str
    status: str
    event_ticker: str | None = None
    market_type: str | None = None
    title: str | None = None
    yes_sub_title: str | None = None
    no_sub_title: str | None = None
    yes_bid_dollars: ExactDecimal | None = None
    yes_ask_dollars: ExactDecimal | None = None
    no_bid_dollars: ExactDecimal | None = None
    no_ask_dollars: ExactDecimal | None = None
    last_price_dollars: ExactDecimal | None = None
    yes_bid_size_fp: ExactDecimal | None = None
    yes_ask_size_fp: ExactDecimal | None = None
    volume_fp: ExactDecimal | None = None
    open_interest_fp: ExactDecimal | None = None
    price_level_structure: str | None = None
    price_ranges: Annotated[tuple[PriceRange, ...], BeforeValidator(_none_to_empty)] = ()
    open_time: OptionalTime = None
    close_time: OptionalTime = None
    result: str | None = None
    mve_collection_ticker: str | None = None
    exchange_index: int | None = None
    """The shard the market trades on (§7.2), when the listing says; None: not given."""


class RestOrderbook(_Model):
    """``GET /markets/{ticker}/orderbook``: bids only, ascending by price (best bid last).

    ``no_dollars`` is quoted on the NO leg (best YES ask = 1 - best NO bid). A missing or
    null side is an empty tuple. Levels are re-sorted on parse so "best is last" holds
    even if the exchange ever stops sorting.
    """

    ticker: str | None = None
    yes_dollars: Levels = ()
    no_dollars: Levels = ()

    @field_validator("yes_dollars", "no_dollars", mode="after")
    @classmethod
    def _ascending(cls, levels: tuple[Level, ...]) -> tuple[Level, ...]:
        return tuple(sorted(levels, key=lambda level: level[0]))

    @classmethod
    def from_response(cls, payload: Any, ticker: str | None = None) -> Self:
        """Validate a ``{"orderbook_fp": {...}}`` body (or the batch entry form with ``ticker``)."""
        if not isinstance(payload, dict):
            raise ValueError("orderbook response is not a JSON object")
        if "orderbook_fp" not in payload:
            # An empty book here would be a silent lie, e.g. on the pre-2026 ``orderbook`` shape.
            raise ValueError("response has no 'orderbook_fp' field")
        book = payload["orderbook_fp"]
        if book is None:
            book = {}
        if not isinstance(book, dict):
            raise ValueError("orderbook_fp is not a JSON object")
        return cls.model_validate({**book, "ticker": payload.get("ticker", ticker)})

    @property
    def best_yes_bid(self) -> Decimal | None:
        return self.yes_dollars[-1][0] if self.yes_dollars else None

    @property
    def best_no_bid(self) -> Decimal | None:
        return self.no_dollars[-1][0] if self.no_dollars else None

    def to_fixed(self) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]:
        """Both sides as ``(price_micros, size_centi)`` integers, as the book digest wants."""
        return _fixed(self.yes_dollars), _fixed(self.no_dollars)


def _fixed(levels: tuple[Level, ...]) -> tuple[tuple[int, int], ...]:
    return tuple(
        (parse_dollars(format(price, "f")), parse_count(format(size, "f")))
        for price, size in levels
    )
