"""The stage base: a supervised child (``actors.child``) that does a connecting state's work.

What a stage adds to every child: ``describe`` (its state's entry metadata), ``connect``
(the state's work, then ``succeed``), ``retry_now`` after an exchange pause, and the pause
handling of its errors: a 5xx explained by a whole-exchange pause is waited out
(``StagePaused``), not reported as a failure. Subclasses implement ``open`` / ``describe`` /
``connect`` / ``close`` and never need to think about supervision.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar

import pykka

from actors.child import ChildActor, InjectedFaultError
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
from messages.commands import Connect, Describe, RetryNow, StageOwner
from messages.exchange import ExchangeCondition, ExchangeObserved, StagePaused
from messages.results import StageSucceeded
from messages.states import State
from messages.text import one_line

__all__ = ["InjectedFaultError", "StageActor", "StageControls", "StartFaults"]

logger = logging.getLogger("kalshi_supervisor.actors.base")


class StageActor(ChildActor):
    """Base of the stage actors; one incarnation per ``generation``."""

    stage_name: ClassVar[str]
    stage_state: ClassVar[State]
    child_kind = "stage"

    def __init__(
        self,
        parent: pykka.ActorRef[Any],
        context: StageContext,
        generation: int,
        controls: StageControls,
    ) -> None:
        super().__init__(parent, generation, controls)
        self.context = context

    @property
    def child_name(self) -> str:
        return self.stage_name

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

    # -- the child hooks ------------------------------------------------------------------
    def _open(self) -> None:
        self.open()

    def _close(self) -> None:
        self.close()

    def _disconnect_fault(self) -> None:
        self.disconnect()

    def _corrupt_fault(self) -> None:
        self.parent.tell(self.bad_result())

    def _handle_error(self, exc: Exception) -> None:
        """A pause explains the error: wait for the exchange (no failure); else report it."""
        if isinstance(exc, ExchangePausedError):
            # The exchange refuses everything for now: a condition to wait out, not a failure.
            self.wait_for_exchange(condition_from_pause(exc), str(exc))
            return None
        condition = self.paused_exchange(exc)
        if condition is not None:
            self.wait_for_exchange(condition, f"{type(exc).__name__}: {exc}")
            return None
        return super()._handle_error(exc)

    def _dispatch(self, message: Any) -> Any:
        handler = self._COMMANDS.get(type(message))
        if handler is None:
            return self.handle(message)
        return handler(self, message)

    _COMMANDS: ClassVar[dict[type, Callable[[StageActor, Any], Any]]] = {
        StageOwner: lambda self, _: self.parent.actor_urn,
        Describe: lambda self, _: self.describe(),
        Connect: lambda self, message: self.connect(message.generation),
        RetryNow: lambda self, _: self.retry_now(),
    }
