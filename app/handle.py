"""The in-process handle (``Supervisor``): one object to start, wait on, break and stop.

The handle starts the console server (page, event feed, status, inject) and the supervisor
actor, and gives code, tests and the CLI one object to wait on, inject faults through and
shut down. It does not
start the embedded exchange (``app.bootstrap`` does, the only module allowed to): it is
handed one, as a ``core.ports.ExchangeFaultHook``, when faults should reach it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import pykka

from actors.exchange_status import PROBE_TIMEOUT, read_condition
from actors.markets import resolve_markets
from actors.registry import DEFAULT_STAGES
from actors.service import ServiceSpec
from actors.stage_spec import StageSpec
from app.console_state import (
    ConsoleEndpoint,
    new_token,
    publish_endpoint,
    withdraw_endpoint,
)
from app.event_log import EventRecorder
from core.event_bus import EventBus, EventListener
from core.ports import ExchangeFaultHook
from core.supervisor_actor import SupervisorActor
from kalshi_api.auth import KalshiSigner
from messages.commands import Shutdown
from messages.faults import InjectFault
from messages.states import State
from supervision.config import SupervisorConfig
from supervision.scheduler import Scheduler

if TYPE_CHECKING:
    from app.console_server import ConsoleServer
    from app.stage_books import StageBooks

logger = logging.getLogger("kalshi_supervisor.app.handle")


class Supervisor:
    """A running supervisor: start it, wait on its states, inject faults, shut it down."""

    def __init__(
        self,
        config: SupervisorConfig,
        signer: KalshiSigner,
        *,
        stages: Sequence[StageSpec] = DEFAULT_STAGES,
        listeners: Iterable[EventListener] = (),
        inline_listeners: Iterable[EventListener] = (),
        scheduler: Scheduler | None = None,
        rng: random.Random | None = None,
        exchange: ExchangeFaultHook | None = None,
        state_file: Path | None = None,
        services: Sequence[ServiceSpec] = (),
    ) -> None:
        self.config = config
        self.exchange = exchange
        self.recorder = EventRecorder()
        self.stopped = threading.Event()
        self._signer = signer
        self._stages = tuple(stages)
        self._services = tuple(services)
        """Services: started once READY (see ``actors.service``)."""
        self._listeners = [self.recorder, *listeners]
        self._inline_listeners = list(inline_listeners)
        self.events: EventBus | None = None
        """Listeners run on the bus's thread, never the supervisor's; closed by ``shutdown``."""
        self._scheduler = scheduler
        self._rng = rng
        self._state_file = state_file
        self._token = new_token()
        self._console: ConsoleServer | None = None
        self._books: StageBooks | None = None
        self.ref: pykka.ActorRef[SupervisorActor] | None = None

    def start(self) -> Self:
        from app.console_server import ConsoleServer  # uvicorn and Starlette: only when serving
        from app.stage_books import StageBooks

        self.events = EventBus(self._listeners)
        self._books = StageBooks(lambda: self.ref.actor_urn if self.ref is not None else None)
        self._console = ConsoleServer(
            self.recorder,
            self.config.status_host,
            self.config.status_port,
            token=self._token,
            inject=self.inject,
            books=self._books,
            trading_enabled=self.config.trading_enabled,
            trading=self,
        )
        self._console.start()
        try:
            if self._state_file is not None:
                publish_endpoint(
                    self._state_file,
                    ConsoleEndpoint(url=self._console.url, token=self._token, pid=os.getpid()),
                )
            config, signer = self.config, self._signer
            self.ref = SupervisorActor.start(
                self.config,
                self._signer,
                status_address=self._console.address,
                stages=self._stages,
                resolve_markets=lambda: resolve_markets(config, signer),
                probe_exchange=lambda: read_condition(
                    config.rest_url, min(config.request_timeout, PROBE_TIMEOUT)
                ),
                events=self.events,
                inline_listeners=self._inline_listeners,
                scheduler=self._scheduler,
                rng=self._rng,
                exchange=self.exchange,
                stopped=self.stopped,
                services=self._services,
            )
        except BaseException:
            self._console.stop()
            self.events.close()
            self.events = None
            raise
        return self

    @property
    def state(self) -> State:
        return self.recorder.state

    @property
    def control_token(self) -> str:
        return self._token

    @property
    def control_url(self) -> str:
        return self._console.url if self._console else ""

    @property
    def console(self) -> ConsoleServer | None:
        """The console server (page, event feed, /metrics), while running."""
        return self._console

    def wait_for_state(self, state: State, timeout: float = 10.0, *, after: int = 0) -> bool:
        """Whether ``state`` is entered by an event with id > ``after`` (``recorder.last_id``)."""
        return self.recorder.wait_for_state(state, timeout, after=after) is not None

    def inject(self, fault: InjectFault) -> dict[str, Any]:
        """Deliver a fault through the supervisor (which publishes it and routes it)."""
        if self.ref is None or not self.ref.is_alive():
            return {"accepted": False, "error": "supervisor is not running"}
        try:
            reply = self.ref.ask(fault, timeout=5.0)
            if self.events is not None:
                self.events.flush(5.0)  # the FaultInjected event is recorded when this returns
            return reply
        except pykka.Timeout:
            return {"accepted": False, "error": "supervisor did not answer within 5s"}
        except pykka.ActorDeadError:
            return {"accepted": False, "error": "supervisor is not running"}

    def book_digests(self, timeout: float = 5.0) -> dict[str, str]:
        """Every live book's digest, comparable with ``exchange.markets.digest(ticker)``."""
        from app.stage_books import StageBooks
        from messages.commands import BookDigests

        books = self._books or StageBooks(lambda: self.ref.actor_urn if self.ref else None)
        stage = books.stage()  # this supervisor's stage; NoOrderbookStage is a LookupError
        return stage.ask(BookDigests(timeout=timeout), timeout=timeout + 1.0)

    def shutdown(self, reason: str = "requested", timeout: float = 2.0) -> bool:
        """SHUTDOWN from any state: stop stages in reverse order, close every socket."""
        if self.ref is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                self.ref.tell(Shutdown(reason=reason))
            self.stopped.wait(timeout)
            with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                self.ref.stop(block=True, timeout=timeout)
        if self.events is not None:
            self.events.close()
        if self._console is not None:
            self._console.stop()
        if self._state_file is not None:
            withdraw_endpoint(self._state_file, os.getpid())
        return self.stopped.is_set()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()
