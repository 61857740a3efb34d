"""Evicting finished orders never forgets an open one.

The tracker keeps finished orders up to ``max_finished`` (oldest evicted first). A rejection
finishes an order, but facts win over replies: if the exchange then shows the order exists
(a rejection it contradicted), the order is open again. Its old place in the eviction queue
must not evict it: a forgotten open order would rest at the exchange with nobody here to
cancel it, count against no limit, and be reported as unknown by reconciliation.
"""

from __future__ import annotations

from decimal import Decimal

from messages.orders import ExchangeOrder, OrderIntent, OrderStatus, PlaceRejected
from trading.order_state import REJECTION_CONTRADICTED
from trading.tracker import OrderTracker

PRICE = Decimal("0.42")


def _intent() -> OrderIntent:
    return OrderIntent(service="mm", ticker="KX-A", side="bid", count=Decimal(2), price=PRICE)


def _reject(tracker: OrderTracker, cid: str) -> None:
    tracker.track(cid, _intent())
    tracker.on_place_reply(PlaceRejected(client_order_id=cid, status=400, code="invalid_order"))
    assert tracker.get(cid).status is OrderStatus.REJECTED  # type: ignore[union-attr]


def test_eviction_when_a_rejected_order_was_reopened_by_the_exchange_keeps_it() -> None:
    tracker = OrderTracker(max_finished=1)
    _reject(tracker, "ks-abc-1")
    routed = tracker.on_exchange_order(ExchangeOrder(
        order_id="ord-1", client_order_id="ks-abc-1", ticker="KX-A", side="bid", price=PRICE,
        status="resting", fill_count=Decimal(0), remaining_count=Decimal(2), ts_ms=5))
    assert routed.transition is not None and routed.transition.reason == REJECTION_CONTRADICTED

    _reject(tracker, "ks-abc-2")  # a second finished order: the first's queue entry is due

    reopened = tracker.get("ks-abc-1")
    assert reopened is not None and reopened.status is OrderStatus.RESTING
    assert [r.client_order_id for r in tracker.open_orders()] == ["ks-abc-1"]
    assert tracker.by_order_id("ord-1") is reopened
    assert tracker.evicted == 0


def test_eviction_when_finished_orders_exceed_the_bound_drops_the_oldest() -> None:
    """The other half: finished orders do go, so the test above is not passed by a tracker
    that never evicts."""
    tracker = OrderTracker(max_finished=1)
    _reject(tracker, "ks-abc-1")
    _reject(tracker, "ks-abc-2")
    assert tracker.get("ks-abc-1") is None and tracker.get("ks-abc-2") is not None
    assert tracker.evicted == 1
