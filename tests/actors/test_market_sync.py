"""Issue 8 through the whole supervisor: closed markets, lifecycle events and counters.

Over real sockets against the embedded exchange: a closed ticker named in ``--markets``
must not block startup (before: READY never came, or error 11 made a reconnect storm), a
market determined while READY is dropped with an event and READY holds, and the stream's
counters reach the events and ``/status``.
"""

from __future__ import annotations

from typing import Any

import pytest

from kalshi_sim.exchange import EmbeddedExchange
from messages.events import StreamNotice, SupervisorEvent
from messages.states import State
from tests.harness import WAIT, make_config, metadata_of, running_supervisor


def _notices(events: list[SupervisorEvent]) -> list[StreamNotice]:
    return [e for e in events if isinstance(e, StreamNotice)]


@pytest.mark.parametrize("answer", ["nothing", "error", "error_unnamed"])
def test_closed_ticker_in_markets_is_dropped_and_startup_reaches_ready(
    exchange: EmbeddedExchange, answer: Any
) -> None:
    tickers = tuple(exchange.markets.tickers()[:4])
    closed = tickers[1]
    exchange.ws.set_market_status(closed, "closed")
    exchange.ws.behaviour.closed_answer = answer
    config = make_config(exchange, markets=tickers, trading_enabled=False, request_timeout=1.0)
    with running_supervisor(exchange, config) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        assert metadata_of(supervisor, State.READY)["markets_connected"] == 3
        assert supervisor.recorder.wait_for(_notices, WAIT)
        (notice,) = _notices(supervisor.recorder.events())
        # Listed closed by INITIALIZING's own lookup: dropped at once, never subscribed.
        assert (notice.kind, notice.detail) == (
            "market_dropped",
            f"{closed}: closed (listed so at startup)",
        )
        assert notice.counters["markets_dropped"] == 1
        assert supervisor.recorder.status()["stream"]["markets_dropped"] == 1
        assert len(exchange.oplog.entries("ws_handshake")) == 1, "no reconnect storm"
        assert State.ERROR not in supervisor.recorder.states()


def test_market_determined_while_ready_is_dropped_and_ready_holds(
    exchange: EmbeddedExchange,
) -> None:
    config = make_config(exchange, market_count=4, trading_enabled=False)
    with running_supervisor(exchange, config) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        # The lifecycle subscribe went out with the orderbook ones; READY means those were
        # answered, and the exchange handles commands in order, so it exists by now.
        assert exchange.oplog.entries("ws_subscribe_channel")
        target = metadata_of(supervisor, State.ORDERBOOK_CONNECT)["markets"][0]
        exchange.ws.set_market_status(target, "determined")
        assert exchange.ws.send_lifecycle(target, "determined", result="yes") == 1
        assert supervisor.recorder.wait_for(_notices, WAIT)
        (notice,) = _notices(supervisor.recorder.events())
        assert notice.detail == f"{target}: determined (market_lifecycle_v2)"
        assert supervisor.recorder.states()[-1] is State.READY
        assert supervisor.recorder.status()["stream"]["markets_dropped"] == 1


def test_discovery_refresh_while_ready_drops_closed_markets_and_adds_new_ones(
    exchange: EmbeddedExchange,
) -> None:
    config = make_config(exchange, market_count=4, trading_enabled=False, discovery_refresh=0.2)
    with running_supervisor(exchange, config) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        followed = metadata_of(supervisor, State.ORDERBOOK_CONNECT)["markets"]
        closed = followed[0]
        exchange.ws.set_market_status(closed, "closed")

        def both(events: list[SupervisorEvent]) -> list[StreamNotice] | None:
            kinds = [n.kind for n in _notices(events)]
            return _notices(events) if {"market_dropped", "market_added"} <= set(kinds) else None

        notices = supervisor.recorder.wait_for(both, WAIT)
        assert notices is not None
        dropped = [n for n in notices if n.kind == "market_dropped"]
        added = [n for n in notices if n.kind == "market_added"]
        assert [n.detail for n in dropped] == [f"{closed}: no longer open (discovery refresh)"]
        assert len(added) == 1 and added[0].detail.split(":")[0] not in followed
        assert supervisor.recorder.states()[-1] is State.READY
