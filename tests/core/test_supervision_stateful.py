"""Random interleavings of faults, heals and time, against the real supervisor and exchange.

Invariants, checked after every step: READY is never entered unless every enabled stage
is connected; every transition's metadata is exactly its state's model; and once the
faults stop, the supervisor always ends READY or SHUTDOWN.
"""

from __future__ import annotations

import random
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from app.handle import Supervisor
from kalshi_sim.exchange import EmbeddedExchange
from messages.events import StateTransition
from messages.faults import InjectFault
from messages.metadata import METADATA_FOR_STATE, TradingReadyMetadata
from messages.states import State
from supervision.config import RestartSettings
from supervision.scheduler import ManualScheduler
from tests.core.test_fault_matrix import apply_exchange_fault
from tests.harness import make_config, start_exchange

pytestmark = pytest.mark.slow  # random fault interleavings (~15 s)

MARKETS = 3
STAGE_STATES = [State.ORDERBOOK_CONNECT, State.TRADING_CLIENT_CONNECT, State.KALSHI_DATA_SYNC]
ACTOR_FAULTS = st.sampled_from(
    [
        ("crash", {}),
        ("crash_on_start", {}),
        ("disconnect", {}),
        ("bad_metadata", {}),
        ("hang", {}),
        ("slow", {"seconds": 0.3}),
    ]
)
EXCHANGE_FAULTS = st.sampled_from(
    [
        ("ws_drop", {}),
        ("seq_gap", {}),
        ("malformed_frame", {}),
        ("stall", {"seconds": 0.2}),
        ("rest_5xx", {"count": 2}),
        ("rest_5xx", {"count": 6}),
        ("rest_429", {"count": 3}),
        ("auth_reject", {"count": 1}),
    ]
)


class SupervisorUnderFaults(RuleBasedStateMachine):
    exchange: ClassVar[EmbeddedExchange | None] = None

    def __init__(self) -> None:
        super().__init__()
        exchange = type(self).exchange
        assert exchange is not None
        exchange.faults.clear()
        exchange.ws.unstall()
        exchange.ws.resume()
        self.exchange = exchange
        self.scheduler = ManualScheduler()
        config = make_config(
            exchange,
            liveness_interval=0.2,
            liveness_timeout=0.1,
            heal_timeout=0.5,
            sync_interval=0.7,
            restart=RestartSettings(
                min_backoff=0.05, max_backoff=0.4, random_factor=0.2, max_restarts=50, period=60.0
            ),
        )
        from kalshi_api.auth import load_signer

        self.supervisor = Supervisor(
            config,
            load_signer(exchange.key_id, exchange.private_key_path),
            exchange=exchange,
            scheduler=self.scheduler,
            rng=random.Random(0),
        ).start()
        assert self.supervisor.wait_for_state(State.READY, 10.0)

    @rule(stage=st.sampled_from(["orderbook", "trading", "sync"]), fault=ACTOR_FAULTS)
    def inject_actor_fault(self, stage: str, fault: tuple[str, dict[str, Any]]) -> None:
        name, options = fault
        self.supervisor.inject(InjectFault(target=stage, fault=name, **options))

    @rule(fault=EXCHANGE_FAULTS)
    def inject_exchange_fault(self, fault: tuple[str, dict[str, Any]]) -> None:
        name, options = fault
        apply_exchange_fault(self.exchange, InjectFault(target="exchange", fault=name, **options))

    @rule(seconds=st.sampled_from([0.01, 0.1, 0.3, 1.0, 3.0]))
    def let_time_pass(self, seconds: float) -> None:
        self.scheduler.advance(seconds)

    @invariant()
    def ready_only_when_every_stage_is_connected(self) -> None:
        transitions = self.supervisor.recorder.transitions()
        since_startup: list[State] = []
        for record in transitions:
            if record.to_state in (State.STARTUP, State.ERROR):
                since_startup = []
            elif record.to_state is State.READY:
                assert record.metadata.connection_established
                assert record.metadata.markets_connected == MARKETS
                assert isinstance(record.metadata, TradingReadyMetadata)
                assert record.metadata.trading_client.connected
                assert [s for s in since_startup if s in STAGE_STATES] == STAGE_STATES
                since_startup = []
            else:
                since_startup.append(record.to_state)

    @invariant()
    def metadata_is_exactly_the_states_model(self) -> None:
        for record in self.supervisor.recorder.transitions():
            assert isinstance(record, StateTransition)
            assert type(record.metadata) in METADATA_FOR_STATE[record.to_state]
            assert set(record.metadata.model_dump()) == set(type(record.metadata).model_fields)

    def teardown(self) -> None:
        try:
            self.final_heal()
        finally:
            self.supervisor.shutdown(timeout=3.0)
            self.exchange.faults.clear()
            self.exchange.ws.unstall()

    def final_heal(self) -> None:
        """Stop breaking things; time alone must bring the supervisor to READY or SHUTDOWN."""
        self.exchange.faults.clear()
        self.exchange.ws.unstall()
        recorder = self.supervisor.recorder
        for _ in range(60):
            self.scheduler.advance(0.5)
            settled = recorder.wait_for(
                lambda events: recorder.state in (State.READY, State.SHUTDOWN), 1.0
            )
            if settled and self._quiet():
                break
        assert recorder.state in (State.READY, State.SHUTDOWN), recorder.states()[-8:]

    def _quiet(self) -> bool:
        """READY (or SHUTDOWN) with no restart pending and no stage stuck behind a fault."""
        if self.supervisor.state is State.SHUTDOWN:
            return True
        pending = {name for _, name in self.scheduler.pending()}
        return "restart" not in pending and "deadline" not in pending


@pytest.fixture(scope="module")
def shared_exchange() -> Any:
    exchange = start_exchange(markets=MARKETS, delta_rate=100.0)
    SupervisorUnderFaults.exchange = exchange
    yield exchange
    SupervisorUnderFaults.exchange = None
    exchange.stop()


def test_supervisor_when_faults_interleave_randomly_keeps_invariants(shared_exchange: Any) -> None:
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(
        SupervisorUnderFaults,
        settings=settings(
            max_examples=15,
            stateful_step_count=10,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        ),
    )
