"""A 429 on the WebSocket upgrade is waited out, and the ORDERBOOK_CONNECT deadline waits too.

Kalshi answers 429 when an account has too many connections; the stream waits (seconds,
jittered) before trying again. That wait is the exchange's documented rate limit, not a
failure of the stage, so the orderbook stage reports it (``StageThrottled``) and the core
moves the stage's deadline past the wait. Over real sockets: the embedded exchange refuses
the first upgrades with 429, each wait is longer than the deadline, and the supervisor must
still reach READY with no failure, no ERROR and no restart.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kalshi_sim.exchange import EmbeddedExchange
from messages.events import StageFailureReported, StateTransition
from messages.states import State
from tests.harness import make_config, running_supervisor, start_exchange

DEADLINE = 1.0
"""ORDERBOOK_CONNECT's bound: shorter than any 429 wait below (2-4 s)."""
MAX_DELAY = 4.0
"""The stream's reconnect cap: a 429 waits between half of it and all of it."""
WAIT = 30.0


@pytest.fixture
def exchange() -> Iterator[EmbeddedExchange]:
    started = start_exchange(markets=4)
    try:
        yield started
    finally:
        started.stop()


def _rejections(exchange: EmbeddedExchange) -> int:
    return len(exchange.oplog.entries("ws_handshake_rejected"))


@pytest.mark.slow
def test_connect_when_upgrade_answers_429_twice_waits_it_out_and_reaches_ready_without_failing(
    exchange: EmbeddedExchange,
) -> None:
    exchange.ws.behaviour.upgrade_status = 429
    config = make_config(
        exchange,
        deadlines={State.ORDERBOOK_CONNECT: DEADLINE},
        reconnect_max_delay=MAX_DELAY,
    )
    with running_supervisor(exchange, config) as supervisor:
        assert exchange.oplog.wait_for(
            lambda ops: sum(o.kind == "ws_handshake_rejected" for o in ops) >= 2, WAIT
        ), "the stream never retried after its first 429"
        exchange.ws.behaviour.upgrade_status = None
        assert supervisor.wait_for_state(State.READY, WAIT)
        events = supervisor.recorder.events()

    states = [e.to_state for e in events if isinstance(e, StateTransition)]
    failures = [e for e in events if isinstance(e, StageFailureReported)]
    assert failures == []
    assert states[: states.index(State.READY) + 1] == [
        State.INITIALIZING,
        State.ORDERBOOK_CONNECT,
        State.TRADING_CLIENT_CONNECT,
        State.KALSHI_DATA_SYNC,
        State.READY,
    ]
    assert _rejections(exchange) >= 2  # each wait (>= 2 s) outlasted the 1 s deadline
