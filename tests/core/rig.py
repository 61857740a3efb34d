"""A supervisor core with plain-object ports: no pykka, no sockets, a manual clock.

``FakeStages`` plays the stage actors: it records every command, answers ``Describe`` and
``Report`` with real metadata models, and lets a test reply as a stage would. Time moves
only through ``CoreRig.advance``; the core's own messages queue in ``mailbox`` and are
handled by ``pump``, as the actor's mailbox would.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from actors.context import StageContext
from actors.markets import ResolvedMarkets
from actors.registry import DEFAULT_STAGES
from actors.stage_spec import StageSpec
from core.supervisor_core import SupervisorCore
from core.timers import Begin
from kalshi_api.auth import KalshiSigner
from messages.base import Message
from messages.commands import Describe, Report
from messages.events import StateTransition, SupervisorEvent
from messages.exchange import ExchangeCondition, PauseScope, ShardPause
from messages.metadata import (
    KalshiDataSyncMetadata,
    OrderbookConnectMetadata,
    TradingClientConnectMetadata,
    TradingClientSummary,
)
from messages.results import (
    OrderbookReport,
    StageSucceeded,
    StreamIncident,
    SyncCompleted,
    SyncState,
    TradingConnected,
)
from messages.states import State
from supervision.config import RestartSettings, SupervisorConfig
from supervision.scheduler import ManualScheduler

MARKETS = ("KXA-1", "KXB-2", "KXC-3")
EPOCH = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
"""Wall time at manual-clock zero: exchange readings are stamped against it."""


@cache
def signer() -> KalshiSigner:
    """One key for every core test: the core only hands the signer to stage contexts."""
    return KalshiSigner("core-test-key", rsa.generate_private_key(65537, 2048))


def describe(state: State) -> Message:
    """The metadata a real stage actor would describe its state's entry with."""
    if state is State.ORDERBOOK_CONNECT:
        return OrderbookConnectMetadata(
            ws_url="ws://x", markets=MARKETS[:2], market_count=3, environment="local"
        )
    if state is State.TRADING_CLIENT_CONNECT:
        return TradingClientConnectMetadata(mode="paper", environment="local", api_url="http://x")
    return KalshiDataSyncMetadata(mode="paper", sync_type="initial")


def live_report(markets: int = len(MARKETS), connected: bool = True) -> OrderbookReport:
    return OrderbookReport(
        markets_connected=markets,
        snapshots_received=markets,
        deltas_received=5,
        connection_established=connected,
        first_snapshot_received=markets > 0,
    )


def sync_result(balance: int = 100) -> SyncCompleted:
    state = SyncState(balance=balance, portfolio_value=0, positions=0, orders=0)
    return SyncCompleted(
        sync_type="initial",
        state=state,
        changes=None,
        trading_client=TradingClientSummary(
            connected=True, mode="paper", balance=balance, portfolio_value=0, positions=0, orders=0
        ),
    )


RESULTS: dict[str, Message] = {
    "orderbook": live_report(),
    "trading": TradingConnected(api_url="http://x", exchange_active=True, trading_active=True),
    "sync": sync_result(),
}


@dataclass
class FakePing:
    reply: bool | None = True

    def answered(self) -> bool:
        return self.reply is not None

    def failure(self) -> tuple[str, str] | None:
        return None if self.reply else ("Unresponsive", "no answer")


@dataclass
class FakeStages:
    """The ``ChildHost`` port, played by a test (it records each incarnation it starts)."""

    generations: dict[str, int] = field(default_factory=dict)
    told: list[tuple[str, object]] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    report: OrderbookReport = field(default_factory=live_report)
    counter: int = 0

    def start(
        self, spec: StageSpec, context: StageContext, generation: int, controls: object
    ) -> None:
        self.counter += 1
        self.generations[spec.name] = generation

    def is_alive(self, name: str) -> bool:
        return name in self.generations

    def ask(self, name: str, message: Message, timeout: float) -> Any:
        if isinstance(message, Describe):
            return describe(next(s.state for s in ALL_SPECS if s.name == name))
        if isinstance(message, Report):
            return self.report
        raise TypeError(f"unexpected ask {message!r}")

    def tell(self, name: str, message: object) -> bool:
        self.told.append((name, message))
        return name in self.generations

    def ping(self, name: str) -> FakePing:
        return FakePing()

    def lingering(self, name: str) -> bool:
        return False

    def stop(self, names: Sequence[str]) -> None:
        for name in names:
            self.stopped.append(name)
            self.generations.pop(name, None)

    def commands_to(self, name: str, kind: type) -> list[Any]:
        return [m for n, m in self.told if n == name and isinstance(m, kind)]


ALL_SPECS: list[StageSpec] = list(DEFAULT_STAGES)


