"""Reconciliation after a lossy private channel: the tracker ends equal to the exchange's truth."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messages.orders import (
    ExchangeOrder,
    Fill,
    OrderIntent,
    PlaceAccepted,
    WriteUnknown,
)
from trading.lookup import Found, LookupResult, plan
from trading.reconcile import ExchangeTruth, apply, reconcile_tracker
from trading.tracker import OrderTracker

D = Decimal


@st.composite
def books(draw: st.DrawFn) -> list[dict]:
    """Several orders' true histories at the exchange."""
    orders = []
    for n in range(draw(st.integers(min_value=1, max_value=6))):
        count = draw(st.integers(min_value=1, max_value=10))
        sizes: list[int] = []
        for size in draw(st.lists(st.integers(min_value=1, max_value=4), max_size=4)):
            if sum(sizes) + size <= count:
                sizes.append(size)
        filled = sum(sizes)
        status = "executed" if filled == count else draw(st.sampled_from(["resting", "canceled"]))
        orders.append({
            "n": n, "count": count, "sizes": sizes, "status": status,
            "side": draw(st.sampled_from(["bid", "ask"])),
            "ticker": draw(st.sampled_from(["KX-A", "KX-B"])),
            "reply": draw(st.sampled_from(["accepted", "unknown", "late"])),
            "seen": [draw(st.booleans()) for _ in sizes],  # which fills the WS delivered
            "event_seen": draw(st.booleans()),  # did the final user_order arrive
        })
    return orders


def exchange_order(o: dict) -> ExchangeOrder:
    filled = sum(o["sizes"])
    return ExchangeOrder(
        order_id=f"o{o['n']}", client_order_id=f"ks-p-{o['n']}", ticker=o["ticker"],
        side=o["side"], price=D("0.50"), status=o["status"], fill_count=D(filled),
        remaining_count=D(o["count"] - filled) if o["status"] == "resting" else D(0), ts_ms=50,
    )


def fills_of(o: dict) -> list[Fill]:
    return [
        Fill(trade_id=f"t{o['n']}-{i}", order_id=f"o{o['n']}", ticker=o["ticker"], side=o["side"],
             count=D(size), price=D("0.50"))
        for i, size in enumerate(o["sizes"])
    ]


@pytest.mark.slow  # hypothesis: seconds of CPU
@settings(max_examples=200, deadline=None)
@given(books())
def test_reconcile_when_channel_lost_facts_tracker_ends_equal_to_truth(book: list[dict]) -> None:
    tracker = OrderTracker()
    positions: dict[str, Decimal] = {}
    for o in book:
        cid = f"ks-p-{o['n']}"
        tracker.track(cid, OrderIntent(service="mm", ticker=o["ticker"], side=o["side"],
                                       count=D(o["count"]), price=D("0.50")))
        if o["reply"] == "accepted":
            tracker.on_place_reply(PlaceAccepted(client_order_id=cid, order_id=f"o{o['n']}",
                                                 remaining_count=D(o["count"])))
        elif o["reply"] == "unknown":
            tracker.on_place_reply(WriteUnknown(client_order_id=cid, reason="timeout"))
        for fill, seen in zip(fills_of(o), o["seen"], strict=True):
            if seen:
                tracker.on_fill(fill.model_copy(update={"client_order_id": cid}))
        if o["event_seen"]:
            tracker.on_exchange_order(exchange_order(o))
    for record in tracker:
        for f in record.fills.values():
            positions[f.ticker] = positions.get(f.ticker, D(0)) + f.signed_count

    truth_positions: dict[str, Decimal] = {}
    for o in book:
        for f in fills_of(o):
            truth_positions[f.ticker] = truth_positions.get(f.ticker, D(0)) + f.signed_count
    truth = ExchangeTruth(
        resting=tuple(exchange_order(o) for o in book if o["status"] == "resting"),
        fills=tuple(f for o in book for f in fills_of(o)),
        positions=truth_positions,
    )
    def settle(positions: dict[str, Decimal]) -> dict[str, Decimal]:
        """What the gateway does on reconnect: reconcile, apply, look up what needs it."""
        rec = reconcile_tracker(tracker, positions, None, truth)
        apply(tracker, rec)
        for record in tracker.needing_lookup():
            o = book[int(record.client_order_id.rsplit("-", 1)[1])]
            decision = plan(LookupResult(
                client_order_id=record.client_order_id, orders=(exchange_order(o),),
                fills=tuple(fills_of(o)), sent_at_ms=0, checked_at_ms=60_000, lookups=1,
                sends=1,
            ))
            assert isinstance(decision, Found)
            tracker.on_lookup(decision.order, decision.fills)
        return rec.positions

    positions = settle(positions)
    for o in book:  # replies still in flight during that reconciliation, then a second one
        if o["reply"] == "late":
            tracker.on_place_reply(PlaceAccepted(client_order_id=f"ks-p-{o['n']}",
                                                 order_id=f"o{o['n']}",
                                                 remaining_count=D(o["count"])))
    positions = settle(positions)
    assert tracker.orphans() == []  # every fact found its order: nothing unknown locally
    for o in book:
        record = tracker.get(f"ks-p-{o['n']}")
        assert record.status.value == ("partially_filled" if o["status"] == "resting" and
                                       o["sizes"] else o["status"])
        assert record.fill_total == sum(o["sizes"])
        assert not record.needs_lookup
    ours = {r.order_id for r in tracker.open_orders()}
    assert ours == {f"o{o['n']}" for o in book if o["status"] == "resting"}
    from_fills: dict[str, Decimal] = {}
    for record in tracker:
        for f in record.fills.values():
            from_fills[f.ticker] = from_fills.get(f.ticker, D(0)) + f.signed_count
    assert {t: p for t, p in from_fills.items() if p} == {
        t: p for t, p in truth_positions.items() if p
    }
    again = reconcile_tracker(tracker, positions, None, truth)
    assert again.clean, again.differences
