"""kalshi-supervisor's public face: everything a user imports, exported explicitly.

Run it (``kalshi-supervisor run``), drive it from code (``Supervisor``), inject faults
(``InjectFault``), or extend it with a stage (``StageSpec`` + ``StageActor``).
"""

from __future__ import annotations

from actors.base import StageActor
from actors.registry import DEFAULT_STAGES, StageSpec
from app.runner import Supervisor, main
from core.event_bus import EventListener
from core.supervisor_actor import SupervisorActor
from messages.events import SupervisorEvent
from messages.faults import InjectFault
from messages.states import State
from supervision.config import SupervisorConfig

__all__ = [
    "DEFAULT_STAGES",
    "EventListener",
    "InjectFault",
    "StageActor",
    "StageSpec",
    "State",
    "Supervisor",
    "SupervisorActor",
    "SupervisorConfig",
    "SupervisorEvent",
    "main",
]
