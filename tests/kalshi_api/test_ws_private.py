"""The private channels (fill, user_orders, market_positions, order_group_updates) over a
real loopback WebSocket server that speaks §3.8/§8.7 frames: typed exact events, tolerance
of optional and unknown fields, reconnects reported as events, order-group seq gaps,
malformed frames counted and logged once per kind, and one socket shared with the
orderbook stream. Every wait is on an event or a ``list_subscriptions`` barrier.
"""

from __future__ import annotations

import logging
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
from kalshi_api.stream_events import (
    ReconnectPolicy,
    StreamDisconnected,
    StreamFailed,
    StreamResynced,
    StreamSynced,
    StreamTerminalError,
)
from kalshi_api.ws_session import OrderbookStream
from kalshi_api.ws_transport import WsTransport
from tests.kalshi_api.conftest import WAIT, Events
from tests.kalshi_api.loopback_exchange import AUTH_HEADER, LoopbackExchange

E = TypeVar("E")
FAST = ReconnectPolicy(min_delay=0.01, max_delay=0.05, max_attempts=20, healthy_after=0.0)




@pytest.fixture
def server() -> Iterator[LoopbackExchange]:
    exchange = LoopbackExchange().start()
    yield exchange
    exchange.stop()


@pytest.fixture
def private(server: LoopbackExchange) -> Iterator[tuple[PrivateChannels, Events]]:
    events = Events()
    client = PrivateChannels.connect(
        server.url,
        auth_headers=lambda: {AUTH_HEADER: "key-id"},
        listener=events,
        reconnect=FAST,
    )
    client.start()
    yield client, events
    client.stop()


FILL = {
    "trade_id": "t-1",
    "order_id": "o-1",
    "client_order_id": "c-1",
    "market_ticker": "KXFED-26DEC-T3.00",
    "exchange_index": 0,
    "is_taker": True,
    "side": "yes",
    "yes_price_dollars": "0.4250",
    "count_fp": "2.50",
    "fee_cost": "0.0175",
    "action": "buy",
    "outcome_side": "yes",
    "book_side": "bid",
    "post_position_fp": "-2.50",
    "purchased_side": "yes",
    "ts": 1767225600,
    "ts_ms": 1767225600123,
    "a_field_added_next_year": {"nested": [1, 2]},
}

USER_ORDER = {
    "order_id": "o-1",
    "user_id": "u-1",
    "ticker": "KXFED-26DEC-T3.00",
    "status": "resting",
    "outcome_side": "yes",
    "book_side": "bid",
    "yes_price_dollars": "0.4250",
    "fill_count_fp": "2.50",
    "remaining_count_fp": "7.50",
    "initial_count_fp": "10.00",
    "taker_fill_cost_dollars": "1.062500",
    "maker_fill_cost_dollars": "0.0000",
    "taker_fees_dollars": "0.0175",
    "maker_fees_dollars": "0.0000",
    "client_order_id": "c-1",
    "created_ts_ms": 1767225600000,
    "last_update_reason": "Trade",
}

POSITION = {
    "user_id": "u-1",
    "market_ticker": "KXFED-26DEC-T3.00",
    "position_fp": "-2.50",
    "position_cost_dollars": "1.062500",
    "realized_pnl_dollars": "-0.0100",
    "fees_paid_dollars": "0.0175",
    "volume_fp": "12.50",
}


