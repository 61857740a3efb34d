"""Trading events: every order action, fill, position change and trading-state move, published
on the same bus as the supervisor's events (issue 16, contract item 3).

They are events like any other (``messages.events.SupervisorEvent`` names each), so the sinks
that already exist carry them without knowing about trading: the ``--events`` JSON-lines
file, the console's ``/ws`` feed and the terminal. The order gateway publishes them.

Every amount is an **exact decimal string** (``"0.45"``, ``"-3"``, ``"0.0175"``): JSON has no
decimal type, and a float is how a position becomes ``0.30000000000000004`` contracts. The
fields accept a ``Decimal``, an ``int`` or a decimal string, and refuse floats, booleans and
anything that is not a finite number. Prices are YES prices in dollars, counts contracts,
money dollars, positions signed YES contracts (messages/orders.py says why).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from messages.event_base import Event
from messages.orders import OrderStatus, Side, TradingState

DECIMAL_TEXT_MAX = 40
"""Longest decimal string accepted: bounded like every other field a sender controls."""


def _decimal_text(value: object) -> str:
    """``value`` as the exact string ``str(Decimal(value))``; floats and non-numbers refused."""
    if isinstance(value, bool | float):
        raise ValueError("give an exact Decimal, int or decimal string, not a float or bool")
    if isinstance(value, str):
        if len(value) > DECIMAL_TEXT_MAX:
            raise ValueError(f"decimal string longer than {DECIMAL_TEXT_MAX} characters")
        text = value.strip()
    elif isinstance(value, Decimal | int):
        text = str(value)
    else:
        raise ValueError(f"expected a decimal amount, got {type(value).__name__}")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a decimal number") from None
    if not number.is_finite():
        raise ValueError(f"{text!r} is not a finite number")
    out = str(number)
    if "E" in out or "e" in out:  # 1E+2 from Decimal("100").normalize(): say it plainly
        out = format(number, "f")
    if len(out) > DECIMAL_TEXT_MAX:
        raise ValueError(f"decimal {out[:20]}... longer than {DECIMAL_TEXT_MAX} characters")
    return out


DecimalText = Annotated[str, BeforeValidator(_decimal_text)]
"""An exact decimal string: from a ``Decimal``, ``int`` or decimal string, never a float."""

Name = Annotated[str, Field(min_length=1, max_length=128)]
Reason = Annotated[str, Field(max_length=500)]


class OrderUpdateEvent(Event):
    """An order of ours changed: placed, accepted, rested, (partly) filled, amended, cancelled,
    rejected (by the exchange or refused locally: ``order_id`` None, ``reason`` says why) or
    its outcome became unknown / was resolved."""

    type: Literal["order_update"] = "order_update"
    service: Name
    client_order_id: Name
    order_id: Name | None = None
    ticker: Name
    side: Side
    status: OrderStatus
    count: DecimalText
    filled: DecimalText
    price: DecimalText
    reason: Reason | None = None


class FillEvent(Event):
    """One execution of one of our orders (``trade_id`` is unique per fill)."""

    type: Literal["fill"] = "fill"
    service: Name | None
    """The owning service; None for an order this process adopted or does not know."""
    trade_id: Name
    order_id: Name
    client_order_id: Name | None = None
    ticker: Name
    side: Side
    count: DecimalText
    price: DecimalText
    fee: DecimalText = "0"
    is_taker: bool = False


class PositionChanged(Event):
    """The account's position or P&L in one market moved (dollars; position signed YES)."""

    type: Literal["position_changed"] = "position_changed"
    ticker: Name
    position: DecimalText
    realized_pnl: DecimalText
    unrealized_pnl: DecimalText
    """Open lots marked where they would leave (a long at the bid, a short at the ask)."""
    fees: DecimalText
    service: Name | None = None
    """None: the whole account's position in the market; else that service's share."""


class TradingStateChanged(Event):
    """Trading moved between ACTIVE, REDUCING and HALTED (``reason`` why; None on resume)."""

    type: Literal["trading_state"] = "trading_state"
    state: TradingState
    reason: Reason | None = None


class HaltCompleted(Event):
    """The kill switch finished: ``remaining`` of ours still rest (0 unless it was cut short)."""

    type: Literal["halt_completed"] = "halt_completed"
    reason: Reason
    duration_ms: int = Field(ge=0)
    cancel_all_calls: int = Field(ge=0)
    verify_reads: int = Field(ge=0)
    remaining: int = Field(ge=0)


RECONCILED_SHOWN_MAX = 50
"""At most this many differences ride in one event (memory and line length stay bounded);
``difference_count`` keeps the true total."""


class Reconciled(Event):
    """Our view was compared with the exchange's REST truth (after a (re)connect of the
    private channels, on READY, on demand); each difference is one line."""

    type: Literal["reconciled"] = "reconciled"
    trigger: Name
    differences: tuple[Annotated[str, Field(max_length=300)], ...] = Field(
        default=(), max_length=RECONCILED_SHOWN_MAX
    )
    difference_count: int | None = Field(default=None, ge=0)
    """How many differences there were in all (None: exactly ``len(differences)``)."""


TradingEvent = (
    OrderUpdateEvent
    | FillEvent
    | PositionChanged
    | TradingStateChanged
    | HaltCompleted
    | Reconciled
)
"""Every trading event (each is also in ``messages.events.SupervisorEvent``)."""
