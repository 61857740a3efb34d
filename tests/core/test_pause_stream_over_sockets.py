"""Exchange pauses that take the WebSocket down, over real sockets: never a stage failure.

While the whole exchange is paused the embedded exchange drops open sessions and refuses
upgrades (503) [MP]; other endpoints answer 503. The supervisor must wait that out: no
``stage_failure`` / ``restart_scheduled``, no ERROR, no exit; heal timeouts and stage
deadlines are held during the pause and the stream reconnects once the exchange resumes.
Every pause here outlasts ``heal_timeout`` + the stage deadline, and with ``max_restarts=0``
a single failure would shut the supervisor down. Waits are on events and the exchange's
operation log only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pytest

from kalshi_sim.exchange import EmbeddedExchange
from kalshi_sim.oplog import Operation
from messages.events import (
    ExchangePaused,
    ExchangeResumed,
    StateTransition,
    StreamHealed,
    StreamInterrupted,
    SupervisorEvent,
)
from messages.exchange import PauseTiming
from messages.states import State
from tests.core.pause_support import NO_RESTARTS, STATUS_PATH, failures, of, resume_to_ready
from tests.harness import WAIT, make_config, running_supervisor, start_exchange

pytestmark = pytest.mark.slow  # exchange pauses waited out over sockets: seconds each

QUICK_POLLS = PauseTiming(min_poll=0.05, max_poll=0.2)
"""Status re-checks during a pause: short, so the tests wait less for each one."""


@pytest.fixture
def exchange() -> Iterator[EmbeddedExchange]:
    started = start_exchange(markets=4)
    try:
        yield started
    finally:
        started.stop()


def wait_ops(exchange: EmbeddedExchange, kind: str, more: int, detail: str | None = None) -> None:
    """Wait until the exchange logged ``more`` further operations of ``kind`` (and ``detail``)."""

    def count(entries: Iterable[Operation]) -> int:
        return sum(1 for op in entries if op.kind == kind and detail in (None, op.detail))

    target = count(exchange.oplog.entries()) + more
    assert exchange.oplog.wait_for(lambda entries: count(entries) >= target, WAIT)


def test_exchange_pause_dropping_the_stream_in_ready_keeps_ready_and_heals_on_resume(
    exchange: EmbeddedExchange,
) -> None:
    config = make_config(
        exchange,
        heal_timeout=0.3,
        deadlines={State.ORDERBOOK_CONNECT: 0.5},
        exchange_check_interval=3600.0,  # the pause is found by the held heal timeout
        pause_timing=QUICK_POLLS,
        restart=NO_RESTARTS,
    )
    with running_supervisor(exchange, config) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        exchange.status.pause_exchange()
        # Two sessions: the orderbook stream's and the trading stage's private channels'.
        assert exchange.oplog.entries("ws_dropped_for_pause")[0].detail == "2"
        assert supervisor.recorder.wait_for(of(StreamInterrupted), WAIT)
        paused = supervisor.recorder.wait_for(of(ExchangePaused), WAIT)
        assert paused is not None and [(e.exchange_index, e.scope) for e in paused] == [
            (None, "exchange")
        ]
        # Past heal_timeout + the deadline: three refused reconnects of each socket take at
        # least 0.125 + 0.25 + 0.5 s of backoff; the supervisor keeps re-checking, still READY.
        wait_ops(exchange, "ws_handshake_rejected", 6)
        wait_ops(exchange, "rest", 4, STATUS_PATH)
        assert supervisor.state is State.READY
        assert failures(supervisor) == []
        exchange.status.resume()
        assert supervisor.recorder.wait_for(of(ExchangeResumed), WAIT)
        healed = supervisor.recorder.wait_for(of(StreamHealed), WAIT)
        assert healed is not None and healed[0].kind == "reconnected"
        assert supervisor.recorder.states() == [
            State.INITIALIZING,
            State.ORDERBOOK_CONNECT,
            State.TRADING_CLIENT_CONNECT,
            State.KALSHI_DATA_SYNC,
            State.READY,
        ]
        assert failures(supervisor) == []
        assert supervisor.recorder.status()["exchange_pauses"] == []
        exchange.pause_stream()  # the healed books are the exchange's truth again
        digests = supervisor.book_digests()
        assert digests == {t: exchange.markets.digest(t) for t in exchange.markets.tickers()}


def test_exchange_pause_refusing_upgrades_at_startup_outlasts_the_deadline_then_ready(
    exchange: EmbeddedExchange,
) -> None:
    def pause_on_orderbook_connect(event: SupervisorEvent) -> None:
        if isinstance(event, StateTransition) and event.to_state is State.ORDERBOOK_CONNECT:
            exchange.status.pause_exchange()  # before the stream's first upgrade

    config = make_config(
        exchange,
        deadlines={State.ORDERBOOK_CONNECT: 0.5},
        reconnect_max_delay=0.5,
        pause_timing=QUICK_POLLS,
        restart=NO_RESTARTS,
    )
    inline = [pause_on_orderbook_connect]
    with running_supervisor(exchange, config, inline_listeners=inline) as supervisor:
        assert supervisor.recorder.wait_for(of(ExchangePaused), WAIT)
        # Six refused upgrades take at least 0.125 + 4 x 0.25 s of backoff: past the 0.5 s
        # deadline, which is held, not failed.
        wait_ops(exchange, "ws_handshake_rejected", 6, "HTTP 503 (exchange paused)")
        wait_ops(exchange, "rest", 3, STATUS_PATH)
        assert supervisor.state is State.ORDERBOOK_CONNECT
        assert exchange.oplog.entries("ws_handshake") == []
        assert failures(supervisor) == []
        resume_to_ready(exchange, supervisor)


def test_exchange_pause_beginning_at_the_balance_read_is_waited_out_not_a_restart(
    exchange: EmbeddedExchange,
) -> None:
    # The status read just before said "active"; the balance read is the first one refused
    # (503, a ServerError after the client's retries). The stage reads the status once more
    # before reporting: paused, so it waits instead of failing.
    exchange.status.pause_exchange_at("/portfolio/balance")
    with running_supervisor(exchange, make_config(exchange, restart=NO_RESTARTS)) as supervisor:
        paused = supervisor.recorder.wait_for(of(ExchangePaused), WAIT)
        assert paused is not None and paused[0].scope == "exchange"
        assert exchange.status.exchange_paused
        assert failures(supervisor) == []
        resume_to_ready(exchange, supervisor)


def test_exchange_pause_refusing_the_first_upgrade_is_announced_by_the_orderbook_stage(
    exchange: EmbeddedExchange,
) -> None:
    # No bound expires here (a 60 s deadline) and there is no routine check before READY:
    # only the stage reading the status after its 503 upgrade refusal can show the pause.
    def pause_on_orderbook_connect(event: SupervisorEvent) -> None:
        if isinstance(event, StateTransition) and event.to_state is State.ORDERBOOK_CONNECT:
            exchange.status.pause_exchange()

    config = make_config(
        exchange,
        deadlines={State.ORDERBOOK_CONNECT: 60.0},
        pause_timing=QUICK_POLLS,
        restart=NO_RESTARTS,
    )
    inline = [pause_on_orderbook_connect]
    with running_supervisor(exchange, config, inline_listeners=inline) as supervisor:
        paused = supervisor.recorder.wait_for(of(ExchangePaused), WAIT)
        assert paused is not None and [(e.exchange_index, e.scope) for e in paused] == [
            (None, "exchange")
        ]
        assert supervisor.state is State.ORDERBOOK_CONNECT
        assert exchange.oplog.entries("ws_handshake_rejected") != []
        exchange.status.resume()
        assert supervisor.recorder.wait_for(of(ExchangeResumed), WAIT)
        assert supervisor.wait_for_state(State.READY, WAIT)
        assert failures(supervisor) == []
