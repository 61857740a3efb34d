"""The matching engine, driven directly (it is pure: no sockets, no clock, no threads).

Each test builds a small exchange of members ``alice``/``bob``/``carol`` with $1,000 each
(the ``eng`` fixture, or ``engine(options)`` for other options) and checks one rule of
KALSHI_PROTOCOL.md §8.5-8.9 with exact integer money.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction

import pytest

from kalshi_sim.engine_types import (
    EngineOptions,
    EngineOrder,
    MarketRules,
    OrderRequest,
    Outcome,
    PriceRange,
    Reject,
)
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


@pytest.fixture
def eng() -> MatchingEngine:
    """The default engine: default options, a quadratic-fee market."""
    return engine()


def order(member: str, side: str, count: int, cents: int, **kw: object) -> OrderRequest:
    return OrderRequest(member, T, side, count * C, cents * CENT, **kw)  # type: ignore[arg-type]


def acted(outcome: Outcome) -> EngineOrder:
    """The order a call acted on (every place/amend/decrease/cancel has one)."""
    assert outcome.order is not None
    return outcome.order


def place(
    eng: MatchingEngine, member: str, side: str, count: int, cents: int, now: int = 1, **kw: object
) -> EngineOrder:
    """Place an order and return it as it stands after the call."""
    return acted(eng.place(order(member, side, count, cents, **kw), now))


def buy(eng: MatchingEngine, buyer: str, count: int, cents: int, now: int, **kw: object) -> Outcome:
    """``alice`` rests an ask, then ``buyer`` takes it whole with a bid at the same price."""
    eng.place(order("alice", "ask", count, cents), now)
    return eng.place(order(buyer, "bid", count, cents, **kw), now)


def amend(
    eng: MatchingEngine, placed: EngineOrder, cents: int, count: int, now: int, **kw: object
) -> Outcome:
    """Amend ``placed`` (same member, ticker and side) to a new price and total count."""
    return eng.amend(
        placed.member,
        placed.order_id,
        ticker=T,
        side=placed.side,
        price_micros=cents * CENT,
        count_centi=count * C,
        now_ms=now,
        **kw,  # type: ignore[arg-type]
    )


@contextmanager
def rejects(status: int | None, code: str | None) -> Iterator[None]:
    """The block raises Reject with this status and code (None: not checked)."""
    with pytest.raises(Reject) as caught:
        yield
    if status is not None:
        assert caught.value.status == status, caught.value
    if code is not None:
        assert caught.value.code == code, caught.value


def total_money(eng: MatchingEngine) -> int:
    """Cash + holds + fees + $1 per open YES/NO pair: constant while no one deposits."""
    pairs = sum(max(p.position_centi, 0) for m in eng.members() for p in eng.positions(m))
    held = sum(eng.cash_micros(m) + eng.reserved_micros(m) for m in eng.members())
    return held + eng.fees_collected_micros() + pairs * CENT


# -- the book ---
def test_place_when_ask_rests_shows_on_no_leg_at_one_minus_price(eng: MatchingEngine):
    outcome = eng.place(order("alice", "ask", 5, 52, client_order_id="a1"), 1)
    change = outcome.book_changes[0]
    assert (change.leg, change.price_micros, change.yes_price_micros) == (
        "no",
        48 * CENT,
        52 * CENT,
    )
    assert change.delta_centi == 5 * C and change.client_order_id == "a1"
    assert eng.book(T) == {"yes": {}, "no": {48 * CENT: 5 * C}}
    assert acted(outcome).status == "resting"


def test_place_when_bid_crosses_fills_at_resting_price_in_time_priority(eng: MatchingEngine):
    first = place(eng, "alice", "ask", 2, 50, 1)
    second = place(eng, "carol", "ask", 2, 50, 2)
    place(eng, "carol", "ask", 5, 49, 3)
    outcome = eng.place(order("bob", "bid", 8, 55), 4)
    taker_fills = [f for f in outcome.fills if f.is_taker]
    assert [(f.count_centi, f.yes_price_micros) for f in taker_fills] == [
        (5 * C, 49 * CENT),
        (2 * C, 50 * CENT),
        (1 * C, 50 * CENT),
    ]
    makers = [f.order_id for f in outcome.fills if not f.is_taker]
    assert makers[1:] == [first.order_id, second.order_id]
    assert acted(outcome).status == "executed"
    assert eng.book(T)["no"] == {50 * CENT: 1 * C}
    assert eng.order("carol", second.order_id).remaining_centi == 1 * C


def test_place_when_ask_meets_higher_bid_fills_at_bid_price(eng: MatchingEngine):
    place(eng, "alice", "bid", 3, 60, 1)
    outcome = eng.place(order("bob", "ask", 3, 40), 2)
    assert {f.yes_price_micros for f in outcome.fills} == {60 * CENT}
    assert eng.position("bob", T).position_centi == -3 * C  # type: ignore[union-attr]
    assert eng.position("alice", T).position_centi == 3 * C  # type: ignore[union-attr]


def test_place_when_option_fills_at_taker_price_uses_taker_limit():
    eng = engine(EngineOptions(fill_at_maker_price=False))
    place(eng, "alice", "ask", 1, 50, 1)
    outcome = eng.place(order("bob", "bid", 1, 55), 2)
    assert {f.yes_price_micros for f in outcome.fills} == {55 * CENT}


def test_place_when_not_crossing_rests_without_fill(eng: MatchingEngine):
    place(eng, "alice", "ask", 1, 56, 1)
    outcome = eng.place(order("bob", "bid", 1, 55), 2)
    assert outcome.fills == () and acted(outcome).status == "resting"
    assert eng.best_prices(T) == (55 * CENT, 56 * CENT)


# -- time in force ---
@pytest.mark.parametrize("status", ["canceled", "executed"])
def test_place_when_ioc_partly_fills_cancels_rest_with_option_status(status: str):
    eng = engine(EngineOptions(ioc_partial_status=status))  # type: ignore[arg-type]
    place(eng, "alice", "ask", 2, 50, 1)
    taker = place(eng, "bob", "bid", 5, 50, 2, time_in_force="immediate_or_cancel")
    assert taker.status == status
    assert (taker.fill_centi, taker.remaining_centi) == (2 * C, 0)
    assert eng.book(T) == {"yes": {}, "no": {}}


def test_place_when_ioc_finds_nothing_is_canceled_unfilled(eng: MatchingEngine):
    outcome = eng.place(order("bob", "bid", 5, 50, time_in_force="immediate_or_cancel"), 2)
    assert acted(outcome).status == "canceled" and outcome.fill_centi == 0
    assert eng.reserved_micros("bob") == 0 and eng.cash_micros("bob") == CASH


def test_place_when_fok_short_rejects_409_and_spends_client_order_id(eng: MatchingEngine):
    place(eng, "alice", "ask", 2, 50, 1)
    with rejects(409, "fill_or_kill_insufficient_resting_volume"):
        place(eng, "bob", "bid", 3, 50, 2, time_in_force="fill_or_kill", client_order_id="k")
    assert eng.book(T)["no"] == {50 * CENT: 2 * C}  # untouched
    with rejects(409, "order_already_exists"):
        place(eng, "bob", "bid", 1, 40, 3, client_order_id="k")


def test_place_when_fok_has_volume_fills_completely(eng: MatchingEngine):
    place(eng, "alice", "ask", 2, 50, 1)
    place(eng, "carol", "ask", 2, 51, 1)
    outcome = eng.place(order("bob", "bid", 3, 51, time_in_force="fill_or_kill"), 2)
    assert acted(outcome).status == "executed" and outcome.fill_centi == 3 * C


def test_expire_when_expiration_time_passes_cancels_with_expiry_reason(eng: MatchingEngine):
    placed = place(eng, "alice", "bid", 1, 40, 1, expiration_time_s=100)
    assert eng.expire(99_999).orders_changed == ()
    outcome = eng.expire(100_000)
    assert [(o.order_id, o.status, o.last_update_reason) for o in outcome.orders_changed] == [
        (placed.order_id, "canceled", "ExpiryCancel")
    ]
    assert outcome.book_changes[0].delta_centi == -1 * C
    assert eng.reserved_micros("alice") == 0


def test_place_when_expiration_on_ioc_rejects_invalid_order(eng: MatchingEngine):
    with rejects(None, "invalid_order"):
        ioc = "immediate_or_cancel"
        place(eng, "alice", "bid", 1, 40, 1, time_in_force=ioc, expiration_time_s=100)


# -- post only, reduce only, STP ---
def test_place_when_post_only_crosses_rejects_400_post_only_cross(eng: MatchingEngine):
    place(eng, "alice", "ask", 1, 50, 1)
    with pytest.raises(Reject) as caught:
        place(eng, "bob", "bid", 1, 50, 2, post_only=True, client_order_id="p")
    assert (caught.value.status, caught.value.code, caught.value.details) == (
        400,
        "invalid_order",
        "post only cross",
    )
    place(eng, "bob", "bid", 1, 49, 3, post_only=True, client_order_id="p")  # id not spent


def test_amend_when_post_only_would_cross_cancels_or_rejects_per_option():
    eng = engine()
    place(eng, "alice", "ask", 1, 50, 1)
    placed = place(eng, "bob", "bid", 1, 45, 2, post_only=True)
    outcome = amend(eng, placed, cents=50, count=1, now=3)
    assert (acted(outcome).status, acted(outcome).last_update_reason) == (
        "canceled",
        "PostOnlyCrossCancel",
    )
    assert outcome.fills == ()
    eng = engine(EngineOptions(post_only_amend="reject"))
    place(eng, "alice", "ask", 1, 50, 1)
    placed = place(eng, "bob", "bid", 1, 45, 2, post_only=True)
    with rejects(None, None):
        amend(eng, placed, cents=50, count=1, now=3)
    assert eng.order("bob", placed.order_id).status == "resting"


def test_place_when_reduce_only_caps_count_at_position(eng: MatchingEngine):
    buy(eng, "bob", 3, 50, 1)  # bob holds 3 YES
    place(eng, "carol", "bid", 10, 50, 3)
    outcome = eng.place(
        order("bob", "ask", 10, 50, reduce_only=True, time_in_force="immediate_or_cancel"), 4
    )
    assert outcome.fill_centi == 3 * C
    assert eng.position("bob", T).position_centi == 0  # type: ignore[union-attr]
    flat = place(eng, "bob", "ask", 1, 50, 5, reduce_only=True)
    assert (flat.status, flat.last_update_reason) == ("canceled", "ReduceOnlyCancel")


@pytest.mark.parametrize(("holds", "expected"), [(True, "insufficient_balance"), (False, None)])
def test_place_when_reduce_only_exempt_from_collateral_needs_no_balance(
    holds: bool, expected: str | None
):
    eng = engine(EngineOptions(reduce_only_holds_collateral=holds))
    buy(eng, "bob", 3, 50, 1)  # bob holds 3 YES
    eng.set_cash("bob", 0)
    if expected is not None:
        with rejects(None, expected):
            place(eng, "bob", "ask", 3, 60, 3, reduce_only=True)
        return
    assert place(eng, "bob", "ask", 3, 60, 3, reduce_only=True).status == "resting"
    place(eng, "carol", "bid", 3, 60, 4)
    assert eng.position("bob", T).position_centi == 0  # type: ignore[union-attr]
    assert eng.cash_micros("bob") == 3 * 60 * CENT  # the proceeds, nothing was held


def test_place_when_reduce_only_ioc_only_option_rejects_gtc():
    eng = engine(EngineOptions(reduce_only_ioc_only=True))
    with rejects(None, "invalid_order"):
        place(eng, "bob", "ask", 1, 50, 1, reduce_only=True)


def test_place_when_self_cross_taker_at_cross_cancels_incoming_and_keeps_earlier_fills(
    eng: MatchingEngine,
):
    place(eng, "carol", "ask", 1, 49, 1)
    own = place(eng, "bob", "ask", 2, 50, 2)
    outcome = eng.place(order("bob", "bid", 5, 55), 3)
    assert outcome.fill_centi == 1 * C
    assert (acted(outcome).status, acted(outcome).last_update_reason) == (
        "canceled",
        "SelfTradeCancel",
    )
    assert eng.order("bob", own.order_id).status == "resting"


def test_place_when_self_cross_maker_stp_cancels_own_resting_and_continues(eng: MatchingEngine):
    own = place(eng, "bob", "ask", 2, 50, 1)
    place(eng, "carol", "ask", 2, 51, 2)
    outcome = eng.place(order("bob", "bid", 2, 55, self_trade_prevention_type="maker"), 3)
    assert outcome.fill_centi == 2 * C
    cancelled = eng.order("bob", own.order_id)
    assert (cancelled.status, cancelled.last_update_reason) == ("canceled", "SelfTradeCancel")


# -- validation ---
def test_place_when_price_off_grid_rejects_invalid_price():
    eng = engine(
        price_ranges=(PriceRange(0, 100_000, 1_000), PriceRange(100_000, 1_000_000, 10_000))
    )
    eng.place(OrderRequest("bob", T, "bid", C, 5_000), 1)  # 0.5 cents: on the fine grid below 10c
    for bad in (105_000, 0, 1_000_000, 5_500):
        with rejects(400, "invalid_price"):
            eng.place(OrderRequest("bob", T, "bid", C, bad), 2)


def test_place_when_client_order_id_spent_by_cancelled_order_rejects_409(eng: MatchingEngine):
    placed = place(eng, "bob", "bid", 1, 40, 1, client_order_id="same")
    eng.cancel("bob", placed.order_id, 2)
    with rejects(409, "order_already_exists"):
        place(eng, "bob", "bid", 1, 40, 3, client_order_id="same")
    place(eng, "alice", "bid", 1, 40, 4, client_order_id="same")  # ids are per member


def test_cancel_when_order_dead_or_unknown_is_404_not_found(eng: MatchingEngine):
    placed = place(eng, "bob", "bid", 3, 40, 1)
    outcome = eng.cancel("bob", placed.order_id, 2)
    assert reduced_by_centi(outcome) == 3 * C
    for member, order_id in (("bob", placed.order_id), ("bob", "nope"), ("alice", placed.order_id)):
        with rejects(404, "not_found"):
            eng.cancel(member, order_id, 3)


def test_place_when_balance_short_rejects_insufficient_balance(eng: MatchingEngine):
    eng.open_account("poor", {0: 1_000_000})  # $1
    with rejects(400, "insufficient_balance"):
        place(eng, "poor", "bid", 2, 50, 1)
    place(eng, "poor", "bid", 1, 50, 2)
    assert eng.cash_micros("poor") == 1_000_000 - 50 * CENT - 200 * C  # cost + worst fee held


# -- fees ---
def test_fee_when_one_contract_at_52_cents_is_ceiled_to_0_0175():
    assert taker_fee_micros("quadratic", Fraction(1), 100, 520_000, 100) == 17_500
    assert fee_micros(Fraction(7, 100), Fraction(1), 100, 520_000, 1) == 17_472
    assert taker_fee_micros("quadratic", Fraction(1), 100, 520_000, 10_000) == 20_000
    assert maker_fee_micros("quadratic", Fraction(1), 100, 520_000, 100) == 0
    assert maker_fee_micros("quadratic_with_maker_fees", Fraction(1), 100, 520_000, 100) == 4_400


@pytest.mark.parametrize(
    ("fee_type", "maker_fee", "collected"),
    [("quadratic_with_maker_fees", 4_400, 21_900), ("quadratic", 0, 17_500)],
)
def test_place_when_series_charges_maker_fees_both_sides_pay(
    fee_type: str, maker_fee: int, collected: int
):
    eng = engine(fee_type=fee_type)
    outcome = buy(eng, "bob", 1, 52, 1)
    assert {f.is_taker: f.fee_micros for f in outcome.fills} == {True: 17_500, False: maker_fee}
    assert eng.fees_collected_micros() == collected


# -- positions and cash ---
def test_fill_when_position_nets_returns_collateral_and_realizes_pnl():
    eng = engine(fee_type="flat")
    start = total_money(eng)
    buy(eng, "bob", 10, 40, 1)  # bob long 10 YES at 40c
    assert eng.cash_micros("bob") == CASH - 10 * 40 * CENT
    place(eng, "carol", "bid", 4, 55, 3)
    place(eng, "bob", "ask", 4, 55, 4)  # sells 4 at 55c
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
    buy(eng, "bob", 3, 30, 1)
    place(eng, "carol", "bid", 1, 10, 3)  # resting, cancelled by settlement
    outcome = eng.settle(T, "yes", 4)
    assert {s.member: s.revenue_micros for s in outcome.settlements} == {
        "bob": 3_000_000,
        "alice": 0,
    }
    assert eng.cash_micros("bob") == CASH + 3 * 70 * CENT
    assert eng.cash_micros("alice") == CASH - 3 * 70 * CENT
    assert eng.cash_micros("carol") == CASH and eng.reserved_micros("carol") == 0
    assert total_money(eng) == start
    with rejects(None, "market_closed"):
        place(eng, "bob", "bid", 1, 30, 5)


# -- amend and decrease ---
def test_amend_when_size_decreases_keeps_queue_position(eng: MatchingEngine):
    first = place(eng, "alice", "bid", 5, 40, 1)
    second = place(eng, "carol", "bid", 5, 40, 2)
    amend(eng, first, cents=40, count=3, now=3)
    assert eng.queue_position("alice", first.order_id) == 0
    amend(eng, first, cents=40, count=4, now=4)  # an increase re-queues
    assert eng.queue_position("alice", first.order_id) == 5 * C
    assert eng.queue_position("carol", second.order_id) == 0
    assert eng.book(T)["yes"] == {40 * CENT: 9 * C}


def test_amend_when_new_price_crosses_fills(eng: MatchingEngine):
    place(eng, "alice", "ask", 2, 50, 1)
    placed = place(eng, "bob", "bid", 2, 45, 2, client_order_id="b1")
    outcome = amend(eng, placed, cents=50, count=2, now=3, updated_client_order_id="b2")
    assert acted(outcome).status == "executed" and acted(outcome).client_order_id == "b2"
    with rejects(None, None):
        place(eng, "bob", "bid", 1, 10, 4, client_order_id="b2")


def test_decrease_when_reduce_to_zero_cancels_and_reduce_by_shrinks(eng: MatchingEngine):
    placed = place(eng, "bob", "bid", 5, 40, 1)
    outcome = eng.decrease("bob", placed.order_id, 2, reduce_by_centi=2 * C)
    assert acted(outcome).remaining_centi == 3 * C
    assert outcome.book_changes[0].delta_centi == -2 * C
    outcome = eng.decrease("bob", placed.order_id, 3, reduce_to_centi=0)
    assert acted(outcome).status == "canceled"
    assert eng.reserved_micros("bob") == 0 and eng.cash_micros("bob") == CASH


# -- order groups ---
def test_group_when_fills_exceed_limit_in_window_triggers_and_cancels_its_orders(
    eng: MatchingEngine,
):
    group_id, created = eng.create_group("bob", 3 * C, 0)
    assert created.group_events[0].event_type == "created"
    resting = place(eng, "bob", "bid", 5, 30, 1, order_group_id=group_id)
    buy(eng, "bob", 3, 50, 3, order_group_id=group_id)  # exactly the limit
    assert not eng.group("bob", group_id).triggered
    buy(eng, "bob", 1, 50, 20_001, order_group_id=group_id)  # the first 3 left the 15 s window
    assert not eng.group("bob", group_id).triggered
    outcome = buy(eng, "bob", 3, 50, 20_003, order_group_id=group_id)
    assert [e.event_type for e in outcome.group_events] == ["triggered"]
    assert eng.order("bob", resting.order_id).status == "canceled"
    with rejects(409, "exceeded_order_group_risk_limit"):
        place(eng, "bob", "bid", 1, 20, 20_004, order_group_id=group_id)
    eng.reset_group("bob", group_id, 20_005)
    place(eng, "bob", "bid", 1, 20, 20_006, order_group_id=group_id)


def test_group_when_limit_cut_below_volume_triggers_and_delete_forgets(eng: MatchingEngine):
    group_id, _ = eng.create_group("bob", 10 * C, 0)
    buy(eng, "bob", 4, 50, 2, order_group_id=group_id)
    outcome = eng.set_group_limit("bob", group_id, 3 * C, 3)
    assert [e.event_type for e in outcome.group_events] == ["limit_updated", "triggered"]
    eng.trigger_group("bob", group_id, 4)
    eng.delete_group("bob", group_id, 5)
    with rejects(404, "order_group_not_found"):
        eng.group("bob", group_id)


# -- lifecycle ---
def test_reactivate_when_market_was_deactivated_cancels_every_resting_order(eng: MatchingEngine):
    placed = place(eng, "bob", "bid", 1, 40, 1)
    eng.deactivate(T, 2)
    with rejects(409, "trading_is_paused"):
        place(eng, "bob", "bid", 1, 40, 3)
    assert eng.order("bob", placed.order_id).status == "resting"
    outcome = eng.reactivate(T, 4)
    assert [o.status for o in outcome.orders_changed] == ["canceled"]
    place(eng, "bob", "bid", 1, 40, 5)


def test_trading_pause_when_cancel_on_pause_set_cancels_only_those(eng: MatchingEngine):
    keep = place(eng, "bob", "bid", 1, 40, 1)
    drop = place(eng, "bob", "bid", 1, 41, 1, cancel_order_on_pause=True)
    outcome = eng.trading_pause(2)
    assert [o.order_id for o in outcome.orders_changed] == [drop.order_id]
    with rejects(None, None):
        place(eng, "bob", "bid", 1, 40, 3)
    eng.decrease("bob", keep.order_id, 4, reduce_by_centi=50)
    eng.cancel("bob", keep.order_id, 4)  # cancels allowed in a weekly pause
    eng.trading_resume(5)
    place(eng, "bob", "bid", 1, 40, 6)


def test_close_market_when_orders_rest_cancels_them_and_refuses_cancels(eng: MatchingEngine):
    placed = place(eng, "bob", "bid", 1, 40, 1)
    outcome = eng.close_market(T, 2)
    assert [(o.status, o.last_update_reason) for o in outcome.orders_changed] == [
        ("canceled", "CloseCancel")
    ]
    with rejects(404, None):
        eng.cancel("bob", placed.order_id, 3)


# -- bounded memory ---------------------------------------------------------------------------
def test_history_when_over_budget_forgets_oldest_dead_orders_but_keeps_ids_spent():
    eng = engine(EngineOptions(dead_orders_kept_per_member=10, fills_kept_per_member=5))
    for i in range(30):
        placed = place(eng, "bob", "bid", 1, 40, i, client_order_id=f"c{i}")
        eng.cancel("bob", placed.order_id, i)
    assert [o.client_order_id for o in eng.orders("bob")] == [f"c{i}" for i in range(20, 30)]
    with rejects(None, "order_already_exists"):
        place(eng, "bob", "bid", 1, 40, 31, client_order_id="c0")
    for i in range(8):
        buy(eng, "bob", 1, 50, 40 + i)
    assert len(eng.fills("bob")) == 5
    eng.limit_history("bob", orders=2, fills=1)
    eng.cancel("bob", place(eng, "bob", "bid", 1, 40, 60).order_id, 61)
    assert len(eng.orders("bob")) == 2 and len(eng.fills("bob")) == 1
