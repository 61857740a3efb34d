"""kalshi-supervisor's public face: everything a user imports, exported explicitly.

Run it (``kalshi-supervisor run``, or ``main``), drive it from code (``Supervisor``), inject
faults (``InjectFault``), extend it with a stage (``StageSpec`` + ``StageActor``) and read
what it reports (the event types). Everything here is a plain re-export, visible to type
checkers and IDEs; this module sits above every layer and nothing of ours imports it.
"""

from __future__ import annotations

from actors.base import StageActor
from actors.registry import DEFAULT_STAGES, StageSpec
from app.handle import Supervisor
from cli.main import main
from core.event_bus import EventListener
from core.supervisor_actor import SupervisorActor
from messages.events import (
    Escalation,
    Event,
    FaultInjected,
    KalshiSyncComplete,
    RestartScheduled,
    StageDropped,
    StageFailureReported,
    StateTransition,
    StreamHealed,
    StreamInterrupted,
    SupervisorEvent,
)
from messages.faults import ActorFault, ExchangeFault, FaultTarget, InjectFault
from messages.states import State
from supervision.config import RestartSettings, SupervisorConfig

__all__ = [
    "DEFAULT_STAGES",
    "ActorFault",
    "Escalation",
    "Event",
    "EventListener",
    "ExchangeFault",
    "FaultInjected",
    "FaultTarget",
    "InjectFault",
    "KalshiSyncComplete",
    "RestartScheduled",
    "RestartSettings",
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
    "main",
]
