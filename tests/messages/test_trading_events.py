"""Trading events: exact decimal strings, frozen and strict, and carried by the existing sinks."""

from __future__ import annotations

import json
import typing
from decimal import Decimal

import pytest
from pydantic import ValidationError

from app.event_log import EventRecorder, JsonLinesSink
from messages import events, trading_events
from messages.orders import OrderStatus, TradingState
from messages.trading_events import (
    RECONCILED_SHOWN_MAX,
    FillEvent,
    HaltCompleted,
    OrderUpdateEvent,
    PositionChanged,
    Reconciled,
    TradingStateChanged,
)


def order(**overrides: object) -> OrderUpdateEvent:
    values: dict[str, object] = {
        "service": "mm",
        "client_order_id": "ks-abc-1",
        "order_id": "o-1",
        "ticker": "KXTEST-A",
        "side": "bid",
        "status": OrderStatus.RESTING,
        "count": Decimal("10"),
        "filled": Decimal("0"),
        "price": Decimal("0.4500"),
    }
    values.update(overrides)
    return OrderUpdateEvent(**values)  # type: ignore[arg-type]


def test_serialise_when_given_decimals_amounts_are_exact_strings() -> None:
    event = order(count=Decimal("2.50"), price="0.0175", filled=3)
    body = json.loads(event.model_dump_json())
    assert (body["count"], body["price"], body["filled"]) == ("2.50", "0.0175", "3")
    assert body["type"] == "order_update" and body["status"] == "resting"


def test_serialise_when_decimal_has_exponent_amount_is_plain() -> None:
    event = PositionChanged(
        ticker="T",
        position=Decimal("1E+2"),
        realized_pnl=Decimal("-0.30"),
        unrealized_pnl="0",
        fees="0.07",
    )
    assert (event.position, event.realized_pnl) == ("100", "-0.30")


@pytest.mark.parametrize("bad", [0.45, True, "nan", "Infinity", "0.4.5", "", "1" * 41, None])
def test_build_when_amount_is_not_an_exact_finite_decimal_refused(bad: object) -> None:
    with pytest.raises(ValidationError):
        order(price=bad)


def test_build_when_extra_field_refused_and_instances_are_frozen() -> None:
    with pytest.raises(ValidationError):
        order(balance=5)
    event = order()
    with pytest.raises(ValidationError):
        event.status = OrderStatus.CANCELED  # type: ignore[misc]


def test_reconciled_when_too_many_differences_refused() -> None:
    Reconciled(trigger="private_connected", differences=("x",) * RECONCILED_SHOWN_MAX)
    with pytest.raises(ValidationError):
        Reconciled(trigger="t", differences=("x",) * (RECONCILED_SHOWN_MAX + 1))


def test_union_when_listed_every_trading_event_is_a_supervisor_event() -> None:
    union = set(typing.get_args(events.SupervisorEvent))
    trading = set(typing.get_args(trading_events.TradingEvent))
    assert trading and trading <= union
    kinds = [t.model_fields["type"].default for t in typing.get_args(events.SupervisorEvent)]
    assert len(kinds) == len(set(kinds)), "two events share a type name"


def test_record_when_trading_events_published_sinks_carry_each_line(tmp_path) -> None:
    published = [
        order(),
        FillEvent(
            service="mm",
            trade_id="t-1",
            order_id="o-1",
            client_order_id="ks-abc-1",
            ticker="KXTEST-A",
            side="bid",
            count=Decimal("4"),
            price=Decimal("0.45"),
            fee=Decimal("0.02"),
            is_taker=False,
        ),
        TradingStateChanged(state=TradingState.HALTED, reason="manual: test"),
        HaltCompleted(
            reason="manual", duration_ms=12, cancel_all_calls=1, verify_reads=2, remaining=0
        ),
    ]
    recorder = EventRecorder()
    path = tmp_path / "events.jsonl"
    sink = JsonLinesSink(str(path))
    for event in published:
        recorder(event)
        sink(event)
    sink.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["type"] for line in lines] == [
        "order_update",
        "fill",
        "trading_state",
        "halt_completed",
    ]
    assert lines[1]["fee"] == "0.02" and lines[2]["state"] == "halted"
    assert recorder.events() == published
