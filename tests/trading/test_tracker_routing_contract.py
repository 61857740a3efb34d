"""Private events that beat the create's REST reply land on the order, never beside it.

Kalshi does not order a create's reply against the ``user_order`` and ``fill`` events it
causes (§8.7). The order is tracked before it is sent, so an event naming its
``client_order_id`` must find it even though no ``order_id`` is known yet: routed by order
id only, the event would sit as an orphan (an order "unknown locally", a second record of
the same order for reconciliation), and when the reply never comes (outcome unknown) the
order would stay unknown although the exchange already said it rests.
"""

from __future__ import annotations

from decimal import Decimal

from messages.orders import ExchangeOrder, OrderIntent, OrderStatus, PlaceAccepted, WriteUnknown
from trading.tracker import OrderTracker

CID, OID, PRICE = "ks-abc-7", "ord-7", Decimal("0.42")


def _tracked() -> OrderTracker:
    tracker = OrderTracker()
    tracker.track(CID, OrderIntent(service="mm", ticker="KX-A", side="bid", count=Decimal(5),
                                   price=PRICE))
    return tracker


def _resting_event() -> ExchangeOrder:
    return ExchangeOrder(order_id=OID, client_order_id=CID, ticker="KX-A", side="bid",
                         price=PRICE, status="resting", fill_count=Decimal(0),
                         remaining_count=Decimal(5), initial_count=Decimal(5), ts_ms=10)


def test_event_before_the_reply_lands_on_the_tracked_order_and_the_reply_agrees() -> None:
    tracker = _tracked()

    routed = tracker.on_exchange_order(_resting_event())

    assert routed.client_order_id == CID, routed.note
    record = tracker.get(CID)
    assert record is not None and record.order_id == OID
    assert record.status is OrderStatus.RESTING
    assert tracker.by_order_id(OID) is record

    tracker.on_place_reply(PlaceAccepted(client_order_id=CID, order_id=OID,
                                         remaining_count=Decimal(5), ts_ms=9))
    assert len(tracker) == 1 and tracker.orphans() == [] and tracker.refused == 0
    assert record.status is OrderStatus.RESTING


def test_event_after_an_unknown_outcome_settles_the_order_without_a_lookup() -> None:
    tracker = _tracked()
    tracker.on_place_reply(WriteUnknown(client_order_id=CID, reason="timed out"))
    assert tracker.get(CID).status is OrderStatus.OUTCOME_UNKNOWN  # type: ignore[union-attr]

    routed = tracker.on_exchange_order(_resting_event())

    assert routed.client_order_id == CID, routed.note
    assert tracker.get(CID).status is OrderStatus.RESTING  # type: ignore[union-attr]
    assert tracker.needing_lookup() == [] and tracker.orphans() == []
