"""Exactness of the dollar-string and `_fp`-count conversions every other module relies on."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalshi_api.fixed_point import (
    FixedPointError,
    format_count,
    format_dollars,
    format_fixed,
    parse_count,
    parse_dollars,
    parse_fixed,
)

MICRO_RANGE = st.integers(min_value=-(10**15), max_value=10**15)
CENTI_RANGE = st.integers(min_value=-(10**15), max_value=10**15)


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("0.9600", 960_000),
        ("0.960", 960_000),
        ("0.96", 960_000),
        ("0.0450", 45_000),
        ("0.001", 1_000),
        ("0.000001", 1),
        ("1.0000", 1_000_000),
        ("1234.5600", 1_234_560_000),
        ("-0.5000", -500_000),
        ("+0.25", 250_000),
        (".5", 500_000),
        ("5.", 5_000_000),
        ("0.96000000", 960_000),
    ],
)
def test_parse_dollars_when_valid_string_returns_exact_micros(text: str, micros: int) -> None:
    assert parse_dollars(text) == micros


@pytest.mark.parametrize(
    ("text", "centi"),
    [("-54.00", -5400), ("2.50", 250), ("0.01", 1), ("100", 10_000), ("13.000", 1300)],
)
def test_parse_count_when_valid_string_returns_exact_centi(text: str, centi: int) -> None:
    assert parse_count(text) == centi


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "-",
        ".",
        "abc",
        "1.2.3",
        "0.0000001",
        "1e5",
        "0x10",
        " 1.00",
        "1,00",
        "\u0661.\u0660\u0660",
        "--1",
    ],
)
def test_parse_dollars_when_not_exact_decimal_raises(bad: str) -> None:
    with pytest.raises(FixedPointError):
        parse_dollars(bad)


@pytest.mark.parametrize("bad", [0.5, 1, None, b"0.50", Decimal("0.5")])
def test_parse_dollars_when_not_a_string_raises(bad: object) -> None:
    with pytest.raises(FixedPointError):
        parse_dollars(bad)


def test_parse_count_when_more_than_two_decimals_raises() -> None:
    with pytest.raises(FixedPointError):
        parse_count("1.005")


@pytest.mark.parametrize(
    ("micros", "text"),
    [
        (960_000, "0.9600"),
        (45_000, "0.0450"),
        (1_500, "0.0015"),
        (150, "0.00015"),
        (1, "0.000001"),
        (0, "0.0000"),
        (-500_000, "-0.5000"),
        (1_234_560_000, "1234.5600"),
    ],
)
def test_format_dollars_when_given_micros_uses_four_places_or_more_when_needed(
    micros: int, text: str
) -> None:
    assert format_dollars(micros) == text


def test_format_count_when_given_centi_always_has_two_decimals() -> None:
    assert [format_count(v) for v in (0, 1, 250, -5400)] == ["0.00", "0.01", "2.50", "-54.00"]


def test_format_fixed_when_places_would_drop_digits_raises() -> None:
    with pytest.raises(FixedPointError):
        format_fixed(1_500, 6, 2)


@given(MICRO_RANGE)
def test_format_then_parse_dollars_when_any_micros_round_trips(micros: int) -> None:
    assert parse_dollars(format_dollars(micros)) == micros


@given(CENTI_RANGE)
def test_format_then_parse_count_when_any_centi_round_trips(centi: int) -> None:
    assert parse_count(format_count(centi)) == centi


@given(MICRO_RANGE)
def test_format_dollars_when_any_micros_agrees_with_decimal(micros: int) -> None:
    assert Decimal(format_dollars(micros)) == Decimal(micros).scaleb(-6)


@given(st.decimals(min_value=-(10**9), max_value=10**9, places=6, allow_nan=False))
def test_parse_dollars_when_any_six_place_decimal_matches_decimal_arithmetic(
    value: Decimal,
) -> None:
    assert parse_dollars(format(value, "f")) == int(value.scaleb(6))


@given(st.integers(min_value=0, max_value=6), st.integers(min_value=-(10**12), max_value=10**12))
def test_parse_fixed_when_trailing_zeros_added_value_unchanged(extra: int, units: int) -> None:
    text = format_fixed(units, 6, 6) + "0" * extra
    assert parse_fixed(text, 6) == units
