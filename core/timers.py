"""Messages the core sends itself: timers and background work only ever *tell* the core.

Each carries what makes it stale (an epoch, a serial, a generation), so a timer that
fires after the world moved on is ignored instead of acting on the wrong state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from core.ports import PingProbe
from kalshi_api.market_facts import MarketFacts
from messages.exchange import ExchangeCondition
from messages.states import State


@dataclass(frozen=True)
class Begin:
    pass


@dataclass(frozen=True)
class DeadlineExpired:
    serial: int
    stage: str
    state: State
    seconds: float


@dataclass(frozen=True)
class RestartDue:
    epoch: int
    recheck: bool = False
    """A look again at a restart that waits for a still-running incarnation."""


@dataclass(frozen=True)
class HoldRetryDue:
    """Time to tell the held stage its ``hold_retry`` again (look for a market)."""

    serial: int


@dataclass(frozen=True)
class PeriodicDue:
    stage: str
    work: int
    """Index into the stage spec's ``periodic`` tuple."""


@dataclass(frozen=True)
class LivenessDue:
    pass


@dataclass(frozen=True, eq=False)
class LivenessCheck:
    """A child's ping, to be judged now that ``liveness_timeout`` has passed."""

    child: str
    generation: int
    probe: PingProbe


@dataclass(frozen=True)
class HealExpired:
    epoch: int
    stage: str


@dataclass(frozen=True)
class MarketsResolved:
    epoch: int
    tickers: tuple[str, ...]
    error_type: str | None
    reason: str
    paused: ExchangeCondition | None = None
    """Set when discovery failed because the exchange is paused: wait, do not fail."""
    facts: Mapping[str, MarketFacts] = field(default_factory=dict)
    """What the listing said about each market (status, close time)."""


@dataclass(frozen=True)
class ChildStopped:
    """The stopper finished with an incarnation of ``child`` (stopped, already dead, or
    abandoned after its bound): a restart waiting for it looks again."""

    child: str


@dataclass(frozen=True)
class ConfirmDead:
    """Queued behind the ``ChildFailed`` a dying child sends itself, so its own reason wins."""

    child: str
    generation: int


@dataclass(frozen=True)
class ExchangeCheckDue:
    """Time to read ``/exchange/status`` (a pause re-check, or READY's routine check)."""

    serial: int


@dataclass(frozen=True)
class ExchangeChecked:
    """The status probe's answer; ``condition`` None when the exchange could not be read."""

    serial: int
    condition: ExchangeCondition | None
    error: str
