"""Issue 8 over real sockets: the embedded exchange taught to behave like a week of Kalshi.

Closed, settled and unknown markets in every undocumented variant, a per-subscription
market cap (error 26), sessions dropped right after they sync, a 429 on the upgrade,
data stalled while pings flow, oversize frames and lifecycle events. Each test waits on
events, barriers or ``wait_synced``; pacing is checked through the ``retry_in`` the stream
announces, never through wall-clock timing.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
import pytest

from kalshi_api.auth import load_signer
from kalshi_api.market_check import rest_market_checker
from kalshi_api.ws_connect import DEFAULT_MAX_FRAME_BYTES
from kalshi_api.ws_session import (
    OrderbookStream,
    ReconnectPolicy,
    StreamDisconnected,
    StreamMarketDropped,
    StreamResynced,
    StreamStale,
    StreamSynced,
)
from kalshi_sim.exchange import EmbeddedExchange
from tests.conftest import ExchangeFactory
from tests.kalshi_api.conftest import WAIT, Recorder, StreamFactory
from tests.kalshi_api.loopback_exchange import AUTH_HEADER, FrameTap, LoopbackExchange
from tests.kalshi_api.test_ws_session import _until_deltas

pytestmark = pytest.mark.slow  # a week's misbehaviour, replayed over sockets


def _checker(exchange: EmbeddedExchange) -> Any:
    return rest_market_checker(
        exchange.rest_url, load_signer(exchange.key_id, exchange.private_key_path)
    )


def _live_truth(stream: OrderbookStream, exchange: EmbeddedExchange, dropped: set[str]) -> None:
    """Every market not dropped is live and equals the exchange's truth."""
    exchange.pause_stream()
    assert stream.barrier(WAIT) and stream.wait_synced(WAIT)
    digests = stream.digests()
    for ticker in exchange.markets.tickers():
        if ticker in dropped:
            assert stream.book(ticker).stale
        else:
            assert digests[ticker] == exchange.markets.digest(ticker), ticker
    assert stream.synced_market_count() == len(digests) - len(dropped)


def _handshakes(exchange: EmbeddedExchange) -> int:
    return len(exchange.oplog.entries("ws_handshake"))


@pytest.fixture
def exchange(make_exchange: ExchangeFactory) -> EmbeddedExchange:
    return make_exchange(markets=6, delta_rate=300)


# -- closed, settled and unknown markets ----------------------------------------------------
@pytest.mark.parametrize("answer", ["nothing", "empty", "error", "error_unnamed"])
def test_closed_market_at_start_is_dropped_and_the_rest_sync_in_every_variant(
    exchange: EmbeddedExchange, open_stream: StreamFactory, answer: Any
) -> None:
    """Before: the stream waited for every snapshot (or reconnected on error 11) forever."""
    closed = exchange.markets.tickers()[0]
    exchange.ws.set_market_status(closed, "closed")
    exchange.ws.behaviour.closed_answer = answer
    stream, events = open_stream(
        exchange,
        market_checker=_checker(exchange),
        snapshot_timeout=0.5,
    )
    assert events.wait_for(StreamMarketDropped)
    assert events.of(StreamMarketDropped) == [StreamMarketDropped(closed, "closed")]
    assert stream.wait_synced(WAIT)
    assert stream.dropped_markets() == {closed: "closed"}
    assert stream.stats.markets_dropped == 1
    assert _handshakes(exchange) == 1, "no reconnect was needed"
    _live_truth(stream, exchange, {closed})


@pytest.mark.parametrize("status", ["determined", "finalized"])
def test_market_that_closes_silently_is_dropped_at_the_next_reconnect_and_ready_returns(
    exchange: EmbeddedExchange, open_stream: StreamFactory, status: str
) -> None:
    """Before: after a close by time, the next reconnect waited for its snapshot forever."""
    stream, events = open_stream(exchange, market_checker=_checker(exchange), snapshot_timeout=0.5)
    assert stream.wait_synced(WAIT)
    gone = exchange.markets.tickers()[2]
    exchange.ws.set_market_status(gone, status)
    assert exchange.ws.drop_connections() == 1
    assert events.wait_for(StreamMarketDropped)  # READY does not wait for the REST check
    assert events.of(StreamMarketDropped) == [StreamMarketDropped(gone, status)]
    assert events.wait_for(StreamSynced, count=2)
    assert _handshakes(exchange) == 2
    _live_truth(stream, exchange, {gone})


