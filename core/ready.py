"""READY and its timers: entering it, liveness, periodic work, healing the stream in place."""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from core.timers import HealExpired, LivenessCheck, LivenessDue, PeriodicDue
from messages.events import StreamHealed, StreamInterrupted, StreamNotice
from messages.metadata import ReadyMetadata
from messages.results import StreamIncident
from messages.states import State
from supervision.scheduler import TimerHandle

if TYPE_CHECKING:
    from core.supervisor_core import SupervisorCore

logger = logging.getLogger("kalshi_supervisor.core.ready")

DEFAULT_WORK_DEADLINE = 15.0
"""Bound on periodic work of a stage with no deadline anywhere (never hit with defaults)."""


class ReadyPhase(enum.Enum):
    """READY's own phases; the state machine's state is READY only in ``OPEN``."""

    CLOSED = "closed"
    """Not READY (connecting, ERROR, SHUTDOWN)."""
    AWAITING_STREAM = "awaiting_stream"
    """Every stage succeeded, but a stage's live check failed (its stream dropped after it
    finished): READY waits, under that stage's deadline, for it to report it healed."""
    OPEN = "open"


def ready_metadata(fields: dict[str, Any], classes: list[type[ReadyMetadata]]) -> ReadyMetadata:
    """READY's class follows from what the stages contributed: the most derived of the
    classes their ``ReadyPart``s need (each names its own; the core names none)."""
    chosen = ReadyMetadata
    for cls in classes:
        if issubclass(cls, chosen):
            chosen = cls
    return chosen(**fields)


def refine_fields(fields: dict[str, Any], more: Mapping[str, Any]) -> None:
    """Add a refining part's keys into the nested mappings already contributed (see
    ``ReadyPart.refines``); a key nobody else contributed is not created."""
    for key, value in more.items():
        earlier = fields.get(key)
        if isinstance(earlier, Mapping) and isinstance(value, Mapping):
            fields[key] = {**earlier, **value}


