"""The terminal prints one line per trading fact, in the console's vocabulary: dollars with
every significant digit, counts without trailing zeros, YES legs in words, no reprs."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from rich.console import Console

from app.console import ConsoleView, contracts, describe_event, dollars
from messages.orders import OrderStatus, TradingState
from messages.trading_events import (
    FillEvent,
    HaltCompleted,
    OrderUpdateEvent,
    PositionChanged,
    Reconciled,
    TradingStateChanged,
)


@pytest.mark.parametrize(
    ("text", "signed", "shown"),
    [
        ("0.4500", False, "$0.45"),
        ("0.0175", False, "$0.0175"),
        ("1234.5", False, "$1,234.50"),
        ("-0.3", True, "-$0.30"),
        ("1.25", True, "+$1.25"),
        ("0", True, "$0.00"),
    ],
)
def test_dollars_when_given_exact_strings_keep_every_significant_digit(
    text: str, signed: bool, shown: str
) -> None:
    assert dollars(text, signed=signed) == shown


def test_contracts_when_given_trailing_zeros_drops_them_exactly() -> None:
    assert [contracts(t) for t in ("10.00", "2.50", "1E+2", "0.01")] == ["10", "2.5", "100", "0.01"]


EVENTS = [
    (
        OrderUpdateEvent(
            service="mm",
            client_order_id="ks-ab-7",
            order_id="o-7",
            ticker="KXT-A",
            side="ask",
            status=OrderStatus.PARTIALLY_FILLED,
            count=Decimal("10.00"),
            filled=Decimal("2.50"),
            price=Decimal("0.5500"),
        ),
        "order: mm sell YES 10 KXT-A @ $0.55: partially filled, 2.5 filled · ks-ab-7",
    ),
    (
        OrderUpdateEvent(
            service="mm",
            client_order_id="ks-ab-8",
            ticker="KXT-A",
            side="bid",
            status=OrderStatus.REJECTED,
            count=1,
            filled=0,
            price="0.45",
            reason="trading is halted",
        ),
        "order: mm buy YES 1 KXT-A @ $0.45: rejected (trading is halted) · ks-ab-8",
    ),
    (  # a reason that only repeats the status is not printed
        OrderUpdateEvent(
            service="mm", client_order_id="ks-ab-9", ticker="KXT-A", side="bid",
            status=OrderStatus.CANCELED, count=1, filled=0, price="0.45", reason="Cancelled",
        ),
        "order: mm buy YES 1 KXT-A @ $0.45: canceled · ks-ab-9",
    ),
    (
        OrderUpdateEvent(
            service="mm", client_order_id="ks-ab-10", ticker="KXT-A", side="bid",
            status=OrderStatus.CANCELED, count=1, filled=0, price="0.45",
            reason="ExpiryCancel",
        ),
        "order: mm buy YES 1 KXT-A @ $0.45: canceled (ExpiryCancel) · ks-ab-10",
    ),
    (
        FillEvent(
            service="mm",
            trade_id="t-1",
            order_id="o-7",
            ticker="KXT-A",
            side="ask",
            count="2.5",
            price="0.55",
            fee="0.0175",
        ),
        "fill: mm sold 2.5 YES KXT-A @ $0.55 as maker, fee $0.0175 · trade t-1",
    ),
    (
        PositionChanged(
            ticker="KXT-A", position="-2.5", realized_pnl="0", unrealized_pnl="-0.10", fees="0.0175"
        ),
        "position: KXT-A long NO 2.5 · realized $0.00 · unrealized -$0.10 · fees $0.0175",
    ),
    (
        TradingStateChanged(state=TradingState.HALTED, reason="manual: drill"),
        "trading: HALTED (manual: drill)",
    ),
    (
        HaltCompleted(
            reason="manual", duration_ms=7246, cancel_all_calls=2, verify_reads=3, remaining=0
        ),
        "halt: halted (manual) in 7.2 s: 2 cancel-all call(s), 3 verify read(s), "
        "0 of ours still resting",
    ),
    (
        Reconciled(
            trigger="private_connected", differences=("a differs", "b gone"), difference_count=5
        ),
        "reconciled: after private_connected: 5 difference(s): a differs; b gone; and 3 more",
    ),
    (Reconciled(trigger="ready"), "reconciled: after ready: no differences"),
    (
        Reconciled(trigger="halt", differences=("x" * 200, "b", "c", "d")),
        "reconciled: after halt: 4 difference(s): " + "x" * 159 + "…; b; c; and 1 more",
    ),
]


@pytest.mark.parametrize(
    ("event", "line"), EVENTS, ids=[f"{e.type}-{n}" for n, (e, _) in enumerate(EVENTS)]
)
def test_trading_event_when_printed_is_one_line_in_the_console_vocabulary(
    event: object, line: str
) -> None:
    out = io.StringIO()
    ConsoleView(Console(file=out, width=60, color_system=None, soft_wrap=True))(event)  # type: ignore[arg-type]

    printed = out.getvalue()
    assert printed.count("\n") == 1
    assert printed.strip() == line
    label, _, body = describe_event(event)  # type: ignore[arg-type]
    assert f"{label}: {body}" == line
