"""Argument types shared by the sub-commands: numbers checked where they are typed.

Why argparse types rather than only the config model: a typo in a flag is reported by
argparse as ``kalshi-supervisor run: error: argument --x: ...`` next to the usage line,
which is what a person at a terminal expects. The model checks the same values again
(and checks values from the environment and the config file, which argparse never sees).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any


def _number(
    kind: Callable[[str], Any], check: Callable[[Any], bool], description: str
) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {description}") from None
        if not math.isfinite(value) or not check(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a {description}")
        return value

    return parse


positive_int = _number(int, lambda v: v > 0, "positive integer")
non_negative_int = _number(int, lambda v: v >= 0, "non-negative integer")


def market_count(text: str) -> int | str:
    """A positive integer, or ``"all"`` (every open market; settings turn it into None).

    Not None here: an unset flag is None, and ``all`` must override a TOML or env value.
    """
    if text.strip().lower() == "all":
        return "all"
    value: int = positive_int(text)
    return value

positive_float = _number(float, lambda v: v > 0, "positive number")
non_negative_float = _number(float, lambda v: v >= 0, "non-negative number")
