"""Every (state, target) pair of the table, and the metadata-class check on each move."""

from __future__ import annotations

import itertools

import pytest

from messages.metadata import (
    METADATA_FOR_STATE,
    ErrorMetadata,
    KalshiDataSyncMetadata,
    OrderbookConnectMetadata,
    ReadyMetadata,
    RecoveryMetadata,
    ShutdownMetadata,
    StartupMetadata,
    TradingClientConnectMetadata,
    TradingClientSummary,
    TradingReadyMetadata,
)
from messages.states import State
from supervision.state_machine import (
    TRANSITIONS,
    IllegalTransitionError,
    StateMachine,
    render_mermaid,
)

SAMPLE_METADATA = {
    StartupMetadata: StartupMetadata(
        environment="local", host="127.0.0.1:8005", log_level="INFO", mode="config"
    ),
    OrderbookConnectMetadata: OrderbookConnectMetadata(
        ws_url="ws://127.0.0.1:1/trade-api/ws/v2",
        markets=("A", "B"),
        market_count=2,
        environment="local",
    ),
    TradingClientConnectMetadata: TradingClientConnectMetadata(
        mode="paper", environment="local", api_url="http://127.0.0.1:1/trade-api/v2"
    ),
    KalshiDataSyncMetadata: KalshiDataSyncMetadata(mode="paper", sync_type="initial"),
    ReadyMetadata: ReadyMetadata(
        markets_connected=2,
        snapshots_received=2,
        deltas_received=0,
        connection_established=True,
        first_snapshot_received=True,
        environment="local",
    ),
    ErrorMetadata: ErrorMetadata(
        failed_state=State.READY,
        actor="orderbook",
        error_type="X",
        reason="y",
        restart_attempt=1,
        next_restart_in_ms=100,
    ),
    RecoveryMetadata: RecoveryMetadata(restart_attempt=1, restarting=("orderbook",)),
    ShutdownMetadata: ShutdownMetadata(reason="test"),
}

SEED_PATH = [
    State.INITIALIZING,
    State.ORDERBOOK_CONNECT,
    State.TRADING_CLIENT_CONNECT,
    State.KALSHI_DATA_SYNC,
    State.READY,
]


def metadata_for(target: State) -> object:
    return SAMPLE_METADATA[METADATA_FOR_STATE[target][0]]


def machine_in(state: State) -> StateMachine:
    """Drive a fresh machine into ``state`` along legal moves only."""
    machine = StateMachine()
    routes = {
        State.STARTUP: [],
        State.INITIALIZING: SEED_PATH[:1],
        State.ORDERBOOK_CONNECT: SEED_PATH[:2],
        State.TRADING_CLIENT_CONNECT: SEED_PATH[:3],
        State.KALSHI_DATA_SYNC: SEED_PATH[:4],
        State.READY: SEED_PATH,
        State.ERROR: [State.ERROR],
        State.SHUTDOWN: [State.SHUTDOWN],
    }
    for step in routes[state]:
        machine.transition(step, context="setup", metadata=metadata_for(step))
    assert machine.state is state
    return machine


@pytest.mark.parametrize(("source", "target"), list(itertools.product(State, State)))
def test_transition_when_pair_is_tried_matches_table(source: State, target: State) -> None:
    machine = machine_in(source)
    history_before = len(machine.history)
    if target in TRANSITIONS[source]:
        record = machine.transition(target, context="pair", metadata=metadata_for(target))
        assert machine.state is target
        assert (record.from_state, record.to_state) == (source, target)
        assert len(machine.history) == history_before + 1
    else:
        with pytest.raises(IllegalTransitionError, match=f"{source.name} -> {target.name}"):
            machine.transition(target, context="pair", metadata=metadata_for(target))
        assert machine.state is source
        assert len(machine.history) == history_before


def test_table_when_read_matches_the_seed() -> None:
    assert TRANSITIONS[State.STARTUP] == {State.INITIALIZING, State.ERROR, State.SHUTDOWN}
    assert TRANSITIONS[State.ORDERBOOK_CONNECT] == {
        State.TRADING_CLIENT_CONNECT,
        State.READY,
        State.ERROR,
        State.SHUTDOWN,
    }
    assert TRANSITIONS[State.READY] == {State.ORDERBOOK_CONNECT, State.ERROR, State.SHUTDOWN}
    assert TRANSITIONS[State.ERROR] == {State.STARTUP, State.SHUTDOWN}
    assert TRANSITIONS[State.SHUTDOWN] == frozenset()


LEGAL_MOVES = [(source, target) for source, targets in TRANSITIONS.items() for target in targets]


@pytest.mark.parametrize(("source", "target"), LEGAL_MOVES)
def test_transition_when_metadata_class_is_wrong_raises_and_stays(
    source: State, target: State
) -> None:
    for cls, wrong in SAMPLE_METADATA.items():
        if cls in METADATA_FOR_STATE[target]:
            continue
        machine = machine_in(source)
        with pytest.raises(IllegalTransitionError, match="metadata"):
            machine.transition(target, context="x", metadata=wrong)
        assert machine.state is source


def test_transition_when_trading_metadata_enters_orderbook_connect_raises() -> None:
    """The seed's bug, attempted directly: trading data cannot ride into ORDERBOOK_CONNECT."""
    machine = machine_in(State.INITIALIZING)
    ready_with_balance = TradingReadyMetadata(
        **SAMPLE_METADATA[ReadyMetadata].model_dump(),
        trading_client=TradingClientSummary(
            connected=True,
            mode="paper",
            balance=50000,
            portfolio_value=50000,
            positions=0,
            orders=0,
        ),
    )
    with pytest.raises(IllegalTransitionError):
        machine.transition(State.ORDERBOOK_CONNECT, context="x", metadata=ready_with_balance)


def test_history_when_moving_records_durations_and_order() -> None:
    ticks = iter([0.0, 0.5, 1.75])
    machine = StateMachine(monotonic=lambda: next(ticks), wall_clock=lambda: 1_800_000_000.0)
    machine.transition(State.INITIALIZING, context="a", metadata=metadata_for(State.INITIALIZING))
    machine.transition(
        State.ORDERBOOK_CONNECT, context="b", metadata=metadata_for(State.ORDERBOOK_CONNECT)
    )
    durations = [record.duration_ms for record in machine.history]
    assert durations == [500.0, 1250.0]
    assert [r.to_state for r in machine.history] == [State.INITIALIZING, State.ORDERBOOK_CONNECT]


def test_render_mermaid_when_called_lists_every_allowed_move() -> None:
    diagram = render_mermaid()
    for source, targets in TRANSITIONS.items():
        for target in targets:
            assert f"    {source.name} --> {target.name}" in diagram
    assert diagram.count("-->") == sum(len(t) for t in TRANSITIONS.values()) + 2


def test_readme_diagram_when_compared_with_table_is_identical() -> None:
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("```mermaid\n", 1)[1].split("```", 1)[0].strip()
    assert block == render_mermaid()
