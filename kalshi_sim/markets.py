"""The embedded exchange's markets and their true order books.

The truth is the matching engine (:mod:`kalshi_sim.matching`, ``MarketSet.engine``): every
level of every book is the sum of real resting orders. Books read as bids only, as on
Kalshi: YES bids at yes-leg prices and NO bids at no-leg prices (a resting ask at YES price
``p`` is a NO bid at ``1 - p``), in integer micro-dollars with integer centi-contract
sizes. The generated set deliberately includes the awkward cases a client must handle:
sub-penny ticks, fractional sizes, a book with one empty side and a book with no levels.

Generating a market draws only its listing data; the engine lists it, and its book grows
from its own key as resting orders of the house member, the first time anything reads or
trades it (``SimMarket.yes``/``no``/``levels``, or any engine call naming it), so building
20,000 markets is cheap and a book does not depend on which others were read first. The
stream's random activity is :class:`kalshi_sim.participant.Participant` moving the house's
orders (and, if asked, taking liquidity), so users' orders and the stream share one book.
"""

from __future__ import annotations

import hashlib
import random
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from kalshi_api.fixed_point import MICROS_PER_DOLLAR
from kalshi_api.orderbook_digest import book_digest
from kalshi_sim.engine_types import BookChange, EngineOptions, MarketRules, Outcome, PriceRange
from kalshi_sim.matching.engine import MatchingEngine
from kalshi_sim.participant import ENDLESS_CASH_MICROS, HOUSE, TAKER, Participant

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


PRICE_RANGES: dict[str, tuple[PriceRange, ...]] = {
    "linear_cent": (PriceRange(0, MICROS_PER_DOLLAR, CENT),),
    "deci_cent": (PriceRange(0, MICROS_PER_DOLLAR, DECI_CENT),),
    "tapered_deci_cent": (
        PriceRange(0, 10 * CENT, DECI_CENT),
        PriceRange(10 * CENT, 90 * CENT, CENT),
        PriceRange(90 * CENT, MICROS_PER_DOLLAR, DECI_CENT),
    ),
}
"""Each price level structure's ``price_ranges`` grid, as the engine checks prices."""

MAKER_FEE_SERIES = frozenset({"KXFED"})
"""Series charging maker fees (``fee_type = quadratic_with_maker_fees``, ~1% of series on
Kalshi); every other series is ``quadratic`` (taker fees only)."""


def fee_type_of_series(series_ticker: str) -> str:
    return "quadratic_with_maker_fees" if series_ticker in MAKER_FEE_SERIES else "quadratic"


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
    """One change to one price level, as the exchange applied it to the truth.

    ``member``/``client_order_id`` name the order behind it when one member's order caused
    the whole change (the WS feed annotates that member's own deltas, §3.6)."""

    ticker: str
    side: str
    price_micros: int
    delta_centi: int
    member: str | None = None
    client_order_id: str | None = None
    book_seq: int = 0
    """The book version after this change (``BookChange.book_seq``; 0 when unknown)."""


def deltas_of(changes: Sequence[BookChange]) -> list[Delta]:
    """Book changes merged per level (in first-touched order), zero sums dropped: one
    :class:`Delta` per level an outcome moved. A level moved by one order keeps its
    member and ``client_order_id``."""
    merged: dict[tuple[str, str, int], list[object]] = {}
    for change in changes:
        key = (change.ticker, change.leg, change.price_micros)
        entry = merged.get(key)
        if entry is None:
            merged[key] = [
                change.delta_centi,
                change.member,
                change.client_order_id,
                change.order_id,
                change.book_seq,
            ]
        else:
            entry[0] = int(entry[0]) + change.delta_centi  # type: ignore[call-overload]
            entry[4] = max(int(entry[4]), change.book_seq)  # type: ignore[call-overload]
            if entry[3] != change.order_id:
                entry[1] = entry[2] = None
    return [
        Delta(ticker, leg, price, int(total), member, client, int(seq))  # type: ignore[arg-type, call-overload]
        for (ticker, leg, price), (total, member, client, _, seq) in merged.items()
        if total
    ]


