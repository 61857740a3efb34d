"""SHUTDOWN: from any state, once; services are told (READY ended), then stop (in reverse),
then stages in reverse start order."""

from __future__ import annotations

from typing import TYPE_CHECKING

from messages.metadata import ShutdownMetadata
from messages.states import State
from messages.text import one_line

if TYPE_CHECKING:
    from core.supervisor_core import SupervisorCore


def shut_down(core: SupervisorCore, reason: str) -> None:
    """Cancel every timer, stop every stage, announce SHUTDOWN, then let the shell stop.

    Idempotent: a second request (a signal during a give-up) changes nothing.
    """
    if core.state is State.SHUTDOWN:
        return
    core.deadline.cancel()
    core.pauses.stop()
    # Services hear SHUTDOWN before their stop, so the order gateway's halt (halt_on_not_ready)
    # begins now, on its own thread, while the other services stop; the gateway's stop then
    # waits for it and verifies that none of our orders rest before the process exits.
    core.services.on_not_ready(State.SHUTDOWN, reason)
    core.services.stop_all()  # services first, while the stages they read still run
    core.stop_children(core.child_names())
    core.transition(State.SHUTDOWN, "Shutting down", ShutdownMetadata(reason=one_line(reason)))
    core.on_shutdown()
