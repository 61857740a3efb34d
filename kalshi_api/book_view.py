"""Read-only views of live books for people and dashboards: tops, depth, and change ages.

Why a separate module: the stream's hot path must stay a handful of dict operations per
delta, so it records nothing about *when* a book changed. The console still wants "how long
has this book been still", so :class:`ChangeClock` derives it from reads instead: each read
(on the stream thread, so a book is never seen half-updated) hashes the book's levels and
remembers when that hash was first seen. The age it reports is therefore exact to the
interval between reads (the console polls about once a second), and costs the hot path
nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from kalshi_api.orderbook import Level, OrderBook, best_level


@dataclass(frozen=True, slots=True)
class BookTop:
    """One book's best bids on each side, read at one instant on the stream thread.

    Prices are micro-dollars (NO in no-leg pricing, as the book stores them) and sizes
    centi-contracts; ``best_no_bid`` at ``p`` is the best YES ask at ``1 - p``.
    """

    ticker: str
    stale: bool
    best_yes_bid: Level | None
    best_no_bid: Level | None
    yes_levels: int
    no_levels: int
    signature: int
    """A hash of every level of both sides: equal books, equal signatures."""


@dataclass(frozen=True, slots=True)
class BookDepth:
    """One book's full ladders, ascending by price, read at one instant on the stream thread."""

    ticker: str
    stale: bool
    yes: tuple[Level, ...]
    no: tuple[Level, ...]
    signature: int


def _signature(yes: dict[int, int], no: dict[int, int]) -> int:
    """Order-independent hash of both sides: equal books, equal signatures."""
    return hash((frozenset(yes.items()), frozenset(no.items())))


def top_of(book: OrderBook) -> BookTop:
    """The top of ``book``; call it on the stream thread for both sides from one instant.

    Each side is copied in one C-level call first, so even a read off the stream thread
    (``LoopThread.run_sync``'s fallback when the loop is stuck) never iterates a dict that
    is being written.
    """
    yes, no = book.yes.copy(), book.no.copy()
    return BookTop(
        ticker=book.ticker,
        stale=book.stale,
        best_yes_bid=best_level(yes),
        best_no_bid=best_level(no),
        yes_levels=len(yes),
        no_levels=len(no),
        signature=_signature(yes, no),
    )


def depth_of(book: OrderBook) -> BookDepth:
    """The full ladders of ``book``; on the stream thread for both sides from one instant."""
    yes, no = book.yes.copy(), book.no.copy()
    return BookDepth(
        book.ticker, book.stale, tuple(sorted(yes.items())), tuple(sorted(no.items())),
        _signature(yes, no),
    )


class ChangeClock:
    """When each book was first seen in its current state, from successive reads.

    Bounded by the number of keys the caller uses (one per market of a fixed stream), and
    not thread-safe: one owner calls it (the stream thread, inside its read).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._seen: dict[str, tuple[int, float]] = {}

    def age(self, key: str, signature: int) -> float:
        """Seconds since ``key`` was first read with ``signature`` (0.0 when it just changed)."""
        now = self._clock()
        seen = self._seen.get(key)
        if seen is None or seen[0] != signature:
            self._seen[key] = (signature, now)
            return 0.0
        return max(0.0, now - seen[1])
