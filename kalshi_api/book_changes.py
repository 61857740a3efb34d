"""Book-change notifications for readers of live books, without polling and without a queue.

Why it looks like this:

* **The stream thread stays the only writer and never waits.** After applying a snapshot
  or a delta it calls :meth:`BookChangeFeed.mark` with the ticker. ``mark`` does a dict
  lookup and, per interested subscriber, a set membership test and (first time only) a
  set insert: no lock, no allocation per delta, no call into a reader.
* **Coalesced per ticker.** Each subscriber has a *pending set* of tickers that changed
  since it last drained. A ticker already pending is not added again; that notification
  is *coalesced* and counted. A reader that falls behind therefore sees the latest state
  of every changed book when it catches up, and its backlog is bounded by the number of
  tickers it watches, never by the delta rate.
* **One wake-up per drain.** The first change after a drain invokes the subscriber's
  ``wake`` callback (typically ``actor_ref.tell(BOOKS_CHANGED)``); further changes do
  not call it again until the reader drains. The wake flag is cleared *before* draining
  and set by the writer *after* inserting, so a change is never stranded: either the
  drain sees it, or the writer sees the cleared flag and wakes the reader again.
  (All of this relies on the GIL making each set/attribute operation atomic.)
* **Consistent reads without a lock.** Books are plain dicts written in place by the
  stream thread. :meth:`BookChangeFeed.read` copies both sides under a seqlock on
  ``OrderBook.version`` (bumped by the writer, odd while a snapshot replaces both sides):
  if the version moved or was odd, it copies again. A delta changes one side with one
  dict operation, so at most one delta can slip into a copy that passes the check, and
  the copy is then exactly the book after that delta: a state that really existed.

This module imports only :mod:`kalshi_api.orderbook`; it knows nothing of actors.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from kalshi_api.fixed_point import MICROS_PER_DOLLAR
from kalshi_api.orderbook import OrderBook, best_level

__all__ = ["BookChangeFeed", "BookSubscription", "BookView"]

log = logging.getLogger("kalshi_supervisor.kalshi_api.book_changes")

_READ_ATTEMPTS = 64
"""Copies tried before a read gives up on consistency (and says so with ``stale=True``).
Under the GIL a copy of a normal book finishes well inside one switch interval, so more
than one retry is already rare; the bound only keeps a pathological writer from trapping
a reader in a loop."""


@dataclass(frozen=True, slots=True)
class BookView:
    """An immutable copy of one book at one instant (``yes``/``no`` are private copies).

    Prices are micro-dollars, sizes centi-contracts, NO prices in no-leg terms, exactly as
    :class:`~kalshi_api.orderbook.OrderBook` stores them. ``stale`` means the levels are
    not to be trusted (no snapshot yet, or a gap is being repaired).
    """

    ticker: str
    yes: Mapping[int, int]
    no: Mapping[int, int]
    stale: bool
    version: int

    def best_yes_bid(self) -> tuple[int, int] | None:
        """``(price_micros, size_centi)`` of the highest YES bid, or None."""
        return best_level(self.yes)

    def best_no_bid(self) -> tuple[int, int] | None:
        """``(no_price_micros, size_centi)`` of the highest NO bid, or None."""
        return best_level(self.no)

    def best_yes_ask(self) -> tuple[int, int] | None:
        """``(price_micros, size_centi)`` of the cheapest YES offer (the best NO bid, flipped)."""
        best = self.best_no_bid()
        return None if best is None else (MICROS_PER_DOLLAR - best[0], best[1])

    def spread(self) -> int | None:
        """YES ask minus YES bid in micro-dollars; None when either side is empty."""
        bid, ask = self.best_yes_bid(), self.best_yes_ask()
        return None if bid is None or ask is None else ask[0] - bid[0]


class BookSubscription:
    """One reader's pending tickers, its wake-up and its counters.

    Written by the stream thread (``mark``) and drained by the reader's thread; see the
    module docstring for why that needs no lock.
    """

    __slots__ = ("_armed", "_pending", "_wake", "coalesced", "name", "tickers", "wakeups")

    def __init__(
        self, name: str, tickers: frozenset[str] | None, wake: Callable[[], None]
    ) -> None:
        self.name = name
        self.tickers = tickers
        """The tickers watched, or None for every ticker."""
        self._wake = wake
        self._pending: set[str] = set()
        self._armed = False
        self.coalesced = 0
        """Changes folded into a notification already pending (written by the writer only)."""
        self.wakeups = 0
        """Times ``wake`` was invoked (written by the writer only)."""

    def drain(self) -> list[str]:
        """The tickers changed since the last drain (each once), emptying the pending set.

        Call it from the reader's thread when woken. Tickers marked while this runs are
        either returned now or cause a fresh wake-up, never lost.
        """
        self._armed = False
        pending = self._pending
        out: list[str] = []
        pop = pending.pop
        while pending:
            try:
                out.append(pop())
            except KeyError:  # emptied meanwhile: cannot happen with one reader, harmless
                break
        return out

    @property
    def pending(self) -> int:
        """How many tickers are waiting to be drained (bounded by the tickers watched)."""
        return len(self._pending)

    def _notify(self, ticker: str) -> None:
        """The writer's half (inlined in :meth:`BookChangeFeed.mark`; kept for clarity/tests)."""
        pending = self._pending
        if ticker in pending:
            self.coalesced += 1
            return
        pending.add(ticker)
        if not self._armed:
            self._armed = True
            self._fire()

    def _fire(self) -> None:
        self.wakeups += 1
        try:
            self._wake()
        except Exception as exc:
            # A dead reader must not hurt the stream. The flag stays armed, so a dead
            # reader costs one failed call, not one per delta.
            log.warning("book subscriber %s: wake-up failed: %s", self.name, exc)

    def __repr__(self) -> str:
        watched = "all" if self.tickers is None else f"{len(self.tickers)} tickers"
        return (
            f"BookSubscription({self.name!r}, {watched}, pending={self.pending}, "
            f"coalesced={self.coalesced})"
        )


