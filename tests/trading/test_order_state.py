"""The order state machine: the same facts in any order give the same order."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messages.orders import (
    CancelAccepted,
    CancelNotFound,
    ExchangeOrder,
    Fill,
    OrderIntent,
    OrderStatus,
    PlaceAccepted,
    PlaceRejected,
    WriteUnknown,
)
from trading.order_state import REJECTION_CONTRADICTED
from trading.tracker import OrderTracker, Routed, count_by_status

CID = "ks-abc-1"
OID = "ord-1"
PRICE = Decimal("0.42")


def intent(count: int = 10, side: str = "bid") -> OrderIntent:
    return OrderIntent(service="mm", ticker="KX-A", side=side, count=Decimal(count), price=PRICE)


def accepted(filled: int = 0, remaining: int = 10, ts: int = 1) -> PlaceAccepted:
    return PlaceAccepted(
        client_order_id=CID,
        order_id=OID,
        fill_count=Decimal(filled),
        remaining_count=Decimal(remaining),
        ts_ms=ts,
    )


def event(
    status: str, filled: int, remaining: int, ts: int, cid: str | None = CID
) -> ExchangeOrder:
    return ExchangeOrder(
        order_id=OID,
        client_order_id=cid,
        ticker="KX-A",
        side="bid",
        price=PRICE,
        status=status,
        fill_count=Decimal(filled),
        remaining_count=Decimal(remaining),
        initial_count=Decimal(filled + remaining) if status == "resting" else None,
        ts_ms=ts,
    )


def fill(n: int, count: int, cid: str | None = CID) -> Fill:
    return Fill(
        trade_id=f"t{n}",
        order_id=OID,
        client_order_id=cid,
        ticker="KX-A",
        side="bid",
        count=Decimal(count),
        price=PRICE,
        fee=Decimal("0.0175"),
    )


def tracked(count: int = 10) -> OrderTracker:
    tracker = OrderTracker()
    tracker.track(CID, intent(count))
    return tracker


# -- examples ----------------------------------------------------------------------------------
def test_place_reply_when_accepted_with_nothing_filled_is_resting() -> None:
    tracker = tracked()
    routed = tracker.on_place_reply(accepted())
    assert routed.transition is not None and routed.transition.after is OrderStatus.RESTING
    assert tracker.by_order_id(OID) is tracker.get(CID)


def test_place_reply_when_rejected_is_rejected_with_code() -> None:
    tracker = tracked()
    tracker.on_place_reply(
        PlaceRejected(client_order_id=CID, status=400, code="invalid_price", message="off grid")
    )
    view = tracker.get(CID).view()
    assert view.status is OrderStatus.REJECTED and view.reason == "400 invalid_price"


def test_place_reply_when_409_order_already_exists_is_outcome_unknown_not_rejected() -> None:
    tracker = tracked()
    tracker.on_place_reply(
        PlaceRejected(client_order_id=CID, status=409, code="order_already_exists")
    )
    record = tracker.get(CID)
    assert record.status is OrderStatus.OUTCOME_UNKNOWN and record.needs_lookup


def test_place_reply_when_timeout_is_outcome_unknown_until_lookup_finds_it() -> None:
    tracker = tracked()
    tracker.on_place_reply(WriteUnknown(client_order_id=CID, reason="read timeout"))
    assert tracker.get(CID).status is OrderStatus.OUTCOME_UNKNOWN
    tracker.on_exchange_order(event("resting", 3, 7, ts=5))
    record = tracker.get(CID)
    assert record.status is OrderStatus.PARTIALLY_FILLED and not record.needs_lookup
    assert record.order_id == OID and record.remaining == 7


def test_place_reply_when_ioc_filled_partly_and_rest_canceled_is_canceled() -> None:
    tracker = tracked()
    tracker.on_place_reply(accepted(filled=4, remaining=0))
    view = tracker.get(CID).view()
    assert view.status is OrderStatus.CANCELED and view.filled == 4 and view.remaining == 0


def test_fill_when_it_arrives_before_the_reply_without_ids_is_replayed_once_known() -> None:
    tracker = tracked()
    routed = tracker.on_fill(fill(1, 4, cid=None))  # a REST fill: no client_order_id
    assert routed.client_order_id is None and len(tracker.orphans()) == 1
    tracker.on_place_reply(accepted(filled=4, remaining=6))
    record = tracker.get(CID)
    assert record.fill_total == 4 and tracker.orphans() == []
    assert record.status is OrderStatus.PARTIALLY_FILLED


def test_fill_when_duplicated_is_counted_once() -> None:
    tracker = tracked()
    tracker.on_place_reply(accepted())
    first = tracker.on_fill(fill(1, 4))
    again = tracker.on_fill(fill(1, 4, cid=None))
    assert first.transition.outcome == "applied"
    assert again.transition.outcome == "unchanged"
    assert tracker.get(CID).filled == 4


def test_fill_when_same_trade_id_has_other_values_is_refused_and_counted() -> None:
    tracker = tracked()
    tracker.on_fill(fill(1, 4))
    routed = tracker.on_fill(fill(1, 5))
    assert routed.transition.outcome == "refused" and tracker.refused == 1
    assert tracker.get(CID).filled == 4


def test_fill_when_it_would_overfill_is_refused() -> None:
    tracker = tracked(count=5)
    tracker.on_fill(fill(1, 4))
    routed = tracker.on_fill(fill(2, 4))
    assert routed.transition.outcome == "refused"
    assert tracker.get(CID).filled == 4


def test_event_when_it_names_another_market_is_refused_without_change() -> None:
    tracker = tracked()
    tracker.on_place_reply(accepted())
    wrong = event("canceled", 0, 0, ts=9).model_copy(update={"ticker": "KX-B"})
    routed = tracker.on_exchange_order(wrong)
    assert routed.transition.outcome == "refused"
    assert tracker.get(CID).status is OrderStatus.RESTING


def test_cancel_reply_when_404_after_fast_fill_is_not_marked_canceled() -> None:
    # NautilusTrader's bug (§8.11): the order vanished because it filled.
    tracker = tracked()
    tracker.on_place_reply(accepted())
    tracker.on_cancel_reply(OID, CancelNotFound(order_id=OID))
    record = tracker.get(CID)
    assert record.status is OrderStatus.RESTING and record.needs_lookup
    tracker.on_fill(fill(1, 10))
    assert record.status is OrderStatus.EXECUTED and not record.needs_lookup


def test_cancel_reply_when_it_names_another_order_is_refused() -> None:
    tracker = tracked()
    tracker.on_place_reply(accepted())
    routed = tracker.on_cancel_reply(OID, CancelAccepted(order_id="someone-else"))
    assert routed.transition.outcome == "refused"
    assert tracker.get(CID).status is OrderStatus.RESTING


def test_cancel_reply_when_accepted_after_partial_fill_is_canceled() -> None:
    tracker = tracked()
    tracker.on_place_reply(accepted())
    tracker.on_fill(fill(1, 3))
    tracker.on_cancel_reply(OID, CancelAccepted(order_id=OID, reduced_by=Decimal(7)))
    view = tracker.get(CID).view()
    assert view.status is OrderStatus.CANCELED and view.filled == 3 and view.remaining == 0


def test_rejection_when_events_showed_the_order_is_refused() -> None:
    tracker = tracked()
    tracker.on_exchange_order(event("resting", 0, 10, ts=2))
    routed = tracker.on_place_reply(
        PlaceRejected(client_order_id=CID, status=400, code="invalid_order")
    )
    assert routed.transition.outcome == "refused"
    assert tracker.get(CID).status is OrderStatus.RESTING


def test_resend_when_outcome_unknown_keeps_the_same_id_and_counts_attempts() -> None:
    tracker = tracked()
    tracker.on_place_reply(WriteUnknown(client_order_id=CID, reason="503"))
    tracker.on_resend(CID)
    record = tracker.get(CID)
    assert record.status is OrderStatus.PENDING and record.attempts == 2
    assert tracker.on_resend(CID).transition.outcome == "refused"  # only while unknown


def test_track_when_id_already_tracked_raises() -> None:
    tracker = tracked()
    try:
        tracker.track(CID, intent())
    except ValueError as exc:
        assert CID in str(exc)
    else:
        raise AssertionError("a tracked id was tracked again")


def test_tracker_when_many_orders_finish_keeps_memory_bounded() -> None:
    tracker = OrderTracker(max_finished=50, max_orphans=20)
    for n in range(500):
        cid = f"ks-abc-{n}"
        tracker.track(cid, intent())
        tracker.on_place_reply(
            PlaceRejected(client_order_id=cid, status=400, code="insufficient_balance")
        )
    assert len(tracker) == 50 and tracker.evicted == 450
    for n in range(500):
        stray = fill(n, 1).model_copy(update={"order_id": f"x{n}", "client_order_id": None})
        tracker.on_fill(stray)
    assert len(tracker.orphans()) == 20 and tracker.orphans_dropped == 480


def test_tracker_when_open_orders_asked_includes_pending_and_unknown() -> None:
    tracker = OrderTracker()
    tracker.track("ks-a-1", intent())
    tracker.track("ks-a-2", intent())
    tracker.on_place_reply(WriteUnknown(client_order_id="ks-a-2", reason="timeout"))
    tracker.track("ks-a-3", intent())
    tracker.on_place_reply(PlaceRejected(client_order_id="ks-a-3", status=400, code="x"))
    assert {r.client_order_id for r in tracker.open_orders()} == {"ks-a-1", "ks-a-2"}
    assert [r.client_order_id for r in tracker.needing_lookup()] == ["ks-a-2"]


# -- any order -------------------------------------------------------------------------------
@st.composite
def histories(draw: st.DrawFn) -> tuple[int, list, dict]:
    """One order's true history at the exchange, and every fact it produces (duplicates too)."""
    count = draw(st.integers(min_value=1, max_value=20))
    sizes: list[int] = []
    for size in draw(st.lists(st.integers(min_value=1, max_value=6), max_size=8)):
        if sum(sizes) + size <= count:
            sizes.append(size)
    total = sum(sizes)
    at_reply = draw(st.integers(min_value=0, max_value=len(sizes)))  # taker fills at create
    ending = "executed" if total == count else draw(st.sampled_from(["open", "canceled"]))
    cumulative = [sum(sizes[:i]) for i in range(len(sizes) + 1)]

    facts: list = []
    if draw(st.booleans()):
        closed_at_reply = cumulative[at_reply] == count
        facts.append(
            accepted(cumulative[at_reply], 0 if closed_at_reply else count - cumulative[at_reply])
        )
    else:
        facts.append(WriteUnknown(client_order_id=CID, reason="timeout"))
    for i, size in enumerate(sizes):
        cid = CID if draw(st.booleans()) else None  # WS fills carry it; REST fills do not
        facts.append(fill(i, size, cid))
        if draw(st.booleans()):
            facts.append(fill(i, size, None))  # the same fill again (reconnect pull)
        done = cumulative[i + 1] == count
        facts.append(
            event("executed" if done else "resting", cumulative[i + 1],
                  count - cumulative[i + 1], ts=10 + i)
        )
    facts.append(event("resting", cumulative[at_reply], count - cumulative[at_reply], ts=5))
    if ending == "canceled":
        facts.append(event("canceled", total, 0, ts=100))
        facts.append(CancelAccepted(order_id=OID, reduced_by=Decimal(count - total)))
    elif ending == "executed" and draw(st.booleans()):
        facts.append(CancelNotFound(order_id=OID))  # our cancel raced the last fill
    expected = {
        "status": {
            "executed": OrderStatus.EXECUTED,
            "canceled": OrderStatus.CANCELED,
            "open": OrderStatus.PARTIALLY_FILLED if total else OrderStatus.RESTING,
        }[ending],
        "filled": Decimal(total),
        "remaining": Decimal(count - total) if ending == "open" else Decimal(0),
    }
    return count, facts, expected