def test_unknown_ticker_is_dropped_as_unknown(make_exchange: ExchangeFactory) -> None:
    exchange = make_exchange(markets=3, delta_rate=100)
    tickers = [*exchange.markets.tickers(), "KXNOPE-26DEC31-T1"]
    recorder = Recorder()
    stream = OrderbookStream(
        exchange.ws_url,
        tickers,
        auth_headers=lambda: load_signer(exchange.key_id, exchange.private_key_path).headers(
            "GET", "/trade-api/ws/v2"
        ),
        listener=recorder,
        market_checker=_checker(exchange),
        snapshot_timeout=0.5,
        reconnect=ReconnectPolicy(min_delay=0.01, max_delay=0.05, max_attempts=5),
    )
    stream.start()
    try:
        assert recorder.wait_for(StreamMarketDropped)
        assert stream.wait_synced(WAIT)
        assert recorder.of(StreamMarketDropped) == [
            StreamMarketDropped("KXNOPE-26DEC31-T1", "unknown market")
        ]
        assert stream.synced_market_count() == 3
    finally:
        stream.stop()


def test_lifecycle_determination_drops_the_market_and_the_rest_go_on(
    exchange: EmbeddedExchange, open_stream: StreamFactory
) -> None:
    stream, events = open_stream(exchange, lifecycle=True)
    assert stream.wait_synced(WAIT)
    assert stream.barrier(WAIT)  # the lifecycle subscribe has been answered
    target = exchange.markets.tickers()[1]
    assert exchange.ws.send_lifecycle(target, "determined", result="yes") == 1
    assert events.wait_for(StreamMarketDropped)
    assert events.of(StreamMarketDropped) == [
        StreamMarketDropped(target, "determined (market_lifecycle_v2)")
    ]
    early = exchange.markets.tickers()[3]
    exchange.ws.send_lifecycle(early, "close_date_updated", close_ts=int(time.time()) - 5)
    later = exchange.markets.tickers()[4]
    exchange.ws.send_lifecycle(later, "close_date_updated", close_ts=int(time.time()) + 3600)
    assert events.wait_for(StreamMarketDropped, count=2)
    assert stream.barrier(WAIT)
    assert set(stream.dropped_markets()) == {target, early}
    _live_truth(stream, exchange, {target, early})


# -- chunks, error 26 and per-sid repair ----------------------------------------------------
def test_market_cap_error_26_splits_chunks_until_they_fit_without_reconnecting(
    exchange: EmbeddedExchange, open_stream: StreamFactory
) -> None:
    """Before: every subscribe was refused and the stream reconnected forever."""
    exchange.ws.behaviour.market_limit = 2
    stream, _ = open_stream(exchange, chunk_size=6)
    assert stream.wait_synced(WAIT)
    assert stream.stats.subscribe_splits >= 2
    assert _handshakes(exchange) == 1
    subscribes = exchange.oplog.entries("ws_subscribe")
    assert all(len(entry.detail.split(",")) <= 2 for entry in subscribes)
    _until_deltas(stream, 20)
    _live_truth(stream, exchange, set())


def test_gap_on_one_chunk_refetches_only_that_chunks_markets(
    exchange: EmbeddedExchange, open_stream: StreamFactory
) -> None:
    stream, events = open_stream(exchange, chunk_size=2)
    assert stream.wait_synced(WAIT)
    assert len(exchange.oplog.entries("ws_subscribe")) == 3
    before = len(exchange.oplog.entries("ws_snapshot"))
    sid = next(iter(stream._core.subs))
    chunk = set(stream._core.subs[sid].books)
    exchange.ws.skip_seq(sid)
    assert events.wait_for(StreamResynced)
    assert events.of(StreamResynced) == [StreamResynced(sid)]
    refetched = {e.detail for e in exchange.oplog.entries("ws_snapshot")[before:]}
    assert refetched == chunk
    _live_truth(stream, exchange, set())


