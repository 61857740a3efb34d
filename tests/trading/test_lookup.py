"""Outcome-unknown resolution: found, look again, resend the same id, or escalate; no new id."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from messages.orders import (
    ExchangeOrder,
    Fill,
    OrderIntent,
    OrderStatus,
    PlaceRejected,
    WriteUnknown,
)
from trading.lookup import (
    Escalate,
    Found,
    LookupPolicy,
    LookupResult,
    Resend,
    RetryLookup,
    backoff_ms,
    plan,
)
from trading.tracker import OrderTracker

CID = "ks-abc-7"
POLICY = LookupPolicy(in_flight_ms=1_000, read_lag_ms=500, first_backoff_ms=100,
                      max_backoff_ms=1_600, max_lookups=5, max_sends=3)


def order(order_id: str = "o1", cid: str | None = CID, filled: str = "0") -> ExchangeOrder:
    return ExchangeOrder(order_id=order_id, client_order_id=cid, ticker="KX-A", side="ask",
                         price=Decimal("0.6"), status="resting", fill_count=Decimal(filled),
                         remaining_count=Decimal(5) - Decimal(filled), ts_ms=3)


def result(orders=(), fills=(), *, checked=0, lookups=1, sends=1, as_of=None) -> LookupResult:
    return LookupResult(client_order_id=CID, orders=tuple(orders), fills=tuple(fills),
                        sent_at_ms=10_000, checked_at_ms=checked, lookups=lookups, sends=sends,
                        data_as_of_ms=as_of)


def test_plan_when_order_carries_the_id_is_found_with_its_fills_only() -> None:
    mine = Fill(trade_id="t1", order_id="o1", ticker="KX-A", side="ask", count=Decimal(2),
                price=Decimal("0.6"))
    other = mine.model_copy(update={"trade_id": "t2", "order_id": "o9"})
    decision = plan(result([order("o9", cid="ks-other-1"), order("o1", filled="2")],
                           [mine, other]), POLICY)
    assert decision == Found(order("o1", filled="2"), (mine,))


def test_plan_when_absent_before_data_covers_write_retries_with_backoff() -> None:
    decision = plan(result(checked=10_200), POLICY)
    assert isinstance(decision, RetryLookup)
    assert decision.after_ms >= 1_300 - 200  # at least until the data can cover the write


def test_plan_when_absent_and_data_as_of_covers_write_resends_the_same_id() -> None:
    decision = plan(result(checked=10_100, as_of=11_000), POLICY)
    assert decision == Resend(CID, decision.reason)


def test_plan_when_absent_and_wall_clock_past_lag_resends_the_same_id() -> None:
    assert isinstance(plan(result(checked=11_500), POLICY), Resend)
    assert isinstance(plan(result(checked=11_499), POLICY), RetryLookup)


def test_plan_when_sends_exhausted_escalates_instead_of_resending() -> None:
    assert isinstance(plan(result(checked=20_000, sends=3), POLICY), Escalate)


def test_plan_when_data_never_catches_up_escalates_after_max_lookups() -> None:
    decision = plan(result(checked=20_000, as_of=10_100, lookups=5), POLICY)
    assert isinstance(decision, Escalate)


def test_plan_when_two_orders_carry_one_id_escalates_naming_both() -> None:
    decision = plan(result([order("o1"), order("o2")]), POLICY)
    assert isinstance(decision, Escalate) and decision.anomalies == ("o1", "o2")


def test_backoff_when_lookups_grow_doubles_up_to_the_cap() -> None:
    assert [backoff_ms(POLICY, n) for n in range(1, 7)] == [100, 200, 400, 800, 1600, 1600]


@settings(max_examples=200, deadline=None)
@given(
    checked=st.integers(min_value=0, max_value=40_000),
    as_of=st.none() | st.integers(min_value=0, max_value=40_000),
    lookups=st.integers(min_value=1, max_value=10),
    sends=st.integers(min_value=1, max_value=5),
    present=st.booleans(),
)
def test_plan_when_anything_happens_never_mints_a_new_id_nor_resends_a_found_order(
    checked: int, as_of: int | None, lookups: int, sends: int, present: bool
) -> None:
    decision = plan(result([order()] if present else [], checked=checked, lookups=lookups,
                           sends=sends, as_of=as_of), POLICY)
    if present:
        assert isinstance(decision, Found)
    if isinstance(decision, Resend):
        assert decision.client_order_id == CID and sends < POLICY.max_sends
        covered = as_of if as_of is not None else checked - POLICY.read_lag_ms
        assert covered >= 10_000 + POLICY.in_flight_ms
    if isinstance(decision, RetryLookup):
        assert 0 < decision.after_ms <= POLICY.max_backoff_ms


def test_resolution_when_resend_meets_409_looks_up_again_under_the_same_id() -> None:
    tracker = OrderTracker()
    tracker.track(CID, OrderIntent(service="mm", ticker="KX-A", side="ask", count=Decimal(5),
                                   price=Decimal("0.6")))
    tracker.on_place_reply(WriteUnknown(client_order_id=CID, reason="timeout"))
    decision = plan(result(checked=12_000, sends=tracker.get(CID).attempts), POLICY)
    assert isinstance(decision, Resend) and decision.client_order_id == CID
    tracker.on_resend(decision.client_order_id)
    # the first send had landed after all: the exchange says the id is spent
    tracker.on_place_reply(PlaceRejected(client_order_id=CID, status=409,
                                         code="order_already_exists"))
    record = tracker.get(CID)
    assert record.status is OrderStatus.OUTCOME_UNKNOWN and record.attempts == 2
    decision = plan(result([order("o1", filled="1")], checked=13_000, sends=record.attempts),
                    POLICY)
    assert isinstance(decision, Found)
    tracker.on_exchange_order(decision.order)
    assert record.status is OrderStatus.PARTIALLY_FILLED and record.order_id == "o1"
    assert len(tracker) == 1  # one intent, one id, one order
