"""The supervisor: the one actor that owns the state machine, and the process entry point.

Stage actors do the work of their states and reply with their own immutable results;
the supervisor decides what happens next. It never merges or updates metadata: each
transition carries the single message built for it, and the state machine rejects any
other class. Failures of every kind (handler errors, start errors, hangs, deadlines,
lost links) arrive as messages and go through one restart policy.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pykka

from actors.base import StageControls, StartFaults, one_line
from actors.context import StageContext
from actors.markets import resolve_markets
from actors.registry import DEFAULT_STAGES, StageSpec, pipeline_is_valid, validate_pipeline
from kalshi_api.auth import KalshiSigner
from messages.base import Message
from messages.commands import Connect, Describe, Ping, Report, RunSync, Shutdown
from messages.events import (
    FaultInjected,
    KalshiSyncComplete,
    RestartScheduled,
    StageDropped,
    StageFailure,
    StreamHealed,
    StreamInterrupted,
    SupervisorEvent,
    SupervisorGaveUp,
)
from messages.faults import ExchangeFault, FaultTarget, InjectFault
from messages.metadata import (
    ErrorMetadata,
    ReadyMetadata,
    RecoveryMetadata,
    ShutdownMetadata,
    StartupMetadata,
    StateMetadata,
    TradingReadyMetadata,
)
from messages.results import (
    OrderbookReport,
    StageFailed,
    StageSucceeded,
    StreamIncident,
    SyncCompleted,
    TradingConnected,
)
from messages.states import State
from supervision.config import SupervisorConfig
from supervision.policy import RestartTracker
from supervision.scheduler import Scheduler, ThreadScheduler, TimerHandle
from supervision.state_machine import StateMachine

logger = logging.getLogger("kalshi_supervisor")

ASK_TIMEOUT = 2.0
STOP_TIMEOUT = 0.5
ORDERBOOK_STAGE = "orderbook"
SYNC_STAGE = "sync"
EXPECTED_RESULT: dict[str, type[Message]] = {
    "orderbook": OrderbookReport,
    "trading": TradingConnected,
    "sync": SyncCompleted,
}

EventListener = Callable[[SupervisorEvent], None]


# -- private timer messages: the scheduler thread only ever tells the supervisor -----------
@dataclass(frozen=True)
class _Begin:
    pass


@dataclass(frozen=True)
class _DeadlineExpired:
    epoch: int
    state: State
    seconds: float


@dataclass(frozen=True)
class _RestartDue:
    epoch: int


@dataclass(frozen=True)
class _SyncDue:
    pass


@dataclass(frozen=True)
class _LivenessDue:
    pass


@dataclass(frozen=True)
class _LivenessCheck:
    stage: str
    generation: int
    future: pykka.Future[Any]


@dataclass(frozen=True)
class _HealExpired:
    epoch: int


@dataclass(frozen=True)
class _MarketsResolved:
    epoch: int
    tickers: tuple[str, ...]
    error_type: str | None
    reason: str


@dataclass(frozen=True)
class _ConfirmDead:
    """Queued behind the StageFailed a dying stage sends itself, so its own reason wins."""

    stage: str
    generation: int


@dataclass
class _Child:
    spec: StageSpec
    ref: pykka.ActorRef[Any]
    generation: int
    controls: StageControls
    ping: pykka.Future[Any] | None = None
    """The last liveness ping, until it is answered or judged."""
    busy_until: float | None = None
    """Set while the stage does work we asked for (an update sync): pings would queue behind
    it, so the work's own deadline stands in for liveness until then."""


@dataclass
class _Recovery:
    attempt: int
    restarting: set[str] = field(default_factory=set)


