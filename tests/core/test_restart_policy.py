"""The supervisor applies its restart policy exactly: backoff, intensity, restart types, ask paths.

Time is a ``ManualScheduler``: a restart happens only when the test advances the clock by
the delay the ERROR metadata announced, so delays are checked to the millisecond and
nothing waits on the wall clock.
"""

from __future__ import annotations

import ast
import random
from collections.abc import Iterator
from pathlib import Path

import pykka
import pytest

from actors.base import InjectedFaultError
from actors.trading_connect import TradingConnectActor
from app.handle import Supervisor
from kalshi_sim.exchange import EmbeddedExchange
from messages.commands import Ping
from messages.events import Escalation, StageDropped, StreamInterrupted, SupervisorEvent
from messages.faults import InjectFault
from messages.metadata import ErrorMetadata, ReadyMetadata, ShutdownMetadata
from messages.states import State
from supervision.config import RestartSettings
from supervision.policy import BackoffPolicy, RestartType
from supervision.scheduler import ManualScheduler
from tests.harness import WAIT, make_config, running_supervisor, start_exchange

QUIET = {"liveness_interval": 1000.0, "sync_interval": 1000.0}
FAR_DEADLINES = {
    State.INITIALIZING: 1000.0,
    State.ORDERBOOK_CONNECT: 1000.0,
    State.TRADING_CLIENT_CONNECT: 1000.0,
    State.KALSHI_DATA_SYNC: 1000.0,
}


@pytest.fixture
def exchange() -> Iterator[EmbeddedExchange]:
    exchange = start_exchange(markets=3)
    yield exchange
    exchange.stop()


def crash_and_wait_error(supervisor: Supervisor, target: str = "trading") -> ErrorMetadata:
    seen = supervisor.recorder.last_id
    assert supervisor.inject(InjectFault(target=target, fault="crash"))["accepted"]
    record = supervisor.recorder.wait_for_state(State.ERROR, WAIT, after=seen)
    assert record is not None
    assert isinstance(record.metadata, ErrorMetadata)
    return record.metadata


def _timer_names(scheduler: ManualScheduler) -> list[str]:
    return [name for _, name in scheduler.pending()]


def test_backoff_when_stage_keeps_crashing_delays_follow_policy_exactly(
    exchange: EmbeddedExchange,
) -> None:
    settings = RestartSettings(
        min_backoff=0.1,
        max_backoff=1.0,
        random_factor=0.5,
        max_restarts=20,
        period=1000.0,
        reset_after=1000.0,
    )
    scheduler = ManualScheduler()
    config = make_config(exchange, restart=settings, deadlines=FAR_DEADLINES, **QUIET)
    expected_rng = random.Random(42)
    policy = BackoffPolicy(min_backoff=0.1, max_backoff=1.0, random_factor=0.5, reset_after=1000.0)
    with running_supervisor(exchange, config, scheduler=scheduler, rng=random.Random(42)) as sup:
        assert sup.wait_for_state(State.READY, WAIT)
        for attempt in range(1, 7):
            metadata = crash_and_wait_error(sup)
            expected_ms = round(policy.delay(attempt - 1, expected_rng) * 1000)
            assert metadata.restart_attempt == attempt
            assert metadata.next_restart_in_ms == expected_ms
            seen = sup.recorder.last_id
            # The restart timer is armed before ERROR is announced, so it is pending now;
            # its due time is the announced delay (the announcement rounds to 1 ms).
            (due,) = [when for when, name in scheduler.pending() if name == "restart"]
            assert abs(due - scheduler.clock.monotonic() - expected_ms / 1000) <= 0.0005
            scheduler.advance(due - scheduler.clock.monotonic() - 0.0005)
            assert "restart" in _timer_names(scheduler), "restarted before its backoff elapsed"
            assert sup.state is State.ERROR
            scheduler.advance(0.001)
            assert "restart" not in _timer_names(scheduler)
            assert sup.recorder.wait_for_state(State.READY, WAIT, after=seen)


