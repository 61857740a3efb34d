"""The seed's validation tests 1-3, automated over real sockets against the embedded exchange."""

from __future__ import annotations

import itertools
import json
from datetime import datetime

from app.handle import Supervisor
from kalshi_sim.exchange import EmbeddedExchange
from messages.events import KalshiSyncComplete, StateTransition
from messages.metadata import OrderbookConnectMetadata
from messages.states import State
from tests.harness import (
    READY_KEYS,
    SEED_KEYS,
    WAIT,
    live_actor_count,
    make_config,
    metadata_of,
    running_supervisor,
    start_exchange,
    transitions,
)

TRADING_KEYS = {
    "balance",
    "portfolio_value",
    "positions",
    "orders",
    "trading_client",
    "api_url",
    "sync_type",
}


def account_truth(exchange: EmbeddedExchange) -> dict[str, int]:
    """What a sync must report, straight from the exchange's own account."""
    snapshot = exchange.account.summary()
    return {
        "balance": snapshot.balance_cents,
        "portfolio_value": snapshot.portfolio_value_cents,
        "positions": snapshot.open_positions,
        "orders": snapshot.resting_orders,
    }


def test_cold_start_when_trading_enabled_each_transition_carries_exactly_seed_metadata(
    exchange: EmbeddedExchange,
) -> None:
    with running_supervisor(exchange) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        states = [t.to_state for t in transitions(supervisor)]
        assert states == [
            State.INITIALIZING,
            State.ORDERBOOK_CONNECT,
            State.TRADING_CLIENT_CONNECT,
            State.KALSHI_DATA_SYNC,
            State.READY,
        ]
        tickers = exchange.markets.tickers()
        assert metadata_of(supervisor, State.INITIALIZING) == {
            "environment": "local",
            "host": supervisor.control_url.removeprefix("http://").rstrip("/"),
            "log_level": "INFO",
            "mode": "discovery",
        }
        assert metadata_of(supervisor, State.ORDERBOOK_CONNECT) == {
            "ws_url": exchange.ws_url,
            "markets": list(OrderbookConnectMetadata.summarize_markets(tickers)),
            "market_count": len(tickers),
            "environment": "local",
        }
        assert metadata_of(supervisor, State.TRADING_CLIENT_CONNECT) == {
            "mode": "paper",
            "environment": "local",
            "api_url": exchange.rest_url,
        }
        assert metadata_of(supervisor, State.KALSHI_DATA_SYNC) == {
            "mode": "paper",
            "sync_type": "initial",
        }
        ready = metadata_of(supervisor, State.READY)
        assert set(ready) == READY_KEYS | {"trading_client"}
        assert ready["markets_connected"] == len(tickers)
        assert ready["snapshots_received"] >= len(tickers)
        assert ready["connection_established"] is True
        assert ready["first_snapshot_received"] is True
        assert ready["environment"] == "local"
        trading_client = ready["trading_client"]
        group = exchange.truth("demo")["demo"].groups
        assert trading_client == {
            "connected": True,
            "mode": "paper",
            **account_truth(exchange),
            "tier": trading_client["tier"],
            "write_budget": trading_client["write_budget"],
            "open_orders": 0,
            "order_group": group[0].order_group_id if group else None,
        }
        assert trading_client["tier"]
        assert trading_client["order_group"] is not None
        for state, keys in SEED_KEYS.items():
            assert set(metadata_of(supervisor, state)) == keys, state


def test_cold_start_when_trading_enabled_publishes_kalshi_sync_complete_with_true_state(
    exchange: EmbeddedExchange,
) -> None:
    with running_supervisor(exchange) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        syncs = [e for e in supervisor.recorder.events() if isinstance(e, KalshiSyncComplete)]
        assert len(syncs) == 1
        assert syncs[0].state.model_dump() == account_truth(exchange)
        assert syncs[0].changes is None
        record = json.loads(syncs[0].model_dump_json())
        assert set(record) == {"type", "timestamp", "sync_type", "state", "changes", "shards"}
        assert record["type"] == "kalshi_sync_complete"
        assert record["sync_type"] == "initial"
        # Totals across shards, and the breakdown that adds up to them [SH].
        assert [
            (s["exchange_index"], s["balance"], s["portfolio_value"]) for s in record["shards"]
        ] == [
            (s.exchange_index, s.balance_cents, s.portfolio_value_cents)
            for s in exchange.account.shard_snapshots()
        ]
        assert (
            sum(s["portfolio_value"] for s in record["shards"])
            == record["state"]["portfolio_value"]
        )


