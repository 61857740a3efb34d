"""OrderbookStream against the embedded exchange over real loopback sockets.

The oracle is the exchange's own truth: after ``pause_stream()`` (no more deltas) and
``barrier()`` (everything sent before has been applied), every client book digest must
equal ``exchange.markets.digest(ticker)``. Waiting is always on an event, a barrier or
``wait_synced`` — never on a sleep.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given
from hypothesis import strategies as st

from kalshi_api.auth import KalshiSigner, load_signer
from kalshi_api.fixed_point import format_count, parse_count
from kalshi_api.protocol import WS_PATH
from kalshi_api.ws_session import (
    OrderbookStream,
    ReconnectPolicy,
    StreamConnected,
    StreamDisconnected,
    StreamEvent,
    StreamFailed,
    StreamGap,
    StreamResynced,
    StreamSynced,
    StreamTerminalError,
    describe_connect_error,
    fast_count,
)
from kalshi_sim.exchange import EmbeddedExchange
from tests.conftest import ExchangeFactory
from tests.kalshi_api.conftest import WAIT, Recorder, StreamFactory


@pytest.fixture
def exchange(make_exchange: ExchangeFactory) -> EmbeddedExchange:
    """Six markets (linear, deci-cent, YES-only, empty, tapered, linear) streaming fast."""
    return make_exchange(markets=6, delta_rate=500)


def _until_deltas(stream: OrderbookStream, at_least: int) -> None:
    """Round-trip barriers until the stream has applied ``at_least`` more deltas."""
    target = stream.stats.deltas_received + at_least
    deadline = time.monotonic() + WAIT
    while stream.stats.deltas_received < target:
        assert time.monotonic() < deadline, "deltas stopped flowing"
        assert stream.barrier(WAIT)


def _assert_books_equal_truth(stream: OrderbookStream, exchange: EmbeddedExchange) -> None:
    exchange.pause_stream()
    assert stream.barrier(WAIT), "barrier reply never arrived"
    assert stream.wait_synced(WAIT), "books still stale after the barrier"
    digests = stream.digests()
    wrong = {
        ticker: (stream.levels(ticker), exchange.markets.levels(ticker))
        for ticker, digest in digests.items()
        if digest != exchange.markets.digest(ticker)
    }
    assert not wrong, f"books differ from the exchange truth: {wrong}"


def _foreign_headers(exchange: EmbeddedExchange) -> Callable[[], dict[str, str]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signer = KalshiSigner(exchange.key_id, key)
    return lambda: signer.headers("GET", WS_PATH)


def _tampered_headers(exchange: EmbeddedExchange) -> Callable[[], dict[str, str]]:
    signer = load_signer(exchange.key_id, exchange.private_key_path)

    def headers() -> dict[str, str]:
        signed = signer.headers("GET", WS_PATH)
        signed["KALSHI-ACCESS-TIMESTAMP"] = str(int(signed["KALSHI-ACCESS-TIMESTAMP"]) + 1)
        return signed

    return headers


# -- connect and auth ----------------------------------------------------------------------
def test_start_when_signature_valid_syncs_every_book_to_the_truth(
    exchange: EmbeddedExchange, open_stream: StreamFactory
) -> None:
    stream, events = open_stream(exchange)
    assert stream.wait_synced(WAIT)
    assert stream.connected
    assert events.of(StreamConnected) == [StreamConnected(attempt=1)]
    assert events.of(StreamSynced) == [StreamSynced(market_count=6)]
    assert stream.synced_market_count() == 6
    _until_deltas(stream, 100)
    _assert_books_equal_truth(stream, exchange)
    assert stream.stats.gaps == 0
    assert stream.stats.snapshots_received == 6
    assert len(exchange.oplog.entries("ws_handshake")) == 1


@pytest.mark.parametrize(
    "bad_headers",
    [
        pytest.param(_foreign_headers, id="wrong-key"),
        pytest.param(_tampered_headers, id="tampered-timestamp"),
    ],
)
def test_start_when_upgrade_signature_is_bad_fails_once_with_401(
    make_exchange: ExchangeFactory,
    open_stream: StreamFactory,
    bad_headers: Callable[[EmbeddedExchange], Callable[[], dict[str, str]]],
) -> None:
    exchange = make_exchange(markets=2)
    stream, events = open_stream(exchange, auth_headers=bad_headers(exchange))
    assert events.wait_for(StreamFailed)
    (failed,) = events.of(StreamFailed)
    assert "401" in failed.reason and "authentication_error" in failed.reason
    assert "\n" not in failed.reason
    assert stream.failed_reason == failed.reason
    assert events.of(StreamDisconnected) == [
        StreamDisconnected(failed.reason, will_retry=False, refused_status=401)
    ]
    assert len(exchange.oplog.entries("ws_handshake_rejected")) == 1  # not retried
    assert not stream.connected and not stream.wait_synced(0)


def test_start_when_exchange_rejects_auth_by_fault_gives_up_instead_of_retrying(
    make_exchange: ExchangeFactory, open_stream: StreamFactory
) -> None:
    exchange = make_exchange(markets=2)
    exchange.faults.reject_auth(1000)
    _, events = open_stream(exchange)
    assert events.wait_for(StreamFailed)
    assert len(exchange.oplog.entries("ws_handshake_rejected")) == 1


def test_start_when_nothing_listens_reports_one_line_reasons_and_gives_up(
    open_stream: StreamFactory, make_exchange: ExchangeFactory
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    exchange = make_exchange(markets=1)
    stream = OrderbookStream(
        f"ws://127.0.0.1:{port}{WS_PATH}",
        ["KXANY"],
        auth_headers=None,
        listener=(events := Recorder()),
        reconnect=ReconnectPolicy(min_delay=0.001, max_delay=0.01, max_attempts=3),
    )
    stream.start()
    try:
        assert events.wait_for(StreamFailed)
        disconnects = events.of(StreamDisconnected)
        assert [d.will_retry for d in disconnects] == [True, True, False]
        assert all(d.reason == f"connection refused by 127.0.0.1:{port}" for d in disconnects)
        (failed,) = events.of(StreamFailed)
        assert failed.reason.startswith("gave up after 3 failed attempt(s): connection refused")
        assert exchange.oplog.entries("ws_handshake") == []
    finally:
        stream.stop()


def test_start_when_server_never_answers_the_upgrade_times_out_with_one_line_reason() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # the kernel accepts the TCP connection; nobody answers HTTP
        port = silent.getsockname()[1]
        events = Recorder()
        stream = OrderbookStream(
            f"ws://127.0.0.1:{port}{WS_PATH}",
            ["KXANY"],
            auth_headers=None,
            listener=events,
            open_timeout=0.2,
            reconnect=ReconnectPolicy(min_delay=0.001, max_delay=0.01, max_attempts=1),
        )
        stream.start()
        try:
            assert events.wait_for(StreamFailed)
            (disconnected,) = events.of(StreamDisconnected)
            assert disconnected.reason == f"timed out after 0.2s connecting to 127.0.0.1:{port}"
        finally:
            stream.stop()


def test_describe_connect_error_when_dns_fails_gives_one_line() -> None:
    error = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    reason = describe_connect_error(error, "wss://nowhere.invalid/trade-api/ws/v2", 5.0)
    assert reason == "DNS lookup failed for nowhere.invalid: Name or service not known"


# -- gaps and repairs ----------------------------------------------------------------------
def test_seq_gap_when_exchange_skips_a_seq_repairs_via_get_snapshot_and_matches_truth(
    exchange: EmbeddedExchange, open_stream: StreamFactory
) -> None:
    stream, events = open_stream(exchange)
    assert stream.wait_synced(WAIT)
    _until_deltas(stream, 20)
    exchange.ws.skip_seq()
    assert events.wait_for(StreamResynced)
    (gap,) = events.of(StreamGap)
    assert (gap.received - gap.expected, gap.reason) == (1, "seq")
    assert stream.stats.resubscribes == 0  # repaired in-stream, subscription untouched
    assert len(exchange.oplog.entries("ws_subscribe")) == 1
    assert len(exchange.oplog.entries("ws_snapshot")) == 12  # 6 initial + 6 repair
    _until_deltas(stream, 20)
    _assert_books_equal_truth(stream, exchange)
    assert stream.stats.resyncs == 1


def test_seq_gap_when_get_snapshot_is_refused_falls_back_to_resubscribe(
    exchange: EmbeddedExchange, open_stream: StreamFactory
) -> None:
    stream, events = open_stream(exchange)
    assert stream.wait_synced(WAIT)
    exchange.ws.fail_get_snapshot(1)
    exchange.ws.skip_seq()
    assert events.wait_for(StreamResynced)
    assert stream.stats.resubscribes == 1
    assert len(exchange.oplog.entries("ws_subscribe")) == 2
    _assert_books_equal_truth(stream, exchange)


def test_delta_when_level_would_go_negative_is_a_gap_and_is_repaired(
    make_exchange: ExchangeFactory, open_stream: StreamFactory
) -> None:
    exchange = make_exchange(markets=6, delta_rate=0)
    stream, events = open_stream(exchange)
    assert stream.wait_synced(WAIT)
    assert exchange.ws.send_negative_delta() == 1
    assert events.wait_for(StreamResynced)
    assert [g.reason for g in events.of(StreamGap)] == ["negative_level"]
    _assert_books_equal_truth(stream, exchange)


def test_duplicate_seq_when_delta_is_replayed_is_dropped_and_books_stay_true(
    exchange: EmbeddedExchange, open_stream: StreamFactory
) -> None:
    stream, events = open_stream(exchange)
    assert stream.wait_synced(WAIT)
    exchange.ws.duplicate_next_delta()
    deadline = time.monotonic() + WAIT
    while stream.stats.duplicates_dropped == 0:
        assert time.monotonic() < deadline
        assert stream.barrier(WAIT)
    assert stream.stats.duplicates_dropped == 1
    assert stream.stats.gaps == 0 and events.of(StreamGap) == []
    _assert_books_equal_truth(stream, exchange)


@pytest.mark.parametrize("code", [25, 10])
def test_terminal_error_when_subscription_killed_resubscribes_and_matches_truth(
    exchange: EmbeddedExchange, open_stream: StreamFactory, code: int
) -> None:
    stream, events = open_stream(exchange)
    assert stream.wait_synced(WAIT)
    assert exchange.ws.send_terminal_error(code) == 1
    assert events.wait_for(StreamResynced)
    (terminal,) = events.of(StreamTerminalError)
    assert terminal.code == code and terminal.message
    assert stream.stats.terminal_errors == 1
    assert stream.stats.resubscribes == 1
    assert len(exchange.oplog.entries("ws_subscribe")) == 2
    _until_deltas(stream, 20)
    _assert_books_equal_truth(stream, exchange)


# -- reconnects ----------------------------------------------------------------------------
def test_drop_connections_when_exchange_cuts_sockets_reconnects_and_rebuilds_books(
    exchange: EmbeddedExchange, open_stream: StreamFactory
) -> None:
    stream, events = open_stream(exchange)
    assert stream.wait_synced(WAIT)
    _until_deltas(stream, 20)
    assert exchange.ws.drop_connections() == 1
    assert events.wait_for(StreamSynced, count=2)
    (disconnected,) = events.of(StreamDisconnected)
    assert disconnected.reason == "connection lost (no close frame)" and disconnected.will_retry
    assert 0.005 <= disconnected.retry_in <= 0.01  # first failure: [min_delay/2, min_delay]
    assert events.of(StreamConnected) == [StreamConnected(1), StreamConnected(1)]
    assert stream.stats.reconnects == 1
    assert len(exchange.oplog.entries("ws_handshake")) == 2
    _until_deltas(stream, 20)
    _assert_books_equal_truth(stream, exchange)


def test_drop_connection_when_client_aborts_reconnects_and_rebuilds_books(
    exchange: EmbeddedExchange, open_stream: StreamFactory
) -> None:
    stream, events = open_stream(exchange)
    assert stream.wait_synced(WAIT)
    stream.drop_connection()
    assert events.wait_for(StreamSynced, count=2)
    assert "fault injection" in events.of(StreamDisconnected)[0].reason
    _assert_books_equal_truth(stream, exchange)


# -- frame content -------------------------------------------------------------------------
def test_malformed_frames_when_injected_are_counted_skipped_and_stream_continues(
    exchange: EmbeddedExchange, open_stream: StreamFactory
) -> None:
    stream, events = open_stream(exchange)
    assert stream.wait_synced(WAIT)
    exchange.ws.send_malformed()
    assert stream.barrier(WAIT)
    assert stream.stats.malformed_frames == 2
    _until_deltas(stream, 50)
    assert stream.stats.gaps == 0 and events.of(StreamGap) == []
    _assert_books_equal_truth(stream, exchange)


def test_snapshot_when_book_is_empty_or_one_sided_gives_a_valid_live_book(
    make_exchange: ExchangeFactory, open_stream: StreamFactory
) -> None:
    exchange = make_exchange(markets=6, delta_rate=0)
    one_sided, empty = exchange.markets.tickers()[2:4]
    stream, _ = open_stream(exchange)
    assert stream.wait_synced(WAIT)
    yes_only = stream.book(one_sided)
    assert yes_only.yes and yes_only.no == {} and not yes_only.stale
    assert yes_only.best_yes_ask() is None and yes_only.best_yes_bid() is not None
    ladderless = stream.book(empty)
    assert ladderless.levels() == ((), ()) and not ladderless.stale
    _assert_books_equal_truth(stream, exchange)


def test_levels_when_market_has_sub_penny_ticks_and_fractional_sizes_are_exact(
    exchange: EmbeddedExchange, open_stream: StreamFactory
) -> None:
    ticker = exchange.markets.tickers()[1]
    assert exchange.markets.market(ticker).price_level_structure == "deci_cent"
    stream, _ = open_stream(exchange)
    assert stream.wait_synced(WAIT)
    _until_deltas(stream, 100)
    _assert_books_equal_truth(stream, exchange)
    truth = exchange.markets.levels(ticker)
    levels = truth.yes + truth.no
    assert any(price % 10_000 for price, _ in levels), "no sub-penny level to check"
    assert any(size % 100 for _, size in levels), "no fractional level to check"
    assert stream.levels(ticker) == (truth.yes, truth.no)


def test_use_yes_price_when_true_books_still_equal_truth_in_no_leg_pricing(
    exchange: EmbeddedExchange, open_stream: StreamFactory
) -> None:
    stream, _ = open_stream(exchange, use_yes_price=True)
    assert stream.wait_synced(WAIT)
    _until_deltas(stream, 100)
    _assert_books_equal_truth(stream, exchange)


# -- robustness and lifecycle --------------------------------------------------------------
def test_listener_when_it_raises_does_not_kill_the_stream(
    exchange: EmbeddedExchange, open_stream: StreamFactory
) -> None:
    def explode(event: StreamEvent) -> None:
        raise RuntimeError(f"listener bug on {event}")

    stream, _ = open_stream(exchange, listener=explode)
    assert stream.wait_synced(WAIT)
    exchange.ws.skip_seq()  # forces more events through the broken listener
    _until_deltas(stream, 50)
    _assert_books_equal_truth(stream, exchange)


def test_stop_when_called_twice_joins_the_thread_and_barrier_then_returns_false(
    exchange: EmbeddedExchange, open_stream: StreamFactory
) -> None:
    stream, _ = open_stream(exchange)
    assert stream.wait_synced(WAIT)
    stream.stop()
    stream.stop()
    assert not stream.connected
    assert not any(t.name == "orderbook-stream" for t in threading.enumerate())
    assert stream.barrier(0.1) is False
    assert all(stream.book(t).stale for t in stream.tickers)
    with pytest.raises(RuntimeError):
        stream.start()


def test_reconnect_policy_when_failures_grow_caps_the_jittered_delay() -> None:
    import random

    policy = ReconnectPolicy(min_delay=0.1, max_delay=1.0)
    rng = random.Random(3)
    assert all(0 <= policy.delay(1, rng) <= 0.1 for _ in range(100))
    assert all(0 <= policy.delay(50, rng) <= 1.0 for _ in range(100))
    assert max(policy.delay(50, rng) for _ in range(200)) > 0.5
    with pytest.raises(ValueError):
        ReconnectPolicy(min_delay=2.0, max_delay=1.0)


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_fast_count_when_canonical_fp_string_matches_exact_parser(centi: int) -> None:
    text = format_count(centi)
    assert fast_count(text) == parse_count(text) == centi


@given(st.text(alphabet="0123456789.-+_ ²", max_size=9))
def test_fast_count_when_given_any_text_agrees_with_the_exact_parser_or_refuses(
    text: str,
) -> None:
    """Same number, or a refusal: a fast parser that guessed at text the exact one refuses
    would put a wrong size in a book. Its documented leniency (surrounding whitespace and
    ``_`` separators, as ``int`` allows) may accept more, but never a different number."""
    try:
        exact = parse_count(text)
    except ValueError:
        try:
            fast = fast_count(text)
        except (ValueError, TypeError):
            return
        assert fast == parse_count(text.strip().replace("_", "")), text
        return
    assert fast_count(text) == exact


@pytest.mark.parametrize("bad", ["5.0 ", "5._0", "1.2.34", "5.²²", "", "7.5x", "..12", 12, None])
def test_fast_count_when_shape_is_wrong_raises_instead_of_guessing(bad: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        fast_count(bad)


def test_stall_when_exchange_holds_frames_stream_stays_connected_and_catches_up(
    exchange: EmbeddedExchange, open_stream: StreamFactory
) -> None:
    stream, events = open_stream(exchange)
    assert stream.wait_synced(WAIT)
    exchange.ws.stall(None)
    held = stream.stats.deltas_received
    assert stream.barrier(0.3) is False  # bounded check: nothing gets through a stall
    assert stream.connected and events.of(StreamDisconnected) == []
    exchange.ws.unstall()
    assert stream.barrier(WAIT)
    assert stream.stats.deltas_received > held
    _assert_books_equal_truth(stream, exchange)


def test_start_when_proxy_env_is_set_still_reaches_the_loopback_exchange(
    exchange: EmbeddedExchange, open_stream: StreamFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    stream, _ = open_stream(exchange)
    assert stream.wait_synced(WAIT)


# -- exchange pauses ------------------------------------------------------------------------
def test_exchange_pause_drops_the_session_refuses_upgrades_then_retry_now_skips_the_backoff(
    exchange: EmbeddedExchange, open_stream: StreamFactory
) -> None:
    # A backoff of an hour: only ``retry_now`` can bring the stream back within the test.
    policy = ReconnectPolicy(min_delay=3600.0, max_delay=3600.0, healthy_after=0.0)
    stream, events = open_stream(exchange, reconnect=policy)
    assert stream.wait_synced(WAIT)
    exchange.status.pause_exchange()  # the session is dropped as the pause begins
    assert events.wait_for(StreamDisconnected)
    assert not stream.wait_synced(0)
    assert all(top.stale for top, _ in stream.tops())  # books kept, marked stale
    stream.retry_now()  # still paused: the upgrade is refused with 503
    assert events.wait_for(StreamDisconnected, count=2)
    refused = events.of(StreamDisconnected)[1]
    assert "HTTP 503" in refused.reason and refused.will_retry and refused.refused_status == 503
    assert events.of(StreamDisconnected)[0].refused_status is None  # a drop, not a refusal
    assert refused.retry_in >= 1800.0  # the backoff still says half an hour or more
    assert [op.detail for op in exchange.oplog.entries("ws_handshake_rejected")] == [
        "HTTP 503 (exchange paused)"
    ]
    exchange.status.resume()
    stream.retry_now()
    assert events.wait_for(StreamSynced, count=2)
    assert stream.wait_synced(WAIT)
    _assert_books_equal_truth(stream, exchange)


def test_trading_pause_leaves_the_session_up(
    exchange: EmbeddedExchange, open_stream: StreamFactory
) -> None:
    stream, events = open_stream(exchange)
    assert stream.wait_synced(WAIT)
    exchange.status.pause_trading()
    _until_deltas(stream, 20)
    assert events.of(StreamDisconnected) == []
    assert exchange.oplog.entries("ws_dropped_for_pause") == []
    exchange.status.resume()


def test_exchange_pause_keeps_sessions_when_the_exchange_is_told_not_to_drop(
    exchange: EmbeddedExchange, open_stream: StreamFactory
) -> None:
    exchange.ws.behaviour.drop_on_exchange_pause = False
    stream, events = open_stream(exchange)
    assert stream.wait_synced(WAIT)
    exchange.status.pause_exchange()
    _until_deltas(stream, 20)
    assert events.of(StreamDisconnected) == []
    exchange.status.resume()
