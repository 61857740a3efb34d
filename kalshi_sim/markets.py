"""The embedded exchange's markets and their true order books.

Books are bids only, as on Kalshi: YES bids at yes-leg prices and NO bids at no-leg
prices, both in integer micro-dollars with integer centi-contract sizes. The generated
set deliberately includes the awkward cases a client must handle: sub-penny ticks,
fractional sizes, a book with one empty side and a book with no levels at all.
"""

from __future__ import annotations

import random
import threading
import uuid
from dataclasses import dataclass, field

from kalshi_api.fixed_point import MICROS_PER_DOLLAR
from kalshi_api.orderbook_digest import book_digest

CENT = MICROS_PER_DOLLAR // 100
DECI_CENT = CENT // 10

SHARD_DESCRIPTIONS: dict[int, str] = {
    0: "Kalshi (default)",
    1: "Combos",
    2: "Crypto",
    3: "Tennis & baseball",
}
"""The exchange shards (``exchange_index``) Kalshi runs today [SH], each with its own collateral."""

_SERIES_SHARD = {"KXBTCD": 2}
"""Series listed on a shard other than the default one (crypto lives on shard 2)."""


def shard_of_series(series_ticker: str) -> int:
    """The ``exchange_index`` a series' markets trade on (0 unless listed elsewhere)."""
    if series_ticker.startswith("KXMVE"):
        return 1
    return _SERIES_SHARD.get(series_ticker, 0)


_SERIES = (
    ("KXHIGHNY", "Highest temperature in NYC", "B{:.1f}", (40.0, 70.0)),
    ("KXFED", "Fed funds upper bound", "T{:.2f}", (3.0, 5.0)),
    ("KXBTCD", "Bitcoin price at 5pm", "T{:.2f}", (80000.0, 120000.0)),
    ("KXINX", "S&P 500 close", "B{:.0f}", (5500.0, 7000.0)),
    ("KXCPI", "CPI year over year", "T{:.1f}", (2.0, 4.0)),
)


@dataclass(frozen=True, slots=True)
class BookLevels:
    """One market's bids, ascending by price: ``(price_micros, size_centi)`` pairs."""

    yes: tuple[tuple[int, int], ...]
    no: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class Delta:
    """One change to one price level, as the exchange applied it to the truth."""

    ticker: str
    side: str
    price_micros: int
    delta_centi: int


@dataclass
class SimMarket:
    """A market's listing data and its true book (mutated only under ``MarketSet.lock``)."""

    ticker: str
    event_ticker: str
    series_ticker: str
    market_id: str
    title: str
    price_level_structure: str
    fair_micros: int
    fractional: bool
    frozen_book: bool = False
    """True for the deliberately empty / one-sided books, which the stream never touches."""
    status: str = "active"
    exchange_index: int = 0
    yes: dict[int, int] = field(default_factory=dict)
    no: dict[int, int] = field(default_factory=dict)

    def tick_at(self, price_micros: int) -> int:
        """The tick size at a price under this market's price level structure."""
        if self.price_level_structure == "deci_cent":
            return DECI_CENT
        if self.price_level_structure == "tapered_deci_cent":
            low, high = 10 * CENT, 90 * CENT
            return DECI_CENT if price_micros < low or price_micros > high else CENT
        return CENT

    def levels(self) -> BookLevels:
        return BookLevels(yes=tuple(sorted(self.yes.items())), no=tuple(sorted(self.no.items())))


