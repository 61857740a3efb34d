"""Reconciliation: every difference against the REST truth is named, and the truth wins."""

from __future__ import annotations

from decimal import Decimal

from messages.orders import (
    BalanceChanged,
    ExchangeOrder,
    Fill,
    FillMissed,
    OrderDiffers,
    OrderGoneAtExchange,
    OrderIntent,
    OrderStatus,
    OrderUnknownLocally,
    PlaceAccepted,
    PositionMismatch,
    WriteUnknown,
)
from trading.reconcile import ExchangeTruth, apply, fills_since, reconcile_tracker
from trading.tracker import OrderTracker

P = Decimal("0.30")


def place(tracker: OrderTracker, n: int, count: int = 5, side: str = "bid") -> str:
    cid = f"ks-r-{n}"
    tracker.track(cid, OrderIntent(service="mm", ticker="KX-A", side=side, count=Decimal(count),
                                   price=P))
    tracker.on_place_reply(PlaceAccepted(client_order_id=cid, order_id=f"o{n}",
                                         remaining_count=Decimal(count)))
    return cid


def resting(n: int, filled: int = 0, count: int = 5, cid: str | None = None) -> ExchangeOrder:
    return ExchangeOrder(order_id=f"o{n}", client_order_id=cid if cid else f"ks-r-{n}",
                         ticker="KX-A", side="bid", price=P, status="resting",
                         fill_count=Decimal(filled), remaining_count=Decimal(count - filled))


def fill(trade: str, n: int, count: int) -> Fill:
    return Fill(trade_id=trade, order_id=f"o{n}", ticker="KX-A", side="bid", count=Decimal(count),
                price=P)


def test_reconcile_when_everything_agrees_is_clean() -> None:
    tracker = OrderTracker()
    place(tracker, 1)
    truth = ExchangeTruth(resting=(resting(1),), fills=(), positions={}, balance=1000)
    assert reconcile_tracker(tracker, {}, 1000, truth).clean


def test_reconcile_when_fill_missed_reports_applies_it_and_positions_agree() -> None:
    tracker = OrderTracker()
    cid = place(tracker, 1)
    truth = ExchangeTruth(resting=(resting(1, filled=2),), fills=(fill("t1", 1, 2),),
                          positions={"KX-A": Decimal(2)})
    rec = reconcile_tracker(tracker, {}, None, truth)
    kinds = [type(d) for d in rec.differences]
    assert kinds == [FillMissed, OrderDiffers]  # no position mismatch: the fill explains it
    apply(tracker, rec)
    assert tracker.get(cid).view().filled == 2
    assert tracker.get(cid).status is OrderStatus.PARTIALLY_FILLED
    assert reconcile_tracker(tracker, {"KX-A": Decimal(2)}, None, truth).clean


def test_reconcile_when_fill_already_seen_is_not_reported_again() -> None:
    tracker = OrderTracker()
    place(tracker, 1)
    tracker.on_fill(fill("t1", 1, 2))
    truth = ExchangeTruth(resting=(resting(1, filled=2),), fills=(fill("t1", 1, 2),),
                          positions={"KX-A": Decimal(2)})
    assert reconcile_tracker(tracker, {"KX-A": Decimal(2)}, None, truth).clean


def test_reconcile_when_order_rests_that_we_do_not_track_reports_it_unknown() -> None:
    tracker = OrderTracker()
    stranger = resting(9, cid="other-process-1")
    rec = reconcile_tracker(tracker, {}, None, ExchangeTruth((stranger,), (), {}))
    assert rec.differences == (OrderUnknownLocally(order=stranger),)


def test_reconcile_when_our_order_vanished_asks_for_lookup_never_cancels() -> None:
    tracker = OrderTracker()
    cid = place(tracker, 1)
    rec = reconcile_tracker(tracker, {}, None, ExchangeTruth((), (), {}))
    assert rec.differences == (
        OrderGoneAtExchange(client_order_id=cid, order_id="o1", local_status=OrderStatus.RESTING),
    )
    apply(tracker, rec)
    record = tracker.get(cid)
    assert record.status is OrderStatus.RESTING and record.needs_lookup


def test_reconcile_when_vanished_order_was_filled_by_missed_fills_reads_executed() -> None:
    tracker = OrderTracker()
    cid = place(tracker, 1)
    truth = ExchangeTruth((), (fill("t1", 1, 3), fill("t2", 1, 2)), {"KX-A": Decimal(5)})
    rec = reconcile_tracker(tracker, {}, None, truth)
    assert [type(d) for d in rec.differences] == [FillMissed, FillMissed]
    apply(tracker, rec)
    assert tracker.get(cid).status is OrderStatus.EXECUTED


def test_reconcile_when_unknown_write_found_resting_resolves_it() -> None:
    tracker = OrderTracker()
    tracker.track("ks-r-4", OrderIntent(service="mm", ticker="KX-A", side="bid",
                                        count=Decimal(5), price=P))
    tracker.on_place_reply(WriteUnknown(client_order_id="ks-r-4", reason="timeout"))
    rec = reconcile_tracker(tracker, {}, None, ExchangeTruth((resting(4),), (), {}))
    assert [type(d) for d in rec.differences] == [OrderDiffers]
    apply(tracker, rec)
    assert tracker.get("ks-r-4").status is OrderStatus.RESTING
    assert tracker.get("ks-r-4").order_id == "o4"


def test_reconcile_when_order_we_closed_still_rests_cancels_it_again() -> None:
    tracker = OrderTracker()
    cid = place(tracker, 1)
    tracker.on_exchange_order(resting(1).model_copy(update={"status": "canceled"}))
    rec = reconcile_tracker(tracker, {}, None, ExchangeTruth((resting(1),), (), {}))
    assert rec.cancel_again == ("o1",)
    apply(tracker, rec)
    assert tracker.get(cid).status is OrderStatus.CANCELED  # a lagging read does not reopen it


def test_reconcile_when_positions_differ_takes_the_exchanges() -> None:
    tracker = OrderTracker()
    truth = ExchangeTruth((), (), {"KX-A": Decimal(-3), "KX-Z": Decimal(0)}, balance=900)
    rec = reconcile_tracker(tracker, {"KX-A": Decimal(2), "KX-B": Decimal(1)}, 1000, truth)
    mismatches = [d for d in rec.differences if isinstance(d, PositionMismatch)]
    assert mismatches == [
        PositionMismatch(ticker="KX-A", local=Decimal(2), exchange=Decimal(-3)),
        PositionMismatch(ticker="KX-B", local=Decimal(1), exchange=Decimal(0)),
    ]
    assert BalanceChanged(before=1000, after=900) in rec.differences
    assert rec.positions == {"KX-A": Decimal(-3)} and rec.balance == 900


def test_fills_since_when_last_seen_known_subtracts_margin() -> None:
    assert fills_since(None) is None
    assert fills_since(100_000, margin_ms=60_000) == 40_000
    assert fills_since(10, margin_ms=60_000) == 0
