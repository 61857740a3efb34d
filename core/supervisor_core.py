"""The supervisor's decision core: plain Python, no pykka, no sockets, no threads of its own.

It owns the state machine and decides what happens next; the per-state work lives in
``connecting`` (INITIALIZING and the stage walk), ``ready`` (READY and its timers),
``recovery`` (failures, ERROR, restart) and ``shutdown``. It reaches stage actors only
through ``Children`` and gets its own timers back through ``mailbox``; the pykka shell
(``core.supervisor_actor``) supplies both, tests supply plain objects and a manual
scheduler. It never merges metadata: each transition carries the one message built for it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from actors.context import StageContext
from actors.service_spec import ServiceSpec
from actors.stage_spec import StageSpec, enabled_stages, validate_pipeline
from core.child_table import ChildTable
from core.connecting import StageWalk
from core.deadlines import StageDeadline
from core.pauses import ROUTINE, PauseWatch
from core.ports import (
    Background,
    ChildGoneError,
    ChildHost,
    ChildUnresponsiveError,
    ExchangeFaultHook,
    ExchangeProbe,
    Mailbox,
    MarketList,
)
from core.ready import ReadyWatch
from core.recovery import Recovery
from core.services import ServiceSupervisor
from core.shutdown import shut_down
from core.stage_hold import StageHold
from core.timers import (
    Begin,
    ChildStopped,
    ConfirmDead,
    DeadlineExpired,
    ExchangeCheckDue,
    ExchangeChecked,
    HealExpired,
    HoldRetryDue,
    LivenessCheck,
    LivenessDue,
    MarketsResolved,
    PeriodicDue,
    RestartDue,
)
from kalshi_api.auth import KalshiSigner
from kalshi_api.book_changes import BookChangeFeed
from messages.base import Message
from messages.commands import Ping, Shutdown
from messages.events import FaultInjected, SupervisorEvent
from messages.exchange import ExchangeObserved, StagePaused, StageThrottled
from messages.fault_kinds import PAUSE_SWITCHES
from messages.faults import FaultTarget, InjectFault
from messages.metadata import StateMetadata
from messages.results import ChildFailed, StageSucceeded, StreamIncident
from messages.states import State
from messages.text import one_line
from supervision.config import SupervisorConfig
from supervision.scheduler import Scheduler
from supervision.state_machine import StateMachine

logger = logging.getLogger("kalshi_supervisor.core.supervisor_core")

ASK_TIMEOUT = 2.0

Publish = Callable[[SupervisorEvent], None]


def _fan_out(
    *listeners: Callable[[object], None] | None,
) -> Callable[[object], None] | None:
    """One callable that hands each event to every given listener (None if there is none)."""
    chosen = [listener for listener in listeners if listener is not None]
    if len(chosen) <= 1:
        return chosen[0] if chosen else None

    def every(event: object) -> None:
        for listener in chosen:
            listener(event)

    return every


class SupervisorCore:
    """Decides; the ports do. Every handler runs on one thread (the shell's actor thread)."""

    def __init__(
        self,
        config: SupervisorConfig,
        signer: KalshiSigner,
        *,
        status_address: str,
        stages: Sequence[StageSpec],
        children: ChildHost,
        scheduler: Scheduler,
        mailbox: Mailbox,
        publish: Publish,
        resolve_markets: Callable[[], MarketList],
        background: Background,
        on_shutdown: Callable[[], None],
        exchange: ExchangeFaultHook | None = None,
        probe_exchange: ExchangeProbe | None = None,
        rng: random.Random | None = None,
        services: Sequence[ServiceSpec] = (),
        trading: Any = None,
        private_events: Callable[[object], None] | None = None,
    ) -> None:
        self.config = config
        self._trading = trading
        """The order gateway's link (``actors.trading_link.TradingLink``), or None: services
        get it in their context, the trading stage hands private events to it."""
        self._private_events = _fan_out(
            trading.private_event if trading is not None else None, private_events
        )
        """What the stages' context gets as ``private_events``: the gateway's link, plus
        any extra listener the app was given (a test, a tool)."""
        self.status_address = status_address
        self.all_specs: tuple[StageSpec, ...] = tuple(stages)
        self.specs = enabled_stages(stages, trading_enabled=config.trading_enabled)
        validate_pipeline(self.specs)
        self.children = ChildTable(
            children,
            mailbox=mailbox,
            scheduler=scheduler,
            liveness_timeout=config.liveness_timeout,
        )
        """The stages' incarnations; the services' are in ``services`` (same table type,
        same host port)."""
        self.scheduler = scheduler
        self.mailbox = mailbox
        self._publish_out = publish
        self.resolve_markets = resolve_markets
        self.background = background
        self.on_shutdown = on_shutdown
        self._signer = signer
        self._exchange = exchange
        self.probe_exchange = probe_exchange
        self._machine = StateMachine(monotonic=scheduler.clock.monotonic)
        self.epoch = 0
        """Counts transitions; a timer stamped with an older epoch is stale."""
        self.results: dict[str, Message] = {}
        """Each stage's last result (what READY is assembled from)."""
        self.deadline = StageDeadline(scheduler, mailbox)
        self.walk = StageWalk(self)
        self.ready = ReadyWatch(self)
        self.recovery = Recovery(self, rng)
        self.pauses = PauseWatch(self)
        self.hold = StageHold(self)
        self.book_changes = BookChangeFeed()
        """Outlives stage restarts: each orderbook stream attaches its books and marks it."""
        self.services = ServiceSupervisor(
            services,
            restart=config.restart,
            scheduler=scheduler,
            mailbox=mailbox,
            publish=self.publish,
            host=children,
            feed=self.book_changes,
            liveness_timeout=config.liveness_timeout,
            rng=rng,
            reserved=[s.name for s in self.all_specs],
            trading=trading,
        )
        self._handlers: dict[type, Callable[[Any], Any]] = {
            # what children say
            StageSucceeded: self._on_succeeded,
            ChildFailed: self._on_child_failed,
            StagePaused: self._on_stage_paused,
            StageThrottled: self._on_stage_throttled,
            ExchangeObserved: lambda message: self.pauses.observe(message.condition),
            StreamIncident: self._on_incident,
            # requests
            InjectFault: self._inject,
            Shutdown: lambda message: self.shutdown(message.reason),
            Ping: lambda message: True,
            # the core's own timers and background work
            Begin: lambda message: self.walk.begin(),
            DeadlineExpired: self._on_deadline,
            RestartDue: self.recovery.on_restart_due,
            PeriodicDue: self.ready.on_periodic_due,
            LivenessDue: lambda message: self.ready.probe_liveness(),
            LivenessCheck: self._on_liveness_check,
            MarketsResolved: self.walk.on_markets_resolved,
            ConfirmDead: self._on_confirm_dead,
            ChildStopped: self._on_child_stopped,
            HealExpired: self.ready.on_heal_expired,
            ExchangeCheckDue: self.pauses.on_check_due,
            ExchangeChecked: self.pauses.on_checked,
            HoldRetryDue: self.hold.on_due,
            **self.services.handlers(),
        }
        """One handler per message type: the core's whole vocabulary, in one place."""

    @property
    def state(self) -> State:
        return self._machine.state

    def publish(self, event: SupervisorEvent) -> None:
        """Out through the shell's port, and to every running service (``on_event``)."""
        self._publish_out(event)
        self.services.on_event(event)

    # -- the one entry point --------------------------------------------------------------
    def handle(self, message: object) -> Any:
        """Route one message; after SHUTDOWN only pings are answered (the shell is stopping)."""
        if self.state is State.SHUTDOWN:
            return True if isinstance(message, Ping) else None
        handler = self._handlers.get(type(message))
        if handler is None:
            logger.warning("supervisor ignored unknown message %s", type(message).__name__)
            return None
        return handler(message)

    # -- what children say --------------------------------------------------------------------
    def _leaves_ready(self, child: str) -> bool:
        """The supervision data on the child's spec: whether its failure leaves READY (a
        stage: ERROR and the stage recovery) or not (a service: its own tracker)."""
        spec = self.services.spec(child) or self.spec(child)
        return spec is None or spec.failure_leaves_ready

    def _on_child_failed(self, message: ChildFailed) -> None:
        """Any child's failure, one message whatever its kind; its spec says where it goes."""
        if not self._leaves_ready(message.child):
            self.services.on_failed(message)
        elif self.is_current(message.child, message.generation):
            self.fail(message.child, message.error_type, message.reason, abnormal=message.abnormal)

    def _on_confirm_dead(self, message: ConfirmDead) -> None:
        if not self._leaves_ready(message.child):
            self.services.on_confirm_dead(message)
        elif self.is_current(message.child, message.generation):
            self.fail(message.child, "ActorDied", f"{message.child} stage is not running")

    def _on_child_stopped(self, message: ChildStopped) -> None:
        """A stop finished: a restart waiting for that child looks again."""
        if self._leaves_ready(message.child):
            self.recovery.on_child_stopped(message.child)
        else:
            self.services.on_child_stopped(message.child)

    def _on_liveness_check(self, check: LivenessCheck) -> None:
        if not self._leaves_ready(check.child):
            self.services.on_liveness_check(check)
        else:
            self.ready.check_liveness(check)

    def _on_stage_paused(self, message: StagePaused) -> None:
        if self.is_current(message.stage, message.generation):
            self.pauses.on_stage_paused(message)

    def _on_stage_throttled(self, message: StageThrottled) -> None:
        if self.is_current(message.stage, message.generation):
            self.walk.on_throttled(message)

    def _on_incident(self, message: StreamIncident) -> None:
        if self.is_current(message.stage, message.generation):
            self.ready.on_incident(message)

    # -- results ----------------------------------------------------------------------------
    def _on_succeeded(self, message: StageSucceeded) -> None:
        """A stage's result: checked against its spec, kept, announced, then the walk moves.

        In READY (periodic work) or ERROR (a late reply) the result is kept but moves nothing.
        """
        if not self.is_current(message.stage, message.generation):
            return
        self.ready.work_done(message.stage)
        self.hold.release(message.stage)
        spec = self.spec(message.stage)
        result = self._validated_result(message, spec)
        if result is None or spec is None:
            return
        self.results[spec.name] = result
        if spec.share is not None:
            shared = spec.share(result)
            if shared is not None:
                self.services.share(shared)
        if spec.announce is not None:
            event = spec.announce(result)
            if event is not None:
                self.publish(event)  # type: ignore[arg-type]
        if self.state is State.READY or self.state is State.ERROR:
            return
        self.walk.on_succeeded(message, result)

    def _validated_result(self, message: StageSucceeded, spec: StageSpec | None) -> Message | None:
        """A result of the wrong class, or one that fails re-validation, is BadMetadata."""
        expected = spec.result_type if spec is not None else None
        result = message.result
        try:
            if not isinstance(result, Message) or (expected and type(result) is not expected):
                raise TypeError(f"expected {expected.__name__ if expected else 'a message'}")
            type(result).model_validate(result.model_dump())
        except (TypeError, ValueError) as exc:
            self.fail(message.stage, "BadMetadata", f"invalid result from {message.stage}: {exc}")
            return None
        return result

    def _on_deadline(self, expired: DeadlineExpired) -> None:
        """The stage the deadline was armed for did not finish: that stage failed.

        Unless the whole exchange is paused: then the deadline is held and re-armed in full
        on the resume (a stream refused by a paused exchange cannot connect in any bound).
        """
        if not self.deadline.is_current(expired) or self.state is not expired.state:
            return
        serial = self.deadline.serial

        def applies() -> bool:
            return self.deadline.serial == serial and self.state is expired.state

        def fire() -> None:
            if applies():
                self.fail(
                    expired.stage,
                    "DeadlineExceeded",
                    f"{expired.state.name} did not complete within {expired.seconds:g}s "
                    f"({expired.stage} stage)",
                )

        def rearm() -> None:
            if applies():
                self.deadline.arm(expired.stage, expired.state, expired.seconds)

        if not self.pauses.defer_expiry(f"{expired.stage} deadline", fire, rearm):
            fire()

    # -- faults -----------------------------------------------------------------------------
    def _inject(self, fault: InjectFault) -> dict[str, Any]:
        """Publish, then route: to the exchange hook or to the stage named as target."""
        self.publish(FaultInjected(fault=fault))
        if fault.target == FaultTarget.EXCHANGE:
            return self._inject_exchange(fault)
        routed = self.services.inject(fault)
        if routed is not None:
            return routed
        if self.current_generation(fault.target) is None:
            return {"accepted": False, "error": f"no running {fault.target} stage"}
        if not self.tell_child(fault.target, fault):
            return {"accepted": False, "error": f"{fault.target} stage is not running"}
        return {"accepted": True, "target": fault.target, "fault": fault.fault.value}

    def _inject_exchange(self, fault: InjectFault) -> dict[str, Any]:
        exchange = self._exchange
        if exchange is None:
            return {
                "accepted": False,
                "error": "exchange faults need the embedded exchange (--env local)",
            }
        try:
            exchange.apply_fault(
                fault.fault.value,
                seconds=fault.seconds,
                count=fault.count,
                shard=fault.shard,
                resume_in=fault.resume_in,
            )
        except ValueError as exc:  # the request does not fit this exchange (an unknown shard)
            return {"accepted": False, "error": one_line(str(exc)), "invalid": True}
        except Exception as exc:  # a stopped or misbehaving exchange must not stop us
            return {"accepted": False, "error": one_line(f"{type(exc).__name__}: {exc}")}
        if fault.fault in PAUSE_SWITCHES:
            # Read the status now, as READY's routine check would (it is ignored outside
            # READY): a pause drill shows the reaction at once, not up to
            # exchange_check_interval later. A real pause is found by the routine check.
            self.mailbox(ExchangeCheckDue(ROUTINE))
        return {"accepted": True, "target": "exchange", "fault": fault.fault.value}

    # -- services the per-state parts share ----------------------------------------------------
    def fail(self, stage: str, error_type: str, reason: str, *, abnormal: bool = True) -> None:
        self.recovery.fail(stage, error_type, reason, abnormal=abnormal)

    def shutdown(self, reason: str) -> None:
        shut_down(self, reason)

    def transition(self, target: State, context: str, metadata: StateMetadata) -> None:
        leaving_ready = self.state is State.READY and target is not State.READY
        record = self._machine.transition(target, context=context, metadata=metadata)
        self.epoch += 1
        if target is not State.READY:
            # The one place READY ends, whatever ends it (a failure, a heal timeout, a held
            # stage, shutdown): its timers, pings and pending phase go with the move.
            self.ready.leave()
        self.publish(record)
        if target is State.READY:  # and the one place it begins, for every part that cares
            self.recovery.on_ready()
            self.pauses.on_ready()
            self.services.on_ready(metadata, self.walk.markets or ())  # type: ignore[arg-type]
        elif leaving_ready:  # services are told, never stopped, when READY ends
            self.services.on_not_ready(target, context)

    def transition_from_stage(self, stage: str, target: State, context: str, metadata: Any) -> bool:
        """A transition whose metadata came from a stage: a wrong class is that stage's failure."""
        if not isinstance(metadata, Message):
            self.fail(
                stage, "BadMetadata", f"{stage} described its state with {type(metadata).__name__}"
            )
            return False
        try:
            self.transition(target, context, metadata)  # type: ignore[arg-type]
        except Exception as exc:
            self.fail(stage, "BadMetadata", str(exc))
            return False
        return True

    def spec(self, name: str) -> StageSpec | None:
        return next((s for s in self.specs if s.name == name), None)

    def index_of(self, name: str) -> int | None:
        return next((i for i, s in enumerate(self.specs) if s.name == name), None)

    # -- children (through the port) ------------------------------------------------------------
    def ensure_child(self, spec: StageSpec) -> int:
        return self.children.ensure(spec, self._stage_context())

    def _stage_context(self) -> StageContext:
        """What a stage starts with; which fields a stage reads is the actor kit's business
        (``StageContext.from_config``), not the core's."""
        return StageContext.from_config(
            self.config,
            self._signer,
            markets=self.walk.markets or (),
            market_facts=self.walk.facts,
            market_facts_fresh=self.walk.take_fresh_facts(),
            # Only services read the feed: without any, the stream's hot path skips marking.
            book_changes=self.book_changes if self.services.names else None,
            private_events=self._private_events,
            id_state=self._trading.config.id_state_path if self._trading is not None else None,
        )

    def has_child(self, name: str) -> bool:
        return self.children.generation(name) is not None

    def current_generation(self, name: str) -> int | None:
        return self.children.generation(name)

    def child_names(self) -> list[str]:
        return self.children.names()

    def is_current(self, stage: str, generation: int) -> bool:
        """Replies from an earlier incarnation of a stage are stale and ignored."""
        return self.children.is_current(stage, generation)

    def stop_children(self, names: Iterable[str]) -> None:
        """Stop in reverse start order: later stages depend on earlier ones."""
        self.children.stop(self.children.ordered(names, [s.name for s in self.all_specs]))

    def tell_child(self, name: str, message: object) -> bool:
        """Tell a stage; a stage that died meanwhile becomes that stage's failure, not ours."""
        return self.children.tell(name, message)

    def ask_stage(self, name: str, message: Message) -> Any:
        """Ask a stage; no answer in time, or an error, is that stage's failure (None returned)."""
        generation = self.children.generation(name)
        try:
            return self.children.ask(name, message, timeout=ASK_TIMEOUT)
        except ChildUnresponsiveError:
            self.fail(name, "Unresponsive", f"{name} stage did not answer {type(message).__name__}")
        except ChildGoneError:
            if generation is not None:
                self.mailbox(ConfirmDead(name, generation))
        except Exception as exc:
            self.fail(name, type(exc).__name__, str(exc))
        return None
