"""Markets close every day (issue 8) over real sockets: close times, empty books, no events.

The facts a stream starts with are what INITIALIZING reads: ``GET /markets`` on the
embedded exchange (status and ``close_time``). The exchange's close schedule makes a market
close *by time* a second from now, silently, as Kalshi does (no WebSocket event).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kalshi_api.auth import load_signer
from kalshi_api.market_check import rest_market_checker
from kalshi_api.market_facts import MarketFacts, facts_by_ticker
from kalshi_api.rest import KalshiRestClient
from kalshi_api.ws_session import OrderbookStream, StreamMarketDropped, StreamSynced
from kalshi_sim.exchange import EmbeddedExchange
from tests.conftest import ExchangeFactory
from tests.kalshi_api.conftest import WAIT, StreamFactory

pytestmark = pytest.mark.slow  # close times passing on a real clock: seconds each

EMPTY_BOOK = 3
"""The embedded exchange's market 3 has an empty book (legal: nobody quotes it)."""


def _signer(exchange: EmbeddedExchange) -> Any:
    return load_signer(exchange.key_id, exchange.private_key_path)


def _listed(exchange: EmbeddedExchange) -> dict[str, MarketFacts]:
    """What INITIALIZING reads: every market's status and close time over REST."""
    with KalshiRestClient(exchange.rest_url, _signer(exchange)) as client:
        return facts_by_ticker(client.get_markets(status=None, mve_filter=None))


def _market_gets(exchange: EmbeddedExchange) -> int:
    return sum("/markets" in e.detail for e in exchange.oplog.entries("rest"))


def _open(
    exchange: EmbeddedExchange, open_stream: StreamFactory, **kwargs: Any
) -> tuple[OrderbookStream, Any]:
    return open_stream(
        exchange,
        market_checker=rest_market_checker(exchange.rest_url, _signer(exchange)),
        market_facts=_listed(exchange),
        snapshot_timeout=0.5,
        **kwargs,
    )


@pytest.fixture
def exchange(make_exchange: ExchangeFactory) -> EmbeddedExchange:
    return make_exchange(markets=6, delta_rate=200)


def test_empty_book_of_a_market_listed_open_before_its_close_is_live_without_rest(
    exchange: EmbeddedExchange, open_stream: StreamFactory
) -> None:
    """Empty books are legal: with the listing's facts no REST call is needed to sync."""
    exchange.ws.behaviour.closed_answer = "empty"
    stream, _ = _open(exchange, open_stream)
    before = _market_gets(exchange)
    assert stream.wait_synced(WAIT) and stream.barrier(WAIT)
    empty = exchange.markets.tickers()[EMPTY_BOOK]
    assert not stream.book(empty).stale and stream.levels(empty) == ((), ())
    assert stream.synced_market_count() == 6
    assert _market_gets(exchange) == before, "no REST check for a legal empty book"


def test_closed_market_answering_an_empty_snapshot_on_resubscribe_is_dropped(
    exchange: EmbeddedExchange, open_stream: StreamFactory
) -> None:
    """Before: counted live until lifecycle or a discovery refresh noticed it."""
    exchange.ws.behaviour.closed_answer = "empty"
    stream, events = _open(exchange, open_stream)
    assert stream.wait_synced(WAIT)
    gone = exchange.markets.tickers()[1]
    exchange.ws.set_market_status(gone, "closed")  # silently: no lifecycle event
    assert exchange.ws.drop_connections() == 1
    assert events.wait_for(StreamMarketDropped)
    assert events.of(StreamMarketDropped) == [StreamMarketDropped(gone, "closed")]
    assert events.wait_for(StreamSynced, count=2)
    assert stream.synced_market_count() == 5 and stream.followed_count() == 5


def test_market_closing_by_time_is_checked_and_dropped_without_a_reconnect(
    exchange: EmbeddedExchange, open_stream: StreamFactory
) -> None:
    """Before: a close by time went unnoticed until the next reconnect or repair."""
    tickers = exchange.markets.tickers()
    soon = datetime.now(UTC) + timedelta(seconds=2)
    for ticker in tickers[:2]:  # two markets closing at the same moment: one batched check
        exchange.close_times.close_at(ticker, soon)
    stream, events = _open(exchange, open_stream)
    before = _market_gets(exchange)
    assert stream.wait_synced(WAIT)
    assert events.wait_for(StreamMarketDropped, count=2)
    dropped = {e.ticker: e.reason for e in events.of(StreamMarketDropped)}
    assert dropped == dict.fromkeys(tickers[:2], "closed (close time passed)")
    assert _market_gets(exchange) == before + 1, "one batched check for both"
    assert len(exchange.oplog.entries("ws_handshake")) == 1, "no reconnect was needed"
    assert stream.wait_synced(WAIT) and stream.synced_market_count() == 4
    assert set(stream.followed_markets()) == set(tickers[2:])


def test_market_still_active_after_its_close_time_is_kept_and_rechecked(
    exchange: EmbeddedExchange, open_stream: StreamFactory
) -> None:
    """A close time passing with the market still trading (the status lags, or the close
    was extended) drops nothing; the market is asked about again later."""
    late = exchange.markets.tickers()[0]
    exchange.close_times.close_at(late, datetime.now(UTC) + timedelta(seconds=1), "active")
    stream, events = _open(exchange, open_stream)
    before = _market_gets(exchange)  # the listing read; the book checks need no REST call
    assert stream.wait_synced(WAIT)

    def rechecked(entries: Any) -> bool:
        gets = sum(e.kind == "rest" and "/markets" in e.detail for e in entries)
        return gets >= before + 2

    assert exchange.oplog.wait_for(rechecked, WAIT), "checked at its close time, then again"
    assert events.of(StreamMarketDropped) == []
    assert late in stream.followed_markets() and stream.synced_market_count() == 6
