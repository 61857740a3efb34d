"""What the exchange says about itself: pauses are conditions of the exchange, not failures.

Kalshi pauses trading weekly (cancels allowed, new orders refused) and, rarely, the whole
exchange (``GET /exchange/status`` answers 503 with its status body); each exchange shard
has its own ``trading_active`` [MP] [SH]. These models carry those facts from whoever read
them (the supervisor's own status probe, or a stage that met a pause) to the core, which
shows them as ``exchange_paused`` / ``exchange_resumed`` events and waits the pause out.
They never become transition metadata: the seed's keys do not change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from messages.base import Message

PauseScope = Literal["exchange", "trading"]
"""``exchange``: nothing is allowed (Kalshi answers 503). ``trading``: cancels are allowed,
new orders are refused (the weekly pause, or one shard's)."""


class ShardPause(Message):
    """One pause: of the whole exchange (``exchange_index`` None) or of one shard."""

    exchange_index: int | None
    scope: PauseScope


class ExchangeCondition(Message):
    """One reading of ``GET /exchange/status``, reduced to what the supervisor acts on.

    ``observed_at`` is the wall time of the reading, so the core can turn the exchange's
    ``resume_estimate`` (a wall time) into a delay without a wall clock of its own.
    """

    pauses: tuple[ShardPause, ...] = ()
    resume_estimate: datetime | None = None
    observed_at: datetime
    http_status: int = 200

    @property
    def exchange_paused(self) -> bool:
        """Nothing is allowed: a stage that needs the REST API must wait."""
        return any(p.exchange_index is None and p.scope == "exchange" for p in self.pauses)

    def seconds_to_resume(self) -> float | None:
        """Seconds from the reading to the exchange's estimated resume time (None: none given)."""
        if self.resume_estimate is None:
            return None
        return (self.resume_estimate - self.observed_at).total_seconds()


class StagePaused(Message):
    """A stage could not do its work because the exchange is paused; it did not fail.

    Sent instead of ``StageFailed``: it spends no restart intensity. The core keeps the
    stage (and its generation), waits the pause out, then tells it ``Connect`` again.
    """

    stage: str
    generation: int
    reason: str
    condition: ExchangeCondition


class StageThrottled(Message):
    """A stage is waiting out a documented rate limit (a 429 on its connection) and will
    try again by itself after ``wait_seconds``; it has not failed.

    Why a message: the stage's deadline must not expire during a wait the exchange asked
    for. The core restarts the deadline so that it covers the wait, then a full bound.
    """

    stage: str
    generation: int
    wait_seconds: float = Field(ge=0)
    reason: str


class PauseSummary(Message):
    """``/status``'s view of one pause in force (derived from the pause events)."""

    exchange_index: int | None
    scope: PauseScope
    resume_estimate: datetime | None
    since: datetime


PAUSE_POLL_FLOOR = 0.05
"""Shortest delay between two status checks, whatever the configuration says."""


class PauseTiming(Message):
    """How the core re-checks ``/exchange/status`` while a pause is in force.

    Bounded backoff from ``min_poll`` doubling to ``max_poll``; while the exchange's resume
    estimate is further away than that, the next check waits for the estimate, but never
    longer than ``far_poll`` (an estimate can move, and an exchange can resume early).
    """

    min_poll: float = Field(default=0.25, gt=0, allow_inf_nan=False)
    max_poll: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    far_poll: float = Field(default=30.0, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> PauseTiming:
        """The backoff grows from ``min_poll`` to ``max_poll``; ``far_poll`` caps only waits
        longer than that, so a smaller one would make a far estimate poll faster."""
        if self.min_poll > self.max_poll:
            raise ValueError(
                f"min_poll ({self.min_poll:g}) must not exceed max_poll ({self.max_poll:g})"
            )
        if self.max_poll > self.far_poll:
            raise ValueError(
                f"max_poll ({self.max_poll:g}) must not exceed far_poll ({self.far_poll:g})"
            )
        return self

    def delay(self, attempt: int, seconds_to_resume: float | None) -> float:
        backoff = min(self.min_poll * 2 ** min(attempt, 30), self.max_poll)
        if seconds_to_resume is not None and seconds_to_resume > backoff:
            return max(PAUSE_POLL_FLOOR, min(seconds_to_resume, self.far_poll))
        return max(PAUSE_POLL_FLOOR, backoff)


class ExchangeObserved(Message):
    """A stage read ``/exchange/status`` during its work: what it saw, for the core to show.

    Told before the stage's own result, so a pause is announced before the READY it allows.
    """

    stage: str
    generation: int
    condition: ExchangeCondition