def test_sync_when_trading_paused_on_a_shard_reports_it_in_the_breakdown(
    exchange: EmbeddedExchange,
) -> None:
    exchange.status.pause_trading(2)
    with running_supervisor(exchange) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        syncs = [e for e in supervisor.recorder.events() if isinstance(e, KalshiSyncComplete)]
        assert [(s.exchange_index, s.trading_active) for s in syncs[0].shards] == [
            (0, True),
            (1, True),
            (2, False),
            (3, True),
        ]
        assert syncs[0].state.model_dump() == account_truth(exchange)


def test_cold_start_when_trading_disabled_goes_orderbook_connect_to_ready_without_trading_data(
    exchange: EmbeddedExchange,
) -> None:
    with running_supervisor(exchange, make_config(exchange, trading_enabled=False)) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        states = [t.to_state for t in transitions(supervisor)]
        assert states == [State.INITIALIZING, State.ORDERBOOK_CONNECT, State.READY]
        assert set(metadata_of(supervisor, State.READY)) == READY_KEYS
        everything = [json.loads(e.model_dump_json()) for e in supervisor.recorder.events()]
        everything.append(supervisor.recorder.status())
        assert not any(e.get("type") == "kalshi_sync_complete" for e in everything)
        assert not _keys_anywhere(everything) & TRADING_KEYS
        portfolio_calls = [
            op for op in exchange.oplog.entries("rest") if "/portfolio/" in op.detail
        ]
        assert portfolio_calls == []


def _keys_anywhere(value: object) -> set[str]:
    if isinstance(value, dict):
        found = set(value)
        for item in value.values():
            found |= _keys_anywhere(item)
        return found
    if isinstance(value, list):
        return set().union(*(_keys_anywhere(v) for v in value)) if value else set()
    return set()


def _window(supervisor: Supervisor, state: State) -> tuple[float, float]:
    history = transitions(supervisor)
    for index, record in enumerate(history):
        if record.to_state is state:
            return record.timestamp.timestamp(), history[index + 1].timestamp.timestamp()
    raise AssertionError(f"never entered {state}")


def _in(window: tuple[float, float], at: float) -> bool:
    return window[0] <= at <= window[1]


def test_cold_start_when_timed_by_exchange_each_operation_happens_inside_its_state(
    exchange: EmbeddedExchange,
) -> None:
    with running_supervisor(exchange) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        ops = exchange.oplog.entries()
        windows = {state: _window(supervisor, state) for state in SEED_KEYS}

        def inside(kind: str, state: State, detail: str = "") -> None:
            start, end = windows[state]
            matching = [op for op in ops if op.kind == kind and detail in op.detail]
            assert matching, f"the exchange never saw {kind} {detail}"
            for op in matching:
                assert start <= op.at <= end, (
                    f"{kind} {op.detail} at {op.at} outside {state} [{start}, {end}]"
                )

        def inside_one_of(kind: str, states: tuple[State, ...], detail: str = "") -> None:
            matching = [op for op in ops if op.kind == kind and detail in op.detail]
            assert {s for s in states for op in matching if _in(windows[s], op.at)} == set(
                states
            ), f"{kind} {detail} not seen in each of {states}"
            for op in matching:
                assert any(_in(windows[s], op.at) for s in states), (
                    f"{kind} {op.detail} at {op.at} outside {states}"
                )

        inside("rest", State.INITIALIZING, "GET /trade-api/v2/markets")
        # The orderbook stream's socket, then the trading stage's private channels' socket.
        inside_one_of("ws_handshake", (State.ORDERBOOK_CONNECT, State.TRADING_CLIENT_CONNECT))
        assert len(exchange.oplog.entries("ws_handshake")) == 2
        inside("ws_subscribe", State.ORDERBOOK_CONNECT)
        inside("ws_snapshot", State.ORDERBOOK_CONNECT)
        assert len(exchange.oplog.entries("ws_snapshot")) == len(exchange.markets.tickers())
        # Trading connect reads the status first; the sync reads it again for the shard list.
        status_calls = [op.at for op in ops if op.detail == "GET /trade-api/v2/exchange/status"]
        assert len(status_calls) == 2
        assert windows[State.TRADING_CLIENT_CONNECT][0] <= status_calls[0]
        assert status_calls[0] <= windows[State.TRADING_CLIENT_CONNECT][1]
        assert windows[State.KALSHI_DATA_SYNC][0] <= status_calls[1]
        assert status_calls[1] <= windows[State.KALSHI_DATA_SYNC][1]
        inside("rest", State.KALSHI_DATA_SYNC, "GET /trade-api/v2/portfolio/positions")
        # The trading stage reads resting orders for its startup policy; the sync counts them.
        inside_one_of(
            "rest",
            (State.TRADING_CLIENT_CONNECT, State.KALSHI_DATA_SYNC),
            "GET /trade-api/v2/portfolio/orders",
        )
        balance_calls = [
            op.at for op in ops if op.kind == "rest" and "/portfolio/balance" in op.detail
        ]
        trading_start, trading_end = windows[State.TRADING_CLIENT_CONNECT]
        sync_start, sync_end = windows[State.KALSHI_DATA_SYNC]
        # Trading connect: one; the sync: the total, then one per shard [SH].
        assert len(balance_calls) == 2 + len(exchange.account.shard_indexes())
        assert trading_start <= balance_calls[0] <= trading_end
        assert all(sync_start <= at <= sync_end for at in balance_calls[1:])


