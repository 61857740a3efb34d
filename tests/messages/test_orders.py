"""Order messages: exact decimals, Kalshi's grids, frozen and strict."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from messages.orders import (
    CLIENT_ORDER_ID_MAX,
    Fill,
    HaltReason,
    OrderIntent,
    OrderStatus,
    PlaceAccepted,
    PlaceRejected,
    RiskLimits,
    TradingState,
    is_client_order_id,
)

D = Decimal


def make(**overrides: object) -> OrderIntent:
    fields: dict[str, object] = {"service": "mm", "ticker": "KX-A", "side": "bid", "count": "2",
                                 "price": "0.42"}
    fields.update(overrides)
    return OrderIntent(**fields)


def test_intent_when_valid_is_exact_and_frozen() -> None:
    order = make(count="1.25", price="0.4275")
    assert order.count == D("1.25") and order.price == D("0.4275")
    with pytest.raises(ValidationError):
        order.count = D(3)  # type: ignore[misc]


@pytest.mark.parametrize(
    "overrides",
    [
        {"price": 0.42},  # a float: never
        {"count": 1.0},
        {"price": "1"},
        {"price": "0"},
        {"price": "0.12345"},  # 5 dp: off every grid
        {"count": "0"},
        {"count": "-1"},
        {"count": "1.001"},
        {"count": "NaN"},
        {"side": "buy"},
        {"service": "Bad Name"},
        {"time_in_force": "fill_or_kill", "expiration_time": 1_900_000_000},
        {"unexpected": True},
    ],
)
def test_intent_when_field_invalid_is_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        make(**overrides)


def test_intent_when_ask_costs_one_minus_price_and_sells_yes() -> None:
    ask = make(side="ask", price="0.70", count="3")
    assert ask.cost_per_contract == D("0.30") and ask.signed_count == D(-3)
    bid = make(price="0.70", count="3")
    assert bid.cost_per_contract == D("0.70") and bid.signed_count == D(3)


def test_fill_when_ask_receives_cash_and_bid_pays() -> None:
    base = {"trade_id": "t", "order_id": "o", "ticker": "KX-A", "count": "2", "price": "0.25"}
    assert Fill(side="bid", **base).cash_flow == D("-0.50")
    assert Fill(side="ask", **base).cash_flow == D("0.50")
    with pytest.raises(ValidationError):
        Fill(side="bid", fee="-0.01", **base)


@pytest.mark.parametrize(
    ("text", "legal"),
    [("ks-0123abcd-17", True), ("a:b+c=d/e_f", True), ("", False), ("has space", False),
     ("é", False), ("x" * CLIENT_ORDER_ID_MAX, True), ("x" * (CLIENT_ORDER_ID_MAX + 1), False)],
)
def test_is_client_order_id_when_checked_follows_fix_alphabet_and_length(
    text: str, legal: bool
) -> None:
    assert is_client_order_id(text) is legal


def test_place_reply_when_cid_illegal_is_refused() -> None:
    with pytest.raises(ValidationError):
        PlaceAccepted(client_order_id="bad id", order_id="o")


def test_place_rejected_when_409_exists_in_any_case_means_it_may_exist() -> None:
    assert PlaceRejected(client_order_id="c", status=409, code="ORDER_ALREADY_EXISTS").means_exists
    assert not PlaceRejected(client_order_id="c", status=409, code="trading_is_paused").means_exists


def test_status_when_final_or_open_partitions_every_status() -> None:
    finals = {s for s in OrderStatus if s.is_final}
    assert finals == {OrderStatus.EXECUTED, OrderStatus.CANCELED, OrderStatus.REJECTED}
    assert all(s.is_open for s in set(OrderStatus) - finals)
    assert {s.value for s in TradingState} == {"active", "reducing", "halted"}
    assert HaltReason("order_group_triggered") is HaltReason.ORDER_GROUP_TRIGGERED


def test_risk_limits_when_negative_or_zero_size_is_refused() -> None:
    with pytest.raises(ValidationError):
        RiskLimits(max_order_count=D(0))
    with pytest.raises(ValidationError):
        RiskLimits(max_daily_loss=D(-5))
