"""Exchange pauses: a condition of the exchange, waited out, never a failure of a stage.

Kalshi pauses trading weekly and, rarely, the whole exchange [MP]. Nothing here touches
the restart policy: a stage that meets an exchange pause reports ``StagePaused`` and is
kept, with its deadline suspended, until ``/exchange/status`` says the exchange is back;
then it is told ``Connect`` again. READY is never left for a pause: its facts stay true
(nothing can change an account while the exchange refuses everything), and the pause is
shown beside it as ``exchange_paused`` / ``exchange_resumed`` events, per shard.

The pause also holds the core's own bounds: a heal timeout or stage deadline that expires
while the whole exchange is paused (a dropped or refused WebSocket, say) is held, not failed,
and re-armed in full when the exchange resumes; if no pause is known when one expires, the
status is read once first (``defer_expiry``). On the resume every running stage is told
``RetryNow`` so a stream whose backoff grew during the pause reconnects at once.

Re-checks use bounded backoff (``PauseTiming``) that waits for the exchange's resume
estimate when it is far; READY also re-reads the status routinely, so a pause that starts
while READY is noticed (the sync stage's update syncs report what they read, too).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from core.ports import ExchangeProbe
from core.timers import ExchangeCheckDue, ExchangeChecked
from messages.commands import RetryNow
from messages.events import ExchangePaused, ExchangeResumed
from messages.exchange import ExchangeCondition, PauseScope, StagePaused
from messages.states import State
from messages.text import one_line
from supervision.scheduler import TimerHandle

if TYPE_CHECKING:
    from core.supervisor_core import SupervisorCore

logger = logging.getLogger("kalshi_supervisor.core.pauses")

ROUTINE = 0
"""Serial of READY's routine check; pause re-checks count from 1."""

CONFIRM = -1
"""Serial of the one-off check that confirms a pause before an expiry fails anything."""


@dataclass(frozen=True)
class HeldExpiry:
    """A bound that expired during an exchange pause: what it does, and how to restart it."""

    fire: Callable[[], None]
    """The expiry's effect (a stage failure, READY left); used when the exchange is up."""
    rearm: Callable[[], None]
    """A fresh, full bound once the exchange is back; each callable checks it still applies."""


@dataclass(frozen=True)
class ActivePause:
    scope: PauseScope
    resume_estimate: datetime | None
    since: float
    """Monotonic time the pause was first seen (for ``paused_ms``)."""


