"""Markets close every day (issue 8) through the whole supervisor, over real sockets.

The embedded exchange closes markets *by time* (its close schedule: the REST status turns
``closed`` at the close time, with no WebSocket event), as Kalshi's daily markets do.
Before: a close by time went unnoticed in config mode until the next reconnect, and with
every market dropped READY was entered (or kept) with ``markets_connected: 0``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from actors.markets import resolve_markets
from app.stage_books import StageBooks
from cli.run import ConfigError, _preflight
from kalshi_api.auth import load_signer
from kalshi_sim.exchange import EmbeddedExchange
from messages.events import StreamNotice, SupervisorEvent
from messages.states import State
from supervisor import Supervisor
from tests.harness import WAIT, make_config, metadata_of, running_supervisor

pytestmark = pytest.mark.slow  # markets closing by time: seconds of real clock each

CLOSE_IN = timedelta(seconds=4)
"""Far enough for READY to come first on a loaded machine (it takes well under a second)."""


def _notices(kind: str) -> Any:
    def pick(events: list[SupervisorEvent]) -> list[StreamNotice]:
        return [e for e in events if isinstance(e, StreamNotice) and e.kind == kind]

    return pick


def _close_soon(exchange: EmbeddedExchange, tickers: list[str]) -> None:
    soon = datetime.now(UTC) + CLOSE_IN
    for ticker in tickers:
        exchange.close_times.close_at(ticker, soon)


def _health(supervisor: Supervisor) -> dict[str, Any]:
    ref = supervisor.ref
    assert ref is not None
    return StageBooks(lambda: ref.actor_urn).health()


def _after_ready(supervisor: Supervisor) -> list[State]:
    states = supervisor.recorder.states()
    return states[states.index(State.READY) + 1 :]


def test_config_market_closing_by_time_is_dropped_while_ready_holds(
    exchange: EmbeddedExchange,
) -> None:
    tickers = exchange.markets.tickers()[:3]
    _close_soon(exchange, tickers[:1])
    config = make_config(exchange, markets=tuple(tickers), trading_enabled=False)
    with running_supervisor(exchange, config) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        assert metadata_of(supervisor, State.READY)["markets_connected"] == 3
        (notice,) = supervisor.recorder.wait_for(_notices("market_dropped"), WAIT)
        assert notice.detail == f"{tickers[0]}: closed (close time passed)"
        assert _after_ready(supervisor) == [], "READY holds"
        assert len(exchange.oplog.entries("ws_handshake")) == 1, "no reconnect needed"
        health = _health(supervisor)
        assert (health["markets"], health["live_markets"]) == (2, 2)


def test_config_every_market_closed_leaves_ready_waits_without_failing_and_comes_back(
    exchange: EmbeddedExchange,
) -> None:
    tickers = exchange.markets.tickers()[:2]
    _close_soon(exchange, tickers)
    config = make_config(
        exchange,
        markets=tuple(tickers),
        trading_enabled=False,
        market_wait_min=0.2,
        market_wait_max=0.4,
        deadlines={State.ORDERBOOK_CONNECT: 1.0},
    )
    with running_supervisor(exchange, config) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        (notice,) = supervisor.recorder.wait_for(_notices("no_live_markets"), WAIT)
        assert notice.detail == (
            "no live market: 2 closed; waiting for a dropped market to reopen"
        )
        assert supervisor.recorder.wait_for(lambda _: _after_ready(supervisor), WAIT)
        assert _after_ready(supervisor) == [State.ORDERBOOK_CONNECT]
        # Held past its 1 s deadline: the dropped tickers are re-checked with backoff.
        base = exchange.oplog.count("rest")

        def rechecked(entries: Any) -> bool:
            return exchange.oplog.count("rest") >= base + 6

        assert exchange.oplog.wait_for(rechecked, WAIT)
        assert supervisor.recorder.state is State.ORDERBOOK_CONNECT
        assert State.ERROR not in supervisor.recorder.states(), "no failure, no restart"
        assert _health(supervisor)["markets"] == 0
        # The exchange extends one market's close time: it trades again, READY returns.
        exchange.close_times.close_at(tickers[1], datetime.now(UTC) + timedelta(hours=1))
        assert supervisor.recorder.wait_for(_notices("market_added"), WAIT)
        assert supervisor.recorder.wait_for(
            lambda _: supervisor.recorder.states().count(State.READY) == 2, WAIT
        )
        assert metadata_of(supervisor, State.READY, 1)["markets_connected"] == 1
        assert State.ERROR not in supervisor.recorder.states()


def test_discovery_every_market_closed_rediscovers_open_markets_and_is_ready_again(
    exchange: EmbeddedExchange,
) -> None:
    config = make_config(
        exchange, market_count=2, trading_enabled=False, market_wait_min=0.2, market_wait_max=0.4
    )
    followed = exchange.markets.tickers()[:2]  # discovery takes the first open ones
    _close_soon(exchange, followed)
    with running_supervisor(exchange, config) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        assert metadata_of(supervisor, State.ORDERBOOK_CONNECT)["markets"] == followed
        (notice,) = supervisor.recorder.wait_for(_notices("no_live_markets"), WAIT)
        assert notice.detail == "no live market: 2 closed; waiting for open markets"
        assert supervisor.recorder.wait_for(
            lambda _: supervisor.recorder.states().count(State.READY) == 2, WAIT
        )
        assert metadata_of(supervisor, State.READY, 1)["markets_connected"] == 2
        added = supervisor.recorder.wait_for(_notices("market_added"), WAIT)
        assert {n.detail.split(":")[0] for n in added}.isdisjoint(followed)
        assert State.ERROR not in supervisor.recorder.states()


def test_config_tickers_all_closed_at_startup_fail_initializing_with_one_line(
    exchange: EmbeddedExchange,
) -> None:
    """Like unknown tickers: exit 2 from the CLI (its preflight), one clear line."""
    tickers = exchange.markets.tickers()[:2]
    exchange.ws.set_market_status(tickers[0], "closed")
    exchange.ws.set_market_status(tickers[1], "settled")
    config = make_config(exchange, markets=tuple(tickers))
    signer = load_signer(exchange.key_id, exchange.private_key_path)
    expected = f"every named market is closed or settled: {tickers[0]} (closed), {tickers[1]}"
    with pytest.raises(LookupError, match="every named market is closed or settled") as info:
        resolve_markets(config, signer)
    assert str(info.value).startswith(expected) and "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="every named market is closed or settled"):
        _preflight(config, signer)
