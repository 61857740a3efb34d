"""Fault messages: the product's recovery-testing interface, in-process and over the CLI."""

from __future__ import annotations

from pydantic import Field, model_validator

from messages.base import Message
from messages.fault_kinds import (
    MAX_COUNT,
    MAX_RESUME_IN,
    MAX_SECONDS,
    MAX_SHARD,
    TARGET_PATTERN,
    ActorFault,
    ExchangeFault,
    FaultTarget,
    parameter_mismatch,
    target_mismatch,
)

__all__ = ["ActorFault", "ExchangeFault", "FaultTarget", "InjectFault"]


class InjectFault(Message):
    """Break something on purpose. ``seconds`` and ``count`` size the faults that take them;
    ``shard`` and ``resume_in`` shape an exchange pause (``pause_trading``/``pause_exchange``).
    """

    target: str = Field(pattern=TARGET_PATTERN)
    """A stage name (``orderbook``, ``trading``, ``sync`` or an added stage's) or ``exchange``."""
    fault: ActorFault | ExchangeFault
    seconds: float | None = Field(default=None, gt=0, le=MAX_SECONDS)
    count: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    shard: int | None = Field(default=None, ge=0, le=MAX_SHARD, strict=True)
    """``pause_trading`` on this ``exchange_index`` only; None pauses every shard."""
    resume_in: float | None = Field(default=None, gt=0, le=MAX_RESUME_IN)
    """Seconds until a pause ends: the exchange advertises that time as its estimated resume
    time and resumes then. None: paused until ``resume``, with no estimate."""

    @model_validator(mode="after")
    def _fault_fits_target(self) -> InjectFault:
        fault = self.fault.value
        problem = target_mismatch(self.target, fault) or parameter_mismatch(
            fault, self.seconds, self.count, self.shard, self.resume_in
        )
        if problem is not None:
            raise ValueError(problem)
        return self
