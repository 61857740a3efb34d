"""Property test: random order flow from several members never breaks the engine's invariants.

Hypothesis draws sequences of place (GTC/IOC/FOK, post-only, reduce-only, both STP types,
expiries), cancel, amend, decrease, cancel-all and expire calls; after every call the test
checks what must always hold: no crossed book at rest, the public book equal to the resting
orders, contracts and money conserved, fills no worse than the taker's limit, counts adding
up, ids never reused, cash never negative. A settlement at the end must pay out exactly the
collateral of the open pairs.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kalshi_sim.engine_types import EngineOptions, MarketRules, OrderRequest, Outcome, Reject
from kalshi_sim.matching.engine import MatchingEngine

T = "KXPROP-26DEC01-T1"
MEMBERS = ("m0", "m1", "m2", "m3")
CASH = 200_000_000  # $200: small enough that insufficient_balance happens
CENT = 10_000

places = st.tuples(
    st.just("place"),
    st.sampled_from(MEMBERS),
    st.sampled_from(("bid", "ask")),
    st.integers(1, 1_500),  # centi-contracts
    st.one_of(st.integers(40, 60), st.integers(1, 99)),  # cents, mostly near the middle
    st.sampled_from(
        ("good_till_canceled", "good_till_canceled", "immediate_or_cancel", "fill_or_kill")
    ),
    st.sampled_from(("taker_at_cross", "maker")),
    st.booleans(),  # post_only
    st.integers(0, 5),  # 0: reduce_only; 1: with an expiry
)
others = st.tuples(
    st.sampled_from(("cancel", "amend", "decrease", "cancel_all", "expire")),
    st.sampled_from(MEMBERS),
    st.integers(0, 50),  # which of the member's orders
    st.integers(1, 99),  # amend price (cents)
    st.integers(1, 1_500),  # amend/decrease size
)
operations = st.lists(st.one_of(places, places, others), min_size=5, max_size=80)


def _money(eng: MatchingEngine) -> int:
    pairs = sum(max(p.position_centi, 0) for m in MEMBERS for p in eng.positions(m))
    held = sum(eng.cash_micros(m) + eng.reserved_micros(m) for m in MEMBERS)
    return held + eng.fees_collected_micros() + pairs * (CENT)


def _check_book(eng: MatchingEngine) -> None:
    bid, ask = eng.best_prices(T)
    assert bid is None or ask is None or bid < ask, f"crossed book at rest: {bid} >= {ask}"
    yes: dict[int, int] = {}
    no: dict[int, int] = {}
    for member in MEMBERS:
        for order in eng.orders(member, status="resting"):
            assert order.remaining_centi > 0
            assert order.remaining_centi + order.fill_centi == order.initial_centi
            if order.side == "bid":
                yes[order.price_micros] = yes.get(order.price_micros, 0) + order.remaining_centi
            else:
                leg = 1_000_000 - order.price_micros
                no[leg] = no.get(leg, 0) + order.remaining_centi
    book = eng.book(T)
    assert book["yes"] == yes and book["no"] == no


def _check_outcome(outcome: Outcome, seen_trades: set[str], ioc_executed: bool) -> None:
    taker = outcome.order
    for fill in outcome.fills:
        if fill.is_taker and taker is not None:
            if taker.side == "bid":
                assert fill.yes_price_micros <= taker.price_micros
            else:
                assert fill.yes_price_micros >= taker.price_micros
    for trade in outcome.trades:
        assert trade.trade_id not in seen_trades, "trade id reused"
        seen_trades.add(trade.trade_id)
    for order in outcome.orders_changed:
        assert order.fill_centi <= order.initial_centi
        if order.status == "resting":
            assert order.remaining_centi + order.fill_centi == order.initial_centi
        else:
            assert order.remaining_centi == 0
        if order.status == "executed" and not ioc_executed:
            assert order.fill_centi == order.initial_centi


def _run(eng: MatchingEngine, ops: list[tuple]) -> None:  # type: ignore[type-arg]
    start = _money(eng)
    seen_orders: set[str] = set()
    seen_trades: set[str] = set()
    mine: dict[str, list[str]] = {m: [] for m in MEMBERS}
    now = 1_000
    groups = {m: eng.create_group(m, 800, now)[0] for m in MEMBERS[:2]}
    for serial, op in enumerate(ops):
        now += 700
        kind, member = op[0], op[1]
        try:
            if kind == "place":
                _, _, side, count, cents, tif, stp, post_only, flag = op
                req = OrderRequest(
                    member,
                    T,
                    side,
                    count,
                    cents * CENT,
                    tif,
                    stp,
                    client_order_id=f"{member}-{serial}",
                    expiration_time_s=(now // 1000 + 3)
                    if flag == 1 and tif == "good_till_canceled"
                    else None,
                    post_only=post_only and tif == "good_till_canceled",
                    reduce_only=flag == 0,
                    order_group_id=groups.get(member) if flag in (2, 3) else None,
                )
                outcome = eng.place(req, now)
                assert outcome.order is not None
                assert outcome.order.order_id not in seen_orders, "order id reused"
                seen_orders.add(outcome.order.order_id)
                mine[member].append(outcome.order.order_id)
            elif kind == "cancel_all":
                outcome = eng.cancel_all(member, now)
            elif kind == "expire":
                outcome = eng.expire(now)
                if member in groups:
                    eng.reset_group(member, groups[member], now)
            else:
                ids = mine[member]
                if op[2] % 3:  # mostly live orders; sometimes any (dead ones must 404)
                    ids = [o.order_id for o in eng.orders(member, status="resting")] or ids
                if not ids:
                    continue
                order_id = ids[op[2] % len(ids)]
                if kind == "cancel":
                    outcome = eng.cancel(member, order_id, now)
                elif kind == "decrease":
                    outcome = eng.decrease(member, order_id, now, reduce_by_centi=op[4])
                else:
                    current = eng.order(member, order_id)
                    outcome = eng.amend(
                        member,
                        order_id,
                        ticker=T,
                        side=current.side,
                        price_micros=op[3] * CENT,
                        count_centi=current.fill_centi + op[4],
                        now_ms=now,
                    )
        except Reject as reject:
            assert reject.status in (400, 404, 409), reject
            outcome = None
        if outcome is not None:
            _check_outcome(outcome, seen_trades, eng.options.ioc_partial_status == "executed")
        _check_book(eng)
        assert sum(p.position_centi for m in MEMBERS for p in eng.positions(m)) == 0
        assert _money(eng) == start, "money not conserved"
        if eng.options.reserve_resting_balance:
            assert all(eng.cash_micros(m, 0) >= 0 for m in MEMBERS)
    # settlement pays out exactly the collateral of the open pairs
    pairs = sum(max(p.position_centi, 0) for m in MEMBERS for p in eng.positions(m))
    cash_before = sum(eng.cash_micros(m) + eng.reserved_micros(m) for m in MEMBERS)
    eng.settle(T, "yes", now + 1)
    assert sum(eng.reserved_micros(m) for m in MEMBERS) == 0
    assert sum(eng.cash_micros(m) for m in MEMBERS) == cash_before + pairs * CENT
    assert _money(eng) == start


def _random_ops(rng: random.Random, count: int) -> list[tuple]:  # type: ignore[type-arg]
    """A long busy sequence (hypothesis' own lists stay short): mostly orders near the middle,
    so books fill, cross and trade a lot."""
    ops: list[tuple] = []  # type: ignore[type-arg]
    tifs = ("good_till_canceled",) * 5 + ("immediate_or_cancel", "fill_or_kill")
    for _ in range(count):
        member = rng.choice(MEMBERS)
        if rng.random() < 0.7:
            ops.append(
                (
                    "place",
                    member,
                    rng.choice(("bid", "ask")),
                    rng.choice((100, 250, 1_000, rng.randint(1, 1_500))),
                    rng.randint(42, 58),
                    rng.choice(tifs),
                    rng.choice(("taker_at_cross", "maker")),
                    rng.random() < 0.15,
                    rng.randint(0, 8),
                )
            )
        else:
            kind = rng.choice(("cancel", "amend", "amend", "decrease", "cancel_all", "expire"))
            ops.append((kind, member, rng.randint(0, 50), rng.randint(42, 58), rng.randint(1, 900)))
    return ops


def _engine(options: EngineOptions, fee_type: str) -> MatchingEngine:
    eng = MatchingEngine(options)
    eng.add_market(MarketRules(T, "KXPROP-26DEC01", "KXPROP", fee_type=fee_type))
    for member in MEMBERS:
        eng.open_account(member, {0: CASH})
    return eng


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, fee_type=st.sampled_from(("quadratic", "quadratic_with_maker_fees")))
def test_random_order_flow_when_applied_keeps_every_invariant(ops, fee_type):
    _run(_engine(EngineOptions(), fee_type), ops)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_random_order_flow_when_options_flipped_keeps_every_invariant(ops):
    options = EngineOptions(
        ioc_partial_status="executed",
        reserve_resting_balance=False,
        post_only_amend="reject",
        fee_quantum_micros=10_000,
        group_counts_maker_fills=False,
        reduce_only_holds_collateral=False,
    )
    _run(_engine(options, "quadratic_with_maker_fees"), ops)


@pytest.mark.slow  # a long random order flow: seconds of CPU
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), flipped=st.booleans())
def test_long_busy_order_flow_when_applied_keeps_every_invariant(seed, flipped):
    options = EngineOptions(ioc_partial_status="executed", reserve_resting_balance=False)
    _run(
        _engine(options if flipped else EngineOptions(), "quadratic_with_maker_fees"),
        _random_ops(random.Random(seed), 400),
    )
