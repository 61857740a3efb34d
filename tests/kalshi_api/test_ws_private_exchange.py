"""The private-channel client against the embedded exchange's own private channels (§8.7):
real orders placed over signed REST by two members, the maker's fills, order updates,
positions and order-group events arriving as typed exact events, and a dropped session
that loses a fill, recovered by the reconcile the client's reconnect event asks for."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

import pytest

from kalshi_api.private_channels import PRIVATE_CHANNELS, PrivateChannels
from kalshi_api.private_events import (
    FillEvent,
    MarketPositionEvent,
    OrderGroupGap,
    OrderGroupUpdate,
    PrivateConnected,
    UserOrder,
)
from kalshi_api.protocol import WS_PATH
from kalshi_api.stream_events import ReconnectPolicy
from kalshi_sim.exchange import EmbeddedExchange
from tests.conftest import ExchangeFactory
from tests.kalshi_api.conftest import Events
from tests.kalshi_sim.trading_support import Trader, quiet, trader

E = TypeVar("E")




@pytest.fixture
def exchange(make_exchange: ExchangeFactory) -> EmbeddedExchange:
    """Members trade only with each other (the house's liquidity is taken off)."""
    return quiet(make_exchange(markets=6, write_limit=False, cancel_all_tail_s=0))


@pytest.fixture
def alice(exchange: EmbeddedExchange) -> Iterator[Trader]:
    t = trader(exchange, "alice")
    yield t
    t.close()


@pytest.fixture
def bob(exchange: EmbeddedExchange) -> Iterator[Trader]:
    t = trader(exchange, "bob")
    yield t
    t.close()


@pytest.fixture
def alices_channels(
    exchange: EmbeddedExchange, alice: Trader
) -> Iterator[tuple[PrivateChannels, Events]]:
    events = Events()
    client = PrivateChannels.connect(
        exchange.ws_url,
        auth_headers=lambda: alice.signer.headers("GET", WS_PATH),
        listener=events,
        reconnect=ReconnectPolicy(min_delay=0.01, max_delay=0.05, max_attempts=20),
    )
    client.start()
    yield client, events
    client.stop()


def test_maker_fill_when_another_member_trades_arrives_as_exact_typed_events(
    exchange: EmbeddedExchange,
    alice: Trader,
    bob: Trader,
    alices_channels: tuple[PrivateChannels, Events],
) -> None:
    client, events = alices_channels
    assert events.wait_for(PrivateConnected)
    assert events.of(PrivateConnected) == [PrivateConnected(1, PRIVATE_CHANNELS)]
    ticker = exchange.markets.tickers()[0]
    placed = alice.place(ticker, "bid", "3", "0.45", client_order_id="m-1")
    order_id = placed.json()["order_id"]
    bob.place(ticker, "ask", "2", "0.45", time_in_force="immediate_or_cancel")
    assert events.wait_for(FillEvent) and events.wait_for(MarketPositionEvent)
    assert events.wait_for(UserOrder, count=2)
    [fill] = events.of(FillEvent)
    assert (fill.order_id, fill.client_order_id, fill.market_ticker) == (order_id, "m-1", ticker)
    assert (fill.count, fill.yes_price, fill.is_taker, fill.post_position) == (
        200,
        450_000,
        False,
        200,
    )
    created, updated = events.of(UserOrder)[:2]
    assert (created.status, created.client_order_id, created.market_ticker) == (
        "resting",
        "m-1",
        ticker,
    )
    assert (updated.fill_count, updated.remaining_count) == (200, 100)
    assert events.of(MarketPositionEvent)[-1].position == 200
    assert client.stats.malformed_frames == 0 and client.transport.malformed_frames == 0


def test_order_group_events_when_a_group_changes_follow_their_seq_without_a_gap(
    alice: Trader, alices_channels: tuple[PrivateChannels, Events]
) -> None:
    client, events = alices_channels
    assert events.wait_for(PrivateConnected)
    group = alice.request("POST", "/portfolio/order_groups/create", json={"contracts_limit": 3})
    group_id = group.json()["order_group_id"]
    alice.request("PUT", f"/portfolio/order_groups/{group_id}/trigger")
    assert events.wait_for(OrderGroupUpdate, count=2)
    created, triggered = events.of(OrderGroupUpdate)
    assert (created.event_type, created.contracts_limit, created.order_group_id) == (
        "created",
        300,
        group_id,
    )
    assert (triggered.event_type, triggered.seq) == ("triggered", created.seq + 1)
    assert events.of(OrderGroupGap) == [] and client.stats.gaps == 0


def test_fill_lost_to_a_dropped_session_when_reconnected_is_found_by_the_reconcile(
    exchange: EmbeddedExchange,
    alice: Trader,
    bob: Trader,
    alices_channels: tuple[PrivateChannels, Events],
) -> None:
    """No seq on ``fill``: the exchange cuts alice's session at her next event, so the fill
    never reaches the client. What the client does give is a ``PrivateConnected`` for the
    new session, and the REST reconcile it calls for finds the fill (§8.10)."""
    _, events = alices_channels
    assert events.wait_for(PrivateConnected)
    ticker = exchange.markets.tickers()[1]
    order_id = alice.place(ticker, "bid", "1", "0.40", client_order_id="m-2").json()["order_id"]
    assert events.wait_for(UserOrder)
    exchange.ws.lose_private_events("alice")
    bob.place(ticker, "ask", "1", "0.40", time_in_force="immediate_or_cancel")
    assert events.wait_for(PrivateConnected, count=2)
    assert events.of(PrivateConnected)[1].session == 2
    assert events.of(FillEvent) == [], "the fill was lost with the session"
    fills = alice.get("/portfolio/fills", params={"ticker": ticker}).json()["fills"]
    assert [f["order_id"] for f in fills] == [order_id]
