"""Fault messages: the product's recovery-testing interface, in-process and over the CLI."""

from __future__ import annotations

from pydantic import Field, model_validator

from messages.base import Message
from messages.fault_kinds import (
    MAX_COUNT,
    MAX_SECONDS,
    TARGET_PATTERN,
    ActorFault,
    ExchangeFault,
    FaultTarget,
    target_mismatch,
)

__all__ = ["ActorFault", "ExchangeFault", "FaultTarget", "InjectFault"]


class InjectFault(Message):
    """Break something on purpose. ``seconds`` and ``count`` size the faults that take them."""

    target: str = Field(pattern=TARGET_PATTERN)
    """A stage name (``orderbook``, ``trading``, ``sync`` or an added stage's) or ``exchange``."""
    fault: ActorFault | ExchangeFault
    seconds: float | None = Field(default=None, gt=0, le=MAX_SECONDS)
    count: int | None = Field(default=None, ge=1, le=MAX_COUNT)

    @model_validator(mode="after")
    def _fault_fits_target(self) -> InjectFault:
        problem = target_mismatch(self.target, self.fault.value)
        if problem is not None:
            raise ValueError(problem)
        return self
