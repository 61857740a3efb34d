"""Exact fixed-point parsing for Kalshi's dollar strings and `_fp` counts.

Kalshi sends money as dollar strings (``"0.9600"``, up to 6 decimals) and contract
counts as 2-decimal strings (``"-54.00"``). Floats would corrupt sub-penny prices
and fractional sizes, and Decimal is slower than we want on the delta hot path, so
both become plain integers in fixed units: micro-dollars and centi-contracts.
"""

from __future__ import annotations

MICRO_DECIMALS = 6
CENTI_DECIMALS = 2
MICROS_PER_DOLLAR = 10**MICRO_DECIMALS
CENTI_PER_CONTRACT = 10**CENTI_DECIMALS
_POW10 = tuple(10**n for n in range(19))


class FixedPointError(ValueError):
    """A value that is not an exact fixed-point decimal string in the expected precision."""


def parse_fixed(text: object, decimals: int) -> int:
    """Return ``text`` as an integer number of ``10**-decimals`` units, exactly.

    Accepts an optional sign and any number of decimals, as long as the digits past
    ``decimals`` are zeros: precision is never silently dropped.
    """
    if type(text) is not str:
        raise FixedPointError(f"expected a decimal string, got {type(text).__name__}")
    body = text
    negative = False
    if body[:1] in ("-", "+"):
        negative = body[0] == "-"
        body = body[1:]
    whole, _, frac = body.partition(".")
    if not (whole or frac) or not body.isascii():
        raise FixedPointError(f"not a decimal string: {text!r}")
    if len(frac) > decimals:
        if frac[decimals:].strip("0"):
            raise FixedPointError(f"{text!r} has more than {decimals} decimals")
        frac = frac[:decimals]
    if (whole and not whole.isdigit()) or (frac and not frac.isdigit()):
        raise FixedPointError(f"not a decimal string: {text!r}")
    value = int(whole or "0") * _POW10[decimals] + (
        int(frac) * _POW10[decimals - len(frac)] if frac else 0
    )
    return -value if negative else value


def format_fixed(value: int, decimals: int, places: int) -> str:
    """Render ``value`` (in ``10**-decimals`` units) with exactly ``places`` decimals.

    Raises if ``places`` would drop non-zero digits, so a round trip is always exact.
    """
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), _POW10[decimals])
    digits = str(frac).rjust(decimals, "0")
    if places < decimals:
        if digits[places:].strip("0"):
            raise FixedPointError(f"{value} needs more than {places} decimals")
        digits = digits[:places]
    else:
        digits = digits.ljust(places, "0")
    return f"{sign}{whole}.{digits}" if places else f"{sign}{whole}"


def parse_dollars(text: object) -> int:
    """Dollar string -> integer micro-dollars (``"0.9600"`` -> ``960000``)."""
    return parse_fixed(text, MICRO_DECIMALS)


def parse_count(text: object) -> int:
    """`_fp` count string -> integer centi-contracts (``"-54.00"`` -> ``-5400``)."""
    return parse_fixed(text, CENTI_DECIMALS)


def format_dollars(micros: int, places: int = 4) -> str:
    """Integer micro-dollars -> Kalshi dollar string, widening past 4 places only when needed."""
    while places < MICRO_DECIMALS and micros % _POW10[MICRO_DECIMALS - places]:
        places += 1
    return format_fixed(micros, MICRO_DECIMALS, places)


def format_count(centi: int) -> str:
    """Integer centi-contracts -> Kalshi `_fp` string (always 2 decimals)."""
    return format_fixed(centi, CENTI_DECIMALS, CENTI_DECIMALS)
