"""A held stage: nothing to work on is a condition, waited out, never a stage's failure.

The example is the orderbook stage with no live market: every followed market can be
dropped (closed by time, settled, unknown), and READY with ``markets_connected: 0`` would be
a false green. A stage says so with an incident that ``holds`` (``no_live_markets``); READY
is then left for that stage's state (or, at startup, not entered) and the stage is *held*
there: its deadline is cancelled and nothing touches the restart policy, as for an exchange
pause (:mod:`core.pauses`). Meanwhile the stage is told its spec's ``hold_retry`` (the
orderbook's ``RefreshMarkets``) with bounded backoff (``market_wait_min`` doubling to
``market_wait_max``). The stage succeeds as soon as it has work again, and the walk goes on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from core.timers import HoldRetryDue
from messages.events import StreamNotice
from messages.results import StreamIncident
from messages.states import State
from supervision.scheduler import TimerHandle

if TYPE_CHECKING:
    from core.supervisor_core import SupervisorCore

logger = logging.getLogger("kalshi_supervisor.core.stage_hold")


class StageHold:
    """The stage held for want of work (a live market), and its retry timer."""

    def __init__(self, core: SupervisorCore) -> None:
        self._core = core
        self.held: tuple[str, int] | None = None
        """(stage, generation) held without a deadline until a market is live."""
        self._timer: TimerHandle | None = None
        self._attempt = 0
        self._serial = 0

    def on_held(self, incident: StreamIncident) -> None:
        """Leave READY (or stay out of it) and hold the stage until a market is live."""
        core = self._core
        stage = incident.stage
        index = core.index_of(stage)
        spec = core.spec(stage)
        if index is None or spec is None or spec.hold_retry is None:
            return
        ready = core.ready
        leaving = core.state is State.READY or ready.awaits(stage)
        if not leaving and not core.walk.is_connecting(stage):
            return
        if leaving or self.held is None:
            core.publish(
                StreamNotice(kind=incident.kind, detail=incident.detail, counters=incident.counters)
            )
        if leaving:
            core.walk.start_at(index)  # READY, if announced, ends in the transition made here
            if core.state is not spec.state:
                return
            ready.leave()  # READY was pending in this very state: no transition closes it
        core.deadline.cancel()
        if self.held is None:
            logger.info("%s stage held in %s until a market is live", stage, core.state.name)
            self._attempt = 0
        self.held = (stage, incident.generation)
        self._schedule()

    def _schedule(self) -> None:
        core = self._core
        if self._timer is not None:
            return
        config = core.config
        delay = min(config.market_wait_max, config.market_wait_min * 2 ** min(self._attempt, 30))
        self._attempt += 1
        self._serial += 1
        serial, mailbox = self._serial, core.mailbox
        self._timer = core.scheduler.call_later(
            delay, lambda: mailbox(HoldRetryDue(serial)), name="market-wait"
        )

    def on_due(self, due: HoldRetryDue) -> None:
        """Ask the held stage to look for markets again (if it is still the one waiting)."""
        core = self._core
        if due.serial != self._serial or self.held is None:
            return
        self._timer = None
        stage, generation = self.held
        spec = core.spec(stage)
        if (
            spec is None
            or spec.hold_retry is None
            or not core.is_current(stage, generation)
            or not core.walk.is_connecting(stage)
        ):
            self.release()
            return
        core.tell_child(stage, spec.hold_retry(generation))
        self._schedule()

    def release(self, stage: str | None = None) -> None:
        """The held stage succeeded (or is gone): stop asking."""
        if self.held is None or (stage is not None and self.held[0] != stage):
            return
        self.held = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
