"""The book-change feed: coalescing, one wake-up per drain, bounded backlog, consistent reads."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from kalshi_api.book_changes import BookChangeFeed, read_book
from kalshi_api.orderbook import OrderBook


class Wakes:
    """Counts wake-ups (the feed calls it on the writer's thread)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def _feed(*tickers: str) -> tuple[BookChangeFeed, dict[str, OrderBook]]:
    books = {t: OrderBook(t) for t in tickers}
    for book in books.values():
        book.apply_snapshot([(400_000, 100)], [(500_000, 200)])
    feed = BookChangeFeed()
    feed.attach(books)
    return feed, books


def test_mark_when_reader_is_behind_coalesces_per_ticker_and_wakes_once() -> None:
    feed, _ = _feed("A", "B")
    wakes = Wakes()
    sub = feed.subscribe("svc", None, wakes)
    for _ in range(1000):
        feed.mark("A")
        feed.mark("B")
    assert wakes.count == 1
    assert sub.pending == 2
    assert sub.coalesced == 1998
    assert sorted(sub.drain()) == ["A", "B"]
    assert sub.pending == 0
    feed.mark("A")
    assert wakes.count == 2


def test_mark_when_subscribed_to_some_tickers_ignores_the_others() -> None:
    feed, _ = _feed("A", "B")
    wakes = Wakes()
    sub = feed.subscribe("svc", ["B"], wakes)
    feed.mark("A")
    assert wakes.count == 0 and sub.pending == 0
    feed.mark("B")
    assert wakes.count == 1 and sub.drain() == ["B"]


def test_mark_when_unsubscribed_no_longer_notifies() -> None:
    feed, _ = _feed("A")
    wakes = Wakes()
    sub = feed.subscribe("svc", None, wakes)
    feed.unsubscribe(sub)
    feed.unsubscribe(sub)
    feed.mark("A")
    assert wakes.count == 0 and feed.subscriptions == ()


def test_mark_when_wake_raises_stream_is_unharmed_and_wakes_once() -> None:
    feed, _ = _feed("A")
    calls = Wakes()

    def dead() -> None:
        calls()
        raise RuntimeError("actor is dead")

    sub = feed.subscribe("svc", None, dead)
    for _ in range(100):
        feed.mark("A")
    assert calls.count == 1
    assert sub.pending == 1


def test_drain_when_marks_race_it_never_strands_a_change() -> None:
    """Writer marks on one thread, reader drains on wake-up: every ticker the writer marked
    last is seen by the reader after its final wake-up."""
    tickers = [f"T{i}" for i in range(20)]
    feed, _ = _feed(*tickers)
    woken = threading.Event()
    sub = feed.subscribe("svc", None, woken.set)
    seen: set[str] = set()
    done = threading.Event()

    def reader() -> None:
        while not (done.is_set() and sub.pending == 0):
            if woken.wait(0.05):
                woken.clear()
                seen.update(sub.drain())

    thread = threading.Thread(target=reader)
    thread.start()
    for round_ in range(2000):
        feed.mark(tickers[round_ % len(tickers)])
    done.set()
    thread.join(10)
    assert not thread.is_alive()
    assert seen == set(tickers)
    assert sub.pending == 0


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads as often as CPython allows, so a torn read would actually happen."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


@pytest.mark.usefixtures("fast_switching")
def test_read_when_writer_moves_size_between_sides_never_sees_a_torn_book() -> None:
    """The writer moves contracts from YES to NO one delta at a time (YES only shrinks, NO
    only grows) and now and then resets both sides with a snapshot. Every real state has
    total size C or C-1; YES and NO copied at different instants show more than C."""
    book = OrderBook("A")
    book.apply_snapshot([(400_000, 10_000)], [(500_000, 10_000)])
    total = 20_000
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            if i % 2000 == 0:
                book.apply_snapshot([(400_000, 10_000)], [(500_000, 10_000)])
            elif book.apply_delta("yes", 400_000, -1):
                book.apply_delta("no", 500_000, 1)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        bad = []
        for _ in range(20_000):
            view = read_book(book)
            seen = sum(view.yes.values()) + sum(view.no.values())
            if not view.stale and seen not in (total, total - 1):
                bad.append(seen)
    finally:
        stop.set()
        thread.join(5)
    assert bad == []


def test_book_view_when_sides_empty_has_no_spread() -> None:
    book = OrderBook("A")
    book.apply_snapshot([(400_000, 100)], [])
    view = read_book(book)
    assert view.best_yes_bid() == (400_000, 100)
    assert view.best_yes_ask() is None and view.spread() is None
    book.apply_snapshot([(400_000, 100), (410_000, 5)], [(550_000, 7), (500_000, 9)])
    view = read_book(book)
    assert view.best_yes_bid() == (410_000, 5)
    assert view.best_yes_ask() == (450_000, 7)
    assert view.spread() == 40_000
    assert read_book(book).version % 2 == 0


def test_read_when_ticker_unknown_returns_none() -> None:
    feed, _ = _feed("A")
    assert feed.read("nope") is None
    assert feed.read("A") is not None
