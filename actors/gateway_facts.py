"""The exchange's facts, as the protocol layer reads them, turned into the trading
vocabulary (``messages.orders``): one ``ExchangeOrder`` and one ``Fill`` whoever said it.

Why a module: REST orders and fills (exact ``Decimal`` dollars and contracts) and the
private channels' events (integer micro-dollars and centi-contracts) describe the same
things; the order state machine must not care which one spoke. Exact throughout: integers
are scaled by powers of ten, never divided as floats.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from kalshi_api import models as rest
from kalshi_api import order_models
from kalshi_api import private_events as ws
from messages.orders import ExchangeOrder, Fill, Side

ZERO = Decimal(0)


def micros(value: int) -> Decimal:
    """Integer micro-dollars -> dollars, exactly."""
    return Decimal(value).scaleb(-6)


def centis(value: int) -> Decimal:
    """Integer centi-contracts -> contracts, exactly."""
    return Decimal(value).scaleb(-2)


def book_side(
    book: str | None, outcome: str | None = None, side: str | None = None, action: str | None = None
) -> Side:
    """The YES leg (``bid``/``ask``) from ``book_side``, or the older fields: buying YES or
    selling NO is a bid; selling YES or buying NO is an ask."""
    if book in ("bid", "ask"):
        return book  # type: ignore[return-value]
    leg = outcome or side
    if leg in ("yes", "no"):
        selling = action == "sell"
        return "bid" if (leg == "yes") != selling else "ask"
    raise ValueError(f"cannot tell the order's side from {book!r}/{leg!r}/{action!r}")


def _ms(when: datetime | None) -> int | None:
    return None if when is None else int(when.timestamp() * 1000)


def from_rest_order(order: rest.Order) -> ExchangeOrder:
    price = order.yes_price_dollars
    if price is None and order.no_price_dollars is not None:
        price = Decimal(1) - order.no_price_dollars
    return ExchangeOrder(
        order_id=order.order_id,
        client_order_id=order.client_order_id,
        ticker=order.ticker,
        side=book_side(order.book_side, order.outcome_side, order.side, order.action),
        price=price if price is not None else ZERO,
        status=order.status if order.status in ("resting", "canceled", "executed") else "unknown",
        fill_count=order.fill_count_fp,
        remaining_count=order.remaining_count_fp,
        initial_count=order.initial_count_fp or None,
        last_update_reason=order.last_update_reason,
        ts_ms=_ms(order.last_update_time or order.created_time),
    )


def from_rest_fill(fill: order_models.Fill) -> Fill:
    price = fill.yes_price_dollars
    if price is None and fill.no_price_dollars is not None:
        price = Decimal(1) - fill.no_price_dollars
    return Fill(
        trade_id=fill.fill_id,
        order_id=fill.order_id,
        ticker=fill.ticker or "",
        side=book_side(fill.book_side, fill.outcome_side),
        count=fill.count_fp,
        price=price if price is not None else ZERO,
        fee=fill.fee_cost or ZERO,
        is_taker=bool(fill.is_taker),
        ts_ms=_ms(fill.created_time),
    )


def from_ws_fill(fill: ws.Fill) -> Fill:
    """``fill_id`` first: it is what REST calls the fill (``trade_id`` may be the trade's,
    shared by both sides), so the two copies of one fill dedupe."""
    return Fill(
        trade_id=fill.fill_id or fill.trade_id,
        order_id=fill.order_id,
        client_order_id=fill.client_order_id,
        ticker=fill.market_ticker,
        side=book_side(fill.book_side, fill.outcome_side, fill.side, fill.action),
        count=centis(fill.count),
        price=micros(fill.yes_price),
        fee=micros(fill.fee_cost or 0),
        is_taker=bool(fill.is_taker),
        ts_ms=fill.ts_ms,
    )


def from_user_order(order: ws.UserOrder) -> ExchangeOrder:
    status = order.status if order.status in ("resting", "canceled", "executed") else "unknown"
    return ExchangeOrder(
        order_id=order.order_id,
        client_order_id=order.client_order_id,
        ticker=order.market_ticker,
        side=book_side(order.book_side, order.outcome_side, order.side),
        price=micros(order.yes_price or 0),
        status=status,  # type: ignore[arg-type]
        fill_count=centis(order.fill_count or 0),
        remaining_count=centis(order.remaining_count or 0),
        initial_count=centis(order.initial_count) if order.initial_count is not None else None,
        last_update_reason=order.last_update_reason,
        ts_ms=order.last_updated_ts_ms or order.created_ts_ms,
    )
