"""Fault messages: the product's recovery-testing interface, in-process and over the CLI."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from messages.base import Message


class FaultTarget(StrEnum):
    ORDERBOOK = "orderbook"
    TRADING = "trading"
    SYNC = "sync"
    EXCHANGE = "exchange"


class ActorFault(StrEnum):
    """Faults any stage actor accepts."""

    CRASH = "crash"
    CRASH_ON_START = "crash_on_start"
    HANG = "hang"
    DISCONNECT = "disconnect"
    SLOW = "slow"
    BAD_METADATA = "bad_metadata"


class ExchangeFault(StrEnum):
    """Faults the embedded exchange applies (only when the supervisor runs it in-process)."""

    WS_DROP = "ws_drop"
    SEQ_GAP = "seq_gap"
    MALFORMED_FRAME = "malformed_frame"
    REST_5XX = "rest_5xx"
    REST_429 = "rest_429"
    AUTH_REJECT = "auth_reject"
    STALL = "stall"


class InjectFault(Message):
    """Break something on purpose. ``seconds`` and ``count`` size the faults that take them."""

    target: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    """A stage name (``orderbook``, ``trading``, ``sync`` or an added stage's) or ``exchange``."""
    fault: ActorFault | ExchangeFault
    seconds: float | None = Field(default=None, gt=0, le=3600)
    count: int | None = Field(default=None, ge=1, le=10_000)

    @model_validator(mode="after")
    def _fault_fits_target(self) -> InjectFault:
        is_exchange_fault = isinstance(self.fault, ExchangeFault)
        if is_exchange_fault != (self.target == FaultTarget.EXCHANGE):
            kind = "an exchange" if is_exchange_fault else "an actor"
            raise ValueError(
                f"{self.fault.value!r} is {kind} fault and cannot target {self.target!r}"
            )
        return self
