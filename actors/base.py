"""What every stage actor shares: explicit failure reports, fault injection, liveness.

pykka has three silent failure paths (``on_start`` raising, a handler raising under
``ask``, tells dropped with a crashed actor). Every stage actor therefore reports each
failure to the supervisor itself, as an immutable ``StageFailed``, before pykka does
whatever pykka does. Subclasses implement ``open``/``describe``/``connect``/``close`` and
never need to think about supervision.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import pykka

from actors.context import StageContext
from actors.controls import StageControls, StartFaults
from actors.exchange_status import (
    PROBE_TIMEOUT,
    condition_from_pause,
    condition_from_status,
    read_condition,
)
from kalshi_api.errors import ExchangePausedError, KalshiError
from kalshi_api.models import ExchangeStatus
from messages.base import Message
from messages.commands import Connect, Describe, Ping, Query, RetryNow, StageOwner
from messages.exchange import ExchangeCondition, ExchangeObserved, StagePaused
from messages.faults import ActorFault, InjectFault
from messages.results import StageFailed, StageSucceeded
from messages.states import State
from messages.text import one_line

__all__ = ["InjectedFaultError", "StageActor", "StageControls", "StartFaults"]

logger = logging.getLogger("kalshi_supervisor.actors.base")

DEFAULT_HANG_SECONDS = 3600.0

_reported = threading.local()
"""Per actor thread: the failure pykka is about to log was already reported by us."""


class _ReportedFailureFilter(logging.Filter):
    """Drop pykka's traceback for a failure a stage actor already reported to the supervisor.

    Why: pykka logs every handler error with a full traceback ("Unhandled exception in ...",
    or "Exception returned from ... to caller" under ``ask``); the supervisor logs the same
    failure as one line. Scoped by thread: only the stage actor thread that reported the
    failure (and only that one record) is silenced; every other pykka record passes.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(_reported, "pending", False):
            return True
        text = record.getMessage()
        if text.startswith(("Unhandled exception in ", "Exception returned from ")):
            _reported.pending = False
            return False
        return True


_PYKKA_FILTER = _ReportedFailureFilter()
logging.getLogger("pykka").addFilter(_PYKKA_FILTER)
DEFAULT_SLOW_SECONDS = 2.0


class InjectedFaultError(RuntimeError):
    """Raised on purpose by an injected ``crash`` / ``crash_on_start`` fault."""


@dataclass
class Slowdown:
    """An injected ``slow`` fault: the next ``remaining`` messages each wait ``seconds``
    (or until the actor is released for stopping)."""

    seconds: float = 0.0
    remaining: int = 0

    def delay(self, release: threading.Event) -> None:
        if self.remaining > 0:
            self.remaining -= 1
            release.wait(self.seconds)


def apply_actor_fault(
    fault: InjectFault,
    *,
    label: str,
    key: str,
    controls: StageControls,
    slowdown: Slowdown,
    disconnect: Callable[[], None],
    corrupt: Callable[[], None],
) -> str:
    """Carry out an actor fault on the actor whose thread runs this, stage or service alike.

    ``label`` names the actor in messages (``"orderbook stage"``), ``key`` is its name for
    ``crash_on_start`` (armed in ``controls`` so it outlives the restart), ``disconnect`` and
    ``corrupt`` are what ``disconnect`` and ``bad_metadata`` mean for this kind of actor.
    """
    kind = fault.fault
    logger.warning("%s: injecting %s", label, kind.value)
    if kind is ActorFault.CRASH:
        raise InjectedFaultError(f"injected crash in {label}")
    if kind is ActorFault.CRASH_ON_START:
        controls.start_faults.arm(key)
        raise InjectedFaultError(f"injected crash in {label}; next start fails")
    if kind is ActorFault.HANG:
        controls.release.wait(fault.seconds or DEFAULT_HANG_SECONDS)
        return "released"
    if kind is ActorFault.DISCONNECT:
        disconnect()
        return "disconnected"
    if kind is ActorFault.SLOW:
        slowdown.seconds = fault.seconds or DEFAULT_SLOW_SECONDS
        slowdown.remaining = fault.count or 1
        return "slowed"
    if kind is ActorFault.BAD_METADATA:
        corrupt()
        return "corrupted"
    raise ValueError(f"{kind.value} is not an actor fault")


