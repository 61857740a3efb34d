"""``kalshi-supervisor inject``: break a running supervisor on purpose, from another terminal.

The command is used in recovery drills and scripts, so its contract is terse and stable:
the supervisor's JSON reply on one stdout line and exit 0 when the fault was injected; one
stderr line and exit 1 when the supervisor cannot be found or reached, or refuses the fault
(``accepted: false``, e.g. a stage that is not running); exit 2 for a request that
is invalid: found before anything is sent, or by the supervisor (HTTP 400, e.g. a shard its
exchange does not have). No expected failure prints a traceback.
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
from messages.fault_kinds import ActorFault, ExchangeFault, FaultTarget, check_fault
from messages.text import one_line

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
HTTP_OK, HTTP_BAD_REQUEST, HTTP_UNAUTHORIZED, HTTP_INTERNAL_SERVER_ERROR = 200, 400, 401, 500


def add_inject_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``inject`` sub-command's arguments on ``parser``."""
    targets = [t.value for t in FaultTarget]
    actor_faults = [f.value for f in ActorFault]
    exchange_faults = [f.value for f in ExchangeFault]
    parser.add_argument(
        "target",
        metavar="TARGET",
        help=f"what to break: {', '.join(targets)}, or an added stage's or service's name",
    )
    parser.add_argument(
        "fault",
        metavar="FAULT",
        choices=actor_faults + exchange_faults,
        help=f"for a stage or service: {', '.join(actor_faults)}; "
        f"for exchange: {', '.join(exchange_faults)}",
    )
    parser.add_argument("--seconds", type=float, help="how long a timed fault lasts")
    parser.add_argument("--count", type=int, help="how many times a counted fault fires")
    parser.add_argument(
        "--shard",
        type=int,
        metavar="N",
        help="pause_trading: pause this exchange shard (exchange_index) only (default: all)",
    )
    parser.add_argument(
        "--resume-in",
        type=float,
        metavar="SECONDS",
        help="pause_trading, pause_exchange: the exchange resumes after this long and "
        "advertises that time as its estimated resume time (default: paused until "
        "`inject exchange resume`, no estimate)",
    )
    add_endpoint_arguments(parser)


def run_inject(
    args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Send one ``InjectFault`` to the running supervisor and report the outcome.

    ``out``/``err`` default to the *current* ``sys.stdout``/``sys.stderr``, resolved per
    call rather than at import, so redirections made after import are honoured.
    """
    # Imported per call, not at load: `inject --help` and a refused request need it not.
    from app.console_state import (
        ConsoleStateError,
        default_state_path,
        is_valid_token,
        read_state_file,
    )

    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr

    def fail(message: str, code: int = EXIT_FAILED) -> int:
        print(one_line(message), file=err)
        return code

    problem = check_fault(
        args.target, args.fault, args.seconds, args.count, args.shard, args.resume_in
    )
    if problem is not None:
        return fail(f"invalid fault: {problem}", EXIT_USAGE)
    if args.timeout is not None and args.timeout <= 0:
        return fail("invalid --timeout: must be greater than 0", EXIT_USAGE)
    if args.token is not None and not is_valid_token(args.token):
        return fail("invalid --token: must be printable ASCII without spaces", EXIT_USAGE)

    state_file: Path | None = None
    pid: int | None = None
    if args.url and args.token is not None:
        url, token = args.url, args.token
    else:
        state_file = args.state_file or default_state_path()
        try:
            endpoint = read_state_file(state_file)
        except ConsoleStateError as exc:
            return fail(str(exc))
        url = args.url or endpoint.url
        token = args.token if args.token is not None else endpoint.token
        pid = endpoint.pid

    body: dict[str, Any] = {"target": args.target, "fault": args.fault}
    body.update(
        {
            k: v
            for k in ("seconds", "count", "shard", "resume_in")
            if (v := getattr(args, k)) is not None
        }
    )
    try:
        status, reply = post_json(url, "/inject", body, token, args.timeout)
    except ValueError as exc:
        return fail(f"invalid control URL {url}: {exc}", EXIT_USAGE)
    except TimeoutError:
        return fail(f"supervisor at {url} did not answer within {args.timeout:g}s")
    except OSError as exc:
        hint = stale_hint(pid, state_file)
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return fail(f"cannot reach supervisor at {url}: {reason}{hint}")

    error = reply.get("error") if isinstance(reply, dict) else None
    detail = error if isinstance(error, str) else "unexpected reply"
    if status == HTTP_UNAUTHORIZED:
        return fail(f"refused: {error if isinstance(error, str) else 'unauthorized'}")
    if status == HTTP_OK and isinstance(reply, dict) and reply.get("accepted") is False:
        # The supervisor answered but would not inject (no such stage, a stage that is
        # not running, a service that is restarting): a refusal, not a success.
        return fail(f"refused by supervisor: {detail}")
    if status == HTTP_OK and reply is not None:
        print(json.dumps(reply), file=out)
        return EXIT_OK
    if status == HTTP_INTERNAL_SERVER_ERROR:
        return fail(f"supervisor failed to inject {args.target}/{args.fault}: {detail}")
    if status == HTTP_BAD_REQUEST:
        return fail(f"rejected by supervisor: {detail}", EXIT_USAGE)
    return fail(f"unexpected reply from {url}: HTTP {status}: {detail}")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="kalshi-supervisor inject", description="Inject a fault into a running supervisor."
    )
    add_inject_arguments(parser)
    return parser


def main(argv: Sequence[str]) -> int:
    """``kalshi-supervisor inject ...``."""
    return run_inject(build_parser().parse_args(argv))