@dataclass(slots=True)
class SimMarket:
    """A market's listing data; its true book lives in the engine (``MarketSet.engine``).

    The book is grown on first access from ``book_seed`` (see ``MarketSet.generate``): 20,000
    books cost most of the time to build the exchange, and growing each one from its own key
    makes it the same whenever, and in whatever order, it is first read. ``yes``, ``no`` and
    ``levels`` always see a grown book.
    """

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
    book_seed: bytes | None = None
    """The key the book grows from on first access; None once grown (or for a book born empty)."""
    one_sided: bool = False
    """True for a book grown with YES bids only."""
    owner: MarketSet | None = field(default=None, repr=False, compare=False)
    """The set whose engine holds this market's book (set by ``MarketSet``)."""

    @property
    def yes(self) -> dict[int, int]:
        """YES bids, price -> size (the engine's live dict: read-only, under ``MarketSet.lock``)."""
        return self._book()["yes"]

    @property
    def no(self) -> dict[int, int]:
        """NO bids, price -> size (the engine's live dict: read-only, under ``MarketSet.lock``)."""
        return self._book()["no"]

    def _book(self) -> dict[str, dict[int, int]]:
        owner = self.owner
        if owner is None:
            raise RuntimeError(f"market {self.ticker} belongs to no MarketSet")
        with owner.lock:
            return owner.engine.book(self.ticker)  # type: ignore[return-value]

    def tick_at(self, price_micros: int) -> int:
        """The tick size at a price under this market's price level structure."""
        if self.price_level_structure == "deci_cent":
            return DECI_CENT
        if self.price_level_structure == "tapered_deci_cent":
            low, high = 10 * CENT, 90 * CENT
            return DECI_CENT if price_micros < low or price_micros > high else CENT
        return CENT

    def levels(self) -> BookLevels:
        """Both sides, sorted, taken at once (a caller on any thread: growth and the stream
        both happen under ``MarketSet.lock``, so a book grows exactly once, never over a
        change already applied)."""
        owner = self.owner
        if owner is None:
            raise RuntimeError(f"market {self.ticker} belongs to no MarketSet")
        with owner.lock:
            book = owner.engine.book(self.ticker)
            return BookLevels(
                yes=tuple(sorted(book["yes"].items())), no=tuple(sorted(book["no"].items()))
            )