def test_private_frames_when_they_arrive_become_typed_events_in_exact_units(
    server: LoopbackExchange, private: tuple[PrivateChannels, Events]
) -> None:
    client, events = private
    assert events.wait_for(PrivateConnected)
    assert events.of(PrivateConnected) == [PrivateConnected(1, PRIVATE_CHANNELS)]
    server.send_data("fill", "fill", [FILL])
    server.send_data("user_orders", "user_order", [USER_ORDER])
    server.send_data("market_positions", "market_position", [POSITION])
    server.send_group_updates(
        [{"event_type": "created", "order_group_id": "g-1", "contracts_limit_fp": "100.00"}]
    )
    assert client.barrier(WAIT)
    assert events.of(FillEvent) == [
        FillEvent(
            trade_id="t-1",
            order_id="o-1",
            market_ticker="KXFED-26DEC-T3.00",
            yes_price=425_000,
            count=250,
            client_order_id="c-1",
            is_taker=True,
            fee_cost=17_500,
            outcome_side="yes",
            book_side="bid",
            side="yes",
            action="buy",
            post_position=-250,
            exchange_index=0,
            ts_ms=1767225600123,
        )
    ]
    [order] = events.of(UserOrder)
    assert (order.market_ticker, order.status, order.yes_price) == (
        "KXFED-26DEC-T3.00",
        "resting",
        425_000,
    )
    assert (order.fill_count, order.remaining_count, order.initial_count) == (250, 750, 1000)
    assert (order.taker_fill_cost, order.taker_fees, order.maker_fees) == (1_062_500, 17_500, 0)
    assert order.last_update_reason == "Trade" and order.order_group_id is None
    assert events.of(MarketPositionEvent) == [
        MarketPositionEvent(
            market_ticker="KXFED-26DEC-T3.00",
            position=-250,
            position_cost=1_062_500,
            realized_pnl=-10_000,
            fees_paid=17_500,
            volume=1250,
            user_id="u-1",
        )
    ]
    sid = server.sid_of("order_group_updates")
    assert events.of(OrderGroupUpdate) == [OrderGroupUpdate(sid, 1, "created", "g-1", 10_000)]
    assert client.stats.malformed_frames == 0


def test_minimal_frames_when_optional_fields_are_absent_are_accepted(
    server: LoopbackExchange, private: tuple[PrivateChannels, Events]
) -> None:
    client, events = private
    assert events.wait_for(PrivateConnected)
    minimal_fill = {k: FILL[k] for k in ("trade_id", "order_id", "market_ticker")}
    minimal_fill |= {"yes_price_dollars": "0.01", "count_fp": "1"}
    server.send_data("fill", "fill", [minimal_fill])
    server.send_data(
        "user_orders", "user_order", [{"order_id": "o-2", "ticker": "T", "status": "unknown"}]
    )
    server.send_data(
        "market_positions", "market_position", [{"market_ticker": "T", "position_fp": "0.00"}]
    )
    assert client.barrier(WAIT)
    assert events.of(FillEvent) == [FillEvent("t-1", "o-1", "KXFED-26DEC-T3.00", 10_000, 100)]
    assert events.of(UserOrder) == [UserOrder("o-2", "T", "unknown")]
    assert events.of(MarketPositionEvent) == [MarketPositionEvent("T", 0)]


def test_dropped_connection_when_it_reconnects_is_reported_and_everything_resubscribed(
    server: LoopbackExchange, private: tuple[PrivateChannels, Events]
) -> None:
    _, events = private
    assert events.wait_for(PrivateConnected)
    assert server.drop() == 1
    assert events.wait_for(PrivateConnected, count=2)
    first, second = events.of(PrivateConnected)
    assert (first.session, second.session) == (1, 2)
    assert second.channels == PRIVATE_CHANNELS
    assert len(events.of(StreamDisconnected)) == 1
    subscribed = [
        c["params"]["channels"] for c in server.latest().commands if c["cmd"] == "subscribe"
    ]
    assert subscribed == [[channel] for channel in PRIVATE_CHANNELS]
    ids = [c["id"] for conn in server.connections for c in conn.commands]
    assert len(ids) == len(set(ids)), "a command id was reused across sessions"


def test_order_group_seq_gap_when_frames_are_lost_is_reported_then_followed(
    server: LoopbackExchange, private: tuple[PrivateChannels, Events]
) -> None:
    client, events = private
    assert events.wait_for(PrivateConnected)
    update = {"event_type": "triggered", "order_group_id": "g-1", "ts_ms": 1}
    server.send_group_updates([update, update])  # seq 1, 2
    server.send_group_updates([update, update], skip=2)  # seq 5, 6: 3 and 4 were lost
    assert client.barrier(WAIT)
    sid = server.sid_of("order_group_updates")
    assert events.of(OrderGroupGap) == [OrderGroupGap(sid, 3, 5, "seq")]
    assert [u.seq for u in events.of(OrderGroupUpdate)] == [1, 2, 5, 6]
    assert client.stats.gaps == 1


