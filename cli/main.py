"""The ``kalshi-supervisor`` console script: find the sub-command, then import only it.

Why a dispatcher of its own: a CLI used in scripts and drills should answer in about the time
the interpreter takes to start. Building one parser for every sub-command would import what
every sub-command needs (the actors, pydantic, httpx, the embedded exchange: ~490 modules,
0.4-1 s) before reading a single argument. Here the first argument picks a module from
:data:`COMMANDS` and only that module is imported; ``--help`` imports nothing of ours.
``bench/bench_cli.py`` measures it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Sequence

from cli.arguments import EXIT_USAGE, OneLineParser

COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("cli.run", "run the supervisor (see `run --help` for every flag and default)"),
    "exchange": ("cli.exchange", "serve the embedded Kalshi exchange standalone"),
    "inject": ("cli.inject", "inject a fault into a running supervisor"),
    "halt": ("cli.halt", "halt trading in a running supervisor (the kill switch)"),
    "resume": ("cli.resume", "resume trading in a running supervisor after a halt"),
    "diagram": ("cli.diagram", "print the state machine as a Mermaid diagram"),
}
"""Sub-command -> (module with ``main(argv) -> int``, one-line help)."""

EXIT_INTERRUPTED = 130
"""A Ctrl-C before the sub-command has loaded (128 + SIGINT, as a shell reports it)."""


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: only ``--help`` and the list of sub-commands."""
    parser = OneLineParser(
        prog="kalshi-supervisor",
        description="Bring a Kalshi trading system from cold start to READY and keep it there.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        commands.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command; its exit code is the process's."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in COMMANDS:
        # Ctrl-C interrupts every command, also one started with SIGINT ignored (a script's
        # `kalshi-supervisor run &`): `run` honours SIGINT once it serves, so one that lands
        # while the command still loads must not be the one lost.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            module = importlib.import_module(COMMANDS[args[0]][0])
        except KeyboardInterrupt:  # Ctrl-C while the command is still loading: nothing ran
            print(f"kalshi-supervisor: {args[0]} interrupted while loading", file=sys.stderr)
            return EXIT_INTERRUPTED
        try:
            return int(module.main(args[1:]))
        except BrokenPipeError:  # `kalshi-supervisor diagram | head`: the reader left early
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush is quiet
            return 1
    parser = build_parser()
    parser.parse_args(args)  # --help, --version exit 0; an unknown command or flag exits 2
    parser.print_help()
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
