"""One market's order book as the client sees it: YES bids and NO bids in exact integers.

Kalshi books carry bids only. A NO bid at no-leg price ``p`` is a YES ask at ``1 - p``, so
storing both sides as bids (NO in **no-leg** pricing, whatever ``use_yes_price`` the stream
was subscribed with) keeps one canonical shape that matches the exchange's truth and the
shared :func:`~kalshi_api.orderbook_digest.book_digest`.

Threading: exactly one thread (the stream thread) writes a book. Other threads may read;
each side's dict is copied in a single C-level call, so a reader sees a consistent side,
though YES and NO may come from adjacent updates. ``OrderbookStream.digests()`` reads on
the stream thread when it needs both sides from the same instant.

This module sits on the delta hot path, so it is plain dicts and ints: no validation
beyond what keeps the book non-negative, no pydantic, no Decimal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kalshi_api.fixed_point import MICROS_PER_DOLLAR
from kalshi_api.orderbook_digest import book_digest

Level = tuple[int, int]
"""``(price_micros, size_centi)``; NO prices are no-leg prices."""


def best_level(side: Mapping[int, int]) -> tuple[int, int] | None:
    """``(price_micros, size_centi)`` of one side's best (highest) bid, or None if empty."""
    if not side:
        return None
    price = max(side)
    return price, side[price]


class OrderBook:
    """Bids for one market, keyed ``price_micros -> size_centi``; a level at zero is absent."""

    __slots__ = ("market_id", "no", "stale", "ticker", "version", "yes")

    def __init__(self, ticker: str, market_id: str = "") -> None:
        self.ticker = ticker
        self.market_id = market_id
        self.yes: dict[int, int] = {}
        self.no: dict[int, int] = {}
        self.version = 0
        """A seqlock counter for lock-free consistent reads from other threads
        (:func:`kalshi_api.book_changes.read_book`): +2 after each delta, odd while a
        snapshot or a clear replaces both sides. Writers that inline the delta update
        (the stream's hot path) must bump it the same way."""
        self.stale = True
        """True until the first snapshot, and again while a gap is being repaired: its
        levels must not be trusted (they are kept only so a reader sees the last view)."""

    # -- writes (stream thread only) -----------------------------------------------------
    def apply_snapshot(self, yes_levels: Iterable[Level], no_levels: Iterable[Level]) -> None:
        """Replace both sides with a snapshot's levels and mark the book live.

        Levels may arrive in any order (ascending is only documented for REST). A zero
        size means "no level" and is dropped; a negative size is rejected before anything
        changes, so a bad snapshot never leaves a half-applied book.
        """
        yes = dict(yes_levels)
        no = dict(no_levels)
        for side in (yes, no):
            for price, size in side.items():
                if size < 0:
                    raise ValueError(f"negative size {size} at {price} in a snapshot")
        yes = {price: size for price, size in yes.items() if size}
        no = {price: size for price, size in no.items() if size}
        self.version += 1
        self.yes = yes
        self.no = no
        self.stale = False
        self.version += 1

    def apply_delta(self, side: str, price_micros: int, delta_centi: int) -> bool:
        """Add ``delta_centi`` at one level; False (book untouched) if it would go negative.

        A negative result means the stream lost data, which the caller handles as a gap.
        A level that reaches exactly zero is removed, as Kalshi implies.
        """
        if side == "yes":
            levels = self.yes
        elif side == "no":
            levels = self.no
        else:
            raise ValueError(f"unknown side {side!r}")
        size = levels.get(price_micros, 0) + delta_centi
        if size > 0:
            levels[price_micros] = size
        elif size == 0:
            levels.pop(price_micros, None)
        else:
            return False
        self.version += 2
        return True

    def clear(self) -> None:
        """Drop every level and mark the book stale (used when the market leaves the stream)."""
        self.version += 1
        self.yes = {}
        self.no = {}
        self.stale = True
        self.version += 1

    # -- reads ------------------------------------------------------------------------------
    def best_yes_bid(self) -> int | None:
        """Highest YES bid in micro-dollars, or None when nobody bids YES."""
        yes = self.yes
        return max(yes) if yes else None

    def best_no_bid(self) -> int | None:
        """Highest NO bid in no-leg micro-dollars, or None when nobody bids NO."""
        no = self.no
        return max(no) if no else None

    def best_yes_ask(self) -> int | None:
        """Cheapest YES offer, implied by the best NO bid: ``1_000_000 - best_no_bid``."""
        best_no = self.best_no_bid()
        return None if best_no is None else MICROS_PER_DOLLAR - best_no

    def best_no_ask(self) -> int | None:
        """Cheapest NO offer (no-leg price), implied by the best YES bid."""
        best_yes = self.best_yes_bid()
        return None if best_yes is None else MICROS_PER_DOLLAR - best_yes

    def levels(self) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """``(yes, no)`` bids, each ascending by price, as the REST book and the truth list them."""
        return tuple(sorted(self.yes.items())), tuple(sorted(self.no.items()))

    def digest(self) -> str:
        """The canonical digest, directly comparable with ``MarketSet.digest(ticker)``."""
        return book_digest(self.yes.copy().items(), self.no.copy().items())

    def __repr__(self) -> str:
        state = "stale" if self.stale else "live"
        return (
            f"OrderBook({self.ticker!r}, {state}, yes={len(self.yes)} levels, "
            f"no={len(self.no)} levels)"
        )
