"""``kalshi-supervisor halt``: the kill switch, from another terminal; ``resume`` undoes it.

Scripts and drills depend on the contract, so it is fixed: a short summary for a person on
stdout (``cli.control_summary``: state, reason, the orders it set out to cancel, how long
until none of ours rested), or with ``--json`` the supervisor's JSON reply (the halt report:
reason, open orders at the start, duration, cancel-all calls, verify reads, how many of ours
still rest) on one line; exit 0. One stderr line and exit 1 when the supervisor refuses
(wrong token, orderbook-only mode, the order gateway not answering) or a halt ends with
orders of ours still resting; one stderr line and exit 2 for a bad argument or a supervisor
that cannot be found or reached. No expected failure prints a traceback.

It finds the supervisor as ``inject`` does: the control state file the running supervisor
published (URL and token), or ``--url`` and ``--token``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from cli.arguments import OneLineParser
from cli.control_client import add_endpoint_arguments, post_json, stale_hint
from messages.text import one_line

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
"""Also a supervisor that cannot be found or reached: nothing was asked of it."""

HALT_TIMEOUT = 75.0
"""A halt answers once none of ours rest, which can take several cancel-all rounds; the
supervisor gives up waiting after 60 s (``app.handle.HALT_TIMEOUT``) and says so, and that
answer should reach the terminal rather than this command's own timeout."""
RESUME_TIMEOUT = 10.0
REASON_MAX = 200
"""The server's limit too (``app.console_trading.MAX_REASON_CHARS``)."""


def _endpoint_error(args: argparse.Namespace) -> str | None:
    from app.console_state import is_valid_token

    if args.timeout is not None and args.timeout <= 0:
        return "invalid --timeout: must be greater than 0"
    if args.token is not None and not is_valid_token(args.token):
        return "invalid --token: must be printable ASCII without spaces"
    return None


def run_control(
    what: str,
    path: str,
    body: dict[str, Any],
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """POST ``body`` to ``path`` of the running supervisor; print and exit as the module says."""
    from app.console_state import ConsoleStateError, default_state_path, read_state_file

    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr

    def fail(message: str, code: int) -> int:
        print(one_line(f"{what}: {message}"), file=err)
        return code

    if (problem := _endpoint_error(args)) is not None:
        return fail(problem, EXIT_USAGE)
    state_file: Path | None = None
    pid: int | None = None
    if args.url and args.token is not None:
        url, token = args.url, args.token
    else:
        state_file = args.state_file or default_state_path()
        try:
            endpoint = read_state_file(state_file)
        except ConsoleStateError as exc:
            return fail(str(exc), EXIT_USAGE)
        url = args.url or endpoint.url
        token = args.token if args.token is not None else endpoint.token
        pid = endpoint.pid
    try:
        status, reply = post_json(url, path, body, token, args.timeout)
    except ValueError as exc:
        return fail(f"invalid control URL {url}: {exc}", EXIT_USAGE)
    except TimeoutError:
        return fail(f"supervisor at {url} did not answer within {args.timeout:g}s", EXIT_USAGE)
    except OSError as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return fail(
            f"cannot reach supervisor at {url}: {reason}{stale_hint(pid, state_file)}", EXIT_USAGE
        )

    error = reply.get("error") if isinstance(reply, dict) else None
    detail = error if isinstance(error, str) else f"unexpected reply (HTTP {status})"
    if status == 200 and isinstance(reply, dict):
        if getattr(args, "json", False):
            print(json.dumps(reply), file=out)
        else:
            from cli.control_summary import summary

            shown = {k: v for k, v in reply.items() if k != "accepted"}
            print(summary(what, shown), file=out)
        remaining = reply.get("remaining")
        if isinstance(remaining, int) and remaining > 0:
            print(one_line(f"{what}: {remaining} of our orders still rest"), file=err)
            return EXIT_REFUSED
        return EXIT_OK
    if status == 400:
        return fail(f"rejected by supervisor: {detail}", EXIT_USAGE)
    return fail(f"refused: {detail}", EXIT_REFUSED)


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the supervisor's reply as one JSON line (for scripts) instead of a summary",
    )


def _reason(text: str) -> str:
    reason = text.strip()
    if not reason:
        raise argparse.ArgumentTypeError("must not be empty")
    if len(reason) > REASON_MAX:
        raise argparse.ArgumentTypeError(f"at most {REASON_MAX} characters")
    if not reason.isprintable():
        raise argparse.ArgumentTypeError("must be one printable line")
    return reason


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="kalshi-supervisor halt",
        description="Halt trading in a running supervisor: refuse new orders, cancel every "
        "order of ours and verify none rest (the kill switch). Undo with `resume`.",
    )
    parser.add_argument(
        "--reason",
        type=_reason,
        default="manual",
        metavar="TEXT",
        help="why, for the halt report, the events and the logs (default: manual)",
    )
    add_json_argument(parser)
    add_endpoint_arguments(parser, timeout=HALT_TIMEOUT)
    return parser


def main(argv: Sequence[str]) -> int:
    """``kalshi-supervisor halt [--reason TEXT]``."""
    args = build_parser().parse_args(argv)
    return run_control("halt", "/halt", {"reason": args.reason}, args)