def test_intensity_when_exceeded_gives_up_and_shuts_down_with_reason(
    exchange: EmbeddedExchange,
) -> None:
    settings = RestartSettings(min_backoff=0.01, max_backoff=0.01, max_restarts=2, period=1000.0)
    scheduler = ManualScheduler()
    config = make_config(exchange, restart=settings, deadlines=FAR_DEADLINES, **QUIET)
    with running_supervisor(exchange, config, scheduler=scheduler) as sup:
        assert sup.wait_for_state(State.READY, WAIT)
        for _ in range(2):
            crash_and_wait_error(sup)
            seen = sup.recorder.last_id
            scheduler.advance(0.02)
            assert sup.recorder.wait_for_state(State.READY, WAIT, after=seen)
        final = crash_and_wait_error(sup)
        assert final.next_restart_in_ms is None
        shutdown = sup.recorder.wait_for_state(State.SHUTDOWN, WAIT)
        assert shutdown is not None
        assert isinstance(shutdown.metadata, ShutdownMetadata)
        assert "max_restarts=2" in shutdown.metadata.reason
        assert shutdown.from_state is State.ERROR
        gave_up = [e for e in sup.recorder.events() if isinstance(e, Escalation)]
        assert len(gave_up) == 1
        assert sup.stopped.wait(WAIT)


def test_handler_raising_under_ask_is_reported_and_restarted(exchange: EmbeddedExchange) -> None:
    """pykka returns an ask's exception to the asker only; the stage reports it anyway."""
    with running_supervisor(exchange) as sup:
        assert sup.wait_for_state(State.READY, WAIT)
        seen = sup.recorder.last_id
        (trading,) = pykka.ActorRegistry.get_by_class(TradingConnectActor)
        with pytest.raises(InjectedFaultError):
            trading.ask(InjectFault(target="trading", fault="crash"), timeout=WAIT)
        error = sup.recorder.wait_for_state(State.ERROR, WAIT, after=seen)
        assert error is not None
        assert error.metadata.actor == "trading"
        assert error.metadata.error_type == "InjectedFaultError"
        assert sup.recorder.wait_for_state(State.READY, WAIT, after=seen)


def test_one_for_one_when_trading_fails_keeps_sync_actor(exchange: EmbeddedExchange) -> None:
    from supervision.policy import Strategy

    config = make_config(exchange, restart=RestartSettings(strategy=Strategy.ONE_FOR_ONE))
    with running_supervisor(exchange, config) as sup:
        assert sup.wait_for_state(State.READY, WAIT)
        seen = sup.recorder.last_id
        crash_and_wait_error(sup)
        recovery = sup.recorder.wait_for_state(State.STARTUP, WAIT, after=seen)
        assert recovery is not None
        assert recovery.metadata.restarting == ("trading",)
        assert sup.recorder.wait_for_state(State.READY, WAIT, after=seen)
        sync = [t for t in sup.recorder.transitions() if t.to_state is State.KALSHI_DATA_SYNC]
        assert sync[-1].metadata.sync_type == "update"


def test_rest_for_one_when_orderbook_fails_restarts_all_three(exchange: EmbeddedExchange) -> None:
    with running_supervisor(exchange) as sup:
        assert sup.wait_for_state(State.READY, WAIT)
        seen = sup.recorder.last_id
        crash_and_wait_error(sup, target="orderbook")
        recovery = sup.recorder.wait_for_state(State.STARTUP, WAIT, after=seen)
        assert recovery is not None
        assert recovery.metadata.restarting == ("orderbook", "trading", "sync")
        assert sup.recorder.wait_for_state(State.READY, WAIT, after=seen)
        sync = [t for t in sup.recorder.transitions() if t.to_state is State.KALSHI_DATA_SYNC]
        assert sync[-1].metadata.sync_type == "initial"


def test_temporary_sync_when_failing_is_dropped_with_trading_to_orderbook_only(
    exchange: EmbeddedExchange,
) -> None:
    settings = RestartSettings(restart_types={"sync": RestartType.TEMPORARY}, min_backoff=0.01)
    with running_supervisor(exchange, make_config(exchange, restart=settings)) as sup:
        assert sup.wait_for_state(State.READY, WAIT)
        (trading,) = pykka.ActorRegistry.get_by_class(TradingConnectActor)
        seen = sup.recorder.last_id
        metadata = crash_and_wait_error(sup, target="sync")
        assert metadata.restart_attempt == 0
        ready = sup.recorder.wait_for_state(State.READY, WAIT, after=seen)
        assert ready is not None
        assert type(ready.metadata) is ReadyMetadata
        dropped = [e for e in sup.recorder.events() if isinstance(e, StageDropped)]
        assert [d.stage for d in dropped] == ["trading", "sync"]
        after = [
            t.to_state for t in sup.recorder.transitions() if t.timestamp >= dropped[0].timestamp
        ]
        assert after == [
            State.ERROR,
            State.STARTUP,
            State.INITIALIZING,
            State.ORDERBOOK_CONNECT,
            State.READY,
        ]
        # stops run off the supervisor's thread: READY may come before the stop ends
        assert trading.actor_stopped.wait(WAIT)
        assert not pykka.ActorRegistry.get_by_class(TradingConnectActor)


