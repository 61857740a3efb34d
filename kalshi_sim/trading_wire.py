"""JSON shapes of the trading wire: engine views -> Kalshi's REST bodies and WS ``msg`` objects.

Why one module: the same order, fill or position is described by several endpoints and
channels (a REST order and a ``user_order`` frame, a REST fill and a ``fill`` frame), and
the fields that must agree (prices, counts, ids) should be rendered in exactly one place.
Counts are 2-decimal ``_fp`` strings, dollars up to 6 decimals; prices are YES prices with
the NO price beside them (§8.1, §3.8).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kalshi_api.fixed_point import MICROS_PER_DOLLAR, format_count, format_dollars
from kalshi_sim.engine_types import (
    EngineOrder,
    Fill,
    GroupEvent,
    OrderGroup,
    Outcome,
    Position,
    Settlement,
    Trade,
)

MICROS_PER_CENT = MICROS_PER_DOLLAR // 100
USER_ID = "sim-user"


def iso_ms(ms: int | None) -> str | None:
    """Milliseconds since the epoch -> RFC 3339 UTC with ``Z`` (None stays None)."""
    if ms is None:
        return None
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _d6(micros: int) -> str:
    return format_dollars(micros, places=6)


def _direction(side: str) -> dict[str, str]:
    """The deprecated ``side``/``action`` pair beside ``outcome_side``/``book_side``."""
    if side == "bid":
        return {"outcome_side": "yes", "book_side": "bid", "side": "yes", "action": "buy"}
    return {"outcome_side": "no", "book_side": "ask", "side": "no", "action": "buy"}


def order_json(order: EngineOrder, legacy: tuple[str, str] | None = None) -> dict[str, Any]:
    """A REST ``Order`` (``GET /portfolio/orders``, ``/portfolio/orders/{id}``, group reads).

    ``legacy``: the deprecated ``(action, side)`` the order was created with, when known (a
    v1-style fixture order); otherwise they are derived from the book side."""
    direction = _direction(order.side)
    if legacy is not None:
        direction["action"], direction["side"] = legacy
    return {
        "order_id": order.order_id,
        "user_id": USER_ID,
        "client_order_id": order.client_order_id or "",
        "ticker": order.ticker,
        **direction,
        "type": "limit",
        "status": order.status,
        "yes_price_dollars": format_dollars(order.price_micros),
        "no_price_dollars": format_dollars(order.no_price_micros),
        "fill_count_fp": format_count(order.fill_centi),
        "remaining_count_fp": format_count(order.remaining_centi),
        "initial_count_fp": format_count(order.initial_centi),
        "taker_fees_dollars": _d6(order.taker_fees_micros),
        "maker_fees_dollars": _d6(order.maker_fees_micros),
        "taker_fill_cost_dollars": _d6(order.taker_fill_cost_micros),
        "maker_fill_cost_dollars": _d6(order.maker_fill_cost_micros),
        "expiration_time": (
            iso_ms(order.expiration_time_s * 1000) if order.expiration_time_s else None
        ),
        "created_time": iso_ms(order.created_ms),
        "last_update_time": iso_ms(order.last_update_ms),
        "last_update_reason": order.last_update_reason,
        "time_in_force": order.time_in_force,
        "self_trade_prevention_type": order.self_trade_prevention_type,
        "post_only": order.post_only,
        "reduce_only": order.reduce_only,
        "order_group_id": order.order_group_id,
        "cancel_order_on_pause": order.cancel_order_on_pause,
        "subaccount_number": order.subaccount,
        "exchange_index": order.exchange_index,
    }


def _averages(fills: list[Fill]) -> dict[str, str]:
    """``average_fill_price`` / ``average_fee_paid`` per contract, only when something filled."""
    filled = sum(f.count_centi for f in fills)
    if filled <= 0:
        return {}
    cost = sum(f.count_centi * f.yes_price_micros for f in fills)
    fees = sum(f.fee_micros for f in fills)
    return {
        "average_fill_price": _d6(cost // filled),
        "average_fee_paid": _d6(fees * 100 // filled),
    }


def create_reply(outcome: Outcome) -> dict[str, Any]:
    """``POST /portfolio/events/orders`` (201) and each successful batch item."""
    order = outcome.order
    assert order is not None
    own = [f for f in outcome.fills if f.order_id == order.order_id]
    body: dict[str, Any] = {
        "order_id": order.order_id,
        "fill_count": format_count(sum(f.count_centi for f in own)),
        "remaining_count": format_count(order.remaining_centi),
        "ts_ms": outcome.ts_ms,
    }
    if order.client_order_id:
        body["client_order_id"] = order.client_order_id
    body.update(_averages(own))
    return body


def cancel_reply(outcome: Outcome, reduced_centi: int) -> dict[str, Any]:
    """``DELETE /portfolio/events/orders/{id}``: ``reduced_by`` = what was still resting."""
    order = outcome.order
    assert order is not None
    body: dict[str, Any] = {
        "order_id": order.order_id,
        "reduced_by": format_count(reduced_centi),
        "ts_ms": outcome.ts_ms,
    }
    if order.client_order_id:
        body["client_order_id"] = order.client_order_id
    return body


def amend_reply(outcome: Outcome) -> dict[str, Any]:
    """``POST …/{id}/amend``: the create fields (only ``order_id`` and ``ts_ms`` required)."""
    return create_reply(outcome)


def decrease_reply(outcome: Outcome) -> dict[str, Any]:
    order = outcome.order
    assert order is not None
    body: dict[str, Any] = {
        "order_id": order.order_id,
        "remaining_count": format_count(order.remaining_centi),
        "ts_ms": outcome.ts_ms,
    }
    if order.client_order_id:
        body["client_order_id"] = order.client_order_id
    return body


def fill_json(fill: Fill) -> dict[str, Any]:
    """A REST fill (``GET /portfolio/fills``): no ``client_order_id`` [P-fills]."""
    return {
        "fill_id": fill.fill_id,
        "trade_id": fill.fill_id,
        "order_id": fill.order_id,
        "ticker": fill.ticker,
        "market_ticker": fill.ticker,
        "exchange_index": fill.exchange_index,
        "outcome_side": fill.outcome_side,
        "book_side": fill.side,
        "side": fill.outcome_side,
        "action": "buy",
        "count_fp": format_count(fill.count_centi),
        "yes_price_dollars": format_dollars(fill.yes_price_micros),
        "no_price_dollars": format_dollars(fill.no_price_micros),
        "is_taker": fill.is_taker,
        "fee_cost": _d6(fill.fee_micros),
        "created_time": iso_ms(fill.ts_ms),
        "subaccount_number": fill.subaccount,
        "ts": fill.ts_ms // 1000,
    }


def position_json(position: Position) -> dict[str, Any]:
    return {
        "ticker": position.ticker,
        "exchange_index": position.exchange_index,
        "total_traded_dollars": format_dollars(position.total_traded_micros),
        "position_fp": format_count(position.position_centi),
        "market_exposure_dollars": format_dollars(position.cost_micros),
        "realized_pnl_dollars": format_dollars(position.realized_pnl_micros),
        "fees_paid_dollars": format_dollars(position.fees_paid_micros),
        "last_updated_ts": iso_ms(position.last_update_ms),
    }


def settlement_json(settlement: Settlement) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ticker": settlement.ticker,
        "exchange_index": settlement.exchange_index,
        "event_ticker": settlement.event_ticker,
        "market_result": settlement.market_result,
        "yes_count_fp": format_count(settlement.yes_count_centi),
        "yes_total_cost_dollars": format_dollars(settlement.yes_total_cost_micros),
        "no_count_fp": format_count(settlement.no_count_centi),
        "no_total_cost_dollars": format_dollars(settlement.no_total_cost_micros),
        "revenue": settlement.revenue_micros // MICROS_PER_CENT,
        "settled_time": iso_ms(settlement.settled_ms),
        "fee_cost": _d6(settlement.fee_cost_micros),
    }
    if settlement.market_result in ("yes", "no"):
        body["value"] = 100 if settlement.market_result == "yes" else 0
    return body


def group_list_json(group: OrderGroup) -> dict[str, Any]:
    """An entry of ``GET /portfolio/order_groups`` (the list says ``id``)."""
    return {
        "id": group.order_group_id,
        "contracts_limit_fp": format_count(group.contracts_limit_centi),
        "contracts_limit": group.contracts_limit_centi // 100,
        "is_auto_cancel_enabled": group.triggered,
        "subaccount": group.subaccount,
        "exchange_index": group.exchange_index,
    }


def group_json(group: OrderGroup, orders: list[EngineOrder]) -> dict[str, Any]:
    """``GET /portfolio/order_groups/{id}``."""
    return {
        "is_auto_cancel_enabled": group.triggered,
        "orders": [order_json(o) for o in orders],
        "contracts_limit_fp": format_count(group.contracts_limit_centi),
        "exchange_index": group.exchange_index,
    }


# -- WebSocket msg objects (§3.8, §8.7) -------------------------------------------------------
def ws_fill(fill: Fill) -> dict[str, Any]:
    """A ``fill`` frame's msg. ``trade_id`` is the member's ``fill_id``, as on REST fills, so a
    client dedupes WS and REST fills on one key (§8.7); ``fill_id`` repeats it."""
    msg: dict[str, Any] = {
        "trade_id": fill.fill_id,
        "fill_id": fill.fill_id,
        "order_id": fill.order_id,
        "market_ticker": fill.ticker,
        "exchange_index": fill.exchange_index,
        "is_taker": fill.is_taker,
        "side": fill.outcome_side,
        "yes_price_dollars": format_dollars(fill.yes_price_micros),
        "count_fp": format_count(fill.count_centi),
        "fee_cost": _d6(fill.fee_micros),
        "action": "buy",
        "outcome_side": fill.outcome_side,
        "book_side": fill.side,
        "post_position_fp": format_count(fill.post_position_centi),
        "purchased_side": fill.outcome_side,
        "ts": fill.ts_ms // 1000,
        "ts_ms": fill.ts_ms,
        "subaccount": fill.subaccount,
    }
    if fill.client_order_id:
        msg["client_order_id"] = fill.client_order_id
    return msg


def ws_user_order(order: EngineOrder) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "order_id": order.order_id,
        "user_id": USER_ID,
        "ticker": order.ticker,
        "exchange_index": order.exchange_index,
        "status": order.status,
        "side": order.outcome_side,
        "is_yes": order.side == "bid",
        "outcome_side": order.outcome_side,
        "book_side": order.side,
        "yes_price_dollars": format_dollars(order.price_micros),
        "fill_count_fp": format_count(order.fill_centi),
        "remaining_count_fp": format_count(order.remaining_centi),
        "initial_count_fp": format_count(order.initial_centi),
        "taker_fill_cost_dollars": _d6(order.taker_fill_cost_micros),
        "maker_fill_cost_dollars": _d6(order.maker_fill_cost_micros),
        "taker_fees_dollars": _d6(order.taker_fees_micros),
        "maker_fees_dollars": _d6(order.maker_fees_micros),
        "client_order_id": order.client_order_id or "",
        "self_trade_prevention_type": order.self_trade_prevention_type,
        "created_ts_ms": order.created_ms,
        "last_updated_ts_ms": order.last_update_ms,
        "subaccount_number": order.subaccount,
    }
    if order.order_group_id:
        msg["order_group_id"] = order.order_group_id
    if order.expiration_time_s:
        msg["expiration_ts_ms"] = order.expiration_time_s * 1000
    if order.last_update_reason:
        msg["last_update_reason"] = order.last_update_reason
    return msg


def ws_market_position(position: Position) -> dict[str, Any]:
    return {
        "user_id": USER_ID,
        "market_ticker": position.ticker,
        "position_fp": format_count(position.position_centi),
        "position_cost_dollars": format_dollars(position.cost_micros),
        "realized_pnl_dollars": format_dollars(position.realized_pnl_micros),
        "fees_paid_dollars": format_dollars(position.fees_paid_micros),
        "position_fee_cost_dollars": format_dollars(position.fees_paid_micros),
        "volume_fp": format_count(abs(position.position_centi)),
        "subaccount": position.subaccount,
        "exchange_index": position.exchange_index,
    }


def ws_group_update(event: GroupEvent) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "event_type": event.event_type,
        "order_group_id": event.order_group_id,
        "ts_ms": event.ts_ms,
    }
    if event.contracts_limit_centi is not None:
        msg["contracts_limit_fp"] = format_count(event.contracts_limit_centi)
    return msg


def ws_trade(trade: Trade) -> dict[str, Any]:
    return {
        "trade_id": trade.trade_id,
        "market_ticker": trade.ticker,
        "yes_price_dollars": format_dollars(trade.yes_price_micros),
        "no_price_dollars": format_dollars(trade.no_price_micros),
        "count_fp": format_count(trade.count_centi),
        "taker_side": trade.taker_side,
        "taker_outcome_side": trade.taker_side,
        "taker_book_side": "bid" if trade.taker_side == "yes" else "ask",
        "is_block_trade": False,
        "ts": trade.ts_ms // 1000,
        "ts_ms": trade.ts_ms,
    }
