"""``kalshi-supervisor diagram``: the transition table as a Mermaid state diagram.

It imports only the table (``supervision.state_machine`` loads no pydantic at import), so
it runs in about the time the interpreter takes to start.
"""

from __future__ import annotations

from collections.abc import Sequence

from cli.arguments import OneLineParser
from supervision.state_machine import render_mermaid


def main(argv: Sequence[str]) -> int:
    OneLineParser(
        prog="kalshi-supervisor diagram",
        description="Print the state machine as a Mermaid diagram (the README embeds it).",
    ).parse_args(argv)
    print(render_mermaid())
    return 0
