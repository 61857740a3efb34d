"""The embedded exchange's generated markets: deterministic from the seed, whatever the order
books are first read in (they grow lazily), with the awkward cases every client must handle."""

from __future__ import annotations

import random
import re
import threading
import uuid

import pytest

from kalshi_api.fixed_point import MICROS_PER_DOLLAR
from kalshi_sim.markets import CENT, DECI_CENT, BookLevels, Delta, MarketSet

WAIT = 30.0


def _listing(markets: MarketSet) -> list[tuple[object, ...]]:
    return [
        (m.ticker, m.event_ticker, m.market_id, m.title, m.fair_micros, m.price_level_structure)
        for m in markets.markets()
    ]


def test_generate_when_same_seed_and_books_read_in_any_order_builds_identical_books() -> None:
    forward, backward, shuffled = (MarketSet.generate(300, seed=7) for _ in range(3))
    tickers = forward.tickers()
    order = list(tickers)
    random.Random(1).shuffle(order)

    digests = [
        {t: markets.digest(t) for t in reading}
        for markets, reading in (
            (forward, tickers),
            (backward, list(reversed(tickers))),
            (shuffled, order),
        )
    ]

    assert digests[0] == digests[1] == digests[2]
    assert _listing(forward) == _listing(backward) == _listing(shuffled)
    assert [forward.levels(t) for t in tickers] == [shuffled.levels(t) for t in tickers]


def test_generate_when_seed_differs_builds_other_markets_and_books() -> None:
    first, second = MarketSet.generate(50, seed=1), MarketSet.generate(50, seed=2)
    assert _listing(first) != _listing(second)
    assert first.levels(first.tickers()[0]) != second.levels(second.tickers()[0])


def test_next_delta_when_books_unread_streams_what_it_streams_after_every_book_was_read() -> None:
    read_first, unread = MarketSet.generate(200, seed=5), MarketSet.generate(200, seed=5)
    for ticker in reversed(read_first.tickers()):
        read_first.levels(ticker)

    streamed = [[markets.next_delta() for _ in range(2000)] for markets in (read_first, unread)]

    assert streamed[0] == streamed[1]
    assert all(isinstance(d, Delta) for d in streamed[0])
    tickers = read_first.tickers()
    assert [read_first.digest(t) for t in tickers] == [unread.digest(t) for t in tickers]


def test_levels_when_many_threads_read_while_deltas_apply_grows_each_book_once() -> None:
    """Readers race the delta generator to first-read every book; a book grown twice (sizes
    doubled) or grown over a delta (delta lost) would make the truth differ from a replay."""
    raced, replayed = MarketSet.generate(400, seed=9), MarketSet.generate(400, seed=9)
    tickers = raced.tickers()
    start = threading.Barrier(5)
    failures: list[BaseException] = []

    def read(order_seed: int) -> None:
        order = list(tickers)
        random.Random(order_seed).shuffle(order)
        try:
            start.wait(WAIT)
            for ticker in order:
                market = raced.market(ticker)  # first read without MarketSet.lock
                seen = market.levels().yes if order_seed % 2 else tuple(market.yes)
                assert seen is not None
                raced.levels(ticker)
        except BaseException as error:  # reported by the assertion below
            failures.append(error)

    readers = [threading.Thread(target=read, args=(n,)) for n in range(4)]
    for reader in readers:
        reader.start()
    start.wait(WAIT)
    deltas = [raced.next_delta() for _ in range(3000)]
    for reader in readers:
        reader.join(WAIT)

    assert not failures
    assert not any(reader.is_alive() for reader in readers)
    assert deltas == [replayed.next_delta() for _ in range(3000)]
    assert [raced.digest(t) for t in tickers] == [replayed.digest(t) for t in tickers]


def test_generate_when_built_has_sub_penny_one_sided_empty_and_fractional_books() -> None:
    markets = MarketSet.generate(30, seed=0)
    tickers = markets.tickers()
    deci, one_sided, empty, tapered = (markets.market(t) for t in tickers[1:5])

    assert deci.price_level_structure == "deci_cent"
    assert tapered.price_level_structure == "tapered_deci_cent"
    deci_levels = markets.levels(deci.ticker)
    assert any(p % CENT for p, _ in deci_levels.yes + deci_levels.no)
    assert markets.levels(one_sided.ticker).yes and not markets.levels(one_sided.ticker).no
    assert markets.levels(empty.ticker) == BookLevels(yes=(), no=())
    assert one_sided.frozen_book and empty.frozen_book
    for index, market in enumerate(markets.markets()):
        levels = markets.levels(market.ticker)
        sizes = [s for _, s in levels.yes + levels.no]
        assert market.fractional == (index % 3 == 0 or index == 1)
        if sizes:
            assert any(s % 100 for s in sizes) == market.fractional, market.ticker
        if index not in (2, 3):
            assert 1 <= len(levels.yes) <= 10 and 1 <= len(levels.no) <= 10, market.ticker


def test_generate_when_built_keeps_every_book_on_its_grid_and_uncrossed() -> None:
    markets = MarketSet.generate(500, seed=3)
    for market in markets.markets():
        levels = markets.levels(market.ticker)
        for side, fair in (
            (levels.yes, market.fair_micros),
            (levels.no, MICROS_PER_DOLLAR - market.fair_micros),
        ):
            for price, size in side:
                assert size > 0
                assert DECI_CENT <= price <= fair - CENT, (market.ticker, price)
                assert price % market.tick_at(price) == 0, (market.ticker, price)
        if levels.yes and levels.no:
            assert levels.yes[-1][0] + levels.no[-1][0] < MICROS_PER_DOLLAR


def test_generate_when_twenty_thousand_markets_gives_unique_tickers_and_uuid4_ids() -> None:
    markets = MarketSet.generate(20000, seed=0)
    tickers = markets.tickers()
    ids = [m.market_id for m in markets.markets()]

    assert len(tickers) == len(set(tickers)) == 20000
    assert len(set(ids)) == 20000
    for market_id in ids[:500]:
        parsed = uuid.UUID(market_id)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, market_id)
    # A clash takes the fewest Xs (up to three), then the smallest free number after them.
    taken = set(tickers)
    for ticker in tickers:
        numbered = re.fullmatch(r"(.*XXX)(\d+)", ticker)
        if numbered:
            base, number = numbered.group(1), int(numbered.group(2))
            assert {base[:-3], base[:-2], base[:-1], base} <= taken, ticker
            assert all(f"{base}{n}" in taken for n in range(2, number)), ticker


@pytest.mark.parametrize("count", [0, -1])
def test_generate_when_count_below_one_raises_value_error(count: int) -> None:
    with pytest.raises(ValueError, match="at least one market"):
        MarketSet.generate(count)
