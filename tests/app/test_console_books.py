"""The console's books and stream health over real sockets: a supervisor at READY against
the embedded exchange, whose true books are the oracle.

After ``pause_stream()`` no delta is sent, and ``book_digests()`` round-trips a barrier on
the stream, so every delta already sent has been applied: the books are still, and each
market's top and depth must equal the truth exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from app.console_server import ConsoleServer
from app.handle import Supervisor
from app.stage_books import StageBooks
from kalshi_api.book_view import ChangeClock, top_of
from kalshi_api.orderbook import OrderBook
from kalshi_api.stream_events import StreamStats
from kalshi_sim.exchange import EmbeddedExchange
from messages.events import StreamHealed
from messages.faults import ExchangeFault, FaultTarget, InjectFault
from messages.states import State
from tests.harness import WAIT, running_supervisor, start_exchange, truth_depth, truth_top

TOKEN = "books-token-0123456789abcdefghijklmnopqrstu"
NOBODY = "urn:uuid:00000000-0000-4000-8000-000000000000"
"""A supervisor URN no actor has: other tests' stages in this process are not ours."""


@pytest.fixture(scope="module")
def still_books() -> Iterator[tuple[Supervisor, EmbeddedExchange]]:
    """A supervisor at READY whose books no longer move (the exchange's stream is paused)."""
    exchange = start_exchange()
    try:
        with running_supervisor(exchange) as supervisor:
            assert supervisor.wait_for_state(State.READY, WAIT)
            exchange.pause_stream()
            digests = supervisor.book_digests()  # barrier: every sent delta is applied
            assert digests == {t: exchange.markets.digest(t) for t in exchange.markets.tickers()}
            yield supervisor, exchange
    finally:
        exchange.stop()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=5.0) as client:
        yield client


# -- the oracle ----------------------------------------------------------------------------------
def test_books_when_stream_is_still_equal_the_exchange_truth_for_every_market(
    still_books: tuple[Supervisor, EmbeddedExchange], http: httpx.Client
) -> None:
    supervisor, exchange = still_books

    response = http.get(f"{supervisor.control_url}/books")

    assert response.status_code == 200
    body = response.json()
    assert body["available"] is True
    books = {book.pop("ticker"): book for book in body["books"]}
    assert set(books) == set(exchange.markets.tickers())
    for ticker, book in books.items():
        age = book.pop("unchanged_for_seconds")
        assert isinstance(age, float) and age >= 0.0
        assert {"ticker": ticker, **book} == truth_top(exchange, ticker)
    # The truth includes the deliberately one-sided and empty books.
    assert any(b["best_yes_ask"] is None and b["best_yes_bid"] for b in books.values())
    assert any(b["best_yes_bid"] is None and b["best_yes_ask"] is None for b in books.values())


def test_book_depth_when_stream_is_still_equals_the_exchange_truth_for_every_market(
    still_books: tuple[Supervisor, EmbeddedExchange], http: httpx.Client
) -> None:
    supervisor, exchange = still_books

    for ticker in exchange.markets.tickers():
        response = http.get(f"{supervisor.control_url}/books/{ticker}")

        assert response.status_code == 200
        depth = response.json()
        assert depth.pop("unchanged_for_seconds") >= 0.0
        assert depth == truth_depth(exchange, ticker)


def test_books_when_nothing_changes_report_a_non_decreasing_unchanged_age(
    still_books: tuple[Supervisor, EmbeddedExchange], http: httpx.Client
) -> None:
    supervisor, _ = still_books
    first = {b["ticker"]: b for b in http.get(f"{supervisor.control_url}/books").json()["books"]}

    second = {b["ticker"]: b for b in http.get(f"{supervisor.control_url}/books").json()["books"]}

    for ticker, book in second.items():
        assert book["unchanged_for_seconds"] >= first[ticker]["unchanged_for_seconds"]


def test_book_depth_when_ticker_is_unknown_returns_404_one_line(
    still_books: tuple[Supervisor, EmbeddedExchange], http: httpx.Client
) -> None:
    supervisor, _ = still_books

    for ticker in ("NOPE-26NOV24-X", "x" * 500, "%E2%9C%93"):
        response = http.get(f"{supervisor.control_url}/books/{ticker}")

        assert response.status_code == 404
        error = response.json()["error"]
        assert error and "\n" not in error


@pytest.mark.parametrize("path", ["/books", "/books/KXFED"])
def test_books_when_host_header_is_foreign_are_refused(
    still_books: tuple[Supervisor, EmbeddedExchange], http: httpx.Client, path: str
) -> None:
    supervisor, _ = still_books

    response = http.get(f"{supervisor.control_url}{path}", headers={"Host": "evil.example"})

    assert response.status_code == 421
    assert "unknown Host" in response.json()["error"]


