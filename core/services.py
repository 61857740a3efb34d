"""Supervising services: started once READY, told what happens, restarted, never fatal.

Decisions only: the actors are reached through the ``ChildHost`` port every child shares
(the pykka implementation is :mod:`core.children`), their incarnations, pings and stops are
kept by a ``core.child_table.ChildTable`` as the stages' are; timers come back through
``mailbox``, and events go out through ``publish``. Everything runs on the supervisor's
thread. What differs from a stage is data on the spec (``ServiceSpec.failure_leaves_ready``
is False) and this policy: a service's own restart tracker instead of the stage recovery.

The rules, and why:

* **Start after READY, in spec order; stop in reverse, before the stages.** A service
  reads what the stages provide (books, account), so it starts once they are all there
  and stops while they still are.
* **Told, not killed, when READY ends.** Leaving READY is the stages' business; a
  service hears ``SystemNotReady`` (and ``SystemReady`` again after recovery) and keeps
  its state: a recorder keeps its file, a strategy its positions.
* **Same policy, its own budget.** Each service has its own restart type, backoff and
  intensity window (the configured values), in a tracker of its own: a flapping service
  exhausts only its own budget. Exhausted (or temporary) -> the service is *dropped*
  with an event, and the system stays in whatever state it is in. A service failure
  never reaches the stage policy.
* **Every failure path ends here.** Reported failures (``ChildFailed``), invalid
  replies, silent deaths and hangs (liveness pings while READY) all become one
  ``_fail`` call, like the stages'.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from actors.service_spec import ServiceContext, ServiceSpec
from core.child_table import LINGER_RECHECK, ChildTable, restart_tracker
from core.ports import ChildHost
from core.timers import ConfirmDead, LivenessCheck
from kalshi_api.book_changes import BookChangeFeed
from messages.base import Message
from messages.events import Event, ExchangePaused, ExchangeResumed
from messages.faults import InjectFault
from messages.metadata import ReadyMetadata
from messages.results import ChildFailed
from messages.services import (
    EventNotice,
    ServiceDropped,
    ServiceFailureReported,
    ServiceHealth,
    ServiceRestarted,
    ServiceStarted,
    SystemNotReady,
    SystemReady,
)
from messages.states import State
from messages.text import one_line
from supervision.config import RestartSettings
from supervision.policy import RestartTracker, Strategy
from supervision.scheduler import Scheduler, TimerHandle

logger = logging.getLogger("kalshi_supervisor.core.services")

Mailbox = Callable[[object], None]
Publish = Callable[[Any], None]


# -- timer messages (the scheduler only ever tells the supervisor) ---------------------------
@dataclass(frozen=True)
class ServiceRestartDue:
    name: str
    token: int
    recheck: bool = False


@dataclass
class _Service:
    spec: ServiceSpec
    tracker: RestartTracker
    restart_token: int = 0
    restart_timer: TimerHandle | None = None
    starts: int = 0
    dropped: bool = False
    lingering: bool = False
    """A restart waits for the last incarnation to end (its stop, or its hang)."""
    hung_logged: bool = False


class ServiceSupervisor:
    """The services of one supervisor: lifecycle, fan-out, supervision."""

    def __init__(
        self,
        specs: Sequence[ServiceSpec],
        *,
        restart: RestartSettings,
        scheduler: Scheduler,
        mailbox: Mailbox,
        publish: Publish,
        host: ChildHost,
        feed: BookChangeFeed,
        liveness_timeout: float = 2.0,
        rng: random.Random | None = None,
        reserved: Iterable[str] = (),
        trading: Any = None,
    ) -> None:
        names = [s.name for s in specs]
        taken = {*reserved, "exchange"}
        clash = [n for n in names if n in taken]
        if clash or len(set(names)) != len(names):
            raise ValueError(f"service names must be unique and not stage names: {names}")
        self._scheduler = scheduler
        self._mailbox = mailbox
        self._publish = publish
        self._children = ChildTable(
            host, mailbox=mailbox, scheduler=scheduler, liveness_timeout=liveness_timeout
        )
        """The services' incarnations, reached through the host every child shares."""
        self._feed = feed
        self._trading = trading
        """The order gateway's link (``actors.trading_link.TradingLink``) when trading is on."""
        self._markets: tuple[str, ...] = ()
        rng = rng or random.Random()
        self._services: dict[str, _Service] = {
            spec.name: _Service(
                spec=spec,
                tracker=restart_tracker(
                    [spec], restart, strategy=Strategy.ONE_FOR_ONE, clock=scheduler.clock, rng=rng
                ),
            )
            for spec in specs
        }
        self._started = False
        self._ready: ReadyMetadata | None = None
        self._shared: dict[type, Message] = {}
        """The latest of each kind of message the stages share (``StageSpec.share``), told
        again to a service that starts later."""
        self._pauses: dict[int | None, ExchangePaused] = {}
        """Exchange pauses in force, told to a service that starts during one."""
        self._stopped = False

    # -- queries -----------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        """Every configured service not dropped, in spec order."""
        return tuple(n for n, s in self._services.items() if not s.dropped)

    def running(self) -> tuple[str, ...]:
        """Running services, in spec order."""
        running = set(self._children.names())
        return tuple(n for n in self._services if n in running)

    def generation(self, name: str) -> int | None:
        return self._children.generation(name)

    def knows(self, name: str) -> bool:
        return name in self._services

    def spec(self, name: str) -> ServiceSpec | None:
        service = self._services.get(name)
        return None if service is None else service.spec

    # -- what the supervisor tells us --------------------------------------------------------------
    def on_ready(self, metadata: ReadyMetadata, markets: tuple[str, ...] = ()) -> None:
        """READY (first time: start every service in spec order), then tell each one."""
        if self._stopped:
            return
        self._ready = metadata
        self._markets = markets or self._markets
        first = not self._started
        if first:
            self._started = True
            for name in list(self._services):
                self._start(name)
        message = SystemReady(metadata=metadata)
        for name in self.running():
            if first:
                self._tell_pauses(name)
            self._tell(name, message)
            if first:
                for shared in self._shared.values():
                    self._tell(name, shared)

    def on_not_ready(self, state: State, reason: str) -> None:
        """The system left READY: tell every running service; nobody is stopped."""
        if self._ready is None:
            return
        self._ready = None
        message = SystemNotReady(state=state, reason=one_line(reason))
        for name in self.running():
            self._tell(name, message)

    def share(self, message: Message) -> None:
        """What a stage shares with services (the sync's ``AccountChanged``); a service
        started later gets the latest of each kind after READY."""
        self._shared[type(message)] = message
        for name in self.running():
            self._tell(name, message)

    def on_event(self, event: Event) -> None:
        if isinstance(event, ExchangePaused):
            self._pauses[event.exchange_index] = event
        elif isinstance(event, ExchangeResumed):
            self._pauses.pop(event.exchange_index, None)
        if not self._started or self._stopped:
            return
        message = EventNotice(event=event)
        for name in self.running():
            self._tell(name, message)

    def handlers(self) -> dict[type, Callable[[Any], None]]:
        """The messages only services send or cause, for the core's dispatch table."""
        return {ServiceHealth: self._on_health, ServiceRestartDue: self._on_restart_due}

    def handle(self, message: object) -> bool:
        """Handle a service's message or one of our timers; False if it is neither."""
        handler = {
            ChildFailed: self.on_failed,
            ConfirmDead: self.on_confirm_dead,
            LivenessCheck: self.on_liveness_check,
            **self.handlers(),
        }.get(type(message))
        child = getattr(message, "child", None)
        if handler is None or (child is not None and not self.knows(child)):
            return False
        handler(message)
        return True

    def on_failed(self, message: ChildFailed) -> None:
        if self._children.is_current(message.child, message.generation):
            self._fail(message.child, message.error_type, message.reason, abnormal=message.abnormal)

    def on_confirm_dead(self, message: ConfirmDead) -> None:
        if self._children.is_current(message.child, message.generation):
            self._fail(message.child, "ActorDied", f"{message.child} service is not running")

    def on_liveness_check(self, check: LivenessCheck) -> None:
        failure = self._children.judge(check)
        if failure is None:
            return
        if failure[0] == "Unresponsive" and self._ready is None:
            return  # pings are judged only while READY
        self._fail(check.child, *failure)

    def _on_restart_due(self, message: ServiceRestartDue) -> None:
        service = self._services.get(message.name)
        if service is not None and message.token == service.restart_token:
            self._restart(message.name, recheck=message.recheck)

    def inject(self, fault: InjectFault) -> dict[str, Any] | None:
        """Route a fault to a service; None when ``fault.target`` is not a service."""
        service = self._services.get(fault.target)
        if service is None:
            return None
        if self._children.generation(fault.target) is None:
            state = "dropped" if service.dropped else "not running"
            return {"accepted": False, "error": f"{fault.target} service is {state}"}
        if not self._tell(fault.target, fault):
            return {"accepted": False, "error": f"{fault.target} service is not running"}
        return {"accepted": True, "target": fault.target, "fault": fault.fault.value}

    def probe_liveness(self) -> None:
        """While READY: a dead service is a failure; a ping unanswered in time is a hang."""
        for name in self.running():
            if not self._children.is_alive(name):
                self._fail(name, "ActorDied", f"{name} service actor is no longer running")
                continue
            self._children.ping(name)

    def stop_all(self) -> None:
        """Stop every service in reverse spec order (before the stages); final."""
        self._stopped = True
        for service in self._services.values():
            self._cancel_timers(service)
        self._children.stop(reversed(self.running()))

    # -- internals ------------------------------------------------------------------------------
    def _context(self, spec: ServiceSpec) -> ServiceContext:
        return ServiceContext(
            name=spec.name,
            options=spec.options,  # type: ignore[arg-type]
            feed=self._feed,
            scheduler=self._scheduler,
            markets=self._markets,
            tickers=spec.tickers,
            trading=self._trading,
        )

    def _start(self, name: str) -> bool:
        service = self._services[name]
        try:
            self._children.start(service.spec, self._context(service.spec))
        except Exception as exc:  # the constructor raised: a failed start (still current)
            self._fail(name, type(exc).__name__, str(exc))
            return False
        service.starts += 1
        service.tracker.on_started(name)
        if service.starts == 1:
            self._publish(ServiceStarted(service=name))
        return True

    def _restart(self, name: str, *, recheck: bool = False) -> None:
        service = self._services[name]
        service.restart_timer = None
        if self._stopped or service.dropped or self.generation(name) is not None:
            return
        if self._children.lingering(name):
            self._defer_restart(service, recheck=recheck)
            return
        service.lingering = service.hung_logged = False
        attempt = service.starts
        if not self._start(name):
            return
        self._publish(ServiceRestarted(service=name, attempt=attempt))
        if self._ready is not None:
            self._tell_pauses(name)
            self._tell(name, SystemReady(metadata=self._ready))
            for shared in self._shared.values():
                self._tell(name, shared)

    def _defer_restart(self, service: _Service, *, recheck: bool) -> None:
        """The last incarnation still runs: its stop is in progress (the restart goes on at
        its ``ChildStopped``), or it is hung in its own code and ignored its stop (restarting
        now would leak its thread, one per restart). Look again later; the restart waits."""
        name = service.spec.name
        service.lingering = True
        if recheck and not service.hung_logged:
            service.hung_logged = True
            logger.warning(
                "%s service: its restart waits for its hung incarnation to end", name
            )
        token = service.restart_token
        service.restart_timer = self._scheduler.call_later(
            LINGER_RECHECK,
            lambda: self._mailbox(ServiceRestartDue(name, token, recheck=True)),
            name="service-restart",
        )

    def on_child_stopped(self, name: str) -> None:
        """A stop finished: a restart waiting for that service looks again."""
        service = self._services.get(name)
        if service is not None and service.lingering:
            self._restart(name)

    def _tell_pauses(self, name: str) -> None:
        """A service that just started learns the pauses in force before ``on_ready`` runs."""
        for pause in self._pauses.values():
            self._tell(name, EventNotice(event=pause))

    def _fail(self, name: str, error_type: str, reason: str, *, abnormal: bool = True) -> None:
        service = self._services[name]
        if self.generation(name) is None:
            return
        reason = one_line(reason)
        logger.warning("%s service failed: %s: %s", name, error_type, reason)
        self._children.stop([name])
        decision = service.tracker.on_failure(name, abnormal=abnormal)
        if decision.restart:
            delay_ms = round(decision.delay * 1000)
            self._publish(
                ServiceFailureReported(
                    service=name, error_type=error_type, reason=reason, next_restart_in_ms=delay_ms
                )
            )
            service.restart_token += 1
            token = service.restart_token
            service.restart_timer = self._scheduler.call_later(
                decision.delay,
                lambda: self._mailbox(ServiceRestartDue(name, token)),
                name="service-restart",
            )
            return
        self._publish(
            ServiceFailureReported(
                service=name, error_type=error_type, reason=reason, next_restart_in_ms=None
            )
        )
        why = (
            f"restart intensity exhausted: {decision.reason}"
            if decision.give_up
            else decision.reason
        )
        service.dropped = True
        self._cancel_timers(service)
        self._publish(ServiceDropped(service=name, reason=one_line(f"{why} (last: {reason})")))

    def _tell(self, name: str, message: object) -> bool:
        return self._children.tell(name, message)

    def _on_health(self, health: ServiceHealth) -> None:
        """Services only send health when asked; an unsolicited or invalid one is garbage."""
        name = getattr(health, "service", None)
        generation = getattr(health, "generation", None)
        if not isinstance(name, str) or not isinstance(generation, int):
            return
        if not self._children.is_current(name, generation):
            return
        try:
            ServiceHealth.model_validate(health.model_dump())
        except (TypeError, ValueError) as exc:
            self._fail(name, "BadMetadata", f"invalid report from {name}: {one_line(str(exc))}")

    def _cancel_timers(self, service: _Service) -> None:
        if service.restart_timer is not None:
            service.restart_timer.cancel()
            service.restart_timer = None
        service.restart_token += 1
