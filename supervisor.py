"""kalshi-supervisor's public face: everything a user imports, exported explicitly.

Run it (``kalshi-supervisor run``, or ``main``), drive it from code (``Supervisor``), inject
faults (``InjectFault``), extend it with a stage (``StageSpec`` + ``StageActor``) or a
service (``ServiceSpec`` + ``ServiceActor``, options in a ``ServiceOptions`` model, books as
``BookView`` copies) and read what it reports (the event types). Everything here is a plain
re-export, visible to type checkers and IDEs; this module sits above every layer and nothing
of ours imports it.
"""

from __future__ import annotations

from actors.base import StageActor
from actors.registry import DEFAULT_STAGES
from actors.service import ServiceActor, ServiceOptions, ServiceSpec
from actors.stage_spec import StageSpec
from app.handle import Supervisor
from cli.main import main
from core.event_bus import EventListener
from core.supervisor_actor import SupervisorActor
from kalshi_api.book_changes import BookView
from messages.account import AccountView
from messages.events import (
    Escalation,
    Event,
    FaultInjected,
    KalshiSyncComplete,
    RestartScheduled,
    ServiceDropped,
    ServiceFailureReported,
    ServiceRestarted,
    ServiceStarted,
    StageDropped,
    StageFailureReported,
    StateTransition,
    StreamHealed,
    StreamInterrupted,
    SupervisorEvent,
)
from messages.faults import ActorFault, ExchangeFault, FaultTarget, InjectFault
from messages.states import State
from messages.trading_events import (
    FillEvent,
    HaltCompleted,
    OrderUpdateEvent,
    PositionChanged,
    Reconciled,
    TradingStateChanged,
)
from supervision.config import RestartSettings, SupervisorConfig

__all__ = [
    "DEFAULT_STAGES",
    "AccountView",
    "ActorFault",
    "BookView",
    "Escalation",
    "Event",
    "EventListener",
    "ExchangeFault",
    "FaultInjected",
    "FaultTarget",
    "FillEvent",
    "HaltCompleted",
    "InjectFault",
    "KalshiSyncComplete",
    "OrderUpdateEvent",
    "PositionChanged",
    "Reconciled",
    "RestartScheduled",
    "RestartSettings",
    "ServiceActor",
    "ServiceDropped",
    "ServiceFailureReported",
    "ServiceOptions",
    "ServiceRestarted",
    "ServiceSpec",
    "ServiceStarted",
    "StageActor",
    "StageDropped",
    "StageFailureReported",
    "StageSpec",
    "State",
    "StateTransition",
    "StreamHealed",
    "StreamInterrupted",
    "Supervisor",
    "SupervisorActor",
    "SupervisorConfig",
    "SupervisorEvent",
    "TradingStateChanged",
    "main",
]