# -- stage health --------------------------------------------------------------------------------
def test_status_and_metrics_when_ready_carry_every_stream_counter_and_book_staleness(
    still_books: tuple[Supervisor, EmbeddedExchange], http: httpx.Client
) -> None:
    supervisor, exchange = still_books

    stream = http.get(f"{supervisor.control_url}/status").json()["orderbook_stream"]
    metrics = http.get(f"{supervisor.control_url}/metrics").text

    integer_counters = {
        name for name in StreamStats.__slots__ if isinstance(getattr(StreamStats(), name), int)
    }
    assert stream["available"] is True
    assert stream["connected"] is True
    assert stream["markets"] == stream["live_markets"] == len(exchange.markets.tickers())
    assert set(stream["counters"]) == integer_counters
    assert stream["counters"]["snapshots_received"] >= len(exchange.markets.tickers())
    assert stream["last_frame_age_seconds"] >= 0.0
    for name in integer_counters:
        assert f'kalshi_supervisor_orderbook_stream_total{{counter="{name}"}}' in metrics
    for ticker in exchange.markets.tickers():
        assert f'kalshi_supervisor_book_stale{{market="{ticker}"}} 0.0' in metrics
        assert f'kalshi_supervisor_book_unchanged_seconds{{market="{ticker}"}}' in metrics
    assert "kalshi_supervisor_orderbook_last_frame_age_seconds" in metrics
    assert "kalshi_supervisor_orderbook_stage_answering 1.0" in metrics


def test_status_when_exchange_skips_a_seq_counts_the_gap_and_the_resync(
    http: httpx.Client,
) -> None:
    exchange = start_exchange()
    try:
        with running_supervisor(exchange) as supervisor:
            assert supervisor.wait_for_state(State.READY, WAIT)
            after = supervisor.recorder.last_id
            reply = supervisor.inject(
                InjectFault(target=FaultTarget.EXCHANGE, fault=ExchangeFault.SEQ_GAP)
            )
            assert reply["accepted"] is True

            healed = supervisor.recorder.wait_for(
                lambda events: any(
                    isinstance(e, StreamHealed) and e.kind == "resynced" for e in events
                ),
                WAIT,
                after=after,
            )

            assert healed
            counters = http.get(f"{supervisor.control_url}/status").json()["orderbook_stream"][
                "counters"
            ]
            # One injected gap: one gap seen, one resync, on a stream that had neither.
            assert (counters["gaps"], counters["resyncs"]) == (1, 1)
    finally:
        exchange.stop()


# -- no orderbook stage --------------------------------------------------------------------------
def test_books_when_no_orderbook_stage_runs_say_so_gracefully(http: httpx.Client) -> None:
    with ConsoleServer(
        port=0, token=TOKEN, inject=lambda f: {}, books=StageBooks(lambda: NOBODY)
    ) as console:
        books = http.get(f"{console.url}/books")
        depth = http.get(f"{console.url}/books/KXFED")
        status = http.get(f"{console.url}/status")
        metrics = http.get(f"{console.url}/metrics")

    assert books.status_code == 200
    assert books.json() == {
        "available": False,
        "reason": "no orderbook stage is running",
        "books": [],
    }
    assert depth.status_code == 503
    assert depth.json() == {"error": "no orderbook stage is running"}
    assert status.json()["orderbook_stream"] == {
        "available": False,
        "reason": "no orderbook stage is running",
    }
    assert "kalshi_supervisor_orderbook_stage_answering 0.0" in metrics.text


def test_books_when_bound_beyond_loopback_need_the_token(
    http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="kalshi_supervisor.app.console_server")
    with ConsoleServer(
        host="0.0.0.0", port=0, token=TOKEN, inject=lambda f: {}, books=StageBooks(lambda: NOBODY)
    ) as console:
        base = f"http://127.0.0.1:{console.port}"
        refused = [http.get(f"{base}{path}") for path in ("/books", "/books/KXFED")]
        allowed = http.get(f"{base}/books", headers={"Authorization": f"Bearer {TOKEN}"})

    assert [r.status_code for r in refused] == [401, 401]
    assert allowed.status_code == 200
    assert TOKEN not in caplog.text


# -- the pieces ----------------------------------------------------------------------------------
def test_change_clock_when_signature_changes_restarts_the_age() -> None:
    now = [100.0]
    clock = ChangeClock(lambda: now[0])

    first = clock.age("M", 1)
    now[0] = 103.5
    same = clock.age("M", 1)
    changed = clock.age("M", 2)
    now[0] = 104.0
    later = clock.age("M", 2)

    assert (first, same, changed, later) == (0.0, 3.5, 0.0, 0.5)


def test_top_of_when_book_is_stale_or_one_sided_reports_exactly_that() -> None:
    book = OrderBook("M")
    stale = top_of(book)
    book.apply_snapshot([(400_000, 150), (450_000, 75)], [])

    live = top_of(book)

    assert (stale.stale, stale.best_yes_bid, stale.best_no_bid) == (True, None, None)
    assert (live.stale, live.best_yes_bid, live.best_no_bid) == (False, (450_000, 75), None)
    assert (live.yes_levels, live.no_levels) == (2, 0)
    assert live.signature != stale.signature