class MarketSet:
    """All markets of the exchange, their true books, and the delta generator."""

    def __init__(self, markets: list[SimMarket], seed: int) -> None:
        self.lock = threading.RLock()
        self._markets = {m.ticker: m for m in markets}
        self._listing_keys = {m.ticker: f"{index:06d}" for index, m in enumerate(markets)}
        self._streamable = [m for m in markets if not m.frozen_book]
        self._rng = random.Random(seed ^ 0x5EED)

    @classmethod
    def generate(cls, count: int, seed: int = 0) -> MarketSet:
        """Build ``count`` markets deterministically from ``seed``.

        Market 1 (if present) has sub-penny ticks, market 2 only YES bids, market 3 an
        empty book; every other third market trades fractional sizes. Linear in ``count``
        (tickers are checked against a set), so 20,000 markets take well under a second.
        """
        if count < 1:
            raise ValueError("the exchange needs at least one market")
        rng = random.Random(seed)
        markets: list[SimMarket] = []
        taken: set[str] = set()
        for index in range(count):
            series, title, strike_format, (low, high) = _SERIES[index % len(_SERIES)]
            day = 24 + (index // len(_SERIES)) % 5
            event_ticker = f"{series}-26NOV{day:02d}"
            strike = strike_format.format(low + (high - low) * rng.random())
            ticker = f"{event_ticker}-{strike}"
            if ticker in taken:
                ticker = _unique(ticker, taken)
            taken.add(ticker)
            structure = {1: "deci_cent", 4: "tapered_deci_cent"}.get(index, "linear_cent")
            market = SimMarket(
                ticker=ticker,
                event_ticker=event_ticker,
                series_ticker=series,
                market_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                title=f"{title} {strike}",
                price_level_structure=structure,
                fair_micros=_draw(rng, 15, 85) * CENT,
                fractional=index % 3 == 0 or index == 1,
                frozen_book=index in (2, 3),
                exchange_index=shard_of_series(series),
            )
            if index != 3:
                _seed_book(market, rng, no_side=index != 2)
            markets.append(market)
        return cls(markets, seed)

    # -- reads (take the lock: the stream mutates books from another thread) -------------
    def tickers(self) -> list[str]:
        return list(self._markets)

    def markets(self) -> list[SimMarket]:
        return list(self._markets.values())

    def listing_keys(self) -> dict[str, str]:
        """Ticker -> sortable key of its listing position (creation order), built once:
        paging a 20,000-market listing must not rebuild it for every page."""
        return self._listing_keys

    def market(self, ticker: str) -> SimMarket:
        """The market, or KeyError for an unknown ticker."""
        return self._markets[ticker]

    def levels(self, ticker: str) -> BookLevels:
        with self.lock:
            return self._markets[ticker].levels()

    def digest(self, ticker: str) -> str:
        """The true book's digest, comparable with a client ``OrderBook.digest()``."""
        levels = self.levels(ticker)
        return book_digest(levels.yes, levels.no)

    # -- writes --------------------------------------------------------------------------
    def next_delta(self) -> Delta | None:
        """Apply one random, non-crossing change to a streamable book and return it."""
        if not self._streamable:
            return None
        rng = self._rng
        with self.lock:
            market = rng.choice(self._streamable)
            side = "yes" if rng.random() < 0.5 else "no"
            book = market.yes if side == "yes" else market.no
            if book and rng.random() < 0.45:
                price = rng.choice(list(book))
                size = book[price]
                delta = -size if rng.random() < 0.35 else -rng.randint(1, size)
            else:
                price = _random_price(market, side, rng)
                delta = _random_size(market, rng)
            new_size = book.get(price, 0) + delta
            if new_size:
                book[price] = new_size
            else:
                book.pop(price, None)
            return Delta(market.ticker, side, price, delta)


def _unique(ticker: str, taken: set[str]) -> str:
    """``ticker`` with the fewest ``X``s appended that makes it new (as before), then a number.

    Appending X one at a time is what small sets always did (kept so their tickers do not
    change); a dense event would pile up dozens, so past a few a counter takes over.
    """
    for _ in range(3):
        ticker += "X"
        if ticker not in taken:
            return ticker
    number = 2
    while f"{ticker}{number}" in taken:
        number += 1
    return f"{ticker}{number}"


def _draw(rng: random.Random, low: int, high: int) -> int:
    """An integer in ``[low, high]``; ``randint`` costs ~1 us a call, which is most of the
    time to generate 20,000 markets (~30 draws each)."""
    return low + int(rng.random() * (high - low + 1))


def _random_price(market: SimMarket, side: str, rng: random.Random) -> int:
    """A price on the market's tick grid, below the fair value on its own leg (no crossing)."""
    fair = market.fair_micros if side == "yes" else MICROS_PER_DOLLAR - market.fair_micros
    price = max(CENT, fair - _draw(rng, 1, 12) * CENT)
    if market.tick_at(price) == DECI_CENT:
        price += _draw(rng, 0, 9) * DECI_CENT
        price = min(price, fair - CENT)
    return max(DECI_CENT if market.tick_at(CENT) == DECI_CENT else CENT, price)


def _random_size(market: SimMarket, rng: random.Random) -> int:
    whole = _draw(rng, 1, 500) * 100
    return whole + ((25, 50, 75)[_draw(rng, 0, 2)] if market.fractional else 0)


def _seed_book(market: SimMarket, rng: random.Random, *, no_side: bool) -> None:
    for _ in range(_draw(rng, 4, 10)):
        price = _random_price(market, "yes", rng)
        market.yes[price] = market.yes.get(price, 0) + _random_size(market, rng)
    if no_side:
        for _ in range(_draw(rng, 4, 10)):
            price = _random_price(market, "no", rng)
            market.no[price] = market.no.get(price, 0) + _random_size(market, rng)
