"""Pre-trade risk: the trading state's gate and every limit; a breaching order is never admitted."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messages.orders import OrderIntent, OrderStatus, OrderUpdate, RiskLimits, TradingState
from trading.risk import Exposure, check_order, daily_loss_breached, reduces

D = Decimal


def intent(side: str = "bid", count: str = "5", price: str = "0.40", reduce_only: bool = False,
           ticker: str = "KX-A") -> OrderIntent:
    return OrderIntent(service="mm", ticker=ticker, side=side, count=D(count), price=D(price),
                       reduce_only=reduce_only)


def test_check_order_when_halted_refuses_even_a_reducing_order() -> None:
    exposure = Exposure(positions={"KX-A": D(5)})
    verdict = check_order(intent("ask", reduce_only=True), TradingState.HALTED,
                          [("global", RiskLimits(), exposure)])
    assert not verdict.admitted and verdict.limit == "trading_state"


def test_check_order_when_reducing_admits_only_reduce_only_orders_that_reduce() -> None:
    scopes = [("global", RiskLimits(), Exposure(positions={"KX-A": D(5)}))]
    assert check_order(intent("ask", "5", reduce_only=True), TradingState.REDUCING, scopes).admitted
    assert not check_order(intent("ask", "5"), TradingState.REDUCING, scopes).admitted
    assert not check_order(intent("ask", "6", reduce_only=True), TradingState.REDUCING,
                           scopes).admitted
    assert not check_order(intent("bid", "1", reduce_only=True), TradingState.REDUCING,
                           scopes).admitted


def test_check_order_when_reduce_only_would_not_reduce_the_services_position_refuses() -> None:
    scopes = [
        ("alpha", RiskLimits(), Exposure(positions={})),
        ("global", RiskLimits(), Exposure(positions={"KX-A": D(5)})),
    ]
    verdict = check_order(intent("ask", reduce_only=True), TradingState.ACTIVE, scopes)
    assert not verdict.admitted and verdict.limit == "reduce_only"


def test_check_order_when_daily_loss_reached_refuses_and_says_halt() -> None:
    limits = RiskLimits(max_daily_loss=D("100"))
    verdict = check_order(intent(), TradingState.ACTIVE,
                          [("global", limits, Exposure(daily_pnl=D("-100")))])
    assert not verdict.admitted and verdict.halt and verdict.limit == "max_daily_loss"
    assert daily_loss_breached(limits, D("-100.01"))
    assert not daily_loss_breached(limits, D("-99.99"))


def test_check_order_when_each_limit_breached_names_it_and_its_scope() -> None:
    cases = {
        "max_order_count": (RiskLimits(max_order_count=D(4)), Exposure()),
        "max_open_orders": (RiskLimits(max_open_orders=2), Exposure(open_orders=2)),
        "max_position": (RiskLimits(max_position=D(10)),
                         Exposure(positions={"KX-A": D(3)}, buying={"KX-A": D(3)})),
        "max_notional": (RiskLimits(max_notional=D("2.5")), Exposure(notional=D("0.60"))),
    }
    for limit, (limits, exposure) in cases.items():
        verdict = check_order(intent(), TradingState.ACTIVE, [("alpha", limits, exposure)])
        assert (verdict.admitted, verdict.limit, verdict.scope) == (False, limit, "alpha"), limit
        assert verdict.reason.startswith("alpha: ") and not verdict.halt


def test_check_order_when_within_every_limit_admits() -> None:
    limits = RiskLimits(max_order_count=D(5), max_open_orders=3, max_position=D(10),
                        max_notional=D("2.60"), max_daily_loss=D(50))
    exposure = Exposure(open_orders=2, notional=D("0.60"), positions={"KX-A": D(2)},
                        buying={"KX-A": D(3)}, daily_pnl=D(-49))
    assert check_order(intent(), TradingState.ACTIVE, [("global", limits, exposure)]).admitted


def test_exposure_of_when_orders_open_counts_worst_case_notional_and_sides() -> None:
    def view(cid: str, side: str, status: OrderStatus, remaining: str, service: str = "mm"
             ) -> OrderUpdate:
        return OrderUpdate(client_order_id=cid, order_id=None, service=service, ticker="KX-A",
                           side=side, price=D("0.30"), count=D(10), filled=D(0),
                           remaining=D(remaining), status=status)

    orders = [
        view("a", "bid", OrderStatus.RESTING, "10"),
        view("b", "ask", OrderStatus.OUTCOME_UNKNOWN, "4"),
        view("c", "bid", OrderStatus.CANCELED, "0"),
        view("d", "bid", OrderStatus.PENDING, "2", service="other"),
    ]
    mine = Exposure.of(orders, {"KX-A": D(1)}, service="mm")
    assert mine.open_orders == 2
    assert mine.notional == D("3.00") + D("2.80")
    assert mine.buying == {"KX-A": D(10)} and mine.selling == {"KX-A": D(4)}
    assert Exposure.of(orders, {}).open_orders == 3


def test_reduces_when_order_would_cross_zero_is_false() -> None:
    assert reduces(intent("bid", "3"), D(-3))
    assert not reduces(intent("bid", "4"), D(-3))
    assert not reduces(intent("ask", "1"), D(0))


# -- never admits a breach -------------------------------------------------------------------
amounts = st.integers(min_value=0, max_value=2000).map(lambda n: D(n) / D(10))
maybe = st.none() | amounts
limits_st = st.builds(
    RiskLimits,
    max_order_count=st.none() | amounts.filter(lambda d: d > 0),
    max_position=maybe,
    max_open_orders=st.none() | st.integers(min_value=0, max_value=10),
    max_notional=maybe,
    max_daily_loss=st.none() | amounts.filter(lambda d: d > 0),
)
exposure_st = st.builds(
    Exposure,
    open_orders=st.integers(min_value=0, max_value=12),
    notional=amounts,
    buying=st.fixed_dictionaries({"KX-A": amounts}),
    selling=st.fixed_dictionaries({"KX-A": amounts}),
    positions=st.fixed_dictionaries(
        {"KX-A": st.integers(min_value=-300, max_value=300).map(D)}
    ),
    daily_pnl=st.integers(min_value=-300, max_value=300).map(D),
)
intent_st = st.builds(
    intent,
    side=st.sampled_from(["bid", "ask"]),
    count=st.integers(min_value=1, max_value=400).map(str),
    price=st.integers(min_value=1, max_value=99).map(lambda n: f"0.{n:02d}"),
    reduce_only=st.booleans(),
)


@pytest.mark.slow  # hypothesis: seconds of CPU
@settings(max_examples=500, deadline=None)
@given(intent_st, st.sampled_from(list(TradingState)),
       st.lists(st.tuples(st.sampled_from(["alpha", "global"]), limits_st, exposure_st),
                min_size=1, max_size=2))
def test_check_order_when_random_never_admits_a_breaching_order(
    order: OrderIntent, state: TradingState, scopes: list[tuple[str, RiskLimits, Exposure]]
) -> None:
    verdict = check_order(order, state, scopes)
    breached_loss = any(daily_loss_breached(lim, exp.daily_pnl) for _, lim, exp in scopes)
    if breached_loss and state is not TradingState.HALTED:
        assert not verdict.admitted and verdict.halt  # no other refusal hides the halt
    if not verdict.admitted:
        assert verdict.reason
        return
    assert state is not TradingState.HALTED and not breached_loss
    reducing = all(reduces(order, exp.positions.get("KX-A", D(0))) for _, _, exp in scopes)
    if state is TradingState.REDUCING or order.reduce_only:
        assert order.reduce_only and reducing
    for _, lim, exp in scopes:
        if lim.max_order_count is not None:
            assert order.count <= lim.max_order_count
        if lim.max_open_orders is not None:
            assert exp.open_orders + 1 <= lim.max_open_orders
        if reducing and order.reduce_only:
            continue
        position = exp.positions["KX-A"]
        if lim.max_position is not None:
            if order.side == "bid":
                assert position + exp.buying["KX-A"] + order.count <= lim.max_position
            else:
                assert position - exp.selling["KX-A"] - order.count >= -lim.max_position
        if lim.max_notional is not None:
            cost = order.price if order.side == "bid" else 1 - order.price
            assert exp.notional + order.count * cost <= lim.max_notional


@settings(max_examples=100, deadline=None)
@given(intent_st.filter(lambda i: not i.reduce_only), exposure_st)
def test_check_order_when_active_without_limits_admits_every_plain_order(
    order: OrderIntent, exposure: Exposure
) -> None:
    assert check_order(order, TradingState.ACTIVE, [("global", RiskLimits(), exposure)]).admitted