class ReadyWatch:
    """READY's timers and the bookkeeping they need (pings, busy stages, heal timer)."""

    def __init__(self, core: SupervisorCore) -> None:
        self._core = core
        self.phase = ReadyPhase.CLOSED
        self.awaiting: str | None = None
        self._timers: list[TimerHandle] = []
        self._heal: TimerHandle | None = None
        self._busy_until: dict[str, float] = {}
        self.healed_total = 0

    # -- entering READY ---------------------------------------------------------------------
    def enter(self) -> None:
        """Announce READY with every stage's contribution, unless a stage is not live yet."""
        core = self._core
        contributed = self._contributions()
        if contributed is None:
            return
        fields, classes = contributed
        self.phase, self.awaiting = ReadyPhase.OPEN, None
        core.deadline.cancel()
        fields["environment"] = core.config.environment.value
        metadata = ready_metadata(fields, classes)
        core.transition(State.READY, "All stages connected", metadata)
        self._start_timers()

    def awaits(self, stage: str) -> bool:
        """Every stage succeeded but READY waits for ``stage`` to report it healed."""
        return self.phase is ReadyPhase.AWAITING_STREAM and self.awaiting == stage

    def _contributions(self) -> tuple[dict[str, Any], list[type[ReadyMetadata]]] | None:
        """READY's metadata parts from each stage's spec; None if READY must wait or failed.

        A running stage with an ``ask`` is asked now (a fresh report); others give their last
        result; a stage that is not running gives its ``absent`` result, or nothing.
        """
        core = self._core
        fields: dict[str, Any] = {}
        classes: list[type[ReadyMetadata]] = []
        refinements: list[Mapping[str, Any]] = []
        running = {s.name for s in core.specs}
        for spec in core.all_specs:
            part = spec.ready
            if part is None:
                continue
            result: Any
            if spec.name in running and part.ask is not None and core.has_child(spec.name):
                result = core.ask_stage(spec.name, part.ask)
                if result is None:
                    return None
                if spec.result_type is not None and type(result) is not spec.result_type:
                    core.fail(spec.name, "BadMetadata", f"{spec.name} report has the wrong type")
                    return None
                markets = len(core.walk.markets or ())
                if part.live is not None and not part.live(result, markets):
                    self.phase, self.awaiting = ReadyPhase.AWAITING_STREAM, spec.name
                    core.deadline.arm(
                        spec.name, core.state, spec.deadline_in(core.config.deadlines)
                    )
                    return None
            elif spec.name in running:
                result = core.results.get(spec.name)
            else:
                result = None
            if result is None:
                if part.absent is None:
                    continue
                result = part.absent()
            if part.refines:
                refinements.append(part.fields(result))
                continue
            fields.update(part.fields(result))
            classes.append(part.metadata)
        for more in refinements:
            refine_fields(fields, more)
        return fields, classes

    def _start_timers(self) -> None:
        """Liveness for every stage; each stage's periodic work at its own interval."""
        core = self._core
        mailbox = core.mailbox
        self._timers.append(
            core.scheduler.call_every(
                core.config.liveness_interval, lambda: mailbox(LivenessDue()), name="liveness"
            )
        )
        for spec in core.specs:
            if not core.has_child(spec.name):
                continue
            for index, work in enumerate(spec.periodic):
                self._timers.append(
                    core.scheduler.call_every(
                        work.interval(core.config),
                        lambda n=spec.name, i=index: mailbox(PeriodicDue(n, i)),
                        name=work.name,
                    )
                )

    def leave(self) -> None:
        """Cancel every READY-only timer (liveness, periodic work, heal) and close the phase.

        Called by ``SupervisorCore.transition`` on every move to another state: READY ends
        there and only there. (A stage held while READY was still pending in its own state
        closes the pending phase directly: no transition happens then.)"""
        self.phase, self.awaiting = ReadyPhase.CLOSED, None
        self._core.pauses.on_leave_ready()
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        if self._heal is not None:
            self._heal.cancel()
            self._heal = None
        self._core.children.forget_pings()
        self._busy_until.clear()

    # -- periodic work ----------------------------------------------------------------------
    def work_done(self, stage: str) -> None:
        self._busy_until.pop(stage, None)

    def on_periodic_due(self, due: PeriodicDue) -> None:
        """Ask the stage for its periodic work; its deadline stands in for liveness meanwhile."""
        core = self._core
        spec = core.spec(due.stage)
        generation = core.current_generation(due.stage)
        if core.state is not State.READY or spec is None or generation is None:
            return
        if due.stage in self._busy_until:
            return
        seconds = spec.deadline_in(core.config.deadlines) or DEFAULT_WORK_DEADLINE
        self._busy_until[due.stage] = core.scheduler.clock.monotonic() + seconds
        core.tell_child(due.stage, spec.periodic[due.work].command(generation))

    # -- liveness ---------------------------------------------------------------------------
    def probe_liveness(self) -> None:
        """Ping every stage not busy; a dead actor or overrun work is that stage's failure."""
        core = self._core
        if core.state is not State.READY:
            return
        core.services.probe_liveness()
        now = core.scheduler.clock.monotonic()
        for name in core.child_names():
            if not core.children.is_alive(name):
                core.fail(name, "ActorDied", f"{name} stage actor is no longer running")
                return
            busy_until = self._busy_until.get(name)
            if busy_until is not None:
                if now < busy_until:
                    continue
                core.fail(name, "DeadlineExceeded", f"{name} stage's requested work overran")
                return
            core.children.ping(name)

    def check_liveness(self, check: LivenessCheck) -> None:
        """A ping's time is up: unanswered means unresponsive, an error means it died."""
        core = self._core
        failure = core.children.judge(check)
        if failure is None or core.state is not State.READY or check.child in self._busy_until:
            return
        core.fail(check.child, *failure)

    # -- healing in place -------------------------------------------------------------------
    def on_incident(self, incident: StreamIncident) -> None:
        """A stream dropped or healed: READY survives a drop for ``heal_timeout``."""
        core = self._core
        if incident.holds:
            core.hold.on_held(incident)
            return
        if incident.is_notice:
            core.publish(
                StreamNotice(kind=incident.kind, detail=incident.detail, counters=incident.counters)
            )
            return
        if self.awaits(incident.stage):
            if incident.heals:
                self.enter()
            return
        if core.state is not State.READY:
            return
        if incident.interrupts:
            if self._heal is None:
                epoch, mailbox, stage = core.epoch, core.mailbox, incident.stage
                self._heal = core.scheduler.call_later(
                    core.config.heal_timeout,
                    lambda: mailbox(HealExpired(epoch, stage)),
                    name="heal",
                )
                core.publish(
                    StreamInterrupted(
                        detail=incident.detail,
                        heal_timeout_ms=round(core.config.heal_timeout * 1000),
                        counters=incident.counters,
                    )
                )
        elif incident.heals:
            if self._heal is not None:
                self._heal.cancel()
                self._heal = None
            self.healed_total += 1
            core.publish(
                StreamHealed(
                    kind=incident.kind,
                    detail=incident.detail,
                    healed_total=self.healed_total,
                    counters=incident.counters,
                )
            )

    def on_heal_expired(self, expired: HealExpired) -> None:
        """READY -> the stream's state: it could not heal in place within heal_timeout.

        While the whole exchange is paused the heal timeout is held instead (READY is never
        left for a pause; the books stay, marked stale) and re-armed in full on the resume.
        """
        if not self._heal_applies(expired):
            return
        if not self._core.pauses.defer_expiry(
            f"{expired.stage} heal timeout",
            lambda: self._heal_lapsed(expired),
            lambda: self._rearm_heal(expired),
        ):
            self._heal_lapsed(expired)

    def _heal_applies(self, expired: HealExpired) -> bool:
        """Still READY in the same epoch, and the stream has not healed since."""
        core = self._core
        return (
            expired.epoch == core.epoch
            and core.state is State.READY
            and self._heal is not None
            and core.index_of(expired.stage) is not None
        )

    def _heal_lapsed(self, expired: HealExpired) -> None:
        core = self._core
        index = core.index_of(expired.stage)
        if not self._heal_applies(expired) or index is None:
            return
        core.walk.start_at(index)  # READY ends in the transition this makes

    def _rearm_heal(self, expired: HealExpired) -> None:
        """The exchange is back: the stream gets a full ``heal_timeout`` to reconnect."""
        if not self._heal_applies(expired):
            return
        core = self._core
        epoch, mailbox, stage = expired.epoch, core.mailbox, expired.stage
        self._heal = core.scheduler.call_later(
            core.config.heal_timeout, lambda: mailbox(HealExpired(epoch, stage)), name="heal"
        )
