"""Order requests refuse bad input before it leaves (one-line ValueErrors, no floats), and
replies tolerate every variant of §8 (optional fields, _fp twins, averages only on fills)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalshi_api.errors import DuplicateOrderError, RequestRejectedError
from kalshi_api.models import Order, PriceRange
from kalshi_api.order_models import (
    AmendOrder,
    BatchCreateItem,
    CancelOrderResult,
    CreateOrder,
    CreateOrderResult,
    DecreaseOrder,
    Fill,
    ItemError,
    Settlement,
    check_client_order_id,
    count_text,
    price_text,
)
from kalshi_api.price_grid import PriceGrid


def _order(**changes: Any) -> CreateOrder:
    fields: dict[str, Any] = {
        "ticker": "KXT-1",
        "side": "ask",
        "count": Decimal("2.5"),
        "price": Decimal("0.0150"),
        "client_order_id": "svc:1",
    }
    fields.update(changes)
    return CreateOrder(**fields)


@pytest.mark.parametrize(
    ("price", "text"),
    [
        (Decimal("0.5"), "0.50"),
        (Decimal("0.0150"), "0.015"),
        (Decimal("0.9999"), "0.9999"),
        ("0.07", "0.07"),
    ],
)
def test_price_text_when_valid_renders_2_to_4_decimals(price: object, text: str) -> None:
    assert price_text(price) == text


@pytest.mark.parametrize(
    ("count", "text"), [(Decimal(10), "10.00"), (Decimal("0.01"), "0.01"), (3, "3.00")]
)
def test_count_text_when_valid_renders_2_decimals(count: object, text: str) -> None:
    assert count_text(count) == text


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"price": 0.5}, "not a float"),
        ({"count": 1.0}, "not a float"),
        ({"price": Decimal("0.12345")}, "more than 4 decimals"),
        ({"price": Decimal(1)}, "between 0 and 1"),
        ({"price": Decimal(0)}, "between 0 and 1"),
        ({"count": Decimal("0.001")}, "more than 2 decimals"),
        ({"count": Decimal(0)}, "must be positive"),
        ({"count": Decimal("NaN")}, "finite"),
        ({"side": "buy"}, "side must be one of"),
        ({"time_in_force": "gtc"}, "time_in_force"),
        ({"client_order_id": ""}, "required"),
        ({"client_order_id": "x" * 65}, "65 characters"),
        ({"client_order_id": "has space"}, "outside"),
        ({"client_order_id": "café"}, "outside"),
        ({"expiration_time": 5, "time_in_force": "immediate_or_cancel"}, "good_till_canceled"),
        ({"subaccount": 64}, "subaccount"),
        ({"ticker": " "}, "ticker"),
    ],
)
def test_create_order_when_input_bad_raises_one_line_value_error(
    changes: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ValueError, match=fragment) as caught:
        _order(**changes)
    assert "\n" not in str(caught.value)


def test_check_client_order_id_when_fix_characters_accepts_them() -> None:
    assert check_client_order_id("a-b_c:d+e=f/9") == "a-b_c:d+e=f/9"
    assert check_client_order_id("x" * 64) == "x" * 64


def test_create_order_wire_when_options_set_sends_only_strings_and_flags() -> None:
    wire = _order(
        post_only=True, expiration_time=1_800_000_000, order_group_id="g1", subaccount=3
    ).wire()
    assert wire == {
        "ticker": "KXT-1",
        "side": "ask",
        "count": "2.50",
        "price": "0.015",
        "time_in_force": "good_till_canceled",
        "self_trade_prevention_type": "taker_at_cross",
        "client_order_id": "svc:1",
        "expiration_time": 1_800_000_000,
        "post_only": True,
        "order_group_id": "g1",
        "subaccount": 3,
    }
    assert not any(isinstance(v, float) for v in wire.values())


def test_amend_and_decrease_when_built_validate_and_serialise() -> None:
    amend = AmendOrder(
        "o1", "KXT-1", "bid", Decimal("0.4"), Decimal(5), updated_client_order_id="n:2"
    )
    assert amend.wire() == {
        "ticker": "KXT-1",
        "side": "bid",
        "price": "0.40",
        "count": "5.00",
        "updated_client_order_id": "n:2",
    }
    assert DecreaseOrder("o1", reduce_to=Decimal(0)).wire() == {"reduce_to": "0.00"}
    assert DecreaseOrder("o1", reduce_by=Decimal(2)).wire() == {"reduce_by": "2.00"}
    with pytest.raises(ValueError, match="exactly one"):
        DecreaseOrder("o1", reduce_by=Decimal(1), reduce_to=Decimal(1))
    with pytest.raises(ValueError, match="exactly one"):
        DecreaseOrder("o1")


def test_price_grid_when_center_structure_accepts_only_its_ticks() -> None:
    grid = PriceGrid.of(
        [
            PriceRange(start=Decimal("0.0001"), end=Decimal("0.0099"), step=Decimal("0.0001")),
            PriceRange(start=Decimal("0.01"), end=Decimal("0.99"), step=Decimal("0.01")),
            PriceRange(start=Decimal("0.9901"), end=Decimal("0.9999"), step=Decimal("0.0001")),
        ]
    )
    assert grid.contains(Decimal("0.0042")) and grid.contains(Decimal("0.56"))
    assert grid.contains(Decimal("0.9950"))
    assert not grid.contains(Decimal("0.565")) and not grid.contains(Decimal("0.5601"))


def test_create_result_when_nothing_filled_drops_averages_and_reads_fp_twins() -> None:
    result = CreateOrderResult.model_validate(
        {
            "order_id": "o",
            "fill_count_fp": "0.00",
            "remaining_count_fp": "4.00",
            "ts_ms": "12",
            "average_fill_price": "0.0000",
        }
    )
    assert result.average_fill_price is None and result.resting == Decimal(4)
    assert result.ts_ms == 12
    bare = CreateOrderResult.model_validate({"order_id": "o"})
    assert (bare.filled, bare.resting, bare.ts_ms) == (0, 0, None)


def test_replies_when_floats_or_negative_counts_arrive_are_refused() -> None:
    with pytest.raises(ValueError, match="floats"):
        CreateOrderResult.model_validate({"order_id": "o", "fill_count": 1.0})
    with pytest.raises(ValueError, match="negative"):
        CancelOrderResult.model_validate({"order_id": "o", "reduced_by": "-1.00"})


def test_item_error_when_code_known_types_it_exactly() -> None:
    item = BatchCreateItem.model_validate(
        {"client_order_id": "x", "error": {"code": "order_already_exists", "message": "dup"}}
    )
    assert not item.ok and isinstance(item.error.as_error(), DuplicateOrderError)  # type: ignore[union-attr]
    upper = ItemError.model_validate({"code": "ORDER_ALREADY_EXISTS"}).as_error()
    assert isinstance(upper, DuplicateOrderError)
    other = ItemError.model_validate("too many requests").as_error()
    assert type(other) is RequestRejectedError and other.message == "too many requests"


def test_fill_settlement_and_order_when_variants_arrive_parse_exactly() -> None:
    fill = Fill.model_validate(
        {
            "trade_id": "t1",
            "order_id": "o",
            "market_ticker": "KXT-1",
            "count_fp": "1.50",
            "yes_price_dollars": "0.5200",
            "fee_cost": "0.017500",
            "is_taker": True,
        }
    )
    assert (fill.fill_id, fill.ticker, fill.count_fp) == ("t1", "KXT-1", Decimal("1.5"))
    settlement = Settlement.model_validate(
        {
            "ticker": "KXT-1",
            "market_result": "yes",
            "yes_count_fp": "3.00",
            "revenue": 300,
            "settled_time": "2026-12-01T00:00:00Z",
        }
    )
    assert settlement.revenue == 300 and settlement.value is None
    order = Order.model_validate(
        {
            "order_id": "o",
            "ticker": "T",
            "status": "canceled",
            "last_update_reason": "ExpiryCancel",
            "taker_fees_dollars": "0.017500",
        }
    )
    assert order.last_update_reason == "ExpiryCancel"
    assert order.taker_fees_dollars == Decimal("0.0175")


@given(
    ticks=st.integers(min_value=1, max_value=9999),
    centi=st.integers(min_value=1, max_value=10**9),
)
def test_wire_text_when_any_valid_price_and_count_round_trips_exactly(
    ticks: int, centi: int
) -> None:
    price = Decimal(ticks).scaleb(-4)
    count = Decimal(centi).scaleb(-2)
    wire = _order(price=price, count=count).wire()
    assert Decimal(wire["price"]) == price and Decimal(wire["count"]) == count
    assert 2 <= len(wire["price"].split(".")[1]) <= 4 and len(wire["count"].split(".")[1]) == 2
