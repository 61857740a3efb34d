"""Private WS channels (§8.7) and the public ``trade`` channel, fed by the engine's outcomes."""

from __future__ import annotations

import pytest
from websockets.exceptions import ConnectionClosed

from kalshi_sim.exchange import EmbeddedExchange
from tests.conftest import ExchangeFactory
from tests.kalshi_sim.trading_support import Trader, quiet, trader


def test_private_channels_when_a_maker_fills_carry_its_fill_order_and_position(
    exchange: EmbeddedExchange, alice: Trader, bob: Trader
) -> None:
    ticker = exchange.markets.tickers()[0]
    session = alice.ws()
    try:
        session.subscribe("fill", "user_orders", "market_positions")
        order_id = alice.place(ticker, "bid", "3", "0.45", client_order_id="m-1").json()["order_id"]
        created = session.next_of("user_order")["msg"]
        assert created["order_id"] == order_id and created["status"] == "resting"
        assert created["client_order_id"] == "m-1" and created["ticker"] == ticker
        bob.place(ticker, "ask", "2", "0.45", time_in_force="immediate_or_cancel")
        fill = session.next_of("fill")
        assert "seq" not in fill
        msg = fill["msg"]
        assert msg["order_id"] == order_id and msg["client_order_id"] == "m-1"
        assert msg["count_fp"] == "2.00" and msg["yes_price_dollars"] == "0.4500"
        assert msg["is_taker"] is False and msg["post_position_fp"] == "2.00"
        assert msg["market_ticker"] == ticker and msg["exchange_index"] == 0
        [rest_fill] = alice.get("/portfolio/fills").json()["fills"]
        assert msg["trade_id"] == rest_fill["trade_id"]  # one dedupe key across WS and REST
        updated = session.next_of("user_order")["msg"]
        assert updated["fill_count_fp"] == "2.00" and updated["remaining_count_fp"] == "1.00"
        position = session.next_of("market_position")
        assert "seq" not in position and position["msg"]["position_fp"] == "2.00"
    finally:
        session.close()


def test_private_channels_when_another_member_trades_send_nothing_of_theirs(
    exchange: EmbeddedExchange, alice: Trader, bob: Trader
) -> None:
    ticker = exchange.markets.tickers()[0]
    session = alice.ws()
    try:
        session.subscribe("user_orders")
        bob.place(ticker, "bid", "1", "0.30", client_order_id="bobs")
        alice.place(ticker, "bid", "1", "0.31", client_order_id="alices")
        first = session.next_of("user_order")["msg"]
        assert first["client_order_id"] == "alices"  # bob's order never reached alice
    finally:
        session.close()


def test_fill_channel_when_filtered_by_market_skips_others_until_added(
    exchange: EmbeddedExchange, alice: Trader, bob: Trader
) -> None:
    first, second = exchange.markets.tickers()[0], exchange.markets.tickers()[4]
    session = alice.ws()
    try:
        [sid] = session.subscribe("fill", market_ticker=second)
        alice.place(first, "bid", "1", "0.40")
        bob.place(first, "ask", "1", "0.40", time_in_force="immediate_or_cancel")
        alice.place(second, "bid", "1", "0.40")
        bob.place(second, "ask", "1", "0.40", time_in_force="immediate_or_cancel")
        assert session.next_of("fill")["msg"]["market_ticker"] == second
        session.command(
            {
                "id": 9,
                "cmd": "update_subscription",
                "params": {"sid": sid, "action": "add_markets", "market_tickers": [first]},
            }
        )
        assert session.next_of("ok")["msg"]["market_tickers"] == [second, first]
        alice.place(first, "bid", "1", "0.41")
        bob.place(first, "ask", "1", "0.41", time_in_force="immediate_or_cancel")
        assert session.next_of("fill")["msg"]["market_ticker"] == first
    finally:
        session.close()


def test_order_group_updates_when_group_changes_carry_seq(
    exchange: EmbeddedExchange, alice: Trader
) -> None:
    session = alice.ws()
    try:
        session.subscribe("order_group_updates")
        group = alice.request("POST", "/portfolio/order_groups/create", json={"contracts_limit": 3})
        group_id = group.json()["order_group_id"]
        alice.request("PUT", f"/portfolio/order_groups/{group_id}/trigger")
        created = session.next_of("order_group_updates")
        triggered = session.next_of("order_group_updates")
        assert created["msg"]["event_type"] == "created"
        assert created["msg"]["contracts_limit_fp"] == "3.00"
        assert triggered["msg"]["event_type"] == "triggered"
        assert triggered["seq"] == created["seq"] + 1
        assert triggered["msg"]["order_group_id"] == group_id
    finally:
        session.close()


def test_trade_channel_when_members_trade_publishes_the_trade_with_seq(
    exchange: EmbeddedExchange, alice: Trader, bob: Trader
) -> None:
    ticker = exchange.markets.tickers()[0]
    session = bob.ws()
    try:
        session.subscribe("trade", market_tickers=[ticker])
        alice.place(ticker, "ask", "2", "0.55")
        bob.place(ticker, "bid", "2", "0.60", time_in_force="immediate_or_cancel")
        trade = session.next_of("trade")
        assert trade["seq"] == 1
        msg = trade["msg"]
        assert msg["market_ticker"] == ticker and msg["count_fp"] == "2.00"
        assert msg["yes_price_dollars"] == "0.5500" and msg["no_price_dollars"] == "0.4500"
        assert msg["taker_outcome_side"] == "yes" and msg["taker_book_side"] == "bid"
    finally:
        session.close()