class MarketSet:
    """All markets of the exchange, their true books, and the delta generator."""

    def __init__(
        self,
        markets: list[SimMarket],
        seed: int,
        *,
        engine_options: EngineOptions | None = None,
        take_probability: float = 0.0,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self.lock = threading.RLock()
        """Serialises every engine call: the stream, REST writes, readers, book growth."""
        self._markets = {m.ticker: m for m in markets}
        self._listing_keys = {m.ticker: f"{index:06d}" for index, m in enumerate(markets)}
        self._streamable = [m for m in markets if not m.frozen_book]
        for market in markets:
            market.owner = self
        self.clock_ms = clock_ms or _wall_clock_ms
        """Engine time (integer ms) for changes this set makes itself."""
        if engine_options is None:
            engine_options = EngineOptions(id_seed=seed)
        self.engine = MatchingEngine(engine_options)
        """The truth: every book, order, fill, position and member's cash."""
        shards = {shard: ENDLESS_CASH_MICROS for shard in SHARD_DESCRIPTIONS}
        self.engine.open_account(HOUSE, shards)
        self.engine.open_account(TAKER, shards)
        for member in (HOUSE, TAKER):  # busy all day: keep little of their history
            self.engine.limit_history(member, orders=1_000, fills=1_000)
        self.engine.set_market_loader(self._list_market)
        self.participant = Participant(
            self.engine,
            seed,
            take_probability=take_probability,
            random_price=_random_price,
            random_size=_random_size,
        )
        self._pending: deque[Delta] = deque()
        self._listeners: list[Callable[[Outcome], None]] = []

    @classmethod
    def generate(
        cls,
        count: int,
        seed: int = 0,
        *,
        engine_options: EngineOptions | None = None,
        take_probability: float = 0.0,
        clock_ms: Callable[[], int] | None = None,
    ) -> MarketSet:
        """Build ``count`` markets deterministically from ``seed``.

        Market 1 (if present) has sub-penny ticks, market 2 only YES bids, market 3 an
        empty book; every other third market trades fractional sizes. Only listing data is
        drawn here, from one stream of ``seed``; each book grows on first access from its
        own key (``seed`` and the market's index, see ``_fill_book``), so 20,000 markets
        take ~0.1 s and a book is the same however many others were read before it. Linear
        in ``count`` (tickers are checked against a set).
        """
        if count < 1:
            raise ValueError("the exchange needs at least one market")
        rng = random.Random(seed)
        draw = rng.random
        ids = rng.randbytes(16 * count).hex()  # one call, not 20,000 uuid.UUID objects
        plans = [
            (series, title, strike_format.format, low, high - low, shard_of_series(series))
            for series, title, strike_format, (low, high) in _SERIES
        ]
        events = [[f"{series}-26NOV{day:02d}" for day in range(24, 29)] for series, *_ in _SERIES]
        markets: list[SimMarket] = []
        taken: set[str] = set()
        numbered: dict[str, int] = {}
        for index in range(count):
            series, title, strike_format, low, span, shard = plans[index % len(_SERIES)]
            event_ticker = events[index % len(_SERIES)][index // len(_SERIES) % 5]
            strike = strike_format(low + span * draw())
            ticker = f"{event_ticker}-{strike}"
            if ticker in taken:
                ticker = _unique(ticker, taken, numbered)
            taken.add(ticker)
            markets.append(
                SimMarket(
                    ticker,
                    event_ticker,
                    series,
                    _uuid4(ids[32 * index : 32 * index + 32]),
                    f"{title} {strike}",
                    _STRUCTURES.get(index, "linear_cent"),
                    (15 + int(draw() * 71)) * CENT,
                    index % 3 == 0 or index == 1,
                    index in (2, 3),  # frozen_book
                    "active",
                    shard,
                    None if index == 3 else f"{seed}:{index}".encode(),  # book_seed
                    index == 2,  # one_sided
                )
            )
        return cls(
            markets,
            seed,
            engine_options=engine_options,
            take_probability=take_probability,
            clock_ms=clock_ms,
        )

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
        return self._markets[ticker].levels()

    def digest(self, ticker: str) -> str:
        """The true book's digest, comparable with a client ``OrderBook.digest()``."""
        levels = self.levels(ticker)
        return book_digest(levels.yes, levels.no)

    # -- writes --------------------------------------------------------------------------
    def next_activity(self) -> Outcome | None:
        """One step of the exchange's own activity, as the engine's :class:`Outcome`.

        Due expiries first (an Outcome cancelling every order whose ``expiration_time``
        passed), else one participant step: a house quote added or taken off one level, or,
        at ``take_probability``, a take that trades with the best resting order. The WS feed
        publishes its ``book_changes`` (``deltas_of``), ``trades`` and, for users' orders,
        fills and order updates. None when the step changed nothing.
        """
        with self.lock:
            now = self.clock_ms()
            expired = self.engine.expire(now)
            if expired.orders_changed:
                return expired
            return self.participant.step(self._streamable, now)

    def next_delta(self) -> Delta | None:
        """The next level change of the exchange's own activity (``next_activity`` merged per
        level; an activity moving several levels is handed out one delta per call).

        Kept for callers that only move books: trades and users' order updates of those
        activities are not reported here (use ``next_activity``)."""
        with self.lock:
            if self._pending:
                return self._pending.popleft()
            for _ in range(4):  # a quote refused (crossing a user's order) yields nothing
                outcome = self.next_activity()
                if outcome is None:
                    continue
                deltas = deltas_of(outcome.book_changes)
                if deltas:
                    self._pending.extend(deltas[1:])
                    return deltas[0]
            return None

    def add_listener(self, listener: Callable[[Outcome], None]) -> None:
        """Call ``listener(outcome)`` (under ``lock``, must not block) for every change made
        outside the stream: the demo account's fixture mutators (an order rested or cancelled
        by a test moves a public level, which the WS feed must publish)."""
        self._listeners.append(listener)

    def publish(self, outcome: Outcome) -> None:
        """Hand a change made outside the stream to the listeners (see ``add_listener``)."""
        if not (outcome.book_changes or outcome.orders_changed or outcome.fills):
            return
        with self.lock:
            for listener in self._listeners:
                listener(outcome)

    def _list_market(self, ticker: str) -> None:
        """The engine's loader: list a generated market and grow its book as house orders."""
        market = self._markets.get(ticker)
        if market is None:
            return
        with self.lock:
            if self.engine.has_market(ticker):
                return
            self.engine.add_market(
                MarketRules(
                    ticker,
                    market.event_ticker,
                    market.series_ticker,
                    market.exchange_index,
                    PRICE_RANGES.get(market.price_level_structure, PRICE_RANGES["linear_cent"]),
                    fee_type_of_series(market.series_ticker),
                    Fraction(1),
                    "active",
                )
            )
            key = market.book_seed
            if key is not None:
                self.engine.seed_orders(HOUSE, ticker, _grown_quotes(market, key), self.clock_ms())
                market.book_seed = None


def _wall_clock_ms() -> int:
    return int(time.time() * 1000)


def _unique(ticker: str, taken: set[str], numbered: dict[str, int]) -> str:
    """``ticker`` with the fewest ``X``s appended that makes it new (as before), then a number.

    Appending X one at a time is the original scheme (small sets keep its familiar tickers);
    a dense event would pile up dozens, so past a few a counter takes over.
    ``numbered`` remembers each counter's next candidate: ``taken`` only grows, so every
    number below it is still taken, and a dense event does not rescan from 2 each time.
    """
    for _ in range(3):
        ticker += "X"
        if ticker not in taken:
            return ticker
    number = numbered.get(ticker, 2)
    while f"{ticker}{number}" in taken:
        number += 1
    numbered[ticker] = number + 1
    return f"{ticker}{number}"


_STRUCTURES = {1: "deci_cent", 4: "tapered_deci_cent"}
"""Price level structures by market index; every other market is linear_cent."""

_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}
"""RFC 4122 variant digit for a random hex digit (its top two bits forced to ``10``)."""


def _uuid4(digits: str) -> str:
    """32 random hex digits as a version-4 UUID string, exactly as ``str(uuid.UUID(hex=...,
    version=4))`` formats them, at a fifth of the cost (it was a tenth of generation)."""
    variant = _VARIANT[digits[16]]
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:]}"


