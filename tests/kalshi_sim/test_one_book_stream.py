"""Over sockets: the public stream stays equal to the engine's books while the built-in
participant trades, and the demo member's order is filled by it on the same books."""

from __future__ import annotations

import time

from kalshi_api.auth import load_signer
from kalshi_api.protocol import WS_PATH
from kalshi_api.ws_session import OrderbookStream, ReconnectPolicy
from kalshi_sim.participant import TAKER
from tests.conftest import ExchangeFactory

WAIT = 30.0


def test_stream_when_participant_takes_keeps_client_books_equal_to_engine(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=6, delta_rate=400, take_rate=200)
    ticker = exchange.markets.tickers()[0]
    fair = exchange.markets.market(ticker).fair_micros
    with exchange.markets.lock:  # the position and the fills behind it, read at one instant
        held = exchange.account.position(ticker)
        start = held.position_centi if held is not None else 0
        before = len(exchange.markets.engine.fills(exchange.account.member, ticker=ticker))
    order_id = exchange.account.add_resting_order(ticker, yes_price_micros=fair, count_centi=200)
    signer = load_signer(exchange.key_id, exchange.private_key_path, env={})
    stream = OrderbookStream(
        exchange.ws_url,
        exchange.markets.tickers(),
        auth_headers=lambda: signer.headers("GET", WS_PATH),
        reconnect=ReconnectPolicy(min_delay=0.01, max_delay=0.05, max_attempts=20),
    )
    stream.start()
    try:
        assert stream.wait_synced(WAIT)
        deadline = time.monotonic() + WAIT
        while exchange.account.order(order_id).status == "resting":  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the participant never took the demo's order"
            assert stream.barrier(WAIT)
        exchange.pause_stream()
        assert stream.barrier(WAIT) and stream.wait_synced(WAIT)
        wrong = {
            t: (stream.levels(t), exchange.markets.levels(t))
            for t, digest in stream.digests().items()
            if digest != exchange.markets.digest(t)
        }
        assert not wrong, f"books differ from the engine: {wrong}"
        with exchange.markets.lock:
            assert exchange.markets.engine.fills(TAKER), "no take traded"
            # The takes may also fill the demo's generated fixture orders in this market: the
            # position must move by exactly the demo's own fills, ours (+200) among them.
            demo_fills = exchange.markets.engine.fills(exchange.account.member, ticker=ticker)
            demo_fills = demo_fills[before:]
        ours = [f for f in demo_fills if f.order_id == order_id]
        assert sum(f.count_centi for f in ours) == 200
        moved = sum(f.count_centi if f.side == "bid" else -f.count_centi for f in demo_fills)
        position = exchange.account.position(ticker)
        assert position is not None and position.position_centi == start + moved
    finally:
        stream.stop()
