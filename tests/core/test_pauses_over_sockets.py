"""Exchange pauses over real sockets: the embedded exchange paused, the supervisor waiting.

A pause is a condition of the exchange [MP]: no ERROR, no restart, no exit; the books stay
live where the stream is up; ``exchange_paused`` / ``exchange_resumed`` events and
``/status`` show it; READY follows the resume.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from kalshi_sim.exchange import EmbeddedExchange
from messages.events import (
    ExchangePaused,
    ExchangeResumed,
    StateTransition,
    SupervisorEvent,
)
from messages.states import State
from tests.core.pause_support import (
    NO_RESTARTS,
    failures,
    of,
    resume_to_ready,
    wait_status_reads,
)
from tests.harness import WAIT, make_config, running_supervisor, start_exchange

pytestmark = pytest.mark.slow  # exchange pauses waited out over sockets: seconds each


@pytest.fixture
def exchange() -> Iterator[EmbeddedExchange]:
    started = start_exchange(markets=4)
    try:
        yield started
    finally:
        started.stop()


def pause_on_entering(
    state: State, exchange: EmbeddedExchange, **pause: object
) -> Callable[[SupervisorEvent], None]:
    """Pause the whole exchange the moment ``state`` is entered (before its stage connects)."""

    def listener(event: SupervisorEvent) -> None:
        if isinstance(event, StateTransition) and event.to_state is state:
            exchange.status.pause_exchange(**pause)  # type: ignore[arg-type]

    return listener


def test_exchange_pause_in_trading_connect_waits_with_books_live_then_ready(
    exchange: EmbeddedExchange,
) -> None:
    config = make_config(
        exchange, deadlines={State.TRADING_CLIENT_CONNECT: 0.5}, restart=NO_RESTARTS
    )
    # This exchange keeps open sessions through its pause (Kalshi only says they *may* drop):
    # the books must then stay live. The dropping variant is tested below.
    exchange.ws.behaviour.drop_on_exchange_pause = False
    inline = [pause_on_entering(State.TRADING_CLIENT_CONNECT, exchange, resume_at=None)]
    with running_supervisor(exchange, config, inline_listeners=inline) as supervisor:
        paused = supervisor.recorder.wait_for(of(ExchangePaused), WAIT)
        assert paused is not None
        assert [(e.exchange_index, e.scope) for e in paused] == [(None, "exchange")]
        wait_status_reads(exchange, 4)  # 0.25+0.5+1+1 s: past the 0.5 s deadline
        assert supervisor.state is State.TRADING_CLIENT_CONNECT
        assert failures(supervisor) == []
        status = supervisor.recorder.status()
        assert [(p["exchange_index"], p["scope"]) for p in status["exchange_pauses"]] == [
            (None, "exchange")
        ]
        exchange.pause_stream()  # books still track the exchange during the pause
        digests = supervisor.book_digests()
        assert digests == {t: exchange.markets.digest(t) for t in exchange.markets.tickers()}
        exchange.resume_stream()
        resume_to_ready(exchange, supervisor)
        assert supervisor.recorder.status()["exchange_pauses"] == []


def test_exchange_pause_before_start_waits_in_initializing_then_reaches_ready(
    exchange: EmbeddedExchange,
) -> None:
    # The pause outlasts INITIALIZING's deadline (2 s against 1 s): only a suspended deadline
    # lets the supervisor wait it out without a failure.
    estimate = datetime.now(UTC) + timedelta(seconds=2)
    exchange.status.pause_exchange(resume_at=estimate)
    config = make_config(
        exchange, deadlines={State.INITIALIZING: 1.0}, market_count=4, restart=NO_RESTARTS
    )
    with running_supervisor(exchange, config) as supervisor:
        paused = supervisor.recorder.wait_for(of(ExchangePaused), WAIT)
        assert paused is not None
        assert paused[0].resume_estimate is not None
        assert abs((paused[0].resume_estimate - estimate).total_seconds()) < 0.01
        while datetime.now(UTC) <= estimate:  # re-checked past the estimate, still paused
            wait_status_reads(exchange, 1)
        wait_status_reads(exchange, 1)
        assert supervisor.state is State.INITIALIZING
        assert failures(supervisor) == []
        exchange.status.resume()
        assert supervisor.wait_for_state(State.READY, WAIT)
        assert failures(supervisor) == []
        assert State.ERROR not in supervisor.recorder.states()
        assert supervisor.recorder.wait_for(of(ExchangeResumed), WAIT)


def test_trading_pause_while_ready_is_an_event_and_a_status_then_resumes(
    exchange: EmbeddedExchange,
) -> None:
    config = make_config(exchange, exchange_check_interval=0.2)
    with running_supervisor(exchange, config) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        estimate = datetime.now(UTC) + timedelta(hours=2)
        exchange.status.pause_trading(resume_at=estimate)  # the weekly pause: every shard
        paused = supervisor.recorder.wait_for(of(ExchangePaused), WAIT)
        assert paused is not None
        assert [(e.exchange_index, e.scope) for e in paused] == [(None, "trading")]
        status = supervisor.recorder.status()
        assert status["state"] == State.READY.value
        assert [(p["exchange_index"], p["scope"]) for p in status["exchange_pauses"]] == [
            (None, "trading")
        ]
        exchange.status.resume()
        resumed = supervisor.recorder.wait_for(of(ExchangeResumed), WAIT)
        assert resumed is not None and resumed[0].exchange_index is None
        assert supervisor.recorder.status()["exchange_pauses"] == []
        assert supervisor.recorder.states()[-1] is State.READY
        assert failures(supervisor) == []


def test_one_shard_paused_at_start_is_shown_and_ready_is_reached(
    exchange: EmbeddedExchange,
) -> None:
    exchange.status.pause_trading(2)
    with running_supervisor(exchange) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        events = supervisor.recorder.events()
        paused = [e for e in events if isinstance(e, ExchangePaused)]
        assert [(e.exchange_index, e.scope) for e in paused] == [(2, "trading")]
        ready_at = next(
            i
            for i, e in enumerate(events)
            if isinstance(e, StateTransition) and e.to_state is State.READY
        )
        assert events.index(paused[0]) < ready_at


def test_exchange_pause_while_ready_keeps_ready_through_update_syncs_then_resumes(
    exchange: EmbeddedExchange,
) -> None:
    config = make_config(
        exchange, sync_interval=0.1, exchange_check_interval=3600.0, restart=NO_RESTARTS
    )
    with running_supervisor(exchange, config) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        exchange.status.pause_exchange()
        paused = supervisor.recorder.wait_for(of(ExchangePaused), WAIT)
        assert paused is not None and paused[0].scope == "exchange"
        wait_status_reads(exchange, 3)
        assert supervisor.recorder.states()[-1] is State.READY
        assert failures(supervisor) == []
        exchange.status.resume()
        assert supervisor.recorder.wait_for(of(ExchangeResumed), WAIT)
        assert supervisor.recorder.states()[-1] is State.READY
        assert failures(supervisor) == []
