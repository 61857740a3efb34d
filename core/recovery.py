"""Failures, ERROR and recovery: one restart policy for every kind of failure."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from actors.stage_spec import enabled_stages, pipeline_is_valid
from core.child_table import LINGER_RECHECK, restart_tracker
from core.timers import RestartDue
from messages.events import Escalation, RestartScheduled, StageDropped, StageFailureReported
from messages.metadata import ErrorMetadata, RecoveryMetadata
from messages.states import State
from messages.text import one_line

if TYPE_CHECKING:
    from core.supervisor_core import SupervisorCore

logger = logging.getLogger("kalshi_supervisor.core.recovery")


@dataclass
class PendingRestart:
    """What the next STARTUP restarts; failures during ERROR add to it."""

    attempt: int
    restarting: set[str] = field(default_factory=set)


def error_metadata(
    *,
    failed_state: State,
    stage: str,
    error_type: str,
    reason: str,
    attempt: int,
    next_restart_in_ms: int | None,
) -> ErrorMetadata:
    """ERROR's metadata, built here only: restart, drop and give-up all describe a failure alike."""
    return ErrorMetadata(
        failed_state=failed_state,
        actor=stage,
        error_type=error_type,
        reason=reason,
        restart_attempt=attempt,
        next_restart_in_ms=next_restart_in_ms,
    )


