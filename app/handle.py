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
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import pykka

from actors.exchange_status import PROBE_TIMEOUT, read_condition
from actors.gateway_config import GATEWAY_SERVICE, ID_STATE_FILE, GatewayConfig
from actors.gateway_messages import Halt, ResumeTrading, TradingStatusQuery
from actors.markets import resolve_markets
from actors.registry import DEFAULT_STAGES, TRADING
from actors.service import ServiceSpec
from actors.stage_spec import StageSpec
from actors.trading_link import TradingLink
from app.console_state import (
    ConsoleEndpoint,
    new_token,
    publish_endpoint,
    withdraw_endpoint,
)
from app.event_log import CurrentState, EventRecorder
from core.event_bus import DEFAULT_CAPACITY, EventBus, EventListener
from core.ports import ExchangeFaultHook
from core.supervisor_actor import SupervisorActor
from kalshi_api.auth import KalshiSigner
from messages.commands import Shutdown
from messages.faults import InjectFault
from messages.orders import HaltReason, TradingState
from messages.states import State
from messages.text import one_line
from messages.trading_status import HaltReport, TradingStatus
from supervision.config import SupervisorConfig
from supervision.policy import RestartType
from supervision.scheduler import Scheduler
from trading.lookup import LookupPolicy

SHUTDOWN_TIMEOUT = 2.0
"""How long ``shutdown`` waits for the stops when no order of ours can be resting."""
HALT_TIMEOUT = 60.0
"""How long ``Supervisor.halt`` waits for the kill switch's verification by default."""


def _trading_link(
    config: SupervisorConfig,
    signer: KalshiSigner,
    state_file: Path | None,
    *,
    stage_hands_events: bool = True,
) -> TradingLink:
    """``stage_hands_events``: the trading stage runs and hands its private events on (so
    the gateway opens no channels of its own)."""
    settings = config.gateway
    state_dir = settings.state_dir or (state_file.parent if state_file is not None else None)
    gateway = GatewayConfig(
        rest_url=config.rest_url,
        ws_url=config.ws_url,
        signer=signer,
        request_timeout=config.request_timeout,
        id_prefix=settings.id_prefix,
        id_state=None if state_dir is None else state_dir / ID_STATE_FILE,
        trading_allowed=config.trading_allowed,
        dry_run=config.dry_run,
        global_limits=settings.risk_limits,
        service_limits=dict(settings.service_risk_limits),
        halt_on_not_ready=settings.halt_on_not_ready,
        halt_on_pause=settings.halt_on_pause,
        halt_on_daily_loss=settings.halt_on_daily_loss,
        halt_on_group_trigger=settings.halt_on_group_trigger,
        cancel_on_service_stop=settings.cancel_orders_on_service_stop,
        lookup=LookupPolicy(in_flight_ms=settings.lookup_in_flight_ms),
        order_group_limit=settings.order_group_limit,
        halt_timeout=settings.halt_timeout,
        own_private_channels=not stage_hands_events,
    )
    link = TradingLink(gateway)
    if not config.trading_allowed:  # production without --allow-production-trading
        link.state = TradingState.HALTED
        link.state_reason = "production without --allow-production-trading: reads only"
    return link


def _gateway_spec() -> ServiceSpec:
    from actors.order_gateway import OrderGatewayActor

    return ServiceSpec(GATEWAY_SERVICE, OrderGatewayActor, restart_type=RestartType.PERMANENT,
                       tickers=())


if TYPE_CHECKING:
    from app.console_server import ConsoleServer
    from app.stage_books import StageBooks

logger = logging.getLogger("kalshi_supervisor.app.handle")


