"""``kalshi-supervisor resume``: trading ACTIVE again after a halt (see ``cli.halt`` for the
output and exit-code contract the two share: a summary, or ``--json`` for the reply).

Only a person resumes: no automatic path un-halts a process (``trading.halt``). The order
gateway resets the session's order group; the risk checks still refuse (and halt again)
while a daily-loss breach lasts.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from cli.arguments import OneLineParser
from cli.control_client import add_endpoint_arguments
from cli.halt import RESUME_TIMEOUT, add_json_argument, run_control


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="kalshi-supervisor resume",
        description="Resume trading in a running supervisor after a halt.",
    )
    add_json_argument(parser)
    add_endpoint_arguments(parser, timeout=RESUME_TIMEOUT)
    return parser


def main(argv: Sequence[str]) -> int:
    """``kalshi-supervisor resume``."""
    return run_control("resume", "/resume", {}, build_parser().parse_args(argv))
