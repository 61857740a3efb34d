"""Every connecting state and READY x every fault kind: heal in place, or ERROR -> ... -> READY.

A fault is injected *at* a state by an inline listener on the transition into it. It runs
on the supervisor's thread (ordinary listeners run on the event bus's thread) before the
stage is told to connect, so an actor fault is queued ahead of the stage's work and an
exchange fault is armed before the stage's first request: the fault really happens in that
state, not somewhere near it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pykka
import pytest

from actors.kalshi_sync import KalshiSyncActor
from actors.orderbook_connect import OrderbookConnectActor
from actors.trading_connect import TradingConnectActor
from app.handle import Supervisor
from kalshi_sim.exchange import EmbeddedExchange
from messages.events import (
    RestartScheduled,
    StateTransition,
    StreamHealed,
    SupervisorEvent,
)
from messages.faults import ExchangeFault, FaultTarget, InjectFault
from messages.states import State
from supervision.config import RestartSettings
from tests.harness import (
    ERROR_KEYS,
    READY_KEYS,
    RECOVERY_KEYS,
    SEED_KEYS,
    live_actor_count,
    make_config,
    running_supervisor,
    start_exchange,
)

pytestmark = pytest.mark.slow  # every fault in every state, each to a clean READY (~1 minute)

OC, TCC, KDS, READY = (
    State.ORDERBOOK_CONNECT,
    State.TRADING_CLIENT_CONNECT,
    State.KALSHI_DATA_SYNC,
    State.READY,
)
STAGE_OF = {OC: "orderbook", TCC: "trading", KDS: "sync"}
ACTOR_CLASS = {
    "orderbook": OrderbookConnectActor,
    "trading": TradingConnectActor,
    "sync": KalshiSyncActor,
}
DEADLINE = 1.5
WAIT = 20.0
SEED_KEYS_ANY_STATE = {
    **SEED_KEYS,
    READY: READY_KEYS | {"trading_client"},
    State.STARTUP: RECOVERY_KEYS,
}


@dataclass(frozen=True)
class Expect:
    """``errors``: (error_type, failed_state, stage) per ERROR; ``healed``: a stream_healed kind."""

    errors: tuple[tuple[str, State, str], ...] = ()
    healed: str | None = None


def error(error_type: str, state: State, stage: str, times: int = 1) -> Expect:
    return Expect(errors=((error_type, state, stage),) * times)


def crash_on_start(state: State, stage: str) -> Expect:
    """The crash itself, then the restarted actor failing in ``on_start`` one state earlier."""
    started_in = {"orderbook": State.INITIALIZING, "trading": OC, "sync": TCC}[stage]
    return Expect(
        errors=(
            ("InjectedFaultError", state, stage),
            ("InjectedFaultError", started_in, stage),
        )
    )


def actor_cases(state: State, stage: str) -> list[tuple[State, str, str, dict[str, Any], Expect]]:
    waits = "Unresponsive" if state is READY else "DeadlineExceeded"
    disconnect = (
        Expect(healed="reconnected")
        if (stage, state) == ("orderbook", READY)
        else Expect()
        if stage == "orderbook"
        else error("ConnectionLostError", state, stage)
    )
    return [
        (state, stage, "crash", {}, error("InjectedFaultError", state, stage)),
        (state, stage, "crash_on_start", {}, crash_on_start(state, stage)),
        (state, stage, "hang", {}, error(waits, state, stage)),
        (state, stage, "slow", {"seconds": 2 * DEADLINE}, error(waits, state, stage)),
        (state, stage, "bad_metadata", {}, error("BadMetadata", state, stage)),
        (state, stage, "disconnect", {}, disconnect),
    ]


def exchange_cases(state: State) -> list[tuple[State, str, str, dict[str, Any], Expect]]:
    rest_state = TCC if state is OC else state
    rest_stage = "trading" if state in (OC, TCC) else "sync"
    auth = {
        OC: error("StreamFailed", OC, "orderbook"),
        TCC: error("AuthenticationError", TCC, "trading"),
        KDS: error("AuthenticationError", KDS, "sync"),
        READY: error("AuthenticationError", READY, "sync"),
    }[state]
    in_ready = state is READY
    return [
        (state, "exchange", "ws_drop", {}, Expect(healed="reconnected" if in_ready else None)),
        (state, "exchange", "seq_gap", {}, Expect(healed="resynced" if in_ready else None)),
        (state, "exchange", "malformed_frame", {}, Expect()),
        (state, "exchange", "stall", {"seconds": 0.3}, Expect()),
        (
            state,
            "exchange",
            "rest_5xx",
            {"count": 5},
            error("ServerError", rest_state, rest_stage),
        ),
        (
            state,
            "exchange",
            "rest_429",
            {"count": 5},
            error("RateLimitedError", rest_state, rest_stage),
        ),
        (state, "exchange", "auth_reject", {"count": 1}, auth),
    ]


CASES = [
    *(case for state in (OC, TCC, KDS) for case in actor_cases(state, STAGE_OF[state])),
    *actor_cases(READY, "trading"),
    *actor_cases(READY, "orderbook")[:1],
    *actor_cases(READY, "orderbook")[5:],
    *actor_cases(READY, "sync")[:1],
    *(case for state in (OC, TCC, KDS, READY) for case in exchange_cases(state)),
]


def case_id(case: tuple[State, str, str, dict[str, Any], Expect]) -> str:
    state, target, fault, _, _ = case
    return f"{state.name}-{target}-{fault}"


class FaultAtState:
    """Listener: on the first transition into ``state``, apply the fault right there."""

    def __init__(self, state: State, fault: InjectFault, exchange: EmbeddedExchange) -> None:
        self.state = state
        self.fault = fault
        self.exchange = exchange
        self.fired = threading.Event()

    def __call__(self, event: SupervisorEvent) -> None:
        if self.fired.is_set() or not isinstance(event, StateTransition):
            return
        if event.to_state is not self.state:
            return
        self.fired.set()
        if self.fault.target == FaultTarget.EXCHANGE:
            apply_exchange_fault(self.exchange, self.fault)
            return
        refs = pykka.ActorRegistry.get_by_class(ACTOR_CLASS[self.fault.target])
        assert len(refs) == 1
        refs[0].tell(self.fault)


def apply_exchange_fault(exchange: EmbeddedExchange, fault: InjectFault) -> None:
    exchange.apply_fault(ExchangeFault(fault.fault), seconds=fault.seconds, count=fault.count)


@pytest.fixture
def exchange() -> Iterator[EmbeddedExchange]:
    exchange = start_exchange(markets=4, delta_rate=200.0)
    yield exchange
    exchange.stop()


def threads_now() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.is_alive()}


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_fault_when_injected_in_state_heals_or_restarts_to_clean_ready(
    case: tuple[State, str, str, dict[str, Any], Expect], exchange: EmbeddedExchange
) -> None:
    state, target, fault_name, options, expect = case
    fault = InjectFault(target=FaultTarget(target), fault=fault_name, **options)
    injector = FaultAtState(state, fault, exchange)
    config = make_config(
        exchange,
        deadlines={OC: DEADLINE, TCC: DEADLINE, KDS: DEADLINE},
        liveness_interval=0.05,
        liveness_timeout=0.3,
        sync_interval=0.1,
        restart=RestartSettings(
            min_backoff=0.01, max_backoff=0.02, random_factor=0.0, max_restarts=10, period=60
        ),
    )
    actors_before = live_actor_count()
    threads_before = threads_now()
    with running_supervisor(exchange, config, inline_listeners=[injector]) as supervisor:
        assert injector.fired.wait(WAIT), f"never entered {state.name}"
        settled = wait_settled(supervisor, expect)
        assert settled, (
            f"did not settle: {[t.to_state.name for t in supervisor.recorder.transitions()]}"
        )
        check_errors(supervisor, expect)
        check_clean_metadata(supervisor)
        check_books_equal_truth(supervisor, exchange)
    assert supervisor.state is State.SHUTDOWN
    assert live_actor_count() == actors_before
    assert exchange.ws.connection_count() == 0
    for thread in threads_now() - threads_before:
        thread.join(timeout=2.0)
    assert not {t for t in threads_now() - threads_before if t.is_alive()}


def wait_settled(supervisor: Supervisor, expect: Expect) -> bool:
    """READY after every expected ERROR (and after the expected heal, for in-place cases)."""

    def settled(events: list[SupervisorEvent]) -> bool:
        transitions = [e for e in events if isinstance(e, StateTransition)]
        errors = sum(1 for t in transitions if t.to_state is State.ERROR)
        if errors < len(expect.errors) or not transitions or transitions[-1].to_state is not READY:
            return False
        if expect.healed is not None:
            return any(isinstance(e, StreamHealed) and e.kind == expect.healed for e in events)
        return True

    return supervisor.recorder.wait_for(settled, WAIT) is not None


def check_errors(supervisor: Supervisor, expect: Expect) -> None:
    errors = [t for t in supervisor.recorder.transitions() if t.to_state is State.ERROR]
    observed = [(e.metadata.error_type, e.metadata.failed_state, e.metadata.actor) for e in errors]
    assert observed == list(expect.errors)
    for attempt, record in enumerate(errors, start=1):
        assert set(record.metadata.model_dump()) == ERROR_KEYS
        assert record.metadata.restart_attempt == attempt
        assert record.metadata.next_restart_in_ms is not None
    restarts = [e for e in supervisor.recorder.events() if isinstance(e, RestartScheduled)]
    assert len(restarts) == len(expect.errors)


def check_clean_metadata(supervisor: Supervisor) -> None:
    """Every transition, before and after recovery, carries exactly its own model's keys."""
    for record in supervisor.recorder.transitions():
        if record.to_state is State.ERROR:
            continue
        assert set(record.metadata.model_dump()) == SEED_KEYS_ANY_STATE[record.to_state], (
            record.to_state
        )
    ready = [t for t in supervisor.recorder.transitions() if t.to_state is READY][-1]
    assert ready.metadata.markets_connected == 4
    assert ready.metadata.connection_established is True


def check_books_equal_truth(supervisor: Supervisor, exchange: EmbeddedExchange) -> None:
    exchange.pause_stream()
    digests = supervisor.book_digests()
    assert digests == {t: exchange.markets.digest(t) for t in exchange.markets.tickers()}