def announce_trading_mode(config: SupervisorConfig) -> None:
    """One line at start when trading is not the plain kind: real money (a WARNING),
    production without ``--allow-production-trading`` (trading halted, reads only), or a
    dry run (orders validated and logged, never sent)."""
    if not config.trading_enabled:
        return
    if config.trading_mode == "live":
        if config.allow_production_trading:
            logger.warning(
                "PRODUCTION TRADING ENABLED (--allow-production-trading): orders trade real money"
            )
        else:
            logger.warning(
                "production without --allow-production-trading: trading HALTED, reads only"
            )
    if config.dry_run:
        logger.warning("dry run: orders are validated and logged, never sent")


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
        private_events: Callable[[object], None] | None = None,
        event_capacity: int = DEFAULT_CAPACITY,
    ) -> None:
        """``private_events`` also hears the trading stage's private events, besides the
        order gateway (on the private channels' thread; it must not block): a test's or a
        tool's tap."""
        self.config = config
        self._private_events = private_events
        self._event_capacity = event_capacity
        """Events the bus holds for slow listeners before it drops new ones (counted)."""
        self.exchange = exchange
        self.recorder = EventRecorder()
        self.current = CurrentState()
        """The supervisor's state as it publishes it (inline, never dropped): what ``state``,
        ``/ready`` and ``/status`` read. The recorder, behind the bus, may lag or miss events."""
        self.stopped = threading.Event()
        self._signer = signer
        self._stages = tuple(stages)
        self._trading: TradingLink | None = (
            _trading_link(
                config,
                signer,
                state_file,
                stage_hands_events=any(s.name == TRADING.name for s in self._stages),
            )
            if config.trading_enabled
            else None
        )
        """The order gateway's link (trading on): services trade through it."""
        self._private_events = private_events or (
            self._trading.private_event if self._trading is not None else None
        )
        """Who hears the trading stage's private events: the order gateway by default."""
        gateway = () if self._trading is None else (_gateway_spec(),)
        self._services = (*gateway, *services)
        """Services: started once READY (see ``actors.service``); the order gateway first,
        so it stops last, after every service that trades through it."""
        self._listeners = [self.recorder, *listeners]
        self._inline_listeners = [self.current, *inline_listeners]
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

        announce_trading_mode(self.config)
        self.events = EventBus(self._listeners, capacity=self._event_capacity)
        if self._trading is not None:
            self._trading.set_publish(self.events.publish)
        self._books = StageBooks(lambda: self.ref.actor_urn if self.ref is not None else None)
        self._console = ConsoleServer(
            self.recorder,
            self.config.status_host,
            self.config.status_port,
            token=self._token,
            inject=self.inject,
            books=self._books,
            trading_enabled=self.config.trading_enabled,
            trading=self if self._trading is not None else None,
            public_names=self.config.status_public_names,
            current=self.current,
            dropped_events=self.events_dropped,
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
                private_events=self._private_events,
                trading=self._trading,
            )
        except BaseException:
            self._console.stop()
            self.events.close()
            self.events = None
            if self._state_file is not None:  # published above: no control.json outlives us
                withdraw_endpoint(self._state_file, os.getpid())
            raise
        return self

    @property
    def state(self) -> State:
        return self.current.state

    def events_dropped(self) -> int:
        """Events the bus dropped since start (its listeners fell behind)."""
        events = self.events
        return events.dropped if events is not None else 0

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

    # -- trading -------------------------------------------------------------------------------
    def halt(self, reason: str = "manual", timeout: float = HALT_TIMEOUT) -> HaltReport:
        """The kill switch: trading HALTED, and none of our orders resting when this returns
        (the report says how long it took and what, if anything, still rests). Raises
        ``LookupError`` when trading is off or the gateway is not running, ``TimeoutError``
        when the halt did not finish in ``timeout`` seconds (it keeps going)."""
        link = self._link()
        reply: Future[HaltReport] = Future()
        why = HaltReason.MANUAL if reason == HaltReason.MANUAL.value else one_line(reason)
        if not link.tell_gateway(Halt(why, reply)):
            raise LookupError("the order gateway is not running")
        try:
            return reply.result(timeout)
        except FutureTimeout:
            raise TimeoutError(f"the halt did not finish within {timeout:g}s") from None

    def resume_trading(self, timeout: float = 5.0) -> TradingStatus:
        """Trading ACTIVE again (a person's decision; automatic halts never undo themselves)."""
        link = self._link()
        reply: Future[TradingStatus] = Future()
        if not link.tell_gateway(ResumeTrading(reply)):
            raise LookupError("the order gateway is not running")
        try:
            return reply.result(timeout)
        except FutureTimeout:
            raise TimeoutError(f"the gateway did not resume within {timeout:g}s") from None

    def trading_status(self, timeout: float = 5.0) -> TradingStatus:
        """The gateway's view: state, open orders, positions, P&L (exact decimals)."""
        try:
            return self._link().ask_gateway(TradingStatusQuery(), timeout)
        except pykka.Timeout:
            raise TimeoutError(f"the gateway did not answer within {timeout:g}s") from None

    @property
    def trading_link(self) -> TradingLink | None:
        return self._trading

    def _link(self) -> TradingLink:
        if self._trading is None:
            raise LookupError("trading is not enabled (--no-trading)")
        return self._trading

    def shutdown(self, reason: str = "requested", timeout: float | None = None) -> bool:
        """SHUTDOWN from any state: stop stages in reverse order, close every socket.

        Waits up to ``timeout`` seconds for the stops (default ``SHUTDOWN_TIMEOUT``, plus
        the order gateway's stop budget when trading is on: its stop halts and verifies that
        none of our orders rest before this returns and the process may exit)."""
        if timeout is None:
            timeout = SHUTDOWN_TIMEOUT + (self._gateway_stop_budget() if self._trading else 0.0)
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

    @staticmethod
    def _gateway_stop_budget() -> float:
        from actors.order_gateway import OrderGatewayActor

        return float(OrderGatewayActor.stop_timeout or 0.0)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()
