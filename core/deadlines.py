"""Every stage's own deadline: one pending at a time, armed when the stage starts its work."""

from __future__ import annotations

from core.ports import Mailbox
from core.timers import DeadlineExpired
from messages.states import State
from supervision.scheduler import Scheduler, TimerHandle


class StageDeadline:
    """The single pending deadline, and the serial that makes older ones stale.

    Why per stage and not per state: two stages can share a state; when the first one
    succeeds, the second must still be bounded (a stage that never replies would otherwise
    leave the supervisor in that state forever).
    """

    def __init__(self, scheduler: Scheduler, mailbox: Mailbox) -> None:
        self._scheduler = scheduler
        self._mailbox = mailbox
        self._handle: TimerHandle | None = None
        self.serial = 0

    def arm(self, stage: str, state: State, seconds: float | None) -> None:
        """Replace any pending deadline; None seconds means this stage is unbounded."""
        self.cancel()
        if seconds is None:
            return
        serial, mailbox = self.serial, self._mailbox
        self._handle = self._scheduler.call_later(
            seconds,
            lambda: mailbox(DeadlineExpired(serial, stage, state, seconds)),
            name="deadline",
        )

    def cancel(self) -> None:
        """Cancel the pending deadline; bumping the serial also disarms one already queued."""
        self.serial += 1
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def is_current(self, expired: DeadlineExpired) -> bool:
        return expired.serial == self.serial