class PauseWatch:
    """The pauses in force, the stages waiting for the exchange, and the re-check timer."""

    def __init__(self, core: SupervisorCore) -> None:
        self._core = core
        self.pauses: dict[int | None, ActivePause] = {}
        self.waiting: dict[str, int] = {}
        """Stages (name -> generation) holding their work until the exchange is back."""
        self.discovery_epoch: int | None = None
        """The INITIALIZING epoch whose market discovery waits for the exchange."""
        self.last: ExchangeCondition | None = None
        self._attempt = 0
        self._serial = ROUTINE
        self._timer: TimerHandle | None = None
        self._due_at: float | None = None
        """Monotonic time the pending re-check fires at."""
        self._checking: int | None = None
        self._routine: TimerHandle | None = None
        self._resume_at: float | None = None
        """Monotonic time of the exchange's resume estimate, if it gave one."""
        self.held: dict[str, HeldExpiry] = {}
        """Expiries (heal, deadlines) waiting for the exchange to resume, by key."""
        self._confirming: dict[str, HeldExpiry] = {}
        self._confirm_running = False
        self._unreadable = False
        """The last status check failed: a pause seen before it is no longer trusted."""

    @property
    def exchange_paused(self) -> bool:
        """A whole-exchange pause is in force, as last seen."""
        active = self.pauses.get(None)
        return active is not None and active.scope == "exchange"

    # -- bounds that expire during a pause ----------------------------------------------------
    def defer_expiry(self, key: str, fire: Callable[[], None], rearm: Callable[[], None]) -> bool:
        """An expiry that would fail something: True if the pause takes it over.

        Held (and re-armed on resume) while a whole-exchange pause is in force; with no
        pause known, the status is read once first and the expiry fires only if it says
        the exchange is up (or cannot be read). False: no way to tell, fire it now.
        Why: a stream refused or dropped by a paused exchange cannot heal or connect within
        any bound; that is the exchange's condition, not the stage's failure.
        """
        expiry = HeldExpiry(fire, rearm)
        if self.exchange_paused and not self._unreadable:
            self._hold(key, expiry)
            self._ensure_polling()
            return True
        probe = self._core.probe_exchange
        if probe is None:
            return False
        self._confirming[key] = expiry
        if not self._confirm_running:
            self._confirm_running = True
            self._read_status(probe, CONFIRM)
        return True

    def _hold(self, key: str, expiry: HeldExpiry) -> None:
        logger.info("%s expired during an exchange pause: held until the exchange resumes", key)
        self.held[key] = expiry

    def _on_confirmed(self, checked: ExchangeChecked) -> None:
        self._confirm_running = False
        pending, self._confirming = self._confirming, {}
        if self._core.state is State.SHUTDOWN:
            return
        condition = checked.condition
        if condition is not None:
            self.observe(condition)
        if condition is not None and condition.exchange_paused:
            for key, expiry in pending.items():
                self._hold(key, expiry)
            self._ensure_polling()
            return
        if condition is None:
            logger.warning("exchange status check failed: %s", checked.error)
            self._unreadable = True
        for expiry in pending.values():
            expiry.fire()

    # -- what stages report -----------------------------------------------------------------
    def on_stage_paused(self, message: StagePaused) -> None:
        """A stage met an exchange pause: keep it, suspend its deadline, wait, retry it.

        In READY (periodic work met the pause) READY stays; the pause is shown as events.
        """
        core = self._core
        core.ready.work_done(message.stage)
        if core.walk.is_connecting(message.stage):
            core.deadline.cancel()
            self.waiting[message.stage] = message.generation
            logger.info(
                "%s stage waits for the exchange in %s: %s",
                message.stage,
                core.state.name,
                one_line(message.reason),
            )
        self.observe(message.condition)
        if message.stage in self.waiting and not message.condition.exchange_paused:
            self._release_waiting()  # a stale reading said "paused": retry now
        self._ensure_polling()

    def on_discovery_paused(self, condition: ExchangeCondition, reason: str) -> None:
        """Market discovery met an exchange pause in INITIALIZING: wait, then discover again."""
        core = self._core
        core.deadline.cancel()
        self.discovery_epoch = core.epoch
        logger.info("market discovery waits for the exchange: %s", one_line(reason))
        self.observe(condition)
        self._ensure_polling()

    def observe(self, condition: ExchangeCondition) -> None:
        """A reading of the status: publish what paused or resumed since the last one.

        Readings older than the last one are ignored (two stages may read concurrently).
        """
        core = self._core
        if self.last is not None and condition.observed_at < self.last.observed_at:
            return
        self.last = condition
        self._unreadable = False
        was_paused = self.exchange_paused
        now = core.scheduler.clock.monotonic()
        seen: dict[int | None, PauseScope] = {}
        for pause in condition.pauses:
            if seen.get(pause.exchange_index) != "exchange":
                seen[pause.exchange_index] = pause.scope
        for key, active in list(self.pauses.items()):
            if seen.get(key) != active.scope:
                del self.pauses[key]
                logger.info(
                    "%s resumed on %s after %.1f s",
                    active.scope,
                    _shard(key),
                    now - active.since,
                )
                core.publish(
                    ExchangeResumed(
                        exchange_index=key,
                        scope=active.scope,
                        paused_ms=round((now - active.since) * 1000),
                    )
                )
        for key, scope in seen.items():
            active = self.pauses.get(key)
            if active is not None and active.resume_estimate == condition.resume_estimate:
                continue
            if active is None:
                logger.warning(
                    "%s paused on %s (estimated resume %s)",
                    scope,
                    _shard(key),
                    condition.resume_estimate.isoformat() if condition.resume_estimate else "none",
                )
                self._attempt = 0
            self.pauses[key] = ActivePause(
                scope, condition.resume_estimate, active.since if active else now
            )
            core.publish(
                ExchangePaused(
                    exchange_index=key, scope=scope, resume_estimate=condition.resume_estimate
                )
            )
        until = condition.seconds_to_resume()
        self._resume_at = None if until is None else now + until
        if not condition.exchange_paused:
            self._release_waiting()
            if was_paused:
                self._retry_now()
        if self.pauses or self._holding():
            self._ensure_polling()
        else:
            self._stop_polling()

    # -- re-checking the status ---------------------------------------------------------------
    def _ensure_polling(self) -> None:
        """One re-check at a time: a probe in flight is enough, and so is a pending timer
        unless this reading calls for an earlier check.

        Why rescheduling: a re-check set for a far resume estimate (up to ``far_poll``) must
        not hide a new pause, or a nearer estimate, that should be re-read within seconds.
        """
        core = self._core
        if self._checking is not None:
            return
        if not (self.pauses or self._holding()) or core.state is State.SHUTDOWN:
            return
        now = core.scheduler.clock.monotonic()
        to_resume = None if self._resume_at is None else self._resume_at - now
        delay = core.config.pause_timing.delay(self._attempt, to_resume)
        if self._timer is not None:
            if self._due_at is not None and now + delay >= self._due_at:
                return
            self._timer.cancel()
        self._due_at = now + delay
        self._attempt += 1
        self._serial += 1
        serial, mailbox = self._serial, core.mailbox
        self._timer = core.scheduler.call_later(
            delay, lambda: mailbox(ExchangeCheckDue(serial)), name="exchange-check"
        )

    def _stop_polling(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._due_at = None
        self._attempt = 0

    def on_check_due(self, due: ExchangeCheckDue) -> None:
        core = self._core
        if due.serial == ROUTINE:
            # Runs even while a re-check waits for a far resume estimate: an exchange can
            # resume early, and READY should notice within its routine interval.
            if core.state is State.READY and self._checking is None:
                self._probe(ROUTINE)
            return
        if due.serial != self._serial or self._timer is None:
            return
        self._timer = None
        self._due_at = None
        self._probe(due.serial)

    def _probe(self, serial: int) -> None:
        core = self._core
        probe = core.probe_exchange
        if probe is None:
            # No way to read the status here: let waiting stages read it themselves.
            self._release_waiting()
            return
        self._checking = serial
        self._read_status(probe, serial)

    def _read_status(self, probe: ExchangeProbe, serial: int) -> None:
        """Read the status off the supervisor's thread; the answer (or why it failed) comes
        back as ``ExchangeChecked(serial, ...)``."""
        mailbox = self._core.mailbox

        def work() -> None:
            try:
                mailbox(ExchangeChecked(serial, probe(), ""))
            except Exception as exc:
                mailbox(ExchangeChecked(serial, None, one_line(f"{type(exc).__name__}: {exc}")))

        self._core.background(work)

    def on_checked(self, checked: ExchangeChecked) -> None:
        """A probe answered: observe it; an unreadable status releases waiting stages.

        Only a pause the exchange declares is waited out: if the status cannot be read,
        the waiting stages retry their own work, which fails (or not) the normal way.
        """
        if checked.serial == CONFIRM:
            self._on_confirmed(checked)
            return
        if checked.serial != self._checking:
            return
        self._checking = None
        if self._core.state is State.SHUTDOWN:
            return
        if checked.condition is None:
            logger.warning("exchange status check failed: %s", checked.error)
            self._unreadable = True
            self._release_waiting()
            self._ensure_polling()
            return
        self.observe(checked.condition)

    def _holding(self) -> bool:
        return bool(self.waiting or self.held) or self.discovery_epoch is not None

    def _retry_now(self) -> None:
        """The whole exchange is back: every running stage reconnects now, backoff reset."""
        core = self._core
        for name in core.child_names():
            generation = core.current_generation(name)
            if generation is not None:
                core.tell_child(name, RetryNow())

    def _release_waiting(self) -> None:
        core = self._core
        epoch, self.discovery_epoch = self.discovery_epoch, None
        if epoch is not None and epoch == core.epoch and core.state is State.INITIALIZING:
            logger.info("market discovery resumes")
            core.deadline.arm(
                core.specs[0].name,
                State.INITIALIZING,
                core.config.deadlines.get(State.INITIALIZING),
            )
            core.walk.discover()
        held, self.held = self.held, {}
        for expiry in held.values():
            expiry.rearm()
        waiting, self.waiting = self.waiting, {}
        for stage, generation in waiting.items():
            if core.is_current(stage, generation) and core.walk.is_connecting(stage):
                logger.info("%s stage resumes its work in %s", stage, core.state.name)
                core.walk.retry(stage, generation)

    # -- READY's routine check ------------------------------------------------------------------
    def on_ready(self) -> None:
        core, mailbox = self._core, self._core.mailbox
        if self._routine is None:
            self._routine = core.scheduler.call_every(
                core.config.exchange_check_interval,
                lambda: mailbox(ExchangeCheckDue(ROUTINE)),
                name="exchange-routine-check",
            )

    def on_leave_ready(self) -> None:
        if self._routine is not None:
            self._routine.cancel()
            self._routine = None

    def stop(self) -> None:
        """SHUTDOWN: no more checks (the pauses stay as they were last seen)."""
        self.on_leave_ready()
        self._stop_polling()
        self.waiting.clear()
        self.discovery_epoch = None
        self.held.clear()
        self._confirming.clear()


def _shard(exchange_index: int | None) -> str:
    return "every shard" if exchange_index is None else f"shard {exchange_index}"