class StageActor(pykka.ThreadingActor):
    """Base of the stage actors; one incarnation per ``generation``."""

    stage_name: ClassVar[str]
    stage_state: ClassVar[State]
    use_daemon_thread = True

    def __init__(
        self,
        parent: pykka.ActorRef[Any],
        context: StageContext,
        generation: int,
        controls: StageControls,
    ) -> None:
        super().__init__()
        self.parent = parent
        self.context = context
        self.generation = generation
        self.controls = controls
        self._slowdown = Slowdown()

    # -- subclass hooks --------------------------------------------------------------
    def open(self) -> None:
        """Create (not connect) this stage's resources; runs in ``on_start``."""

    def describe(self) -> Message:
        """The metadata for entering this stage's state, built from this stage's own facts."""
        raise NotImplementedError

    def connect(self, generation: int) -> None:
        """Do the state's work, then ``succeed(...)``; raising reports a failure."""
        raise NotImplementedError

    def disconnect(self) -> None:
        """Drop this stage's connection (the ``disconnect`` fault)."""

    def retry_now(self) -> None:
        """The exchange resumed after a pause: reconnect now whatever was dropped (``RetryNow``)."""

    def close(self) -> None:
        """Release every resource; runs in ``on_stop`` and must not raise."""

    def handle(self, message: Any) -> Any:
        """Messages specific to a stage; unknown ones are a protocol error."""
        raise TypeError(f"{self.stage_name} stage cannot handle {type(message).__name__}")

    def bad_result(self) -> Message:
        """An invalid reply for the ``bad_metadata`` fault (wrong class, forbidden field)."""
        return StageSucceeded.model_construct(
            stage=self.stage_name, generation=self.generation, result={"balance": 50000}
        )

    # -- replies to the supervisor ------------------------------------------------------
    def succeed(self, result: Message) -> None:
        self.parent.tell(
            StageSucceeded(stage=self.stage_name, generation=self.generation, result=result)
        )

    def fail(self, error_type: str, reason: str, *, abnormal: bool = True) -> None:
        self.parent.tell(
            StageFailed(
                stage=self.stage_name,
                generation=self.generation,
                error_type=error_type,
                reason=one_line(reason),
                abnormal=abnormal,
            )
        )

    def _report(self, exc: BaseException) -> None:
        """Tell the supervisor first (it logs the one line); the traceback only at DEBUG."""
        try:
            self.fail(type(exc).__name__, str(exc) or type(exc).__name__)
        except pykka.ActorDeadError:
            logger.warning("%s: supervisor gone, failure not reported: %s", self.stage_name, exc)
            return
        logger.debug("%s stage failure (reported)", self.stage_name, exc_info=exc)
        _reported.pending = True

    def observe_exchange(self, status: ExchangeStatus) -> ExchangeCondition:
        """Tell the supervisor what ``/exchange/status`` said (pauses are shown, not failed)."""
        condition = condition_from_status(status)
        self.parent.tell(
            ExchangeObserved(stage=self.stage_name, generation=self.generation, condition=condition)
        )
        return condition

    def wait_for_exchange(self, condition: ExchangeCondition, reason: str) -> None:
        """This stage's work cannot run while the exchange is paused: not a failure.

        The supervisor keeps this incarnation and tells it ``Connect`` again on resume.
        """
        self.parent.tell(
            StagePaused(
                stage=self.stage_name,
                generation=self.generation,
                reason=one_line(reason),
                condition=condition,
            )
        )

    def paused_exchange(self, exc: Exception) -> ExchangeCondition | None:
        """The whole-exchange pause that explains ``exc``, or None if it is a real failure.

        Why: a pause can begin between two requests of a stage's work; the request that meets
        it answers 503 (or another 5xx) like any server error. Before such a failure is
        reported (and spends restart intensity), ``/exchange/status`` is read once, bounded;
        only if it says the exchange is up, or cannot be read, does the failure count.
        A trading-only pause does not explain a 5xx: reads are still allowed then.
        """
        if not isinstance(exc, KalshiError) or exc.status is None or not 500 <= exc.status <= 599:
            return None
        timeout = min(self.context.request_timeout, PROBE_TIMEOUT)
        try:
            condition = read_condition(self.context.rest_url, timeout)
        except Exception as status_exc:
            logger.info(
                "%s stage: exchange status unreadable after %s: %s",
                self.stage_name,
                type(exc).__name__,
                one_line(str(status_exc)),
            )
            return None
        return condition if condition.exchange_paused else None

    # -- pykka hooks, all guarded ----------------------------------------------------------
    def on_start(self) -> None:
        try:
            if self.controls.start_faults.consume(self.stage_name):
                raise InjectedFaultError(f"injected crash_on_start in {self.stage_name} stage")
            self.open()
        except Exception as exc:
            self._report(exc)
            raise

    def on_receive(self, message: Any) -> Any:
        if not isinstance(message, Query):
            self._slowdown.delay(self.controls.release)
        try:
            return self._dispatch(message)
        except ExchangePausedError as exc:
            # The exchange refuses everything for now: a condition to wait out, not a failure.
            self.wait_for_exchange(condition_from_pause(exc), str(exc))
            return None
        except Exception as exc:
            condition = self.paused_exchange(exc)
            if condition is not None:
                self.wait_for_exchange(condition, f"{type(exc).__name__}: {exc}")
                return None
            self._report(exc)
            raise

    def on_stop(self) -> None:
        try:
            self.close()
        except Exception:
            logger.exception("%s stage: error while closing", self.stage_name)

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        try:
            self.close()
        except Exception:
            logger.exception("%s stage: error while closing after a failure", self.stage_name)

    # -- dispatch -----------------------------------------------------------------------------
    def _dispatch(self, message: Any) -> Any:
        if isinstance(message, Ping):
            return True
        if isinstance(message, StageOwner):
            return self.parent.actor_urn
        if isinstance(message, InjectFault):
            return self._inject(message)
        if isinstance(message, Describe):
            return self.describe()
        if isinstance(message, Connect):
            self.connect(message.generation)
            return None
        if isinstance(message, RetryNow):
            self.retry_now()
            return None
        return self.handle(message)

    def _inject(self, fault: InjectFault) -> str:
        return apply_actor_fault(
            fault,
            label=f"{self.stage_name} stage",
            key=self.stage_name,
            controls=self.controls,
            slowdown=self._slowdown,
            disconnect=self.disconnect,
            corrupt=lambda: self.parent.tell(self.bad_result()),
        )
