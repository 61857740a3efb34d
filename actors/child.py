"""What every supervised actor shares, stage or service: failure reports, faults, liveness.

pykka has three silent failure paths (``on_start`` raising, a handler raising under
``ask``, tells dropped with a crashed actor). Every child therefore reports each failure to
the supervisor itself, as one immutable ``ChildFailed``, before pykka does whatever pykka
does; answers ``Ping`` at once; and carries out injected actor faults the same way. The
stage base (``actors.base.StageActor``) and the service base (``actors.service.ServiceActor``)
add only what their kind does; anything supervised next (an order gateway, a private
channel) derives from this and is supervised by the same code.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import pykka

from actors.controls import StageControls
from messages.commands import Ping, Query
from messages.faults import ActorFault, InjectFault
from messages.results import ChildFailed
from messages.text import one_line

__all__ = ["ChildActor", "InjectedFaultError", "Slowdown", "apply_actor_fault"]

logger = logging.getLogger("kalshi_supervisor.actors.child")

DEFAULT_HANG_SECONDS = 3600.0
DEFAULT_SLOW_SECONDS = 2.0

_reported = threading.local()
"""Per actor thread: the failure pykka is about to log was already reported by us."""


class _ReportedFailureFilter(logging.Filter):
    """Drop pykka's traceback for a failure a child already reported to the supervisor.

    Why: pykka logs every handler error with a full traceback ("Unhandled exception in ...",
    or "Exception returned from ... to caller" under ``ask``); the supervisor logs the same
    failure as one line. Scoped by thread: only the child thread that reported the
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


class ChildActor(pykka.ThreadingActor):
    """Base of every supervised actor; one incarnation per ``generation``.

    A subclass says what kind it is (``child_kind``, for one-line messages), what its own
    messages are (``handlers``, a dispatch table merged along the class hierarchy), and
    fills the hooks ``_open`` / ``_close`` / ``_disconnect_fault`` / ``_corrupt_fault``.
    """

    child_kind: ClassVar[str] = "child"
    use_daemon_thread = True
    stop_timeout: ClassVar[float | None] = None
    """How long the supervisor waits for this actor's stop; None: its default
    (``core.children.STOP_TIMEOUT``). The order gateway's is its halt budget: its stop
    verifies that none of our orders rest, and must not be abandoned half way."""

    def __init__(
        self,
        parent: pykka.ActorRef[Any],
        generation: int,
        controls: StageControls,
    ) -> None:
        super().__init__()
        self.parent = parent
        self.generation = generation
        self.controls = controls
        self._slowdown = Slowdown()

    # -- what a kind fills in ------------------------------------------------------------
    @property
    def child_name(self) -> str:
        """The fault target and restart unit (a stage's ``stage_name``, a service's name)."""
        raise NotImplementedError

    def _open(self) -> None:
        """Acquire the kind's resources in ``on_start``; raising is a failed start."""

    def _close(self) -> None:
        """Release everything (``on_stop``, ``on_failure``, a failed start); must not raise."""

    def _close_after_failed_start(self) -> None:
        """pykka calls neither ``on_stop`` nor ``on_failure`` when ``on_start`` raises."""

    def _handle_error(self, exc: Exception) -> None:
        """A handler raised: report it (a kind may first decide it is no failure, and
        return normally to swallow it)."""
        self._report(exc)
        raise exc

    def _disconnect_fault(self) -> None:
        """What the ``disconnect`` fault drops."""

    def _corrupt_fault(self) -> None:
        """What the ``bad_metadata`` fault sends the supervisor (an invalid reply)."""

    def _dispatch(self, message: Any) -> Any:
        """The kind's own messages (after ``Ping`` and ``InjectFault``)."""
        kind = f"{self.child_name} {self.child_kind}"
        raise TypeError(f"{kind} cannot handle {type(message).__name__}")

    # -- replies to the supervisor ---------------------------------------------------------
    def fail(self, error_type: str, reason: str, *, abnormal: bool = True) -> None:
        """Tell the supervisor this incarnation failed (it logs the one line)."""
        self.parent.tell(
            ChildFailed(
                child=self.child_name,
                generation=self.generation,
                error_type=error_type,
                reason=one_line(reason),
                abnormal=abnormal,
            )
        )

    def _report(self, exc: BaseException) -> None:
        """Tell the supervisor first; the traceback only at DEBUG (pykka's is dropped)."""
        label = f"{self.child_name} {self.child_kind}"
        try:
            self.fail(type(exc).__name__, str(exc) or type(exc).__name__)
        except pykka.ActorDeadError:
            logger.warning("%s: supervisor gone, failure not reported: %s", label, exc)
            return
        logger.debug("%s failure (reported)", label, exc_info=exc)
        _reported.pending = True

    # -- pykka hooks, all guarded ------------------------------------------------------------
    def on_start(self) -> None:
        try:
            if self.controls.start_faults.consume(self.child_name):
                raise InjectedFaultError(
                    f"injected crash_on_start in {self.child_name} {self.child_kind}"
                )
            self._open()
        except Exception as exc:
            self._report(exc)
            self._close_after_failed_start()
            raise

    def on_receive(self, message: Any) -> Any:
        if not isinstance(message, Query):  # read-only questions never consume a slow fault
            self._slowdown.delay(self.controls.release)
        try:
            if isinstance(message, Ping):
                return True
            if isinstance(message, InjectFault):
                return self._inject(message)
            return self._dispatch(message)
        except Exception as exc:
            return self._handle_error(exc)

    def on_stop(self) -> None:
        self._close_guarded("while closing")

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        self._close_guarded("while closing after a failure")

    def _close_guarded(self, when: str) -> None:
        try:
            self._close()
        except Exception:
            logger.exception("%s %s: error %s", self.child_name, self.child_kind, when)

    def _inject(self, fault: InjectFault) -> str:
        return apply_actor_fault(
            fault,
            label=f"{self.child_name} {self.child_kind}",
            key=self.child_name,
            controls=self.controls,
            slowdown=self._slowdown,
            disconnect=self._disconnect_fault,
            corrupt=self._corrupt_fault,
        )
