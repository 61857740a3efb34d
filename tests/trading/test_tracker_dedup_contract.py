"""The tracker's fill deduplication outlives the orders it has forgotten.

A finished order is evicted after ``max_finished`` others finish, but its fills' trade ids
stay remembered. A reconnect's REST pull (or a duplicate WS frame) that replays such a fill
must be dropped as already seen: kept as an orphan instead, it would stand as a fact about
an order nobody tracks (what reconciliation reports as unknown) and be counted again
whenever anything claimed it.
"""

from __future__ import annotations

from decimal import Decimal

from messages.orders import Fill, OrderIntent, OrderStatus, PlaceAccepted
from trading.tracker import OrderTracker

PRICE = Decimal("0.42")


def _fill_order(tracker: OrderTracker, n: int) -> Fill:
    """Track order ``n``, accept it, and fill it whole with one fill; returns that fill."""
    cid, oid = f"ks-abc-{n}", f"ord-{n}"
    tracker.track(cid, OrderIntent(service="mm", ticker="KX-A", side="bid", count=Decimal(2),
                                   price=PRICE))
    tracker.on_place_reply(PlaceAccepted(client_order_id=cid, order_id=oid,
                                         remaining_count=Decimal(2), ts_ms=n))
    fill = Fill(trade_id=f"t-{n}", order_id=oid, ticker="KX-A", side="bid", count=Decimal(2),
                price=PRICE, ts_ms=n)
    routed = tracker.on_fill(fill)
    assert routed.transition is not None and routed.transition.outcome == "applied"
    assert tracker.get(cid) is not None and tracker.get(cid).status is OrderStatus.EXECUTED
    return fill


def test_fill_of_an_evicted_order_when_replayed_is_dropped_as_seen_not_kept_as_orphan() -> None:
    tracker = OrderTracker(max_finished=1)
    first = _fill_order(tracker, 1)
    _fill_order(tracker, 2)  # finishing a second order evicts the first
    assert tracker.get("ks-abc-1") is None and tracker.evicted == 1
    assert tracker.seen_trade(first.trade_id)

    replay = first.model_copy(update={"client_order_id": None})  # as a REST pull returns it
    routed = tracker.on_fill(replay)

    assert (routed.client_order_id, routed.transition, routed.note) == (None, None,
                                                                        "duplicate fill")
    assert tracker.orphans() == []
    assert tracker.refused == 0


def test_fill_of_an_unknown_order_never_seen_is_kept_as_orphan() -> None:
    """The other half: an unseen fill of an untracked order is kept (it may be ours, its
    create's reply still on the way), so the test above is not passed by dropping all."""
    tracker = OrderTracker()
    stranger = Fill(trade_id="t-x", order_id="ord-x", ticker="KX-A", side="ask",
                    count=Decimal(1), price=PRICE)
    routed = tracker.on_fill(stranger)
    assert routed.note == "kept as orphan"
    assert tracker.orphans() == [stranger]