class Recovery:
    """The restart policy's tracker and the restart it has scheduled, if any."""

    def __init__(self, core: SupervisorCore, rng: random.Random | None) -> None:
        self._core = core
        config = core.config
        self.tracker = restart_tracker(
            core.specs,
            config.restart,
            strategy=config.restart.strategy,
            clock=core.scheduler.clock,
            rng=rng or random.Random(),
        )
        self.pending: PendingRestart | None = None
        self._waiting_logged = False
        self._waiting: set[str] = set()
        """Children a due restart waits for (their stop in progress, or hung)."""

    @property
    def recovering(self) -> bool:
        """A restart is under way (ERROR was entered and READY not reached since)."""
        return self.pending is not None

    def on_ready(self) -> None:
        """READY: the recovery is over and every running stage counts as started again."""
        self.pending = None
        for name in self._core.child_names():
            self.tracker.on_started(name)

    def fail(self, stage: str, error_type: str, reason: str, *, abnormal: bool = True) -> None:
        """Every failure path ends here: log one line, publish, and let the policy decide.

        During ERROR a further failure joins the pending restart instead of starting another.
        """
        core = self._core
        state = core.state
        if state is State.SHUTDOWN:
            return
        reason = one_line(reason)
        logger.warning("%s stage failed in %s: %s: %s", stage, state.name, error_type, reason)
        core.publish(
            StageFailureReported(stage=stage, state=state, error_type=error_type, reason=reason)
        )
        decision = self.tracker.on_failure(stage, abnormal=abnormal)
        if state is State.ERROR and self.pending is not None and not decision.give_up:
            self.pending.restarting.update(decision.children)
            core.stop_children(decision.children)
            return
        core.deadline.cancel()
        if decision.give_up:
            if state is not State.ERROR:
                core.transition(
                    State.ERROR,
                    f"{stage} failed; giving up",
                    error_metadata(
                        failed_state=state,
                        stage=stage,
                        error_type=error_type,
                        reason=reason,
                        attempt=decision.attempt,
                        next_restart_in_ms=None,
                    ),
                )
            core.publish(Escalation(reason=decision.reason))
            core.shutdown(f"gave up: {decision.reason}")
            return
        if not decision.restart:
            self._drop(stage, state, error_type, reason)
            return
        delay_ms = round(decision.delay * 1000)
        self._enter_error(
            f"{stage} failed: {error_type}",
            error_metadata(
                failed_state=state,
                stage=stage,
                error_type=error_type,
                reason=reason,
                attempt=decision.attempt,
                next_restart_in_ms=delay_ms,
            ),
            PendingRestart(attempt=decision.attempt, restarting=set(decision.children)),
            decision.delay,
        )
        core.publish(
            RestartScheduled(stages=decision.children, attempt=decision.attempt, delay_ms=delay_ms)
        )
        core.stop_children(decision.children)

    def _enter_error(
        self, context: str, metadata: ErrorMetadata, pending: PendingRestart, delay: float
    ) -> None:
        """Arm the restart timer *before* announcing ERROR: whoever reads the announced delay
        (a person, a test advancing a manual clock) can rely on the restart being scheduled."""
        core = self._core
        epoch, mailbox = core.epoch + 1, core.mailbox  # the epoch ERROR is about to start
        core.scheduler.call_later(delay, lambda: mailbox(RestartDue(epoch)), name="restart")
        self.pending = pending
        core.transition(State.ERROR, context, metadata)

    def _drop(self, stage: str, state: State, error_type: str, reason: str) -> None:
        """A temporary stage (or a transient one stopped normally) is removed, not restarted.

        Trading stages only make sense together (the table has no TRADING_CLIENT_CONNECT
        -> READY), so dropping one whose loss breaks the path falls back to what
        ``--no-trading`` runs: the stages outside trading states.
        """
        core = self._core
        failed = core.spec(stage)
        remaining = [s for s in core.specs if s.name != stage]
        if failed is not None and failed.requires_trading and not pipeline_is_valid(remaining):
            remaining = enabled_stages(remaining, trading_enabled=False)
        kept = {s.name for s in remaining}
        dropped = [s.name for s in core.specs if s.name not in kept]
        for name in dropped:
            core.publish(StageDropped(stage=name, reason=f"{stage} failed: {error_type}: {reason}"))
        core.stop_children(dropped)
        for name in dropped:
            self.tracker.drop(name)
            core.results.pop(name, None)  # READY must not show a dropped stage's stale result
        core.specs = remaining
        if not remaining or not pipeline_is_valid(remaining):
            core.shutdown(f"no runnable stages left after dropping {', '.join(dropped)}")
            return
        self._enter_error(
            f"{stage} failed and is not restarted",
            error_metadata(
                failed_state=state,
                stage=stage,
                error_type=error_type,
                reason=reason,
                attempt=0,
                next_restart_in_ms=0,
            ),
            PendingRestart(attempt=0),
            0.0,
        )

    def _wait_for_hung(self, hung: list[str], *, recheck: bool) -> None:
        """An incarnation being restarted still runs: its stop is in progress (the restart
        goes on at its ``ChildStopped``), or it is hung in its own code and ignored its stop
        (restarting now would leave its thread behind for good, one per restart). ERROR
        holds and looks again shortly; the restart follows its end."""
        core = self._core
        self._waiting = set(hung)
        if recheck and not self._waiting_logged:
            self._waiting_logged = True
            logger.warning(
                "restart of %s waits for its hung incarnation to end", ", ".join(hung)
            )
        epoch, mailbox = core.epoch, core.mailbox
        core.scheduler.call_later(
            LINGER_RECHECK, lambda: mailbox(RestartDue(epoch, recheck=True)), name="restart"
        )

    def on_child_stopped(self, name: str) -> None:
        if name in self._waiting:
            self.on_restart_due(RestartDue(self._core.epoch))

    def on_restart_due(self, due: RestartDue) -> None:
        """The backoff elapsed: STARTUP names what restarts, then the walk begins again."""
        core = self._core
        if due.epoch != core.epoch or core.state is not State.ERROR:
            return
        pending = self.pending or PendingRestart(attempt=0)
        hung = sorted(n for n in pending.restarting if core.children.lingering(n))
        if hung:
            self._wait_for_hung(hung, recheck=due.recheck)
            return
        self._waiting_logged = False
        self._waiting.clear()
        self._waiting: set[str] = set()
        """Children a due restart waits for (their stop in progress, or hung)."""
        order = [s.name for s in core.specs]
        core.transition(
            State.STARTUP,
            "Recovering after a failure",
            RecoveryMetadata(
                restart_attempt=pending.attempt,
                restarting=tuple(
                    sorted(pending.restarting, key=lambda n: order.index(n) if n in order else 99)
                ),
            ),
        )
        core.walk.begin()
