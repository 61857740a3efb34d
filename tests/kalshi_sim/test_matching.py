"""The matching engine, driven directly (it is pure: no sockets, no clock, no threads).

Each test builds a small exchange of members ``alice``/``bob``/``carol`` with $1,000 each
and checks one rule of KALSHI_PROTOCOL.md §8.5-8.9 with exact integer money.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from kalshi_sim.engine_types import EngineOptions, MarketRules, OrderRequest, PriceRange, Reject
from kalshi_sim.fees import fee_micros, maker_fee_micros, taker_fee_micros
from kalshi_sim.matching.engine import MatchingEngine
from kalshi_sim.matching.reads import reduced_by_centi

T = "KXTEST-26DEC01-T1"
CASH = 1_000_000_000  # $1,000
C = 100  # one contract in centi-contracts
CENT = 10_000


def engine(options: EngineOptions | None = None, **rules: object) -> MatchingEngine:
    eng = MatchingEngine(options)
    eng.add_market(MarketRules(T, "KXTEST-26DEC01", "KXTEST", **rules))  # type: ignore[arg-type]
    for member in ("alice", "bob", "carol"):
        eng.open_account(member, {0: CASH})
    return eng


def order(member: str, side: str, count: int, cents: int, **kw: object) -> OrderRequest:
    return OrderRequest(member, T, side, count * C, cents * CENT, **kw)  # type: ignore[arg-type]


def total_money(eng: MatchingEngine) -> int:
    """Cash + holds + fees + $1 per open YES/NO pair: constant while no one deposits."""
    pairs = sum(max(p.position_centi, 0) for m in eng.members() for p in eng.positions(m))
    held = sum(eng.cash_micros(m) + eng.reserved_micros(m) for m in eng.members())
    return held + eng.fees_collected_micros() + pairs * CENT


# -- the book ---
def test_place_when_ask_rests_shows_on_no_leg_at_one_minus_price():
    eng = engine()
    outcome = eng.place(order("alice", "ask", 5, 52, client_order_id="a1"), 1)
    change = outcome.book_changes[0]
    assert (change.leg, change.price_micros, change.yes_price_micros) == (
        "no",
        48 * CENT,
        52 * CENT,
    )
    assert change.delta_centi == 5 * C and change.client_order_id == "a1"
    assert eng.book(T) == {"yes": {}, "no": {48 * CENT: 5 * C}}
    assert outcome.order is not None and outcome.order.status == "resting"


def test_place_when_bid_crosses_fills_at_resting_price_in_time_priority():
    eng = engine()
    first = eng.place(order("alice", "ask", 2, 50), 1).order
    second = eng.place(order("carol", "ask", 2, 50), 2).order
    eng.place(order("carol", "ask", 5, 49), 3)
    outcome = eng.place(order("bob", "bid", 8, 55), 4)
    taker_fills = [f for f in outcome.fills if f.is_taker]
    assert [(f.count_centi, f.yes_price_micros) for f in taker_fills] == [
        (5 * C, 49 * CENT),
        (2 * C, 50 * CENT),
        (1 * C, 50 * CENT),
    ]
    makers = [f.order_id for f in outcome.fills if not f.is_taker]
    assert makers[1:] == [first.order_id, second.order_id]  # type: ignore[union-attr]
    assert outcome.order.status == "executed"  # type: ignore[union-attr]
    assert eng.book(T)["no"] == {50 * CENT: 1 * C}
    assert eng.order("carol", second.order_id).remaining_centi == 1 * C  # type: ignore[union-attr]


def test_place_when_ask_meets_higher_bid_fills_at_bid_price():
    eng = engine()
    eng.place(order("alice", "bid", 3, 60), 1)
    outcome = eng.place(order("bob", "ask", 3, 40), 2)
    assert {f.yes_price_micros for f in outcome.fills} == {60 * CENT}
    assert eng.position("bob", T).position_centi == -3 * C  # type: ignore[union-attr]
    assert eng.position("alice", T).position_centi == 3 * C  # type: ignore[union-attr]


def test_place_when_option_fills_at_taker_price_uses_taker_limit():
    eng = engine(EngineOptions(fill_at_maker_price=False))
    eng.place(order("alice", "ask", 1, 50), 1)
    outcome = eng.place(order("bob", "bid", 1, 55), 2)
    assert {f.yes_price_micros for f in outcome.fills} == {55 * CENT}


def test_place_when_not_crossing_rests_without_fill():
    eng = engine()
    eng.place(order("alice", "ask", 1, 56), 1)
    outcome = eng.place(order("bob", "bid", 1, 55), 2)
    assert outcome.fills == () and outcome.order.status == "resting"  # type: ignore[union-attr]
    assert eng.best_prices(T) == (55 * CENT, 56 * CENT)


# -- time in force ---
def test_place_when_ioc_partly_fills_cancels_rest_with_option_status():
    for status in ("canceled", "executed"):
        eng = engine(EngineOptions(ioc_partial_status=status))  # type: ignore[arg-type]
        eng.place(order("alice", "ask", 2, 50), 1)
        outcome = eng.place(order("bob", "bid", 5, 50, time_in_force="immediate_or_cancel"), 2)
        assert outcome.order.status == status  # type: ignore[union-attr]
        assert (outcome.order.fill_centi, outcome.order.remaining_centi) == (2 * C, 0)  # type: ignore[union-attr]
        assert eng.book(T) == {"yes": {}, "no": {}}


def test_place_when_ioc_finds_nothing_is_canceled_unfilled():
    eng = engine()
    outcome = eng.place(order("bob", "bid", 5, 50, time_in_force="immediate_or_cancel"), 2)
    assert outcome.order.status == "canceled" and outcome.fill_centi == 0  # type: ignore[union-attr]
    assert eng.reserved_micros("bob") == 0 and eng.cash_micros("bob") == CASH


def test_place_when_fok_short_rejects_409_and_spends_client_order_id():
    eng = engine()
    eng.place(order("alice", "ask", 2, 50), 1)
    with pytest.raises(Reject) as caught:
        eng.place(order("bob", "bid", 3, 50, time_in_force="fill_or_kill", client_order_id="k"), 2)
    assert (caught.value.status, caught.value.code) == (
        409,
        "fill_or_kill_insufficient_resting_volume",
    )
    assert eng.book(T)["no"] == {50 * CENT: 2 * C}  # untouched
    with pytest.raises(Reject) as again:
        eng.place(order("bob", "bid", 1, 40, client_order_id="k"), 3)
    assert (again.value.status, again.value.code) == (409, "order_already_exists")


def test_place_when_fok_has_volume_fills_completely():
    eng = engine()
    eng.place(order("alice", "ask", 2, 50), 1)
    eng.place(order("carol", "ask", 2, 51), 1)
    outcome = eng.place(order("bob", "bid", 3, 51, time_in_force="fill_or_kill"), 2)
    assert outcome.order.status == "executed" and outcome.fill_centi == 3 * C  # type: ignore[union-attr]


def test_expire_when_expiration_time_passes_cancels_with_expiry_reason():
    eng = engine()
    placed = eng.place(order("alice", "bid", 1, 40, expiration_time_s=100), 1).order
    assert eng.expire(99_999).orders_changed == ()
    outcome = eng.expire(100_000)
    assert [(o.order_id, o.status, o.last_update_reason) for o in outcome.orders_changed] == [
        (placed.order_id, "canceled", "ExpiryCancel")  # type: ignore[union-attr]
    ]
    assert outcome.book_changes[0].delta_centi == -1 * C
    assert eng.reserved_micros("alice") == 0


def test_place_when_expiration_on_ioc_rejects_invalid_order():
    eng = engine()
    with pytest.raises(Reject) as caught:
        eng.place(
            order(
                "alice", "bid", 1, 40, time_in_force="immediate_or_cancel", expiration_time_s=100
            ),
            1,
        )
    assert caught.value.code == "invalid_order"


# -- post only, reduce only, STP ---
def test_place_when_post_only_crosses_rejects_400_post_only_cross():
    eng = engine()
    eng.place(order("alice", "ask", 1, 50), 1)
    with pytest.raises(Reject) as caught:
        eng.place(order("bob", "bid", 1, 50, post_only=True, client_order_id="p"), 2)
    assert (caught.value.status, caught.value.code, caught.value.details) == (
        400,
        "invalid_order",
        "post only cross",
    )
    eng.place(order("bob", "bid", 1, 49, post_only=True, client_order_id="p"), 3)  # id not spent


def test_amend_when_post_only_would_cross_cancels_or_rejects_per_option():
    eng = engine()
    eng.place(order("alice", "ask", 1, 50), 1)
    placed = eng.place(order("bob", "bid", 1, 45, post_only=True), 2).order
    outcome = eng.amend(
        "bob",
        placed.order_id,
        ticker=T,
        side="bid",
        price_micros=50 * CENT,  # type: ignore[union-attr]
        count_centi=C,
        now_ms=3,
    )
    assert (outcome.order.status, outcome.order.last_update_reason) == (
        "canceled",
        "PostOnlyCrossCancel",
    )  # type: ignore[union-attr]
    assert outcome.fills == ()
    eng = engine(EngineOptions(post_only_amend="reject"))
    eng.place(order("alice", "ask", 1, 50), 1)
    placed = eng.place(order("bob", "bid", 1, 45, post_only=True), 2).order
    with pytest.raises(Reject):
        eng.amend(
            "bob",
            placed.order_id,
            ticker=T,
            side="bid",
            price_micros=50 * CENT,  # type: ignore[union-attr]
            count_centi=C,
            now_ms=3,
        )
    assert eng.order("bob", placed.order_id).status == "resting"  # type: ignore[union-attr]


def test_place_when_reduce_only_caps_count_at_position():
    eng = engine()
    eng.place(order("alice", "ask", 3, 50), 1)
    eng.place(order("bob", "bid", 3, 50), 2)  # bob holds 3 YES
    eng.place(order("carol", "bid", 10, 50), 3)
    outcome = eng.place(
        order("bob", "ask", 10, 50, reduce_only=True, time_in_force="immediate_or_cancel"), 4
    )
    assert outcome.fill_centi == 3 * C
    assert eng.position("bob", T).position_centi == 0  # type: ignore[union-attr]
    flat = eng.place(order("bob", "ask", 1, 50, reduce_only=True), 5)
    assert (flat.order.status, flat.order.last_update_reason) == ("canceled", "ReduceOnlyCancel")  # type: ignore[union-attr]


def test_place_when_reduce_only_exempt_from_collateral_needs_no_balance():
    for holds, expected in ((True, "insufficient_balance"), (False, None)):
        eng = engine(EngineOptions(reduce_only_holds_collateral=holds))
        eng.place(order("alice", "ask", 3, 50), 1)
        eng.place(order("bob", "bid", 3, 50), 2)  # bob holds 3 YES
        eng.set_cash("bob", 0)
        try:
            placed = eng.place(order("bob", "ask", 3, 60, reduce_only=True), 3)
        except Reject as reject:
            assert reject.code == expected
            continue
        assert expected is None and placed.order.status == "resting"  # type: ignore[union-attr]
        eng.place(order("carol", "bid", 3, 60), 4)
        assert eng.position("bob", T).position_centi == 0  # type: ignore[union-attr]
        assert eng.cash_micros("bob") == 3 * 60 * CENT  # the proceeds, nothing was held


def test_place_when_reduce_only_ioc_only_option_rejects_gtc():
    eng = engine(EngineOptions(reduce_only_ioc_only=True))
    with pytest.raises(Reject) as caught:
        eng.place(order("bob", "ask", 1, 50, reduce_only=True), 1)
    assert caught.value.code == "invalid_order"


def test_place_when_self_cross_taker_at_cross_cancels_incoming_and_keeps_earlier_fills():
    eng = engine()
    eng.place(order("carol", "ask", 1, 49), 1)
    own = eng.place(order("bob", "ask", 2, 50), 2).order
    outcome = eng.place(order("bob", "bid", 5, 55), 3)
    assert outcome.fill_centi == 1 * C
    assert (outcome.order.status, outcome.order.last_update_reason) == (
        "canceled",
        "SelfTradeCancel",
    )  # type: ignore[union-attr]
    assert eng.order("bob", own.order_id).status == "resting"  # type: ignore[union-attr]


def test_place_when_self_cross_maker_stp_cancels_own_resting_and_continues():
    eng = engine()
    own = eng.place(order("bob", "ask", 2, 50), 1).order
    eng.place(order("carol", "ask", 2, 51), 2)
    outcome = eng.place(order("bob", "bid", 2, 55, self_trade_prevention_type="maker"), 3)
    assert outcome.fill_centi == 2 * C
    cancelled = eng.order("bob", own.order_id)  # type: ignore[union-attr]
    assert (cancelled.status, cancelled.last_update_reason) == ("canceled", "SelfTradeCancel")


# -- validation ---
def test_place_when_price_off_grid_rejects_invalid_price():
    eng = engine(
        price_ranges=(PriceRange(0, 100_000, 1_000), PriceRange(100_000, 1_000_000, 10_000))
    )
    eng.place(OrderRequest("bob", T, "bid", C, 5_000), 1)  # 0.5 cents: on the fine grid below 10c
    for bad in (105_000, 0, 1_000_000, 5_500):
        with pytest.raises(Reject) as caught:
            eng.place(OrderRequest("bob", T, "bid", C, bad), 2)
        assert (caught.value.status, caught.value.code) == (400, "invalid_price")


def test_place_when_client_order_id_spent_by_cancelled_order_rejects_409():
    eng = engine()
    placed = eng.place(order("bob", "bid", 1, 40, client_order_id="same"), 1).order
    eng.cancel("bob", placed.order_id, 2)  # type: ignore[union-attr]
    with pytest.raises(Reject) as caught:
        eng.place(order("bob", "bid", 1, 40, client_order_id="same"), 3)
    assert (caught.value.status, caught.value.code) == (409, "order_already_exists")
    eng.place(order("alice", "bid", 1, 40, client_order_id="same"), 4)  # ids are per member


def test_cancel_when_order_dead_or_unknown_is_404_not_found():
    eng = engine()
    placed = eng.place(order("bob", "bid", 3, 40), 1).order
    outcome = eng.cancel("bob", placed.order_id, 2)  # type: ignore[union-attr]
    assert reduced_by_centi(outcome) == 3 * C
    for member, order_id in (("bob", placed.order_id), ("bob", "nope"), ("alice", placed.order_id)):  # type: ignore[union-attr]
        with pytest.raises(Reject) as caught:
            eng.cancel(member, order_id, 3)
        assert (caught.value.status, caught.value.code) == (404, "not_found")


def test_place_when_balance_short_rejects_insufficient_balance():
    eng = engine()
    eng.open_account("poor", {0: 1_000_000})  # $1
    with pytest.raises(Reject) as caught:
        eng.place(order("poor", "bid", 2, 50), 1)
    assert (caught.value.status, caught.value.code) == (400, "insufficient_balance")
    eng.place(order("poor", "bid", 1, 50), 2)
    assert eng.cash_micros("poor") == 1_000_000 - 50 * CENT - 200 * C  # cost + worst fee held


# -- fees ---
def test_fee_when_one_contract_at_52_cents_is_ceiled_to_0_0175():
    assert taker_fee_micros("quadratic", Fraction(1), 100, 520_000, 100) == 17_500
    assert fee_micros(Fraction(7, 100), Fraction(1), 100, 520_000, 1) == 17_472
    assert taker_fee_micros("quadratic", Fraction(1), 100, 520_000, 10_000) == 20_000
    assert maker_fee_micros("quadratic", Fraction(1), 100, 520_000, 100) == 0
    assert maker_fee_micros("quadratic_with_maker_fees", Fraction(1), 100, 520_000, 100) == 4_400


def test_place_when_series_charges_maker_fees_both_sides_pay():
    eng = engine(fee_type="quadratic_with_maker_fees")
    eng.place(order("alice", "ask", 1, 52), 1)
    outcome = eng.place(order("bob", "bid", 1, 52), 2)
    fees = {f.is_taker: f.fee_micros for f in outcome.fills}
    assert fees == {True: 17_500, False: 4_400}
    assert eng.fees_collected_micros() == 21_900
    eng2 = engine()
    eng2.place(order("alice", "ask", 1, 52), 1)
    assert {f.is_taker: f.fee_micros for f in eng2.place(order("bob", "bid", 1, 52), 2).fills} == {
        True: 17_500,
        False: 0,
    }


# -- positions and cash ---
def test_fill_when_position_nets_returns_collateral_and_realizes_pnl():
    eng = engine(fee_type="flat")
    start = total_money(eng)
    eng.place(order("alice", "ask", 10, 40), 1)
    eng.place(order("bob", "bid", 10, 40), 2)  # bob long 10 YES at 40c
    assert eng.cash_micros("bob") == CASH - 10 * 40 * CENT
    eng.place(order("carol", "bid", 4, 55), 3)
    eng.place(order("bob", "ask", 4, 55), 4)  # sells 4 at 55c
    position = eng.position("bob", T)
    assert position is not None
    assert position.position_centi == 6 * C
    assert position.realized_pnl_micros == 4 * 15 * CENT
    assert position.cost_micros == 6 * 40 * CENT
    assert eng.cash_micros("bob") == CASH - 10 * 40 * CENT + 4 * 55 * CENT
    assert total_money(eng) == start


def test_settle_when_yes_wins_pays_a_dollar_per_contract():
    eng = engine(fee_type="flat")
    start = total_money(eng)
    eng.place(order("alice", "ask", 3, 30), 1)
    eng.place(order("bob", "bid", 3, 30), 2)
    eng.place(order("carol", "bid", 1, 10), 3)  # resting, cancelled by settlement
    outcome = eng.settle(T, "yes", 4)
    assert {s.member: s.revenue_micros for s in outcome.settlements} == {
        "bob": 3_000_000,
        "alice": 0,
    }
    assert eng.cash_micros("bob") == CASH + 3 * 70 * CENT
    assert eng.cash_micros("alice") == CASH - 3 * 70 * CENT
    assert eng.cash_micros("carol") == CASH and eng.reserved_micros("carol") == 0
    assert total_money(eng) == start
    with pytest.raises(Reject) as caught:
        eng.place(order("bob", "bid", 1, 30), 5)
    assert caught.value.code == "market_closed"


# -- amend and decrease ---
def test_amend_when_size_decreases_keeps_queue_position():
    eng = engine()
    first = eng.place(order("alice", "bid", 5, 40), 1).order
    second = eng.place(order("carol", "bid", 5, 40), 2).order
    eng.amend(
        "alice",
        first.order_id,
        ticker=T,
        side="bid",
        price_micros=40 * CENT,  # type: ignore[union-attr]
        count_centi=3 * C,
        now_ms=3,
    )
    assert eng.queue_position("alice", first.order_id) == 0  # type: ignore[union-attr]
    eng.amend(
        "alice",
        first.order_id,
        ticker=T,
        side="bid",
        price_micros=40 * CENT,  # type: ignore[union-attr]
        count_centi=4 * C,
        now_ms=4,
    )  # an increase re-queues
    assert eng.queue_position("alice", first.order_id) == 5 * C  # type: ignore[union-attr]
    assert eng.queue_position("carol", second.order_id) == 0  # type: ignore[union-attr]
    assert eng.book(T)["yes"] == {40 * CENT: 9 * C}


def test_amend_when_new_price_crosses_fills():
    eng = engine()
    eng.place(order("alice", "ask", 2, 50), 1)
    placed = eng.place(order("bob", "bid", 2, 45, client_order_id="b1"), 2).order
    outcome = eng.amend(
        "bob",
        placed.order_id,
        ticker=T,
        side="bid",
        price_micros=50 * CENT,  # type: ignore[union-attr]
        count_centi=2 * C,
        now_ms=3,
        updated_client_order_id="b2",
    )
    assert outcome.order.status == "executed" and outcome.order.client_order_id == "b2"  # type: ignore[union-attr]
    with pytest.raises(Reject):
        eng.place(order("bob", "bid", 1, 10, client_order_id="b2"), 4)


def test_decrease_when_reduce_to_zero_cancels_and_reduce_by_shrinks():
    eng = engine()
    placed = eng.place(order("bob", "bid", 5, 40), 1).order
    outcome = eng.decrease("bob", placed.order_id, 2, reduce_by_centi=2 * C)  # type: ignore[union-attr]
    assert outcome.order.remaining_centi == 3 * C  # type: ignore[union-attr]
    assert outcome.book_changes[0].delta_centi == -2 * C
    outcome = eng.decrease("bob", placed.order_id, 3, reduce_to_centi=0)  # type: ignore[union-attr]
    assert outcome.order.status == "canceled"  # type: ignore[union-attr]
    assert eng.reserved_micros("bob") == 0 and eng.cash_micros("bob") == CASH


# -- order groups ---
def test_group_when_fills_exceed_limit_in_window_triggers_and_cancels_its_orders():
    eng = engine()
    group_id, created = eng.create_group("bob", 3 * C, 0)
    assert created.group_events[0].event_type == "created"
    resting = eng.place(order("bob", "bid", 5, 30, order_group_id=group_id), 1).order
    eng.place(order("alice", "ask", 3, 50), 2)
    eng.place(order("bob", "bid", 3, 50, order_group_id=group_id), 3)  # exactly the limit
    assert not eng.group("bob", group_id).triggered
    eng.place(order("alice", "ask", 1, 50), 20_000)  # the first 3 left the 15 s window
    eng.place(order("bob", "bid", 1, 50, order_group_id=group_id), 20_001)
    assert not eng.group("bob", group_id).triggered
    eng.place(order("alice", "ask", 3, 50), 20_002)
    outcome = eng.place(order("bob", "bid", 3, 50, order_group_id=group_id), 20_003)
    assert [e.event_type for e in outcome.group_events] == ["triggered"]
    assert eng.order("bob", resting.order_id).status == "canceled"  # type: ignore[union-attr]
    with pytest.raises(Reject) as caught:
        eng.place(order("bob", "bid", 1, 20, order_group_id=group_id), 20_004)
    assert (caught.value.status, caught.value.code) == (409, "exceeded_order_group_risk_limit")
    eng.reset_group("bob", group_id, 20_005)
    eng.place(order("bob", "bid", 1, 20, order_group_id=group_id), 20_006)


def test_group_when_limit_cut_below_volume_triggers_and_delete_forgets():
    eng = engine()
    group_id, _ = eng.create_group("bob", 10 * C, 0)
    eng.place(order("alice", "ask", 4, 50), 1)
    eng.place(order("bob", "bid", 4, 50, order_group_id=group_id), 2)
    outcome = eng.set_group_limit("bob", group_id, 3 * C, 3)
    assert [e.event_type for e in outcome.group_events] == ["limit_updated", "triggered"]
    eng.trigger_group("bob", group_id, 4)
    eng.delete_group("bob", group_id, 5)
    with pytest.raises(Reject) as caught:
        eng.group("bob", group_id)
    assert (caught.value.status, caught.value.code) == (404, "order_group_not_found")


# -- lifecycle ---
def test_reactivate_when_market_was_deactivated_cancels_every_resting_order():
    eng = engine()
    placed = eng.place(order("bob", "bid", 1, 40), 1).order
    eng.deactivate(T, 2)
    with pytest.raises(Reject) as caught:
        eng.place(order("bob", "bid", 1, 40), 3)
    assert (caught.value.status, caught.value.code) == (409, "trading_is_paused")
    assert eng.order("bob", placed.order_id).status == "resting"  # type: ignore[union-attr]
    outcome = eng.reactivate(T, 4)
    assert [o.status for o in outcome.orders_changed] == ["canceled"]
    eng.place(order("bob", "bid", 1, 40), 5)


def test_trading_pause_when_cancel_on_pause_set_cancels_only_those():
    eng = engine()
    keep = eng.place(order("bob", "bid", 1, 40), 1).order
    drop = eng.place(order("bob", "bid", 1, 41, cancel_order_on_pause=True), 1).order
    outcome = eng.trading_pause(2)
    assert [o.order_id for o in outcome.orders_changed] == [drop.order_id]  # type: ignore[union-attr]
    with pytest.raises(Reject):
        eng.place(order("bob", "bid", 1, 40), 3)
    eng.decrease("bob", keep.order_id, 4, reduce_by_centi=50)  # type: ignore[union-attr]
    eng.cancel("bob", keep.order_id, 4)  # type: ignore[union-attr]  # cancels allowed in a weekly pause
    eng.trading_resume(5)
    eng.place(order("bob", "bid", 1, 40), 6)


def test_close_market_when_orders_rest_cancels_them_and_refuses_cancels():
    eng = engine()
    placed = eng.place(order("bob", "bid", 1, 40), 1).order
    outcome = eng.close_market(T, 2)
    assert [(o.status, o.last_update_reason) for o in outcome.orders_changed] == [
        ("canceled", "CloseCancel")
    ]
    with pytest.raises(Reject) as caught:
        eng.cancel("bob", placed.order_id, 3)  # type: ignore[union-attr]
    assert caught.value.status == 404


# -- bounded memory ---------------------------------------------------------------------------
def test_history_when_over_budget_forgets_oldest_dead_orders_but_keeps_ids_spent():
    eng = engine(EngineOptions(dead_orders_kept_per_member=10, fills_kept_per_member=5))
    for i in range(30):
        placed = eng.place(order("bob", "bid", 1, 40, client_order_id=f"c{i}"), i).order
        eng.cancel("bob", placed.order_id, i)  # type: ignore[union-attr]
    assert [o.client_order_id for o in eng.orders("bob")] == [f"c{i}" for i in range(20, 30)]
    with pytest.raises(Reject) as caught:
        eng.place(order("bob", "bid", 1, 40, client_order_id="c0"), 31)
    assert caught.value.code == "order_already_exists"
    for i in range(8):
        eng.place(order("alice", "ask", 1, 50), 40 + i)
        eng.place(order("bob", "bid", 1, 50), 40 + i)
    assert len(eng.fills("bob")) == 5
    eng.limit_history("bob", orders=2, fills=1)
    eng.cancel("bob", eng.place(order("bob", "bid", 1, 40), 60).order.order_id, 61)  # type: ignore[union-attr]
    assert len(eng.orders("bob")) == 2 and len(eng.fills("bob")) == 1