def test_update_sync_when_account_changes_reports_changes_and_stays_ready(
    exchange: EmbeddedExchange,
) -> None:
    config = make_config(exchange, sync_interval=0.05)
    with running_supervisor(exchange, config) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        exchange.account.set_balance(exchange.account.balance_cents(0) + 120)  # shard 0
        exchange.account.add_resting_order(exchange.markets.tickers()[0])

        def changed(events: list[object]) -> KalshiSyncComplete | None:
            for event in events:
                if (
                    isinstance(event, KalshiSyncComplete)
                    and event.changes is not None
                    and event.changes.balance_change == "+120"
                ):
                    return event
            return None

        event = supervisor.recorder.wait_for(changed, WAIT)
        assert event is not None
        assert event.sync_type == "update"
        assert event.changes.model_dump() == {
            "balance_change": "+120",
            "portfolio_change": "+0",
            "positions_change": "+0",
            "orders_change": "+1",
        }
        assert event.state.model_dump() == account_truth(exchange)
        assert [t.to_state for t in transitions(supervisor)][-1] is State.READY
        assert sum(1 for t in transitions(supervisor) if t.to_state is State.READY) == 1


def test_sync_metadata_when_sync_is_an_update_says_update(exchange: EmbeddedExchange) -> None:
    """READY -> ORDERBOOK_CONNECT reconnection re-syncs with ``sync_type: update``."""
    config = make_config(exchange, heal_timeout=0.05)
    with running_supervisor(exchange, config) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        seen = supervisor.recorder.last_id
        exchange.ws.stall(None)
        exchange.ws.drop_connections()
        assert supervisor.wait_for_state(State.ORDERBOOK_CONNECT, WAIT, after=seen)
        exchange.ws.unstall()
        assert supervisor.wait_for_state(State.READY, WAIT, after=seen)
        assert metadata_of(supervisor, State.KALSHI_DATA_SYNC, occurrence=1) == {
            "mode": "paper",
            "sync_type": "update",
        }
        assert (
            set(metadata_of(supervisor, State.ORDERBOOK_CONNECT, occurrence=1))
            == SEED_KEYS[State.ORDERBOOK_CONNECT]
        )


