"""OrderBook semantics: bids only, NO in no-leg pricing, zero removes, negative is a gap."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalshi_api.fixed_point import parse_count, parse_dollars
from kalshi_api.orderbook import OrderBook
from kalshi_api.orderbook_digest import book_digest


def _book(yes: dict[int, int] | None = None, no: dict[int, int] | None = None) -> OrderBook:
    book = OrderBook("KXTEST-26NOV24-T1")
    book.apply_snapshot((yes or {}).items(), (no or {}).items())
    return book


def test_apply_delta_when_level_reaches_zero_removes_the_level() -> None:
    book = _book(yes={420_000: 1_300})
    assert book.apply_delta("yes", 420_000, -1_300) is True
    assert book.yes == {}
    assert book.levels() == ((), ())


def test_apply_delta_when_result_would_be_negative_returns_false_and_keeps_book() -> None:
    book = _book(yes={420_000: 1_300}, no={560_000: 1_700})
    before = book.digest()
    assert book.apply_delta("yes", 420_000, -1_301) is False
    assert book.apply_delta("no", 100_000, -1) is False  # absent level counts as zero
    assert book.digest() == before


def test_apply_delta_when_level_is_new_adds_it() -> None:
    book = _book()
    assert book.apply_delta("no", 300_000, 250)
    assert book.no == {300_000: 250}


def test_apply_delta_when_side_is_unknown_raises() -> None:
    with pytest.raises(ValueError, match="unknown side"):
        _book().apply_delta("maybe", 500_000, 100)


def test_best_yes_ask_when_no_bids_exist_is_implied_by_best_no_bid() -> None:
    book = _book(yes={80_000: 30_000, 220_000: 33_300}, no={540_000: 2_000, 560_000: 14_600})
    assert book.best_yes_bid() == 220_000
    assert book.best_no_bid() == 560_000
    assert book.best_yes_ask() == 440_000  # 1 - 0.56
    assert book.best_no_ask() == 780_000  # 1 - 0.22


def test_best_prices_when_sides_are_empty_are_none() -> None:
    book = _book()
    assert book.best_yes_bid() is None
    assert book.best_no_bid() is None
    assert book.best_yes_ask() is None
    assert book.best_no_ask() is None


def test_apply_snapshot_when_levels_unsorted_lists_them_ascending_and_drops_zero_sizes() -> None:
    book = OrderBook("T")
    assert book.stale
    book.apply_snapshot([(560_000, 100), (80_000, 0), (220_000, 50)], [])
    assert not book.stale
    assert book.levels() == (((220_000, 50), (560_000, 100)), ())


def test_apply_snapshot_when_a_size_is_negative_raises_and_keeps_previous_book() -> None:
    book = _book(yes={100_000: 100})
    with pytest.raises(ValueError, match="negative"):
        book.apply_snapshot([(200_000, -5)], [])
    assert book.yes == {100_000: 100}


def test_apply_snapshot_when_stale_marks_book_live_again() -> None:
    book = _book(yes={100_000: 100})
    book.stale = True
    book.apply_snapshot([], [])
    assert not book.stale
    assert book.levels() == ((), ())


def test_digest_when_levels_equal_matches_canonical_book_digest() -> None:
    yes = {31_500: 250, 990_000: 1}
    no = {1_000: 100_050}
    assert _book(yes, no).digest() == book_digest(yes.items(), no.items())
    assert _book(yes, no).digest() != _book(yes, {1_000: 100_051}).digest()


def test_levels_when_sub_penny_and_fractional_are_exact() -> None:
    price = parse_dollars("0.0315")  # deci-cent tick
    size = parse_count("2.50")  # fractional contracts
    book = _book(yes={price: size})
    assert book.apply_delta("yes", price, parse_count("-0.25"))
    assert book.levels() == (((31_500, 225),), ())


_prices = st.integers(min_value=1, max_value=999_999)
_steps = st.lists(
    st.tuples(st.sampled_from(["yes", "no"]), _prices, st.integers(-5_000, 5_000)), max_size=80
)


@given(_steps)
def test_apply_delta_when_sequence_random_matches_reference_model(
    steps: list[tuple[str, int, int]],
) -> None:
    book = _book()
    model: dict[str, dict[int, int]] = {"yes": {}, "no": {}}
    for side, price, delta in steps:
        expected = model[side].get(price, 0) + delta
        assert book.apply_delta(side, price, delta) is (expected >= 0)
        if expected > 0:
            model[side][price] = expected
        elif expected == 0:
            model[side].pop(price, None)
    assert book.yes == model["yes"]
    assert book.no == model["no"]
    assert book.digest() == book_digest(model["yes"].items(), model["no"].items())