class CoreRig:
    def __init__(
        self,
        stages: Sequence[StageSpec] = DEFAULT_STAGES,
        *,
        paused_at_start: bool = False,
        **config: Any,
    ) -> None:
        ALL_SPECS.extend(s for s in stages if s not in ALL_SPECS)
        settings: dict[str, Any] = {
            "rest_url": "http://127.0.0.1:1/trade-api/v2",
            "ws_url": "ws://127.0.0.1:1/trade-api/ws/v2",
            "markets": MARKETS,
            "restart": RestartSettings(min_backoff=0.5, max_backoff=0.5, random_factor=0.0),
        }
        settings.update(config)
        self.config = SupervisorConfig(**settings)
        self.scheduler = ManualScheduler()
        self.stages = FakeStages()
        self.events: list[SupervisorEvent] = []
        self.mailbox: deque[object] = deque()
        self.shut = False
        self.exchange_pauses: tuple[ShardPause, ...] = ()
        if paused_at_start:
            self.pause("exchange")
        self.discoveries = 0
        self.resume_in: float | None = None
        """The exchange's resume estimate, in seconds from each reading."""
        self.probe_error: str | None = None
        self.probes = 0
        self.core = SupervisorCore(
            self.config,
            signer(),
            status_address="127.0.0.1:0",
            stages=stages,
            children=self.stages,
            scheduler=self.scheduler,
            mailbox=self.mailbox.append,
            publish=self.events.append,
            resolve_markets=self._resolve,
            background=lambda work: work(),
            on_shutdown=self._on_shutdown,
            probe_exchange=self._probe,
        )
        self.send(Begin())

    def wall(self) -> datetime:
        return EPOCH + timedelta(seconds=self.scheduler.clock.monotonic())

    def condition(self) -> ExchangeCondition:
        """What ``/exchange/status`` says now, as the exchange is set up by the test."""
        now = self.wall()
        paused = any(
            p.exchange_index is None and p.scope == "exchange" for p in self.exchange_pauses
        )
        return ExchangeCondition(
            pauses=self.exchange_pauses,
            resume_estimate=None
            if self.resume_in is None
            else now + timedelta(seconds=self.resume_in),
            observed_at=now,
            http_status=503 if paused else 200,
        )

    def pause(self, scope: PauseScope, exchange_index: int | None = None) -> None:
        self.exchange_pauses = (
            *self.exchange_pauses,
            ShardPause(exchange_index=exchange_index, scope=scope),
        )

    def resume(self) -> None:
        self.exchange_pauses, self.resume_in = (), None

    def _resolve(self) -> ResolvedMarkets:
        """Market discovery: refused (as a 503) while the whole exchange is paused."""
        self.discoveries += 1
        if self.condition().exchange_paused:
            raise ConnectionError("HTTP 503: exchange is paused")
        return ResolvedMarkets(MARKETS)

    def _probe(self) -> ExchangeCondition:
        self.probes += 1
        if self.probe_error is not None:
            raise ConnectionError(self.probe_error)
        return self.condition()

    def stage_paused(self, stage: str) -> None:
        """The stage met an exchange pause in its work (as ``StageActor`` reports it)."""
        from messages.exchange import StagePaused

        generation = self.stages.generations[stage]
        self.send(
            StagePaused(
                stage=stage,
                generation=generation,
                reason="exchange paused",
                condition=self.condition(),
            )
        )

    def _on_shutdown(self) -> None:
        self.shut = True

    def pump(self) -> None:
        while self.mailbox:
            self.core.handle(self.mailbox.popleft())

    def send(self, message: object) -> Any:
        reply = self.core.handle(message)
        self.pump()
        return reply

    def advance(self, seconds: float) -> None:
        """Move time timer by timer, handling each timer's message before the next fires."""
        clock = self.scheduler.clock
        target = clock.monotonic() + seconds
        while True:
            due = [when for when, _ in self.scheduler.pending() if when <= target]
            if not due:
                break
            self.scheduler.advance(max(0.0, min(due) - clock.monotonic()))
            self.pump()
        self.scheduler.advance(max(0.0, target - clock.monotonic()))
        self.pump()

    def succeed(self, stage: str, result: Message | None = None) -> None:
        generation = self.stages.generations[stage]
        self.send(
            StageSucceeded(stage=stage, generation=generation, result=result or RESULTS[stage])
        )

    def incident(self, stage: str, kind: str, detail: str = "test") -> None:
        generation = self.stages.generations[stage]
        self.send(StreamIncident(stage=stage, generation=generation, kind=kind, detail=detail))  # type: ignore[arg-type]

    @property
    def state(self) -> State:
        return self.core.state

    def transitions(self) -> list[StateTransition]:
        return [e for e in self.events if isinstance(e, StateTransition)]

    def last(self, state: State) -> StateTransition:
        return [t for t in self.transitions() if t.to_state is state][-1]

    def to_ready(self) -> None:
        for spec in self.core.specs:
            self.succeed(spec.name)