def test_transitions_when_recorded_chain_and_each_duration_is_the_time_in_its_from_state(
    exchange: EmbeddedExchange,
) -> None:
    with running_supervisor(exchange) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        history: list[StateTransition] = transitions(supervisor)
    stamps: list[datetime] = [t.timestamp for t in history]
    assert stamps == sorted(stamps)
    assert history[0].from_state is State.STARTUP
    for before, after in itertools.pairwise(history):
        assert after.from_state is before.to_state  # no state skipped or invented
        # The time in a state is the gap between the transitions in and out of it (one
        # clock is monotonic, the other the wall clock: a little slack for the reads).
        gap_ms = (after.timestamp - before.timestamp).total_seconds() * 1000.0
        assert after.duration_ms > 0
        assert abs(after.duration_ms - gap_ms) < 50.0, (before, after)


def test_shutdown_when_requested_stops_every_actor(exchange: EmbeddedExchange) -> None:
    before = live_actor_count()
    with running_supervisor(exchange) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        # three stages, the supervisor, and the order gateway (a service, once READY)
        assert supervisor.recorder.wait_for(
            lambda events: [e for e in events if getattr(e, "service", None) == "order_gateway"],
            WAIT,
        )
        assert live_actor_count() == before + 5
    assert supervisor.state is State.SHUTDOWN
    assert live_actor_count() == before
    assert exchange.ws.connection_count() == 0


def test_discovery_when_series_given_follows_only_open_markets_of_that_series(
    exchange: EmbeddedExchange,
) -> None:
    series = "KXHIGHNY"
    expected = [t for t in exchange.markets.tickers() if t.startswith(f"{series}-")]
    assert len(expected) >= 2
    config = make_config(exchange, series=series, trading_enabled=False)
    with running_supervisor(exchange, config) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        metadata = metadata_of(supervisor, State.ORDERBOOK_CONNECT)
        assert metadata["market_count"] == len(expected)
        assert metadata["markets"] == list(OrderbookConnectMetadata.summarize_markets(expected))
        assert metadata_of(supervisor, State.READY)["markets_connected"] == len(expected)


def test_discovery_when_market_count_all_takes_every_open_market_across_pages() -> None:
    exchange = start_exchange(markets=1200, page_size=100)  # more than Kalshi's largest page
    try:
        config = make_config(exchange, market_count=None, trading_enabled=False)
        with running_supervisor(exchange, config) as supervisor:
            assert supervisor.wait_for_state(State.READY, WAIT)
            assert metadata_of(supervisor, State.ORDERBOOK_CONNECT)["market_count"] == 1200
            assert metadata_of(supervisor, State.READY)["markets_connected"] == 1200
            pages = [e for e in exchange.oplog.entries("rest") if e.detail.endswith("/markets")]
            assert len(pages) >= 12
    finally:
        exchange.stop()


def test_discovery_when_market_count_is_small_takes_only_that_many(
    exchange: EmbeddedExchange,
) -> None:
    config = make_config(exchange, market_count=2, trading_enabled=False)
    with running_supervisor(exchange, config) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        assert metadata_of(supervisor, State.ORDERBOOK_CONNECT)["market_count"] == 2
        assert metadata_of(supervisor, State.READY)["markets_connected"] == 2
        subscribed = exchange.oplog.entries("ws_subscribe")
        assert len(subscribed) == 1


def test_config_mode_when_markets_given_reports_config_and_exact_markets(
    exchange: EmbeddedExchange,
) -> None:
    chosen = tuple(exchange.markets.tickers()[:3])
    config = make_config(exchange, markets=chosen)
    with running_supervisor(exchange, config) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        assert metadata_of(supervisor, State.INITIALIZING)["mode"] == "config"
        assert metadata_of(supervisor, State.ORDERBOOK_CONNECT)["markets"] == [
            chosen[0],
            chosen[1],
            "...and 1 more",
        ]
        assert metadata_of(supervisor, State.READY)["markets_connected"] == 3


def test_config_mode_when_a_ticker_is_unknown_fails_in_initializing_with_its_name(
    exchange: EmbeddedExchange,
) -> None:
    config = make_config(exchange, markets=(exchange.markets.tickers()[0], "NOPE-26NOV24-X"))
    with running_supervisor(exchange, config) as supervisor:
        error = supervisor.recorder.wait_for_state(State.ERROR, WAIT)
        assert error is not None
        assert error.metadata.failed_state is State.INITIALIZING
        assert error.metadata.error_type == "LookupError"
        assert "NOPE-26NOV24-X" in error.metadata.reason
