"""Adopting resting orders this process did not place (``--startup-orders adopt``).

The trading stage applies the startup policy at connect: under ``adopt`` it keeps every
resting order it found (ours from an earlier process, and orders this installation never
placed) and hands them on in ``TradingConnected.open_orders``. The gateway then adopts
those it does not track at its next reconciliation: each becomes an ``OrderRecord`` owned
by ``ADOPTED_SERVICE``, so it shows in ``trading_status`` and ``/status``, its fills go into
positions and P&L, reconciliation knows it, and a halt cancels it and verifies.

An adopted order keeps the exchange's ``client_order_id`` as its tracking id (so events
naming it route to it), and the id allocator is moved past it; one without a usable id is
tracked as ``adopted-{order_id}``, which no allocator can produce (``trading.ids``: our ids
are ``{prefix}-{16 hex}-{seq}``). An order that cannot be read as an intent (a price
beyond four decimal places, a zero size) is not adopted: reconciliation reports it, as
before adoption.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from actors.gateway_config import ADOPTED_SERVICE
from messages.orders import CLIENT_ORDER_ID_PATTERN, ExchangeOrder, OrderIntent
from messages.results import TradingConnected
from trading.tracker import OrderTracker

_CID = re.compile(CLIENT_ORDER_ID_PATTERN)
SYNTHETIC_PREFIX = "adopted-"


def tracking_id(order: ExchangeOrder, tracker: OrderTracker) -> str:
    """The id an adopted order is tracked under: its own, else ``adopted-{order_id}``."""
    cid = order.client_order_id
    if cid and _CID.fullmatch(cid) and tracker.get(cid) is None:
        return cid
    synthetic = f"{SYNTHETIC_PREFIX}{order.order_id}"
    if not _CID.fullmatch(synthetic):  # an order id too long or oddly spelled: its digest
        synthetic = SYNTHETIC_PREFIX + hashlib.sha256(order.order_id.encode()).hexdigest()[:48]
    return synthetic


def intent_of(order: ExchangeOrder) -> OrderIntent:
    """The intent an adopted order stands for (ValueError when it cannot be one)."""
    count = order.initial_count or order.fill_count + order.remaining_count
    return OrderIntent(service=ADOPTED_SERVICE, ticker=order.ticker, side=order.side,
                       count=count, price=order.price)


def adoptable(connection: TradingConnected | None) -> set[str]:
    """Order ids the trading stage adopted at its last connect (``--startup-orders adopt``);
    empty under any other policy."""
    if connection is None or connection.startup_policy != "adopt":
        return set()
    return {o.order_id for o in connection.open_orders}


def to_adopt(
    resting: Iterable[ExchangeOrder], tracker: OrderTracker, adoptable: set[str]
) -> list[ExchangeOrder]:
    """Resting orders the stage adopted (``adoptable``: their order ids) not yet tracked."""
    return [
        o for o in resting
        if o.order_id in adoptable
        and tracker.by_order_id(o.order_id) is None
        and (o.client_order_id is None or tracker.get(o.client_order_id) is None)
    ]
