"""The private trading channels' frames as frozen, typed events, parsed exactly.

Why typed and exact: these frames move money (fills, order states, positions), so every
price, cost and fee becomes integer micro-dollars and every count integer centi-contracts
(:mod:`kalshi_api.fixed_point`), never a float. Why tolerant: Kalshi adds fields without
notice and marks others deprecated or optional (protocol §3.8, §8.7), so only the fields a
consumer cannot act without are required; unknown extra fields are ignored and absent
optional ones are None. A field that is present but of the wrong shape is an error (the
frame is counted as bad), never silently read as something else.

Field names follow the wire (``yes_price_dollars`` -> ``yes_price`` in micro-dollars,
``count_fp`` -> ``count`` in centi-contracts). ``user_order`` frames name the market
``ticker``; the event calls it ``market_ticker`` like every other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kalshi_api.fixed_point import parse_count, parse_dollars

__all__ = [
    "Fill",
    "MarketPosition",
    "OrderGroupGap",
    "OrderGroupUpdate",
    "PrivateConnected",
    "PrivateFrameError",
    "UserOrder",
    "parse_fill",
    "parse_market_position",
    "parse_order_group_update",
    "parse_user_order",
]


class PrivateFrameError(ValueError):
    """A private-channel frame we cannot read (a required field absent or misshapen)."""


# -- events --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PrivateConnected:
    """Every private channel answered its subscribe on a new session (or after a terminal
    error was repaired): events may have been missed since the last one, and these
    channels carry no seq, so the owner reconciles by REST now (protocol §8.10).

    ``session`` counts connections (1 = first); ``refused`` are channels the exchange
    refused (one-line reasons in the log), ``channels`` the ones subscribed."""

    session: int
    channels: tuple[str, ...]
    refused: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Fill:
    """One ``fill`` (channel ``fill``): a trade of one of our orders. Dedupe by ``trade_id``."""

    trade_id: str
    order_id: str
    market_ticker: str
    yes_price: int
    """Micro-dollars."""
    count: int
    """Centi-contracts."""
    client_order_id: str | None = None
    is_taker: bool | None = None
    fee_cost: int | None = None
    """Micro-dollars."""
    outcome_side: str | None = None
    book_side: str | None = None
    side: str | None = None
    """Deprecated on the wire (``yes``/``no``); kept for older payloads."""
    action: str | None = None
    """Deprecated on the wire (``buy``/``sell``)."""
    post_position: int | None = None
    """Centi-contracts after this fill (signed)."""
    exchange_index: int | None = None
    ts_ms: int | None = None
    subaccount: int | None = None
    fill_id: str | None = None
    """This member's fill (REST's ``fill_id``); ``trade_id`` may name the whole trade, both
    sides of it, so ``fill_id`` is the key that matches a REST fill when it is sent."""


@dataclass(frozen=True, slots=True)
class UserOrder:
    """One ``user_order`` (channel ``user_orders``): an order's state after a create, fill,
    cancel or other update. Match to a pending order by ``client_order_id``, then ``order_id``."""

    order_id: str
    market_ticker: str
    status: str
    """``resting``, ``canceled``, ``executed`` or ``unknown`` (other values kept as sent)."""
    client_order_id: str | None = None
    yes_price: int | None = None
    fill_count: int | None = None
    remaining_count: int | None = None
    initial_count: int | None = None
    taker_fill_cost: int | None = None
    maker_fill_cost: int | None = None
    taker_fees: int | None = None
    maker_fees: int | None = None
    outcome_side: str | None = None
    book_side: str | None = None
    side: str | None = None
    order_group_id: str | None = None
    self_trade_prevention_type: str | None = None
    last_update_reason: str | None = None
    exchange_index: int | None = None
    created_ts_ms: int | None = None
    last_updated_ts_ms: int | None = None
    expiration_ts_ms: int | None = None
    subaccount_number: int | None = None
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class MarketPosition:
    """One ``market_position`` (channel ``market_positions``): our position in a market."""

    market_ticker: str
    position: int
    """Centi-contracts, signed."""
    position_cost: int | None = None
    realized_pnl: int | None = None
    fees_paid: int | None = None
    position_fee_cost: int | None = None
    volume: int | None = None
    subaccount: int | None = None
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class OrderGroupUpdate:
    """One ``order_group_updates`` frame (seq-checked per sid)."""

    sid: int
    seq: int
    event_type: str
    """``created``, ``triggered``, ``reset``, ``deleted`` or ``limit_updated``."""
    order_group_id: str
    contracts_limit: int | None = None
    """Centi-contracts."""
    ts_ms: int | None = None


@dataclass(frozen=True, slots=True)
class OrderGroupGap:
    """``order_group_updates`` lost data on ``sid``: ``received`` is not ``expected``
    (``reason`` ``"seq"``), or a frame that consumed a seq was unreadable (``"bad_frame"``).
    The owner reconciles its order groups by REST."""

    sid: int
    expected: int
    received: int
    reason: str = "seq"


# -- parsing -------------------------------------------------------------------------------
def parse_fill(msg: Any) -> Fill:
    m = _object(msg)
    return Fill(
        trade_id=_text(m, "trade_id"),
        order_id=_text(m, "order_id"),
        market_ticker=_text(m, "market_ticker"),
        yes_price=_dollars(m, "yes_price_dollars"),
        count=_count(m, "count_fp"),
        client_order_id=_opt_text(m, "client_order_id"),
        is_taker=_opt_bool(m, "is_taker"),
        fee_cost=_opt_dollars(m, "fee_cost"),
        outcome_side=_opt_text(m, "outcome_side"),
        book_side=_opt_text(m, "book_side"),
        side=_opt_text(m, "side"),
        action=_opt_text(m, "action"),
        post_position=_opt_count(m, "post_position_fp"),
        exchange_index=_opt_int(m, "exchange_index"),
        ts_ms=_opt_int(m, "ts_ms"),
        subaccount=_opt_int(m, "subaccount"),
        fill_id=_opt_text(m, "fill_id"),
    )


def parse_user_order(msg: Any) -> UserOrder:
    m = _object(msg)
    return UserOrder(
        order_id=_text(m, "order_id"),
        market_ticker=_text(m, "ticker"),
        status=_text(m, "status"),
        client_order_id=_opt_text(m, "client_order_id"),
        yes_price=_opt_dollars(m, "yes_price_dollars"),
        fill_count=_opt_count(m, "fill_count_fp"),
        remaining_count=_opt_count(m, "remaining_count_fp"),
        initial_count=_opt_count(m, "initial_count_fp"),
        taker_fill_cost=_opt_dollars(m, "taker_fill_cost_dollars"),
        maker_fill_cost=_opt_dollars(m, "maker_fill_cost_dollars"),
        taker_fees=_opt_dollars(m, "taker_fees_dollars"),
        maker_fees=_opt_dollars(m, "maker_fees_dollars"),
        outcome_side=_opt_text(m, "outcome_side"),
        book_side=_opt_text(m, "book_side"),
        side=_opt_text(m, "side"),
        order_group_id=_opt_text(m, "order_group_id"),
        self_trade_prevention_type=_opt_text(m, "self_trade_prevention_type"),
        last_update_reason=_opt_text(m, "last_update_reason"),
        exchange_index=_opt_int(m, "exchange_index"),
        created_ts_ms=_opt_int(m, "created_ts_ms"),
        last_updated_ts_ms=_opt_int(m, "last_updated_ts_ms"),
        expiration_ts_ms=_opt_int(m, "expiration_ts_ms"),
        subaccount_number=_opt_int(m, "subaccount_number"),
        user_id=_opt_text(m, "user_id"),
    )


def parse_market_position(msg: Any) -> MarketPosition:
    m = _object(msg)
    return MarketPosition(
        market_ticker=_text(m, "market_ticker"),
        position=_count(m, "position_fp"),
        position_cost=_opt_dollars(m, "position_cost_dollars"),
        realized_pnl=_opt_dollars(m, "realized_pnl_dollars"),
        fees_paid=_opt_dollars(m, "fees_paid_dollars"),
        position_fee_cost=_opt_dollars(m, "position_fee_cost_dollars"),
        volume=_opt_count(m, "volume_fp"),
        subaccount=_opt_int(m, "subaccount"),
        user_id=_opt_text(m, "user_id"),
    )


def parse_order_group_update(sid: int, seq: int, msg: Any) -> OrderGroupUpdate:
    m = _object(msg)
    return OrderGroupUpdate(
        sid=sid,
        seq=seq,
        event_type=_text(m, "event_type"),
        order_group_id=_text(m, "order_group_id"),
        contracts_limit=_opt_count(m, "contracts_limit_fp"),
        ts_ms=_opt_int(m, "ts_ms"),
    )


# -- field readers -------------------------------------------------------------------------
def _object(msg: Any) -> dict[str, Any]:
    if type(msg) is not dict:
        raise PrivateFrameError("msg must be an object")
    return msg


def _text(m: dict[str, Any], key: str) -> str:
    value = m.get(key)
    if type(value) is not str or not value:
        raise PrivateFrameError(f"{key} must be a non-empty string")
    return value


def _opt_text(m: dict[str, Any], key: str) -> str | None:
    value = m.get(key)
    if value is None:
        return None
    if type(value) is not str:
        raise PrivateFrameError(f"{key} must be a string")
    return value


def _opt_int(m: dict[str, Any], key: str) -> int | None:
    value = m.get(key)
    if value is None:
        return None
    if type(value) is not int:
        raise PrivateFrameError(f"{key} must be an integer")
    return value


def _opt_bool(m: dict[str, Any], key: str) -> bool | None:
    value = m.get(key)
    if value is None:
        return None
    if type(value) is not bool:
        raise PrivateFrameError(f"{key} must be true or false")
    return value


def _dollars(m: dict[str, Any], key: str) -> int:
    value = _opt_dollars(m, key)
    if value is None:
        raise PrivateFrameError(f"{key} is required")
    return value


def _opt_dollars(m: dict[str, Any], key: str) -> int | None:
    value = m.get(key)
    if value is None:
        return None
    try:
        return parse_dollars(value)
    except ValueError as exc:
        raise PrivateFrameError(f"{key}: {exc}") from None


def _count(m: dict[str, Any], key: str) -> int:
    value = _opt_count(m, key)
    if value is None:
        raise PrivateFrameError(f"{key} is required")
    return value


def _opt_count(m: dict[str, Any], key: str) -> int | None:
    value = m.get(key)
    if value is None:
        return None
    try:
        return parse_count(value)
    except ValueError as exc:
        raise PrivateFrameError(f"{key}: {exc}") from None