class BookChangeFeed:
    """Fan-out of "this book changed" from the stream thread to any number of readers.

    One feed outlives stream restarts: the current stream :meth:`attach` es its books, and
    readers keep their subscriptions across reconnects and stage restarts.
    """

    def __init__(self) -> None:
        self._books: Mapping[str, OrderBook] = {}
        self._by_ticker: dict[str, tuple[BookSubscription, ...]] = {}
        self._everything: tuple[BookSubscription, ...] = ()
        self._subscriptions: tuple[BookSubscription, ...] = ()
        self._lock = threading.Lock()
        """Serialises subscribe/unsubscribe (copy-on-write tables); ``mark`` never takes it."""
        self.marks = 0
        """Changes marked since the feed was created (stream thread only)."""

    # -- the writer's side (stream thread) ----------------------------------------------
    def attach(self, books: Mapping[str, OrderBook]) -> None:
        """Make ``books`` (the current stream's) the ones :meth:`read` copies."""
        self._books = books

    def mark(self, ticker: str) -> None:
        """``ticker``'s book changed: note it for every subscriber watching it. Never blocks.

        This is :meth:`BookSubscription._notify` inlined for each subscriber, because it
        runs once per delta on the hot path.
        """
        self.marks += 1
        for sub in self._by_ticker.get(ticker, ()):
            pending = sub._pending
            if ticker in pending:
                sub.coalesced += 1
            else:
                pending.add(ticker)
                if not sub._armed:
                    sub._armed = True
                    sub._fire()
        for sub in self._everything:
            pending = sub._pending
            if ticker in pending:
                sub.coalesced += 1
            else:
                pending.add(ticker)
                if not sub._armed:
                    sub._armed = True
                    sub._fire()

    def mark_all(self) -> None:
        """Every attached book changed (a reconnect rebuilt them, or they went stale)."""
        for ticker in tuple(self._books):
            self.mark(ticker)

    # -- the readers' side (any thread) ---------------------------------------------------
    def subscribe(
        self, name: str, tickers: Iterable[str] | None, wake: Callable[[], None]
    ) -> BookSubscription:
        """Watch ``tickers`` (None: every ticker); ``wake`` is called on the stream thread,
        at most once per drain, so it must be cheap and must not block (a ``tell``)."""
        watched = None if tickers is None else frozenset(tickers)
        sub = BookSubscription(name, watched, wake)
        with self._lock:
            self._subscriptions = (*self._subscriptions, sub)
            self._rebuild()
        return sub

    def unsubscribe(self, sub: BookSubscription) -> None:
        """Stop notifying ``sub`` (idempotent)."""
        with self._lock:
            self._subscriptions = tuple(s for s in self._subscriptions if s is not sub)
            self._rebuild()

    @property
    def subscriptions(self) -> tuple[BookSubscription, ...]:
        return self._subscriptions

    @property
    def tickers(self) -> tuple[str, ...]:
        """The tickers of the attached books."""
        return tuple(self._books)

    def read(self, ticker: str) -> BookView | None:
        """A consistent copy of ``ticker``'s book, or None if no such book is attached."""
        book = self._books.get(ticker)
        if book is None:
            return None
        return read_book(book)

    def _rebuild(self) -> None:
        """Recompute the lookup tables and publish them with one assignment each, so the
        writer (which never locks) always iterates a complete, immutable tuple."""
        by_ticker: dict[str, list[BookSubscription]] = {}
        everything: list[BookSubscription] = []
        for sub in self._subscriptions:
            if sub.tickers is None:
                everything.append(sub)
                continue
            for ticker in sub.tickers:
                by_ticker.setdefault(ticker, []).append(sub)
        self._by_ticker = {ticker: tuple(subs) for ticker, subs in by_ticker.items()}
        self._everything = tuple(everything)


def read_book(book: OrderBook) -> BookView:
    """Copy ``book`` consistently from any thread while the stream thread writes it.

    A seqlock read: version (must be even), copy both sides and the stale flag, version
    again (must be unchanged). See the module docstring for why one passing check is
    enough. After ``_READ_ATTEMPTS`` failed checks the last copy is returned marked stale.
    """
    for _ in range(_READ_ATTEMPTS):
        before = book.version
        yes = book.yes.copy()
        no = book.no.copy()
        stale = book.stale
        if not before & 1 and book.version == before:
            return BookView(book.ticker, yes, no, stale, before)
    return BookView(book.ticker, yes, no, True, before)