# -- reconnect pacing -----------------------------------------------------------------------
def test_sessions_dropped_right_after_sync_back_off_to_the_cap_instead_of_resetting(
    exchange: EmbeddedExchange, open_stream: StreamFactory
) -> None:
    """Before: every synced session reset the backoff (2.9 reconnects/s forever)."""
    exchange.ws.behaviour.drop_after_sync = 0.05
    policy = ReconnectPolicy(min_delay=0.01, max_delay=0.16, healthy_after=5.0)
    _, events = open_stream(exchange, reconnect=policy)
    assert events.wait_for(StreamDisconnected, count=7, timeout=30)
    delays = [e.retry_in for e in events.of(StreamDisconnected)][:7]
    assert len(events.of(StreamSynced)) >= 1, "the sessions did sync before each drop"
    for failures, delay in enumerate(delays, start=1):
        ceiling = min(0.16, 0.01 * 2 ** (failures - 1))
        assert ceiling / 2 <= delay <= ceiling, (failures, delays)
    exchange.ws.behaviour.drop_after_sync = None


def test_single_drop_after_a_storm_when_the_last_session_delivered_data_heals_at_once(
    exchange: EmbeddedExchange, open_stream: StreamFactory
) -> None:
    """Issue 17: in a compressed week the backoff grown during a storm outlasted the heal
    timeout at the next ordinary drop, because ordinary sessions (17 s) never counted as
    healthy under a 30 s bound. Now a session that delivered its snapshots *and then data*
    resets the backoff. The storm's sessions sync but deliver no data (the feed is paused),
    so they still back off to the cap; the first ordinary session after it delivers data,
    and its single drop is retried at once."""
    exchange.pause_stream()
    exchange.ws.behaviour.drop_after_sync = 0.05
    policy = ReconnectPolicy(min_delay=0.01, max_delay=0.32, healthy_after=0.0)
    stream, events = open_stream(exchange, reconnect=policy)
    assert events.wait_for(StreamDisconnected, count=6, timeout=30)
    storm = [e.retry_in for e in events.of(StreamDisconnected)]
    assert len(events.of(StreamSynced)) >= 1, "the storm's sessions did sync"
    assert storm[5] >= 0.16, f"synced sessions without data must not reset: {storm}"
    exchange.ws.behaviour.drop_after_sync = None
    calm_from = _handshakes(exchange)
    exchange.resume_stream()
    deadline = time.monotonic() + WAIT
    while not (_handshakes(exchange) > calm_from and stream.session_healthy()):
        assert time.monotonic() < deadline, "no session delivered data after the storm"
        stream.barrier(WAIT)
    dropped_before = len(events.of(StreamDisconnected))
    synced_before = len(events.of(StreamSynced))
    assert exchange.ws.drop_connections() == 1
    assert events.wait_for(StreamDisconnected, count=dropped_before + 1)
    heal = events.of(StreamDisconnected)[dropped_before]
    assert heal.retry_in <= policy.min_delay, (heal, storm)
    assert events.wait_for(StreamSynced, count=synced_before + 1)
    _live_truth(stream, exchange, set())


def test_429_on_the_upgrade_backs_off_longer_and_recovers(
    exchange: EmbeddedExchange, open_stream: StreamFactory
) -> None:
    """Before: a permanent 429 got 1.4 attempts/s forever."""
    exchange.ws.behaviour.upgrade_status = 429
    policy = ReconnectPolicy(min_delay=0.01, max_delay=1.0, throttled_delay=0.1)
    stream, events = open_stream(exchange, reconnect=policy)
    assert events.wait_for(StreamDisconnected, count=2)
    first, second = events.of(StreamDisconnected)[:2]
    assert "HTTP 429" in first.reason and first.will_retry
    assert 0.1 <= first.retry_in <= 0.2 and 0.1 <= second.retry_in <= 0.2
    assert len(exchange.oplog.entries("ws_handshake_rejected")) >= 2
    exchange.ws.behaviour.upgrade_status = None
    assert stream.wait_synced(WAIT)
    _live_truth(stream, exchange, set())


