"""What the kill switch and the trading-status query answer (``Supervisor.halt``,
``Supervisor.trading_status``): frozen, exact decimals."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from messages.base import Message
from messages.orders import MarketPnl, OrderUpdate, Position, TradingState


class HaltReport(Message):
    """How a halt went: ``remaining`` is how many of our orders still rested when it ended
    (0 unless it timed out)."""

    reason: str
    state: TradingState
    open_at_start: int = Field(default=0, ge=0)
    """Our open orders when the halt began: what it set out to cancel."""
    duration_ms: int = Field(ge=0)
    cancel_all_calls: int = Field(ge=0)
    verify_reads: int = Field(ge=0)
    remaining: int = Field(ge=0)


class WriteBudgetStatus(Message):
    """The gateway's copy of the account's write bucket now (tokens to 3 places)."""

    capacity: Decimal
    tokens: Decimal
    refill_per_second: Decimal
    rate_limited: int = Field(ge=0)
    """Writes the exchange answered with 429."""


class TradingStatus(Message):
    """The gateway's view now: state, open orders, positions and P&L per market."""

    state: TradingState
    reason: str | None
    open_orders: list[OrderUpdate]
    positions: list[Position]
    pnl: list[MarketPnl]
    order_group_id: str | None = None
    write_budget: WriteBudgetStatus | None = None
    """None until the gateway first writes (it reads the account's limits then)."""
