"""Argument parsing shared by the sub-commands: one-line errors, ``--version``, checked numbers.

Why a parser class of our own: a script or a CI log reads one line, and argparse's stock
error is the whole usage block (30+ lines for ``run``) under ``kalshi-supervisor run: error:``.
Every sub-command's parser is a :class:`OneLineParser`, so a typo in any flag is the same one
line as any other bad configuration, ``kalshi-supervisor: error: …``, and exit 2.

Why argparse types rather than only the config model: a typo in a flag is reported next to
the flag's name, which is what a person at a terminal expects. The model checks the same
values again (and checks values from the environment and the config file, which argparse
never sees).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, NoReturn

PROG = "kalshi-supervisor"
EXIT_USAGE = 2
_ERROR_LIMIT = 1000
"""Long enough for a list of choices, short enough to stay one readable line."""


def error_line(message: str) -> str:
    """``kalshi-supervisor: error: MESSAGE`` on one line (newlines folded, length capped)."""
    text = " ".join(f"{PROG}: error: {message}".split())
    return text if len(text) <= _ERROR_LIMIT else text[: _ERROR_LIMIT - 1] + "…"


def package_version() -> str:
    """The installed distribution's version (imported only when asked: ``--version``)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kalshi-supervisor")
    except PackageNotFoundError:
        return "unknown (not installed)"


class _VersionAction(argparse.Action):
    """``--version``: prints ``kalshi-supervisor X.Y.Z`` and exits 0; the version is read
    only when the flag is given, so parsing costs nothing more."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.pop("default", None)  # argument_default=SUPPRESS parsers pass one
        super().__init__(
            option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0, **kwargs
        )

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        sys.stdout.write(f"{PROG} {package_version()}\n")
        parser.exit(0)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one stderr line and exit 2, and ``--version`` exists.

    The line names the sub-command (``run: argument --x: …``) and points at ``--help``;
    the usage block adds nothing ``--help`` does not."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument("--version", action=_VersionAction, help="print the version and exit")

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix(PROG).strip()
        where = f"{command}: " if command else ""
        help_hint = f"{self.prog} --help"
        self.exit(EXIT_USAGE, error_line(f"{where}{message} (see `{help_hint}`)") + "\n")


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


def positive_decimal(text: str) -> str:
    """A positive exact decimal (money, contracts), kept as its text: never a float."""
    try:
        value = Decimal(text)
    except ArithmeticError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive decimal number") from None
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive decimal number")
    return text


positive_float = _number(float, lambda v: v > 0, "positive number")
non_negative_float = _number(float, lambda v: v >= 0, "non-negative number")