def test_inject_when_stage_is_not_running_is_refused_with_reason(
    exchange: EmbeddedExchange,
) -> None:
    with running_supervisor(exchange, make_config(exchange, trading_enabled=False)) as sup:
        assert sup.wait_for_state(State.READY, WAIT)
        reply = sup.inject(InjectFault(target="trading", fault="crash"))
        assert reply == {"accepted": False, "error": "no running trading stage"}
        assert sup.state is State.READY


def test_supervisor_when_sent_garbage_ignores_it_and_stays_ready(
    exchange: EmbeddedExchange,
) -> None:
    with running_supervisor(exchange) as sup:
        assert sup.wait_for_state(State.READY, WAIT)
        assert sup.ref is not None
        sup.ref.tell({"cmd": "drop tables"})
        sup.ref.tell("crash please")
        assert sup.ref.ask(Ping(), timeout=WAIT) is True
        assert sup.state is State.READY


PRODUCT_SOURCES = [
    path
    for folder in (
        "actors", "app", "cli", "core", "messages", "kalshi_api", "kalshi_sim", "supervision"
    )
    for path in (Path(__file__).parents[2] / folder).glob("*.py")
] + [Path(__file__).parents[2] / "supervisor.py"]


@pytest.mark.parametrize("path", PRODUCT_SOURCES, ids=lambda p: p.name)
def test_source_when_scanned_has_no_ask_or_get_without_timeout(path: Path) -> None:
    """A blocking ask or future.get() with no timeout can hang forever when racing a stop."""
    tree = ast.parse(path.read_text())
    offenders = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        keywords = {k.arg for k in node.keywords}
        name = node.func.attr
        receiver = ast.unparse(node.func.value)
        if name == "ask" and "timeout" not in keywords:
            is_nonblocking = any(
                k.arg == "block" and isinstance(k.value, ast.Constant) and k.value.value is False
                for k in node.keywords
            )
            if not is_nonblocking:
                offenders.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
        if name == "get" and "future" in receiver.lower() and "timeout" not in keywords:
            offenders.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
        if name == "stop" and "block" in keywords and "timeout" not in keywords:
            offenders.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    assert offenders == []


def test_heal_timer_when_a_failure_interrupts_healing_is_rearmed_after_recovery(
    exchange: EmbeddedExchange,
) -> None:
    """A heal timer left over from before an ERROR must not block the next one."""
    scheduler = ManualScheduler()
    settings = RestartSettings(min_backoff=0.01, max_backoff=0.01, random_factor=0.0)
    config = make_config(
        exchange, restart=settings, deadlines=FAR_DEADLINES, heal_timeout=1.0, **QUIET
    )

    def interrupted(events: list[SupervisorEvent]) -> bool:
        return any(isinstance(e, StreamInterrupted) for e in events)

    with running_supervisor(exchange, config, scheduler=scheduler) as sup:
        assert sup.wait_for_state(State.READY, WAIT)
        seen = sup.recorder.last_id
        exchange.ws.stall(None)
        exchange.ws.drop_connections()
        assert sup.recorder.wait_for(interrupted, WAIT, after=seen)
        crash_and_wait_error(sup)
        exchange.ws.unstall()
        seen = sup.recorder.last_id
        scheduler.advance(0.01)
        assert sup.recorder.wait_for_state(State.READY, WAIT, after=seen)

        seen = sup.recorder.last_id
        exchange.ws.stall(None)
        exchange.ws.drop_connections()
        assert sup.recorder.wait_for(interrupted, WAIT, after=seen)
        scheduler.advance(1.0)
        assert sup.recorder.wait_for_state(State.ORDERBOOK_CONNECT, WAIT, after=seen)
        exchange.ws.unstall()
        assert sup.recorder.wait_for_state(State.READY, WAIT, after=seen)
