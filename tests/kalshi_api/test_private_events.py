"""Parsing the private channels' frames: exact integers, optional fields, strict shapes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalshi_api.fixed_point import format_count, format_dollars
from kalshi_api.private_events import (
    FillEvent,
    PrivateFrameError,
    parse_fill,
    parse_market_position,
    parse_order_group_update,
    parse_user_order,
)

BASE_FILL: dict[str, Any] = {
    "trade_id": "t",
    "order_id": "o",
    "market_ticker": "KX-1",
    "yes_price_dollars": "0.5000",
    "count_fp": "1.00",
}


@given(
    price=st.integers(min_value=1, max_value=999_999),
    count=st.integers(min_value=1, max_value=10**12),
    fee=st.integers(min_value=0, max_value=10**9),
)
def test_fill_amounts_when_parsed_are_exact_integers_for_any_wire_value(
    price: int, count: int, fee: int
) -> None:
    msg = BASE_FILL | {
        "yes_price_dollars": format_dollars(price),
        "count_fp": format_count(count),
        "fee_cost": format_dollars(fee),
    }
    fill = parse_fill(msg)
    assert (fill.yes_price, fill.count, fill.fee_cost) == (price, count, fee)
    assert all(type(v) is not float for v in (fill.yes_price, fill.count, fill.fee_cost))


@pytest.mark.parametrize(
    "change",
    [
        {"trade_id": None},
        {"trade_id": ""},
        {"yes_price_dollars": 0.5},
        {"yes_price_dollars": "0.5000001"},
        {"count_fp": "1.001"},
        {"count_fp": 1},
        {"is_taker": "false"},
        {"ts_ms": True},
        {"ts_ms": 1.5},
        {"client_order_id": 7},
    ],
)
def test_fill_when_a_field_is_misshapen_is_refused_with_a_clear_error(
    change: dict[str, Any],
) -> None:
    with pytest.raises(PrivateFrameError):
        parse_fill(BASE_FILL | change)


def test_fill_when_extra_and_deprecated_fields_come_ignores_what_it_does_not_know() -> None:
    fill = parse_fill(BASE_FILL | {"purchased_side": "yes", "ts": "2026-01-01T00:00:00Z", "z": {}})
    assert fill == FillEvent("t", "o", "KX-1", 500_000, 100)


def test_other_frames_when_not_objects_are_refused() -> None:
    for parse in (parse_fill, parse_user_order, parse_market_position):
        with pytest.raises(PrivateFrameError):
            parse(["not", "an", "object"])
    with pytest.raises(PrivateFrameError):
        parse_order_group_update(1, 1, None)


def test_user_order_when_it_names_its_market_ticker_reads_the_ticker_field() -> None:
    order = parse_user_order({"order_id": "o", "ticker": "KX-1", "status": "canceled"})
    assert (order.market_ticker, order.status) == ("KX-1", "canceled")
    with pytest.raises(PrivateFrameError):
        parse_user_order({"order_id": "o", "market_ticker": "KX-1", "status": "canceled"})