def _draw(rng: random.Random, low: int, high: int) -> int:
    """An integer in ``[low, high]``; ``randint`` costs ~1 us a call (the delta generator
    draws a few per delta)."""
    return low + int(rng.random() * (high - low + 1))


def _price_on_grid(market: SimMarket, fair: int, steps: int, sub_ticks: int) -> int:
    """``steps`` cents below ``fair`` (the market's own leg), plus ``sub_ticks`` deci-cents
    where the tick there is sub-penny, but never within a cent of fair (no crossing)."""
    price = max(CENT, fair - steps * CENT)
    if market.tick_at(price) == DECI_CENT:
        price += sub_ticks * DECI_CENT
        price = min(price, fair - CENT)
    return max(DECI_CENT if market.tick_at(CENT) == DECI_CENT else CENT, price)


def _random_price(market: SimMarket, side: str, rng: random.Random) -> int:
    """A price on the market's tick grid, below the fair value on its own leg (no crossing)."""
    fair = market.fair_micros if side == "yes" else MICROS_PER_DOLLAR - market.fair_micros
    return _price_on_grid(market, fair, _draw(rng, 1, 12), _draw(rng, 0, 9))


def _random_size(market: SimMarket, rng: random.Random) -> int:
    whole = _draw(rng, 1, 500) * 100
    return whole + (_FRACTIONS[_draw(rng, 0, 2)] if market.fractional else 0)