class SupervisorActor(pykka.ThreadingActor):
    """Owns the state machine, the stage actors and the restart policy."""

    use_daemon_thread = True
    """Shutdown is explicit and bounded; a stuck stage must never keep the process alive."""

    def __init__(
        self,
        config: SupervisorConfig,
        signer: KalshiSigner,
        *,
        status_address: str,
        stages: Sequence[StageSpec] = DEFAULT_STAGES,
        listeners: Iterable[EventListener] = (),
        scheduler: Scheduler | None = None,
        rng: random.Random | None = None,
        exchange: Any = None,
        stopped: threading.Event | None = None,
    ) -> None:
        super().__init__()
        self._config = config
        self._signer = signer
        self._status_address = status_address
        self._specs = [s for s in stages if config.trading_enabled or not s.requires_trading]
        validate_pipeline(self._specs)
        self._listeners = list(listeners)
        self._owns_scheduler = scheduler is None
        self._scheduler: Scheduler = scheduler or ThreadScheduler()
        self._exchange = exchange
        self._stopped = stopped or threading.Event()
        self._machine = StateMachine(monotonic=self._scheduler.clock.monotonic)
        self._tracker = RestartTracker(
            strategy=config.restart.strategy,
            start_order=[s.name for s in self._specs],
            restart_types={
                s.name: config.restart.restart_types.get(s.name, s.restart_type)
                for s in self._specs
            },
            backoff=config.restart.backoff(),
            intensity=config.restart.intensity(),
            clock=self._scheduler.clock,
            rng=rng or random.Random(),
        )
        self._start_faults = StartFaults()
        self._children: dict[str, _Child] = {}
        self._generation = 0
        self._epoch = 0
        self._cursor = 0
        self._markets: tuple[str, ...] | None = None
        self._last_sync: SyncCompleted | None = None
        self._recovery: _Recovery | None = None
        self._deadline: TimerHandle | None = None
        self._heal_timer: TimerHandle | None = None
        self._periodic: list[TimerHandle] = []
        self._healed_total = 0
        self._awaiting_orderbook = False

    # -- pykka hooks ---------------------------------------------------------------------
    def on_start(self) -> None:
        self.actor_ref.tell(_Begin())

    def on_receive(self, message: Any) -> Any:
        try:
            return self._dispatch(message)
        except Exception as exc:
            # The supervisor itself must never die silently: log and shut down cleanly.
            logger.exception("supervisor failed handling %s", type(message).__name__)
            if self._machine.state is not State.SHUTDOWN:
                self._shutdown(f"supervisor error: {one_line(str(exc))}")
            return None

    def on_stop(self) -> None:
        if self._machine.state is not State.SHUTDOWN:
            self._shutdown("supervisor stopped")
        self._stopped.set()

    # -- dispatch --------------------------------------------------------------------------
    def _dispatch(self, message: Any) -> Any:
        state = self._machine.state
        if state is State.SHUTDOWN:
            return None if not isinstance(message, Ping) else True
        if isinstance(message, StageSucceeded):
            self._on_succeeded(message)
        elif isinstance(message, StageFailed):
            if self._is_current(message.stage, message.generation):
                self._fail(
                    message.stage, message.error_type, message.reason, abnormal=message.abnormal
                )
        elif isinstance(message, StreamIncident):
            self._on_incident(message)
        elif isinstance(message, InjectFault):
            return self._inject(message)
        elif isinstance(message, Shutdown):
            self._shutdown(message.reason)
        elif isinstance(message, Ping):
            return True
        elif isinstance(message, _Begin):
            self._begin()
        elif isinstance(message, _DeadlineExpired):
            self._on_deadline(message)
        elif isinstance(message, _RestartDue):
            if message.epoch == self._epoch and state is State.ERROR:
                self._restart()
        elif isinstance(message, _SyncDue):
            self._on_sync_due()
        elif isinstance(message, _LivenessDue):
            self._probe_liveness()
        elif isinstance(message, _LivenessCheck):
            self._check_liveness(message)
        elif isinstance(message, _MarketsResolved):
            self._on_markets_resolved(message)
        elif isinstance(message, _ConfirmDead):
            if self._is_current(message.stage, message.generation):
                self._fail(message.stage, "ActorDied", f"{message.stage} stage is not running")
        elif isinstance(message, _HealExpired):
            if message.epoch == self._epoch and state is State.READY:
                self._reconnect_orderbook()
        else:
            logger.warning("supervisor ignored unknown message %s", type(message).__name__)
        return None

    # -- the forward path ------------------------------------------------------------------
    def _begin(self) -> None:
        config = self._config
        self._transition(
            State.INITIALIZING,
            "Starting up" if self._recovery is None else "Recovering: starting up again",
            StartupMetadata(
                environment=config.environment.value,
                host=self._status_address,
                log_level=config.log_level,
                mode=config.discovery_mode,
            ),
        )
        self._arm_deadline(State.INITIALIZING)
        if self._markets is not None:  # resolved before this recovery: keep the same markets
            self._cursor = 0
            self._enter_stage()
            return
        # HTTP must not block this thread: a shutdown has to get through at any moment.
        epoch = self._epoch
        config, signer, reply = self._config, self._signer, self._tell_self

        def resolve() -> None:
            try:
                reply(_MarketsResolved(epoch, resolve_markets(config, signer), None, ""))
            except Exception as exc:
                reply(_MarketsResolved(epoch, (), type(exc).__name__, str(exc)))

        threading.Thread(target=resolve, name="kalshi-supervisor-markets", daemon=True).start()

    def _on_markets_resolved(self, message: _MarketsResolved) -> None:
        if message.epoch != self._epoch or self._machine.state is not State.INITIALIZING:
            return
        if message.error_type is not None:
            self._fail(self._specs[0].name, message.error_type, message.reason)
            return
        self._markets = message.tickers
        self._cursor = 0
        self._enter_stage()

    def _enter_stage(self) -> None:
        spec = self._specs[self._cursor]
        child = self._ensure_child(spec)
        if self._machine.state is not spec.state:
            metadata = self._ask(child, Describe())
            if metadata is None:
                return
            if not self._transition_checked(spec, spec.state, self._stage_context(spec), metadata):
                return
            self._arm_deadline(spec.state)
        self._tell_child(child, Connect(generation=child.generation))

    def _stage_context(self, spec: StageSpec) -> str:
        return {
            State.ORDERBOOK_CONNECT: f"Connecting to {len(self._markets or ())} markets",
            State.TRADING_CLIENT_CONNECT: "Connecting to trading API",
            State.KALSHI_DATA_SYNC: "Syncing positions and orders with Kalshi",
        }.get(spec.state, f"Starting {spec.name} stage")

    def _on_succeeded(self, message: StageSucceeded) -> None:
        if not self._is_current(message.stage, message.generation):
            return
        self._children[message.stage].busy_until = None
        result = self._validated_result(message)
        if result is None:
            return
        if isinstance(result, SyncCompleted):
            self._last_sync = result
            self._publish(
                KalshiSyncComplete(
                    sync_type=result.sync_type, state=result.state, changes=result.changes
                )
            )
        state = self._machine.state
        if state is State.READY or state is State.ERROR:
            return  # an update sync (READY) or a late reply from a stage being restarted
        spec = self._specs[self._cursor]
        if spec.name != message.stage:
            logger.debug("ignoring %s result while %s is connecting", message.stage, spec.name)
            return
        self._cancel_deadline()
        self._cursor += 1
        if self._cursor < len(self._specs):
            self._enter_stage()
        else:
            self._enter_ready()

    def _validated_result(self, message: StageSucceeded) -> Message | None:
        expected = EXPECTED_RESULT.get(message.stage)
        result = message.result
        try:
            if not isinstance(result, Message) or (expected and type(result) is not expected):
                raise TypeError(f"expected {expected.__name__ if expected else 'a message'}")
            type(result).model_validate(result.model_dump())
        except (TypeError, ValueError) as exc:
            self._fail(message.stage, "BadMetadata", f"invalid result from {message.stage}: {exc}")
            return None
        return result

    def _enter_ready(self) -> None:
        report = self._orderbook_report()
        if report is None:
            return
        if ORDERBOOK_STAGE in self._children and not self._orderbook_live(report):
            # The stream dropped after its own stage finished: READY would be a lie. Wait,
            # under this state's deadline, for the stream to report that it healed.
            self._awaiting_orderbook = True
            self._arm_deadline(self._machine.state)
            return
        self._awaiting_orderbook = False
        self._cancel_deadline()
        fields = {
            "markets_connected": report.markets_connected,
            "snapshots_received": report.snapshots_received,
            "deltas_received": report.deltas_received,
            "connection_established": report.connection_established,
            "first_snapshot_received": report.first_snapshot_received,
            "environment": self._config.environment.value,
        }
        metadata: ReadyMetadata
        if self._config.trading_enabled and self._last_sync is not None:
            metadata = TradingReadyMetadata(**fields, trading_client=self._last_sync.trading_client)
        else:
            metadata = ReadyMetadata(**fields)
        self._transition(State.READY, "All stages connected", metadata)
        self._recovery = None
        for name in self._children:
            self._tracker.on_started(name)
        self._periodic.append(
            self._scheduler.call_every(
                self._config.liveness_interval,
                lambda: self._tell_self(_LivenessDue()),
                name="liveness",
            )
        )
        if self._config.trading_enabled and SYNC_STAGE in self._children:
            self._periodic.append(
                self._scheduler.call_every(
                    self._config.sync_interval, lambda: self._tell_self(_SyncDue()), name="sync"
                )
            )

    def _orderbook_live(self, report: OrderbookReport) -> bool:
        return report.connection_established and report.markets_connected == len(
            self._markets or ()
        )

    def _orderbook_report(self) -> OrderbookReport | None:
        child = self._children.get(ORDERBOOK_STAGE)
        if child is None:
            return OrderbookReport.nothing_yet()
        report = self._ask(child, Report())
        if report is not None and type(report) is not OrderbookReport:
            self._fail(ORDERBOOK_STAGE, "BadMetadata", "orderbook report has the wrong type")
            return None
        return report

    def _on_sync_due(self) -> None:
        child = self._children.get(SYNC_STAGE)
        if self._machine.state is not State.READY or child is None or child.busy_until is not None:
            return
        deadline = self._config.deadlines.get(State.KALSHI_DATA_SYNC, 15.0)
        child.busy_until = self._scheduler.clock.monotonic() + deadline
        self._tell_child(child, RunSync(generation=child.generation))

    # -- READY: healing in place or reconnecting -----------------------------------------
    def _on_incident(self, incident: StreamIncident) -> None:
        if not self._is_current(incident.stage, incident.generation):
            return
        if self._awaiting_orderbook and incident.kind in ("reconnected", "resynced"):
            self._enter_ready()
            return
        if self._machine.state is not State.READY:
            return
        if incident.kind == "disconnected":
            if self._heal_timer is None:
                epoch = self._epoch
                self._heal_timer = self._scheduler.call_later(
                    self._config.heal_timeout,
                    lambda: self._tell_self(_HealExpired(epoch)),
                    name="heal",
                )
                self._publish(
                    StreamInterrupted(
                        detail=incident.detail,
                        heal_timeout_ms=round(self._config.heal_timeout * 1000),
                    )
                )
        elif incident.kind in ("reconnected", "resynced"):
            if self._heal_timer is not None:
                self._heal_timer.cancel()
                self._heal_timer = None
            self._healed_total += 1
            self._publish(
                StreamHealed(
                    kind=incident.kind, detail=incident.detail, healed_total=self._healed_total
                )
            )

    def _reconnect_orderbook(self) -> None:
        """READY -> ORDERBOOK_CONNECT: the stream could not heal in place within heal_timeout."""
        self._cancel_periodic()
        self._cursor = next(i for i, s in enumerate(self._specs) if s.name == ORDERBOOK_STAGE)
        self._enter_stage()

    # -- failures and restarts -------------------------------------------------------------
    def _fail(self, stage: str, error_type: str, reason: str, *, abnormal: bool = True) -> None:
        state = self._machine.state
        if state is State.SHUTDOWN:
            return
        reason = one_line(reason)
        self._awaiting_orderbook = False
        logger.warning("%s stage failed in %s: %s: %s", stage, state.name, error_type, reason)
        self._publish(StageFailure(stage=stage, state=state, error_type=error_type, reason=reason))
        decision = self._tracker.on_failure(stage, abnormal=abnormal)
        if state is State.ERROR and self._recovery is not None and not decision.give_up:
            self._recovery.restarting.update(decision.children)
            self._stop_children(decision.children)
            return
        self._cancel_deadline()
        self._cancel_periodic()
        if decision.give_up:
            if state is not State.ERROR:
                self._transition(
                    State.ERROR,
                    f"{stage} failed; giving up",
                    ErrorMetadata(
                        failed_state=state,
                        actor=stage,
                        error_type=error_type,
                        reason=reason,
                        restart_attempt=decision.attempt,
                        next_restart_in_ms=None,
                    ),
                )
            self._publish(SupervisorGaveUp(reason=decision.reason))
            self._shutdown(f"gave up: {decision.reason}")
            return
        if not decision.restart:
            self._drop_stage(stage, state, error_type, reason)
            return
        delay_ms = round(decision.delay * 1000)
        self._enter_error(
            f"{stage} failed: {error_type}",
            ErrorMetadata(
                failed_state=state,
                actor=stage,
                error_type=error_type,
                reason=reason,
                restart_attempt=decision.attempt,
                next_restart_in_ms=delay_ms,
            ),
            _Recovery(attempt=decision.attempt, restarting=set(decision.children)),
            decision.delay,
        )
        self._publish(
            RestartScheduled(stages=decision.children, attempt=decision.attempt, delay_ms=delay_ms)
        )
        self._stop_children(decision.children)

    def _enter_error(
        self, context: str, metadata: ErrorMetadata, recovery: _Recovery, delay: float
    ) -> None:
        """Arm the restart timer *before* announcing ERROR: whoever reads the announced delay
        (a person, a test advancing a manual clock) can rely on the restart being scheduled."""
        epoch = self._epoch + 1  # the epoch the ERROR transition is about to start
        self._scheduler.call_later(
            delay, lambda: self._tell_self(_RestartDue(epoch)), name="restart"
        )
        self._recovery = recovery
        self._transition(State.ERROR, context, metadata)

    def _drop_stage(self, stage: str, state: State, error_type: str, reason: str) -> None:
        """A temporary stage (or a transient one stopped normally) is removed, not restarted.

        Trading and sync only make sense together (the table has no TRADING_CLIENT_CONNECT
        -> READY), so dropping either falls back to orderbook-only, as ``--no-trading``.
        """
        failed = next(s for s in self._specs if s.name == stage)
        remaining = [s for s in self._specs if s.name != stage]
        if not pipeline_is_valid(remaining) and failed.requires_trading:
            remaining = [s for s in remaining if not s.requires_trading]
        kept = {s.name for s in remaining}
        dropped = [s.name for s in self._specs if s.name not in kept]
        for name in dropped:
            self._publish(
                StageDropped(stage=name, reason=f"{stage} failed: {error_type}: {reason}")
            )
        self._stop_children(dropped)
        for name in dropped:
            self._tracker.drop(name)
        if SYNC_STAGE in dropped:
            self._last_sync = None  # no sync stage: READY must not show a stale trading summary
        self._specs = remaining
        if not remaining or not pipeline_is_valid(remaining):
            self._shutdown(f"no runnable stages left after dropping {', '.join(dropped)}")
            return
        self._enter_error(
            f"{stage} failed and is not restarted",
            ErrorMetadata(
                failed_state=state,
                actor=stage,
                error_type=error_type,
                reason=reason,
                restart_attempt=0,
                next_restart_in_ms=0,
            ),
            _Recovery(attempt=0),
            0.0,
        )

    def _restart(self) -> None:
        recovery = self._recovery or _Recovery(attempt=0)
        order = [s.name for s in self._specs]
        self._transition(
            State.STARTUP,
            "Recovering after a failure",
            RecoveryMetadata(
                restart_attempt=recovery.attempt,
                restarting=tuple(
                    sorted(recovery.restarting, key=lambda n: order.index(n) if n in order else 99)
                ),
            ),
        )
        self._begin()

    def _on_deadline(self, message: _DeadlineExpired) -> None:
        if message.epoch != self._epoch or self._machine.state is not message.state:
            return
        spec = self._specs[min(self._cursor, len(self._specs) - 1)]
        if self._awaiting_orderbook:
            spec = next(s for s in self._specs if s.name == ORDERBOOK_STAGE)
        self._fail(
            spec.name,
            "DeadlineExceeded",
            f"{message.state.name} did not complete within {message.seconds:g}s",
        )

    def _probe_liveness(self) -> None:
        if self._machine.state is not State.READY:
            return
        now = self._scheduler.clock.monotonic()
        for name, child in list(self._children.items()):
            if not child.ref.is_alive():
                self._fail(name, "ActorDied", f"{name} stage actor is no longer running")
                return
            if child.busy_until is not None:
                if now < child.busy_until:
                    continue
                self._fail(name, "DeadlineExceeded", f"{name} stage's requested work overran")
                return
            if child.ping is not None and not _answered(child.ping):
                continue  # its check is already scheduled
            child.ping = future = child.ref.ask(Ping(), block=False)
            generation = child.generation
            self._scheduler.call_later(
                self._config.liveness_timeout,
                lambda n=name, g=generation, f=future: self._tell_self(_LivenessCheck(n, g, f)),
                name="liveness-check",
            )

    def _check_liveness(self, check: _LivenessCheck) -> None:
        child = self._children.get(check.stage)
        if child is None or child.generation != check.generation or child.ping is not check.future:
            return
        child.ping = None
        if self._machine.state is not State.READY or child.busy_until is not None:
            return
        try:
            check.future.get(timeout=0)
        except pykka.Timeout:
            self._fail(
                check.stage,
                "Unresponsive",
                f"{check.stage} stage did not answer a ping within "
                f"{self._config.liveness_timeout:g}s",
            )
        except Exception as exc:
            self._fail(
                check.stage, "ActorDied", f"{check.stage} stage: {type(exc).__name__}: {exc}"
            )

    # -- faults --------------------------------------------------------------------------
    def _inject(self, fault: InjectFault) -> dict[str, Any]:
        self._publish(FaultInjected(fault=fault))
        if fault.target == FaultTarget.EXCHANGE:
            return self._inject_exchange(fault)
        child = self._children.get(fault.target)
        if child is None:
            return {"accepted": False, "error": f"no running {fault.target} stage"}
        if not self._tell_child(child, fault):
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
                ExchangeFault(fault.fault), seconds=fault.seconds, count=fault.count
            )
        except Exception as exc:  # a stopped or misbehaving exchange must not stop us
            return {"accepted": False, "error": one_line(f"{type(exc).__name__}: {exc}")}
        return {"accepted": True, "target": "exchange", "fault": fault.fault.value}

    # -- shutdown --------------------------------------------------------------------------
    def _shutdown(self, reason: str) -> None:
        if self._machine.state is State.SHUTDOWN:
            return
        self._cancel_deadline()
        self._cancel_periodic()
        self._stop_children(list(self._children))
        self._transition(State.SHUTDOWN, "Shutting down", ShutdownMetadata(reason=one_line(reason)))
        if self._owns_scheduler:
            self._scheduler.stop()
        self._stopped.set()
        self.stop()

    # -- children --------------------------------------------------------------------------
    def _ensure_child(self, spec: StageSpec) -> _Child:
        child = self._children.get(spec.name)
        if child is not None and child.ref.is_alive():
            return child
        if child is not None:
            self._children.pop(spec.name)
        self._generation += 1
        controls = StageControls(start_faults=self._start_faults)
        ref = spec.actor_class.start(
            self.actor_ref, self._actor_context(), self._generation, controls
        )
        child = _Child(spec=spec, ref=ref, generation=self._generation, controls=controls)
        self._children[spec.name] = child
        return child

    def _actor_context(self) -> StageContext:
        config = self._config
        return StageContext(
            environment=config.environment.value,
            mode=config.trading_mode,
            rest_url=config.rest_url,
            ws_url=config.ws_url,
            signer=self._signer,
            markets=self._markets or (),
            use_yes_price=config.use_yes_price,
            request_timeout=config.request_timeout,
        )

    def _stop_children(self, names: Iterable[str]) -> None:
        """Stop in reverse start order, releasing any simulated hang first."""
        order = [s.name for s in self._specs]
        for name in sorted(names, key=lambda n: order.index(n) if n in order else -1, reverse=True):
            child = self._children.pop(name, None)
            if child is None:
                continue
            child.controls.release.set()
            try:
                child.ref.stop(block=True, timeout=STOP_TIMEOUT)
            except pykka.Timeout:
                logger.warning("%s stage did not stop within %.1fs", name, STOP_TIMEOUT)
            except pykka.ActorDeadError:
                pass

    def _tell_child(self, child: _Child, message: Any) -> bool:
        """Tell a stage; a stage that died meanwhile becomes that stage's failure, not ours."""
        try:
            child.ref.tell(message)
        except pykka.ActorDeadError:
            self._tell_self(_ConfirmDead(child.spec.name, child.generation))
            return False
        return True

    def _ask(self, child: _Child, message: Message) -> Any:
        try:
            return child.ref.ask(message, timeout=ASK_TIMEOUT)
        except pykka.Timeout:
            self._fail(
                child.spec.name,
                "Unresponsive",
                f"{child.spec.name} stage did not answer {type(message).__name__}",
            )
        except pykka.ActorDeadError:
            self._tell_self(_ConfirmDead(child.spec.name, child.generation))
        except Exception as exc:
            self._fail(child.spec.name, type(exc).__name__, str(exc))
        return None

    def _is_current(self, stage: str, generation: int) -> bool:
        child = self._children.get(stage)
        return child is not None and child.generation == generation

    # -- transitions, timers, events ---------------------------------------------------------
    def _transition(self, target: State, context: str, metadata: StateMetadata) -> None:
        record = self._machine.transition(target, context=context, metadata=metadata)
        self._epoch += 1
        self._publish(record)

    def _transition_checked(
        self, spec: StageSpec, target: State, context: str, metadata: Any
    ) -> bool:
        """A transition whose metadata came from a stage: a wrong class is that stage's failure."""
        if not isinstance(metadata, Message):
            self._fail(
                spec.name,
                "BadMetadata",
                f"{spec.name} described its state with {type(metadata).__name__}",
            )
            return False
        try:
            self._transition(target, context, metadata)  # type: ignore[arg-type]
        except Exception as exc:
            self._fail(spec.name, "BadMetadata", str(exc))
            return False
        return True

    def _arm_deadline(self, state: State) -> None:
        self._cancel_deadline()
        seconds = self._config.deadlines.get(state)
        if seconds is None:
            return
        epoch = self._epoch
        self._deadline = self._scheduler.call_later(
            seconds,
            lambda: self._tell_self(_DeadlineExpired(epoch, state, seconds)),
            name="deadline",
        )

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _cancel_periodic(self) -> None:
        """Cancel every READY-only timer (liveness, update sync, heal) on leaving READY."""
        for handle in self._periodic:
            handle.cancel()
        self._periodic.clear()
        if self._heal_timer is not None:
            self._heal_timer.cancel()
            self._heal_timer = None
        for child in self._children.values():
            child.ping = None
            child.busy_until = None

    def _tell_self(self, message: Any) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(message)

    def _publish(self, event: SupervisorEvent) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                logger.exception("event listener %r failed", listener)


def _answered(future: pykka.Future[Any]) -> bool:
    """Whether a pykka future has resolved (with a value or an error), without blocking."""
    try:
        future.get(timeout=0)
    except pykka.Timeout:
        return False
    except Exception:
        return True
    return True