def test_reconnect_policy_when_throttled_waits_at_least_the_throttle() -> None:
    import random

    policy = ReconnectPolicy(min_delay=0.1, max_delay=30.0, throttled_delay=5.0)
    rng = random.Random(1)
    assert all(5.0 <= policy.delay(1, rng, throttled=True) <= 10.0 for _ in range(100))
    assert all(15.0 <= policy.delay(40, rng) <= 30.0 for _ in range(100))
    with pytest.raises(ValueError):
        ReconnectPolicy(healthy_after=-1)


# -- odd error frames -----------------------------------------------------------------------
def test_odd_error_frames_are_counted_and_logged_once_per_code_with_the_text_capped(
    exchange: EmbeddedExchange, open_stream: StreamFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: every odd error frame was logged at WARNING in full (one 100,018-character
    line each; 11 MB of log in one run)."""
    stream, _ = open_stream(exchange)
    assert stream.wait_synced(WAIT)
    logger = "kalshi_supervisor.kalshi_api.subscription_core"
    with caplog.at_level(logging.WARNING, logger=logger):
        exchange.ws.send_error_frames(99, "x" * 100_000, count=50)
        exchange.ws.send_error_frames(98, "another odd code", count=3)
        assert stream.barrier(WAIT)  # the error frames were queued before its reply
    assert stream.stats.error_frames == 53
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == logger and r.levelno == logging.WARNING
        and r.getMessage().startswith("exchange error")
    ]
    # One line per code, each naming its code, the long one capped: no line at all fails too.
    codes = sorted(line.split(":")[0] for line in lines)
    assert codes == ["exchange error 98", "exchange error 99"], lines
    assert all(len(line) < 400 for line in lines), [len(line) for line in lines]
    _live_truth(stream, exchange, set())


# -- staleness ------------------------------------------------------------------------------
def test_data_stalled_while_pings_flow_is_detected_resynced_then_reconnected(
    make_exchange: ExchangeFactory, open_stream: StreamFactory
) -> None:
    """Before: READY held through a 60 s data stall with no event."""
    exchange = make_exchange(markets=6, delta_rate=300, ping_interval=0.1)
    stream, events = open_stream(exchange, stale_after=0.3, snapshot_timeout=0.5)
    assert stream.wait_synced(WAIT)
    exchange.ws.stall()
    assert events.wait_for(StreamStale)
    assert not stream.wait_synced(0), "a stale feed must not claim synced books"
    assert events.wait_for(StreamDisconnected)
    assert "no reply to subscribe" in events.of(StreamDisconnected)[0].reason
    assert stream.stats.stale >= 1
    exchange.ws.unstall()
    assert events.wait_for(StreamSynced, count=2)
    _live_truth(stream, exchange, set())


def test_quiet_markets_are_probed_but_never_declared_stale(
    make_exchange: ExchangeFactory, open_stream: StreamFactory
) -> None:
    exchange = make_exchange(markets=3, delta_rate=0)
    stream, events = open_stream(exchange, stale_after=0.1, snapshot_timeout=2.0)
    assert stream.wait_synced(WAIT)
    initial = len(exchange.oplog.entries("ws_snapshot"))
    deadline = time.monotonic() + WAIT
    while len(exchange.oplog.entries("ws_snapshot")) < initial + 3:  # three probes answered
        assert time.monotonic() < deadline, "no probes were sent"
        assert stream.barrier(WAIT)
    assert events.of(StreamStale) == [] and events.of(StreamDisconnected) == []
    assert stream.wait_synced(0) and stream.stats.stale == 0
    _live_truth(stream, exchange, set())


# -- resource safety ------------------------------------------------------------------------
def test_oversize_frame_closes_the_session_and_the_stream_recovers(
    exchange: EmbeddedExchange, open_stream: StreamFactory
) -> None:
    stream, events = open_stream(exchange, max_frame_bytes=64 * 1024)
    assert stream.wait_synced(WAIT)
    assert exchange.ws.send_oversize(200_000) == 1
    assert events.wait_for(StreamDisconnected)
    assert "1009" in events.of(StreamDisconnected)[0].reason
    assert events.wait_for(StreamSynced, count=2)
    _live_truth(stream, exchange, set())


@pytest.mark.parametrize("asked", [False, True])
def test_compression_when_not_asked_is_neither_requested_nor_used_on_the_wire(asked: bool) -> None:
    """The policy: permessage-deflate off unless asked (a small compressed frame could
    inflate to the frame cap). Checked where it counts: what the client *requested* (the
    server's view of the upgrade), what was negotiated, and whether the frames that
    crossed the wire were compressed (RSV1) and how big they were, through a TCP tap, from
    a server willing to compress. ``asked`` is the control: it proves the checks see
    compression when there is some (the old test read a header the server sent, so it
    passed whatever the client asked)."""
    server = LoopbackExchange(compression="deflate").start()
    tap = FrameTap(server.port).start()
    stream = OrderbookStream(
        tap.url,
        ["KXA-1"],
        auth_headers=lambda: {AUTH_HEADER: "k"},
        compression=asked,
        reconnect=ReconnectPolicy(min_delay=0.01, max_delay=0.05, max_attempts=3),
    )
    stream.start()
    try:
        assert stream.wait_synced(WAIT)
        server.send({"type": "ticker", "sid": 99, "msg": {"pad": "x" * 500_000}})
        assert stream.barrier(WAIT)
        requested = server.latest().request_headers.get("Sec-WebSocket-Extensions")
        frames = tap.recorded()
        biggest = max(length for _, _, length in frames)
        if asked:
            assert requested is not None and "permessage-deflate" in requested
            assert server.negotiated_extensions() == ["permessage-deflate"]
            assert any(rsv1 for rsv1, _, _ in frames)
            assert biggest < 50_000, "the 500 KB frame crossed compressed"
        else:
            assert requested is None, requested
            assert server.negotiated_extensions() == []
            assert not any(rsv1 for rsv1, _, _ in frames), frames
            assert biggest >= 500_000, "the 500 KB frame crossed as it is"
        assert stream.stats.ignored_frames == 1
    finally:
        stream.stop()
        tap.stop()
        server.stop()


def test_frame_over_one_mib_when_the_cap_is_default_closes_the_session_and_it_recovers() -> None:
    """The default cap (``DEFAULT_MAX_FRAME_BYTES``, 1 MiB) holds: a frame just under it
    is read, one just over closes the session with 1009 and the stream reconnects."""
    server = LoopbackExchange(compression=None).start()
    events = Recorder()
    stream = OrderbookStream(
        server.url,
        ["KXA-1"],
        auth_headers=lambda: {AUTH_HEADER: "k"},
        listener=events,
        reconnect=ReconnectPolicy(min_delay=0.01, max_delay=0.05, max_attempts=3),
    )
    stream.start()
    try:
        assert stream.wait_synced(WAIT)
        envelope = len(orjson.dumps({"type": "ticker", "msg": ""}))
        under = {"type": "ticker", "msg": "x" * (DEFAULT_MAX_FRAME_BYTES - envelope)}
        assert len(orjson.dumps(under)) == DEFAULT_MAX_FRAME_BYTES
        server.send(under)
        assert stream.barrier(WAIT) and stream.stats.ignored_frames == 1
        assert events.of(StreamDisconnected) == []
        server.send({"type": "ticker", "msg": "x" * (DEFAULT_MAX_FRAME_BYTES - envelope + 1)})
        assert events.wait_for(StreamDisconnected)
        assert "1009" in events.of(StreamDisconnected)[0].reason
        assert events.wait_for(StreamSynced, count=2)
    finally:
        stream.stop()
        server.stop()