# -- growing a book from its key ---------------------------------------------------------------
_FRACTIONS = (25, 50, 75)
_LEVEL = struct.Struct("<BBH")
"""One drawn level: steps below fair, sub-penny ticks, and 16 bits for size and fraction."""
_MAX_DRAWS = 10
_COUNT = tuple(4 + (byte * 7 >> 8) for byte in range(256))
"""Levels drawn for a side (4-10; prices may repeat, so a side ends with at most that many)."""
_STEPS = tuple(1 + (byte * 12 >> 8) for byte in range(256))
"""Cents below fair (1-12)."""
_STEP_MICROS = tuple(steps * CENT for steps in _STEPS)
_WHOLE_SIZES = tuple(whole * 100 for whole in range(1, 501))
"""Whole contracts (1-500), in centi-contracts, by ``bits % 500``."""
_FRACTION_BY_QUOTIENT = tuple(_FRACTIONS[quotient % 3] for quotient in range(65536 // 500 + 1))
"""The fractional part, by ``bits // 500`` (0-131, so each fraction is equally likely)."""
_NO_FRACTION = (0,) * len(_FRACTION_BY_QUOTIENT)
_SUB_TICKS = tuple(byte * 10 >> 8 for byte in range(256))
"""Deci-cents up from there where ticks are sub-penny (0-9)."""
_SIDE_BYTES = _MAX_DRAWS * _LEVEL.size
_BOOK_BYTES = 2 + 2 * _SIDE_BYTES


def _grown_quotes(market: SimMarket, key: bytes) -> list[tuple[str, int, int]]:
    """The house's first quotes in a market, ``(side, yes_price, centi)``, from ``key`` alone:
    one per level of the book ``_fill_book`` draws (a repeated price is one bigger quote)."""
    yes: dict[int, int] = {}
    no: dict[int, int] = {}
    _fill_book(market, key, yes, no)
    quotes = [("bid", price, size) for price, size in yes.items()]
    quotes += [("ask", MICROS_PER_DOLLAR - price, size) for price, size in no.items()]
    return quotes


def _fill_book(market: SimMarket, key: bytes, yes: dict[int, int], no: dict[int, int]) -> None:
    """Fill empty ``yes``/``no`` level dicts (leg price -> size) from ``key`` alone.

    SHAKE-256 of the key gives every draw of the book in one call (~1.5 us), where seeding
    a ``random.Random`` per market costs ~6 us and each ``random()`` a Python-level call;
    being a hash of the key, not of Python's salted ``hash``, it is the same in every run.
    """
    entropy = hashlib.shake_256(key).digest(_BOOK_BYTES)
    fair = market.fair_micros
    count = _COUNT[entropy[0]] * _LEVEL.size
    _grow_side(market, yes, fair, entropy[2 : 2 + count])
    if not market.one_sided:
        count = _COUNT[entropy[1]] * _LEVEL.size
        start = 2 + _SIDE_BYTES
        _grow_side(market, no, MICROS_PER_DOLLAR - fair, entropy[start : start + count])


def _grow_side(market: SimMarket, book: dict[int, int], fair: int, entropy: bytes) -> None:
    """Add one level per ``_LEVEL`` of ``entropy`` to ``book`` (sizes add on a repeated price).

    Table lookups instead of arithmetic and calls: this loop runs ~280,000 times when a
    cold client reads all 20,000 books."""
    linear = market.price_level_structure == "linear_cent"
    fractions = _FRACTION_BY_QUOTIENT if market.fractional else _NO_FRACTION
    for steps, sub_ticks, bits in _LEVEL.iter_unpack(entropy):
        if linear:  # the common case, inlined: _price_on_grid does nothing more there
            price = fair - _STEP_MICROS[steps]
            if price < CENT:
                price = CENT
        else:
            price = _price_on_grid(market, fair, _STEPS[steps], _SUB_TICKS[sub_ticks])
        size = _WHOLE_SIZES[bits % 500] + fractions[bits // 500]
        book[price] = book.get(price, 0) + size
