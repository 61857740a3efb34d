"""Events: what the supervisor publishes for people (terminal), machines (``--events``) and tests.

Each event carries a ``type`` literal, so one JSON object per line is self-describing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from messages.event_base import Event
from messages.exchange import PauseScope
from messages.faults import InjectFault
from messages.metadata import StateMetadata, SyncType
from messages.results import ShardAccount, SyncChanges, SyncState
from messages.states import State
from messages.trading_events import (
    FillEvent,
    HaltCompleted,
    OrderUpdateEvent,
    PositionChanged,
    Reconciled,
    TradingStateChanged,
)


class StateTransition(Event):
    """One move of the state machine, with the metadata of exactly that move."""

    type: Literal["state_transition"] = "state_transition"
    from_state: State
    to_state: State
    context: str
    metadata: StateMetadata
    duration_ms: float
    """Time spent in ``from_state`` before this move."""


class KalshiSyncComplete(Event):
    """A sync finished: the account state, and its changes since the previous sync."""

    type: Literal["kalshi_sync_complete"] = "kalshi_sync_complete"
    sync_type: SyncType
    state: SyncState
    changes: SyncChanges | None
    shards: tuple[ShardAccount, ...] = ()
    """Per-exchange-shard balance and portfolio value; ``state`` holds their totals."""


class StageFailureReported(Event):
    """The supervisor reports (JSON ``stage_failure``) that a stage failed, by any path
    (handler error, start error, hang, deadline, lost link)."""

    type: Literal["stage_failure"] = "stage_failure"
    stage: str
    state: State
    error_type: str
    reason: str


class RestartScheduled(Event):
    """The policy granted a restart: these stages restart after ``delay_ms``."""

    type: Literal["restart_scheduled"] = "restart_scheduled"
    stages: tuple[str, ...]
    attempt: int
    delay_ms: int


class StageDropped(Event):
    """A temporary (or normally-stopped transient) stage was removed instead of restarted."""

    type: Literal["stage_dropped"] = "stage_dropped"
    stage: str
    reason: str


class Escalation(Event):
    """Restart intensity was exceeded: the supervisor escalates by shutting down."""

    type: Literal["escalation"] = "escalation"
    reason: str


class StreamHealed(Event):
    """The orderbook stream recovered in place while READY (the state did not change)."""

    type: Literal["stream_healed"] = "stream_healed"
    kind: str
    detail: str
    healed_total: int
    counters: dict[str, int] = {}


class StreamInterrupted(Event):
    """The orderbook stream dropped while READY; it has ``heal_timeout_ms`` to heal in place."""

    type: Literal["stream_interrupted"] = "stream_interrupted"
    detail: str
    heal_timeout_ms: int
    counters: dict[str, int] = {}


class StreamNotice(Event):
    """Something the orderbook stream did on its own that people must see, in any state:
    ``market_dropped`` (detail ``TICKER: reason``: closed, settled, determined or unknown)
    or ``stale`` (a silent feed was found and is being resynced), ``market_added``, or
    ``no_live_markets`` (every market was dropped: READY is left, or not entered, until a
    market is live again; detail counts the drops by reason). ``counters`` are the
    stream's counters at that moment."""

    type: Literal["stream_notice"] = "stream_notice"
    kind: str
    detail: str
    counters: dict[str, int] = {}


class ExchangePaused(Event):
    """The exchange paused (or changed its resume estimate): a condition, not a failure.

    ``exchange_index`` None means the whole exchange; ``scope`` says what is refused
    (``exchange``: everything; ``trading``: new orders, cancels still allowed).
    """

    type: Literal["exchange_paused"] = "exchange_paused"
    exchange_index: int | None
    scope: PauseScope
    resume_estimate: datetime | None


class ExchangeResumed(Event):
    """A pause announced by ``exchange_paused`` ended."""

    type: Literal["exchange_resumed"] = "exchange_resumed"
    exchange_index: int | None
    scope: PauseScope
    paused_ms: int


class FaultInjected(Event):
    """Someone injected a fault (in-process or through ``kalshi-supervisor inject``)."""

    type: Literal["fault_injected"] = "fault_injected"
    fault: InjectFault


class ServiceStarted(Event):
    """A service started for the first time, after READY (a restart is ``ServiceRestarted``)."""

    type: Literal["service_started"] = "service_started"
    service: str


class ServiceFailureReported(Event):
    """A service failed; ``next_restart_in_ms`` is None when it will not be restarted."""

    type: Literal["service_failed"] = "service_failed"
    service: str
    error_type: str
    reason: str
    next_restart_in_ms: int | None


class ServiceRestarted(Event):
    """A failed service was started again after its backoff (``attempt`` counts restarts)."""

    type: Literal["service_restarted"] = "service_restarted"
    service: str
    attempt: int


class ServiceDropped(Event):
    """A service was removed for good (temporary, or restart intensity exhausted); the
    system stays in whatever state it was in."""

    type: Literal["service_dropped"] = "service_dropped"
    service: str
    reason: str


SupervisorEvent = (
    StateTransition
    | KalshiSyncComplete
    | StageFailureReported
    | RestartScheduled
    | StageDropped
    | Escalation
    | StreamHealed
    | StreamInterrupted
    | StreamNotice
    | FaultInjected
    | ExchangePaused
    | ExchangeResumed
    | ServiceStarted
    | ServiceFailureReported
    | ServiceRestarted
    | ServiceDropped
    | OrderUpdateEvent
    | FillEvent
    | PositionChanged
    | TradingStateChanged
    | HaltCompleted
    | Reconciled
)
"""Every event the bus carries: the supervisor's and trading's (messages/trading_events.py)."""
