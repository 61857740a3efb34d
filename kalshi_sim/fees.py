"""Kalshi's trading fees in exact integers (KALSHI_PROTOCOL.md §8.5 [FR]).

Taker: ``0.07 x fee_multiplier x C x P x (1-P)``; maker, only for series whose ``fee_type``
is ``quadratic_with_maker_fees``: ``0.0175 x ...``. ``C`` is contracts, ``P`` the execution
price in dollars. Each fee is ceiled to a quantum ($0.0001 by default). Everything here is
integer arithmetic on micro-dollars and centi-contracts (a ``Fraction`` multiplier is kept as
numerator/denominator), so no float ever touches money.
"""

from __future__ import annotations

from fractions import Fraction

TAKER_RATE = Fraction(7, 100)
MAKER_RATE = Fraction(175, 10_000)
MAKER_FEE_TYPE = "quadratic_with_maker_fees"
FEE_TYPES = ("quadratic", MAKER_FEE_TYPE, "flat")
"""``flat`` series are charged no fee by the simulator (their schedule is not published)."""

_MICROS = 1_000_000


def fee_micros(
    rate: Fraction, multiplier: Fraction, count_centi: int, price_micros: int, quantum_micros: int
) -> int:
    """``rate x multiplier x C x P x (1-P)`` dollars as micro-dollars, ceiled to the quantum.

    In micro-dollars: ``rate m (count/100) (p/1e6) ((1e6-p)/1e6) 1e6``
    = ``rate m count p (1e6-p) / 1e8``. Ceiling to ``quantum`` is ``-(-x // q) * q`` on the
    exact rational, so $0.017472 becomes $0.0175 and never $0.0174.
    """
    if count_centi <= 0 or rate == 0 or multiplier == 0:
        return 0
    numerator = rate.numerator * multiplier.numerator * count_centi
    numerator *= price_micros * (_MICROS - price_micros)
    denominator = rate.denominator * multiplier.denominator * 100 * _MICROS
    return -(-numerator // (denominator * quantum_micros)) * quantum_micros


def taker_fee_micros(
    fee_type: str, multiplier: Fraction, count_centi: int, price_micros: int, quantum_micros: int
) -> int:
    if fee_type == "flat":
        return 0
    return fee_micros(TAKER_RATE, multiplier, count_centi, price_micros, quantum_micros)


def maker_fee_micros(
    fee_type: str, multiplier: Fraction, count_centi: int, price_micros: int, quantum_micros: int
) -> int:
    if fee_type != MAKER_FEE_TYPE:
        return 0
    return fee_micros(MAKER_RATE, multiplier, count_centi, price_micros, quantum_micros)


def fee_reserve_per_centi(multiplier: Fraction, quantum_micros: int) -> int:
    """The most any fee can be on one centi-contract (the taker fee at P = 0.5), ceiled.

    A resting order holds ``count x`` this, so the hold is additive over partial fills and
    always covers the fee actually charged: ``ceil(c x f) <= c x ceil(f)``.
    """
    return fee_micros(TAKER_RATE, multiplier, 1, _MICROS // 2, quantum_micros)
