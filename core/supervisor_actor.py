"""The supervisor actor: a thin pykka shell around ``SupervisorCore``.

The shell gives the core its thread (pykka's mailbox), its ports (stage actors via
``PykkaChildren``, a daemon thread for market discovery, an ``EventBus`` for events),
and turns the core's SHUTDOWN into stopping the actor. All decisions are the core's. What
reads the exchange (market discovery, the status probe) is handed in by the caller
(``app.handle``): the core and its shell import no stage and no protocol reader.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pykka

from actors.service_spec import ServiceSpec
from actors.stage_spec import StageSpec
from core.children import BackgroundWork, PykkaChildren
from core.event_bus import EventBus, EventListener
from core.ports import ExchangeFaultHook, ExchangeProbe, MarketList
from core.supervisor_core import SupervisorCore
from core.timers import Begin, ChildStopped
from kalshi_api.auth import KalshiSigner
from messages.events import SupervisorEvent
from messages.states import State
from messages.text import one_line
from supervision.config import SupervisorConfig
from supervision.scheduler import Scheduler, ThreadScheduler

__all__ = ["EventListener", "SupervisorActor"]

logger = logging.getLogger("kalshi_supervisor.core.supervisor_actor")

FLUSH_TIMEOUT = 2.0
JOIN_TIMEOUT = 2.0
"""Bound on waiting, at shutdown, for the children's stops; a child with a longer budget of
its own (``stop_timeout``: the order gateway, halting) adds it (``core.children.Stopper``)."""
BACKGROUND_JOIN_TIMEOUT = 0.25
"""Bound on waiting, at shutdown, for background work (a market discovery or a status read
in flight). Short: each is bounded by its own request timeout and only tells the (stopped)
supervisor its answer, and a Ctrl-C during INITIALIZING must still exit at once."""


class SupervisorActor(pykka.ThreadingActor):
    """Owns the core; pykka only delivers its messages.

    ``inline_listeners`` run on the supervisor's own thread, before the event is queued:
    only for code that must act at an exact point (a test injecting a fault the moment a
    state is entered, before its stage is told to connect). They must return at once.
    """

    use_daemon_thread = True
    """Shutdown is explicit and bounded; a stuck stage must never keep the process alive."""

    def __init__(
        self,
        config: SupervisorConfig,
        signer: KalshiSigner,
        *,
        status_address: str,
        stages: Sequence[StageSpec],
        resolve_markets: Callable[[], MarketList],
        probe_exchange: ExchangeProbe | None = None,
        listeners: Iterable[EventListener] = (),
        events: EventBus | None = None,
        inline_listeners: Iterable[EventListener] = (),
        scheduler: Scheduler | None = None,
        rng: random.Random | None = None,
        exchange: ExchangeFaultHook | None = None,
        stopped: threading.Event | None = None,
        services: Sequence[ServiceSpec] = (),
        private_events: Callable[[object], None] | None = None,
        trading: Any = None,
    ) -> None:
        super().__init__()
        self._owns_scheduler = scheduler is None
        self._scheduler: Scheduler = scheduler or ThreadScheduler()
        self._owns_events = events is None
        self._events = events or EventBus(listeners)
        self._inline = list(inline_listeners)
        self._stopped = stopped or threading.Event()
        self._children = PykkaChildren(
            self.actor_ref, on_stopped=lambda name: self._tell_self(ChildStopped(name))
        )
        self._background = BackgroundWork()
        self._released = False
        try:
            self._core = SupervisorCore(
                config,
                signer,
                status_address=status_address,
                stages=stages,
                children=self._children,
                scheduler=self._scheduler,
                mailbox=self._tell_self,
                publish=self._publish,
                resolve_markets=resolve_markets,
                background=self._background,
                on_shutdown=self._after_shutdown,
                exchange=exchange,
                probe_exchange=probe_exchange,
                rng=rng,
                services=services,
                private_events=private_events,
                trading=trading,
            )
        except BaseException:
            self._release()
            raise

    def on_start(self) -> None:
        self.actor_ref.tell(Begin())

    def on_receive(self, message: Any) -> Any:
        try:
            return self._core.handle(message)
        except Exception as exc:
            # The supervisor itself must never die silently: log and shut down cleanly.
            logger.exception("supervisor failed handling %s", type(message).__name__)
            if self._core.state is not State.SHUTDOWN:
                self._core.shutdown(f"supervisor error: {one_line(str(exc))}")
            return None

    def on_stop(self) -> None:
        if self._core.state is not State.SHUTDOWN:
            self._core.shutdown("supervisor stopped")
        self._release()

    def _after_shutdown(self) -> None:
        """SHUTDOWN is announced: stop timers, deliver the events, then say we stopped."""
        self._release()
        self.stop()

    def _release(self) -> None:
        """Once: stop the timers, wait (bounded) for every child's stop and background
        thread, deliver the events, then say we stopped. No thread of ours outlives this."""
        if self._released:
            return
        self._released = True
        if not self._children.close(JOIN_TIMEOUT):
            logger.warning("a child did not stop within its budget; abandoned")
        if not self._background.join(BACKGROUND_JOIN_TIMEOUT):
            logger.info(
                "background work still running after %.2fs; it ends with its request timeout",
                BACKGROUND_JOIN_TIMEOUT,
            )
        if self._owns_scheduler:
            self._scheduler.stop()
        if self._owns_events:
            self._events.close(FLUSH_TIMEOUT)
        else:
            self._events.flush(FLUSH_TIMEOUT)
        self._stopped.set()

    def _publish(self, event: SupervisorEvent) -> None:
        """Inline listeners first, on this thread (they must be quick); then the bus."""
        for listener in self._inline:
            try:
                listener(event)
            except Exception as exc:
                logger.warning(
                    "inline listener %r failed: %s: %s", listener, type(exc).__name__, exc
                )
        self._events.publish(event)

    def _tell_self(self, message: object) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(message)