@pytest.mark.parametrize("order", ["before", "after"])
def test_private_events_when_ordered_before_or_after_the_reply_all_arrive(
    exchange: EmbeddedExchange, alice: Trader, order: str
) -> None:
    exchange.trading_settings.private_events = order  # type: ignore[assignment]
    session = alice.ws()
    try:
        session.subscribe("user_orders")
        reply = alice.place(exchange.markets.tickers()[0], "bid", "1", "0.40").json()
        assert session.next_of("user_order")["msg"]["order_id"] == reply["order_id"]
    finally:
        session.close()


def test_lost_private_session_when_armed_drops_alice_and_her_fill_is_only_in_rest(
    exchange: EmbeddedExchange, alice: Trader, bob: Trader
) -> None:
    ticker = exchange.markets.tickers()[0]
    order_id = alice.place(ticker, "bid", "1", "0.40").json()["order_id"]
    session = alice.ws()
    try:
        session.subscribe("fill")
        armed = alice.http.post(
            "/_sim/trading_faults", json={"spec": "lose_private_events:member=alice"}
        )
        assert armed.status_code == 200
        bob.place(ticker, "ask", "1", "0.40", time_in_force="immediate_or_cancel")
        with pytest.raises(ConnectionClosed):
            session.next_of("fill", timeout=10.0)
    finally:
        session.close()
    [fill] = alice.get("/portfolio/fills").json()["fills"]  # reconcile by REST
    assert fill["order_id"] == order_id


def test_drop_private_sessions_when_called_cuts_only_that_members_sessions(
    exchange: EmbeddedExchange, alice: Trader, bob: Trader
) -> None:
    alice_session, bob_session = alice.ws(), bob.ws()
    try:
        alice_session.subscribe("fill")
        bob_session.subscribe("fill")
        assert exchange.ws.drop_private_sessions("alice") == 1
        with pytest.raises(ConnectionClosed):
            alice_session.next_frame(timeout=10.0)
        bob.place(exchange.markets.tickers()[0], "bid", "1", "0.40")
        bob_session.subscribe("user_orders")  # bob's session still answers
    finally:
        alice_session.close()
        bob_session.close()


def test_orderbook_when_a_member_rests_and_cancels_shows_it_and_annotates_only_its_own_deltas(
    exchange: EmbeddedExchange, alice: Trader, bob: Trader
) -> None:
    ticker = exchange.markets.tickers()[0]
    mine, theirs = alice.ws(), bob.ws()
    try:
        for session in (mine, theirs):
            session.subscribe("orderbook_delta", market_tickers=[ticker])
            session.next_of("orderbook_snapshot")
        order_id = alice.place(ticker, "ask", "2", "0.70", client_order_id="on-book").json()[
            "order_id"
        ]
        own = mine.next_of("orderbook_delta")["msg"]
        other = theirs.next_of("orderbook_delta")["msg"]
        assert own["side"] == "no" and own["price_dollars"] == "0.3000"  # an ask at p: no@1-p
        assert own["delta_fp"] == "2.00" and own["client_order_id"] == "on-book"
        assert "client_order_id" not in other and other["delta_fp"] == "2.00"
        book = alice.http.get(f"/trade-api/v2/markets/{ticker}/orderbook").json()["orderbook_fp"]
        assert ["0.3000", "2.00"] in book["no_dollars"]
        alice.cancel(order_id)
        assert theirs.next_of("orderbook_delta")["msg"]["delta_fp"] == "-2.00"
        assert mine.next_of("orderbook_delta")["msg"]["delta_fp"] == "-2.00"
        alice.place(ticker, "ask", "1", "0.70", client_order_id="from-sub", subaccount=3)
        from_sub = mine.next_of("orderbook_delta")["msg"]
        assert from_sub["client_order_id"] == "from-sub" and from_sub["subaccount"] == 3
        assert "subaccount" not in theirs.next_of("orderbook_delta")["msg"]
    finally:
        mine.close()
        theirs.close()


def test_stream_activity_when_the_participant_takes_a_members_order_sends_its_fill(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = quiet(make_exchange(markets=6, delta_rate=50, take_rate=50, write_limit=False))
    alice = trader(exchange, "alice")
    session = alice.ws()
    try:
        session.subscribe("fill", "user_orders")
        ticker = exchange.markets.tickers()[0]
        order_id = alice.place(ticker, "bid", "1", "0.40").json()["order_id"]
        fill = session.next_of("fill", timeout=30.0)["msg"]  # the taker hits the only bid
        assert fill["order_id"] == order_id and fill["is_taker"] is False
        truth = exchange.truth("alice")["alice"]
        assert [f.order_id for f in truth.fills] == [order_id]
    finally:
        session.close()
        alice.close()