def test_malformed_frames_when_received_are_counted_logged_once_per_kind_and_skipped(
    server: LoopbackExchange,
    private: tuple[PrivateChannels, Events],
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, events = private
    assert events.wait_for(PrivateConnected)
    float_price = FILL | {"trade_id": "t-bad", "yes_price_dollars": 0.425}
    too_precise = FILL | {"trade_id": "t-bad2", "count_fp": "1.005"}
    no_trade_id = {k: v for k, v in FILL.items() if k != "trade_id"}
    with caplog.at_level(logging.WARNING, logger="kalshi_supervisor.kalshi_api"):
        server.send("not json at all", b"\xff\xfe", '["a", "list"]', '{"no": "type"}')
        server.send_data("fill", "fill", [float_price, too_precise, no_trade_id, "a string"])
        server.send_data(
            "user_orders", "user_order", [{"order_id": "o", "ticker": 7, "status": "x"}] * 3
        )
        server.send_group_updates([{"event_type": "created"}])  # consumed seq 1, unreadable
        server.send_data("fill", "fill", [FILL])
        server.send({"type": "ticker_v9", "sid": 99, "msg": {}})
        assert client.barrier(WAIT)
    assert [f.trade_id for f in events.of(FillEvent)] == ["t-1"], "a good frame still arrives"
    assert client.stats.malformed_frames == 8
    assert client.bad_frames == {"fill": 4, "user_order": 3, "order_group_updates": 1}
    assert client.transport.malformed_frames == 4
    assert client.stats.ignored_frames == 1
    assert events.of(OrderGroupGap) == [
        OrderGroupGap(server.sid_of("order_group_updates"), 1, 1, "bad_frame")
    ]
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 4, skipped  # unparseable, fill, user_order, order_group_updates
    assert client.transport.connected, "bad frames never end the session"


def test_repeated_fill_when_sent_twice_is_reported_once(
    server: LoopbackExchange, private: tuple[PrivateChannels, Events]
) -> None:
    client, events = private
    assert events.wait_for(PrivateConnected)
    server.send_data("fill", "fill", [FILL, FILL, FILL | {"trade_id": "t-2"}])
    assert client.barrier(WAIT)
    assert [f.trade_id for f in events.of(FillEvent)] == ["t-1", "t-2"]
    assert client.stats.duplicates_dropped == 1


def test_refused_channel_when_subscribing_is_named_and_the_rest_go_on(
    server: LoopbackExchange,
) -> None:
    server.refuse["market_positions"] = 8
    events = Events()
    client = PrivateChannels.connect(
        server.url, auth_headers=lambda: {AUTH_HEADER: "k"}, listener=events, reconnect=FAST
    )
    client.start()
    try:
        assert events.wait_for(PrivateConnected)
        assert events.of(PrivateConnected) == [
            PrivateConnected(
                1, ("fill", "user_orders", "order_group_updates"), ("market_positions",)
            )
        ]
        assert client.error_codes == {8: 1}
    finally:
        client.stop()


def test_terminal_error_when_a_channel_dies_resubscribes_it_and_reports_a_reconnect(
    server: LoopbackExchange, private: tuple[PrivateChannels, Events]
) -> None:
    client, events = private
    assert events.wait_for(PrivateConnected)
    dead = server.kill("fill", code=10)
    assert events.wait_for(PrivateConnected, count=2)
    assert server.sid_of("fill") != dead
    assert client.stats.resubscribes == 1
    assert len(server.connections) == 1, "repaired in place, no reconnect"
    server.send_data("fill", "fill", [FILL])
    assert client.barrier(WAIT)
    assert len(events.of(FillEvent)) == 1


def test_rejected_upgrade_when_unauthenticated_fails_for_good(server: LoopbackExchange) -> None:
    events = Events()
    client = PrivateChannels.connect(server.url, auth_headers=None, listener=events, reconnect=FAST)
    client.start()
    try:
        assert events.wait_for(StreamFailed)
        assert "HTTP 401" in events.of(StreamFailed)[0].reason
        assert server.upgrades == 1 and events.of(PrivateConnected) == []
    finally:
        client.stop()


def test_shared_socket_when_orderbook_and_private_ride_together_routes_each_its_frames(
    server: LoopbackExchange,
) -> None:
    """Kalshi multiplexes every channel on one connection (§3.1): both clients on one
    transport, one socket, distinct command ids, and each reconnect reported to both."""
    transport = WsTransport(server.url, auth_headers=lambda: {AUTH_HEADER: "k"}, reconnect=FAST)
    books = Events()
    stream = OrderbookStream(
        server.url, ["KXA-1", "KXB-2"], auth_headers=None, listener=books, transport=transport
    )
    private_events = Events()
    private = PrivateChannels(transport, listener=private_events)
    stream.start()
    try:
        assert stream.wait_synced(WAIT) and private_events.wait_for(PrivateConnected)
        assert len(server.connections) == 1
        server.send_data("fill", "fill", [FILL])
        assert private.barrier(WAIT) and stream.barrier(WAIT)
        assert len(private_events.of(FillEvent)) == 1
        assert stream.stats.ignored_frames == 0 and private.stats.ignored_frames == 0
        ids = [c["id"] for c in server.latest().commands]
        assert len(ids) == len(set(ids))
        assert stream.levels("KXA-1") == (((400_000, 1000),), ((500_000, 2000),))
        server.drop()
        assert books.wait_for(StreamSynced, count=2)
        assert private_events.wait_for(PrivateConnected, count=2)
        assert len(server.connections) == 2
    finally:
        stream.stop()
    assert not transport.connected


def test_market_filter_when_given_narrows_only_the_channels_that_take_one(
    server: LoopbackExchange,
) -> None:
    events = Events()
    client = PrivateChannels.connect(
        server.url,
        auth_headers=lambda: {AUTH_HEADER: "k"},
        listener=events,
        reconnect=FAST,
        market_tickers=["KXA-1", "KXB-2"],
    )
    client.start()
    try:
        assert events.wait_for(PrivateConnected)
        params = {
            c["params"]["channels"][0]: c["params"]
            for c in server.latest().commands
            if c["cmd"] == "subscribe"
        }
        for channel in ("fill", "user_orders", "market_positions"):
            assert params[channel]["market_tickers"] == ["KXA-1", "KXB-2"], channel
        assert "market_tickers" not in params["order_group_updates"]
    finally:
        client.stop()


def test_unscoped_terminal_error_when_the_socket_is_shared_reaches_every_client(
    server: LoopbackExchange,
) -> None:
    """An error frame with neither id nor sid may concern any subscription on the socket:
    the orderbook stream replaces its subscriptions and the private channels resubscribe
    (and report it, since events may have been lost), all without reconnecting."""
    transport = WsTransport(server.url, auth_headers=lambda: {AUTH_HEADER: "k"}, reconnect=FAST)
    books = Events()
    stream = OrderbookStream(
        server.url, ["KXA-1"], auth_headers=None, listener=books, transport=transport
    )
    private_events = Events()
    private = PrivateChannels(transport, listener=private_events)
    stream.start()
    try:
        assert stream.wait_synced(WAIT) and private_events.wait_for(PrivateConnected)
        server.send({"type": "error", "msg": {"code": 10, "msg": "Channel error"}})
        assert books.wait_for(StreamTerminalError)
        assert private_events.wait_for(PrivateConnected, count=2)
        assert books.wait_for(StreamResynced) and stream.wait_synced(WAIT)
        assert private.stats.resubscribes == len(PRIVATE_CHANNELS)
        assert len(server.connections) == 1 and stream.connected
    finally:
        stream.stop()


def test_unanswered_subscribe_when_the_bound_passes_reconnects_and_then_reports(
    server: LoopbackExchange,
) -> None:
    server.silent.add("fill")
    events = Events()
    client = PrivateChannels.connect(
        server.url,
        auth_headers=lambda: {AUTH_HEADER: "k"},
        listener=events,
        reconnect=FAST,
        subscribe_timeout=0.2,
    )
    client.start()
    try:
        assert events.wait_for(StreamDisconnected)
        reason = events.of(StreamDisconnected)[0].reason
        assert "no reply to private subscribe (fill)" in reason, reason
        assert events.of(PrivateConnected) == []
        server.silent.clear()
        assert events.wait_for(PrivateConnected)
        assert events.of(PrivateConnected)[0].channels == PRIVATE_CHANNELS
        assert len(server.connections) >= 2
    finally:
        client.stop()