def feed(tracker: OrderTracker, fact: object) -> Routed:
    if isinstance(fact, PlaceAccepted | PlaceRejected | WriteUnknown):
        return tracker.on_place_reply(fact)
    if isinstance(fact, CancelAccepted | CancelNotFound):
        return tracker.on_cancel_reply(OID, fact)
    if isinstance(fact, Fill):
        return tracker.on_fill(fact)
    return tracker.on_exchange_order(fact)


@pytest.mark.slow  # hypothesis: a second of CPU
@settings(max_examples=300, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_order_when_facts_arrive_in_any_order_ends_in_the_same_state(history, rng) -> None:
    count, facts, expected = history
    shuffled = list(facts)
    rng.shuffle(shuffled)
    tracker = tracked(count)
    held: list = []  # a cancel is sent (so answered) only once we know the order's id
    while shuffled or held:
        record = tracker.get(CID)
        if held and record.order_id is not None:
            fact = held.pop()
        else:
            fact = shuffled.pop()
            if isinstance(fact, CancelAccepted | CancelNotFound) and record.order_id is None:
                held.append(fact)
                continue
        feed(tracker, fact)
        record = tracker.get(CID)
        assert record.filled <= record.count  # never more filled than the order's size
        assert record.fill_total <= record.count
    record = tracker.get(CID)
    assert tracker.refused == 0
    assert record.status is expected["status"], shuffled
    assert record.filled == expected["filled"]
    assert record.fill_total == expected["filled"]  # every fill counted exactly once
    assert record.remaining == expected["remaining"]
    assert record.order_id == OID and tracker.orphans() == []
    in_order = tracked(count)
    for fact in facts:
        feed(in_order, fact)
    assert in_order.get(CID).view() == record.view()


# -- anything at all -----------------------------------------------------------------------
small = st.integers(min_value=0, max_value=12).map(Decimal)
garbage_fact = st.one_of(
    st.builds(ExchangeOrder, order_id=st.sampled_from(["ord-1", "ord-2", "x"]),
              client_order_id=st.sampled_from([CID, "ks-abc-2", None]),
              ticker=st.sampled_from(["KX-A", "KX-B"]), side=st.sampled_from(["bid", "ask"]),
              price=st.just(PRICE), status=st.sampled_from(["resting", "canceled", "executed",
                                                            "unknown"]),
              fill_count=small, remaining_count=small, initial_count=st.none() | small,
              ts_ms=st.none() | st.integers(min_value=0, max_value=50)),
    st.builds(Fill, trade_id=st.sampled_from(["t1", "t2", "t3", "t4"]),
              order_id=st.sampled_from(["ord-1", "ord-2", "x"]),
              client_order_id=st.sampled_from([CID, "ks-abc-2", None]),
              ticker=st.sampled_from(["KX-A", "KX-B"]), side=st.sampled_from(["bid", "ask"]),
              count=small.filter(bool), price=st.just(PRICE)),
    st.builds(PlaceAccepted, client_order_id=st.sampled_from([CID, "ks-abc-2"]),
              order_id=st.sampled_from(["ord-1", "ord-2"]), fill_count=small,
              remaining_count=small),
    st.builds(PlaceRejected, client_order_id=st.sampled_from([CID, "ks-abc-2"]),
              status=st.sampled_from([400, 409]),
              code=st.sampled_from(["invalid_order", "order_already_exists"])),
    st.builds(WriteUnknown, client_order_id=st.sampled_from([CID, "ks-abc-2"]),
              reason=st.just("timeout")),
    st.builds(CancelAccepted, order_id=st.sampled_from(["ord-1", "ord-2"])),
    st.builds(CancelNotFound, order_id=st.sampled_from(["ord-1", "ord-2"])),
)


@pytest.mark.slow  # hypothesis: seconds of CPU
@settings(max_examples=300, deadline=None)
@given(st.lists(garbage_fact, max_size=40))
def test_tracker_when_fed_contradictory_facts_never_raises_nor_overfills(facts: list) -> None:
    tracker = OrderTracker(max_finished=1, max_orphans=5, max_trade_ids=3)
    tracker.track(CID, intent(8))
    tracker.track("ks-abc-2", intent(3, side="ask"))
    for fact in facts:
        if isinstance(fact, CancelAccepted | CancelNotFound):
            routed = tracker.on_cancel_reply(fact.order_id, fact)
        else:
            routed = feed(tracker, fact)
        assert " failed: " not in routed.note  # refused by a rule, never by an accident
        for record in tracker:
            assert record.fill_total <= record.count
            assert len(set(record.fills)) == len(record.fills)
            assert record.view().remaining >= 0
        assert len(tracker.orphans()) <= 5


def test_tracker_when_fact_is_malformed_refuses_with_one_line_instead_of_raising() -> None:
    tracker = tracked()
    routed = tracker.on_fill({"trade_id": "t1"})  # type: ignore[arg-type]
    assert routed.transition is None and "on_fill failed: AttributeError" in routed.note
    assert tracker.refused == 1 and "\n" not in routed.note
    assert tracker.get(CID).status is OrderStatus.PENDING


def test_count_by_status_when_orders_in_several_states_counts_each() -> None:
    tracker = OrderTracker()
    for n, reply in enumerate(["resting", "rejected", "unknown", "pending"]):
        cid = f"ks-c-{n}"
        tracker.track(cid, intent())
        if reply == "resting":
            tracker.on_place_reply(PlaceAccepted(client_order_id=cid, order_id=f"o{n}",
                                                 remaining_count=Decimal(10)))
        elif reply == "rejected":
            tracker.on_place_reply(PlaceRejected(client_order_id=cid, status=400, code="x"))
        elif reply == "unknown":
            tracker.on_place_reply(WriteUnknown(client_order_id=cid, reason="timeout"))
    counts = count_by_status(tracker)
    assert counts[OrderStatus.RESTING] == counts[OrderStatus.REJECTED] == 1
    assert counts[OrderStatus.OUTCOME_UNKNOWN] == counts[OrderStatus.PENDING] == 1
    assert sum(counts.values()) == 4


def test_lookup_when_vanished_order_still_rests_clears_the_mark() -> None:
    # a lagging resting list made it look gone; the lookup reads it resting
    tracker = tracked()
    tracker.on_place_reply(accepted())
    tracker.on_vanished(OID)
    assert tracker.get(CID).needs_lookup
    tracker.on_lookup(event("resting", 2, 8, ts=20), (fill(1, 2, cid=None),))
    record = tracker.get(CID)
    assert not record.needs_lookup and record.status is OrderStatus.PARTIALLY_FILLED
    assert record.fill_total == 2


def test_lookup_when_vanished_order_was_executed_closes_it_with_its_fills() -> None:
    tracker = tracked()
    tracker.on_place_reply(accepted())
    tracker.on_cancel_reply(OID, CancelNotFound(order_id=OID))
    tracker.on_lookup(event("executed", 10, 0, ts=20), (fill(1, 6, None), fill(2, 4, None)))
    record = tracker.get(CID)
    assert record.status is OrderStatus.EXECUTED and record.fill_total == 10
    assert not record.needs_lookup


def test_event_when_rejected_order_shows_up_reopens_it_and_says_so() -> None:
    tracker = tracked()
    tracker.on_place_reply(PlaceRejected(client_order_id=CID, status=400, code="invalid_order"))
    routed = tracker.on_exchange_order(event("resting", 0, 10, ts=3))
    assert routed.transition.before is OrderStatus.REJECTED
    assert routed.transition.after is OrderStatus.RESTING
    assert routed.transition.reason == REJECTION_CONTRADICTED
    assert tracker.get(CID) in tracker.open_orders()


def test_reason_when_closed_says_what_the_status_does_not() -> None:
    from messages.orders import reason_beyond

    assert reason_beyond(OrderStatus.CANCELED, "canceled") is None
    assert reason_beyond(OrderStatus.CANCELED, " Cancelled ") is None
    assert reason_beyond(OrderStatus.OUTCOME_UNKNOWN, "outcome unknown") is None
    assert reason_beyond(OrderStatus.CANCELED, "") is None
    assert reason_beyond(OrderStatus.CANCELED, "ExpiryCancel") == "ExpiryCancel"


def test_reason_when_our_cancel_and_the_exchanges_event_arrive_in_either_order_is_ours() -> None:
    reasons = []
    for cancel_first in (True, False):
        tracker = tracked()
        tracker.on_place_reply(accepted())
        cancel = CancelAccepted(order_id=OID, reduced_by=Decimal(10), ts_ms=5)
        closed = event("canceled", 0, 0, ts=6)  # the exchange's: no last_update_reason
        if cancel_first:
            tracker.on_cancel_reply(OID, cancel)
            tracker.on_exchange_order(closed)
        else:
            tracker.on_exchange_order(closed)
            assert tracker.get(CID).view().reason is None  # not "canceled" beside canceled
            tracker.on_cancel_reply(OID, cancel)
        view = tracker.get(CID).view()
        reasons.append((view.status, view.reason))
    assert reasons == [(OrderStatus.CANCELED, "cancel accepted")] * 2


def test_adopt_when_the_order_rests_tracks_it_resting_with_its_fills_counted() -> None:
    tracker = OrderTracker()
    order = event("resting", 3, 7, ts=1, cid=None)
    routed = tracker.adopt("adopted-ord-1", intent(), order)
    record = tracker.get("adopted-ord-1")
    assert routed.client_order_id == "adopted-ord-1" and tracker.by_order_id(OID) is record
    assert (record.status, record.filled, record.remaining) == (
        OrderStatus.PARTIALLY_FILLED, Decimal(3), Decimal(7))
    try:
        tracker.adopt("adopted-ord-1", intent(), order)
    except ValueError:
        pass
    else:
        raise AssertionError("an id adopted twice")
