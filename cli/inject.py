"""``kalshi-supervisor inject``: break a running supervisor on purpose, from another terminal.

The command is used in recovery drills and scripts, so its contract is terse and stable:
the supervisor's JSON reply on one stdout line and exit 0 on success; one stderr line and
exit 1 when the supervisor cannot be found, reached or refuses; exit 2 for a request that
is invalid before anything is sent. No expected failure prints a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

import httpx
from pydantic import ValidationError

from app.console_errors import UNAUTHORIZED_MESSAGE, describe_validation_error, one_line
from app.control_state import (
    ControlStateError,
    default_state_path,
    is_valid_token,
    read_state_file,
)
from messages.faults import ActorFault, ExchangeFault, FaultTarget, InjectFault

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def add_inject_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``inject`` sub-command's arguments on ``parser``."""
    targets = [t.value for t in FaultTarget]
    actor_faults = [f.value for f in ActorFault]
    exchange_faults = [f.value for f in ExchangeFault]
    parser.add_argument(
        "target", metavar="TARGET", choices=targets, help=f"what to break: {', '.join(targets)}"
    )
    parser.add_argument(
        "fault",
        metavar="FAULT",
        choices=actor_faults + exchange_faults,
        help=f"for orderbook/trading/sync: {', '.join(actor_faults)}; "
        f"for exchange: {', '.join(exchange_faults)}",
    )
    parser.add_argument("--seconds", type=float, help="how long a timed fault lasts")
    parser.add_argument("--count", type=int, help="how many times a counted fault fires")
    parser.add_argument(
        "--token",
        help="control token (overrides the state file's; visible to `ps`, prefer the file)",
    )
    parser.add_argument(
        "--state-file",
        type=Path,
        help="where the running supervisor published its endpoint "
        "(default: $XDG_STATE_HOME/kalshi-supervisor/control.json, "
        "else ~/.local/state/kalshi-supervisor/control.json)",
    )
    parser.add_argument("--url", help="control server URL (overrides the state file's)")
    parser.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for the reply (default: 5)"
    )


def run_inject(
    args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Send one ``InjectFault`` to the running supervisor and report the outcome.

    ``out``/``err`` default to the *current* ``sys.stdout``/``sys.stderr``, resolved per
    call rather than at import, so redirections made after import are honoured.
    """
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr

    def fail(message: str, code: int = EXIT_FAILED) -> int:
        print(one_line(message), file=err)
        return code

    try:
        fault = InjectFault(
            target=args.target, fault=args.fault, seconds=args.seconds, count=args.count
        )
    except ValidationError as exc:
        return fail(f"invalid fault: {describe_validation_error(exc)}", EXIT_USAGE)
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
        except ControlStateError as exc:
            return fail(str(exc))
        url = args.url or endpoint.url
        token = args.token if args.token is not None else endpoint.token
        pid = endpoint.pid

    target_url = url.rstrip("/") + "/inject"
    try:
        with httpx.Client(trust_env=False, timeout=args.timeout) as client:
            response = client.post(
                target_url,
                json=fault.model_dump(mode="json", exclude_none=True),
                headers={"Authorization": f"Bearer {token}"},
            )
    except httpx.TimeoutException:
        return fail(f"supervisor at {url} did not answer within {args.timeout:g}s")
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        return fail(f"invalid control URL {url}: {exc}", EXIT_USAGE)
    except httpx.HTTPError as exc:
        hint = _stale_hint(pid, state_file)
        return fail(f"cannot reach supervisor at {url}: {str(exc) or type(exc).__name__}{hint}")

    if response.status_code == httpx.codes.UNAUTHORIZED:
        return fail(f"refused: {UNAUTHORIZED_MESSAGE}")
    reply = _json_or_none(response)
    if response.status_code == httpx.codes.OK and reply is not None:
        print(json.dumps(reply), file=out)
        return EXIT_OK
    error = reply.get("error") if isinstance(reply, dict) else None
    detail = error if isinstance(error, str) else "unexpected reply"
    if response.status_code == httpx.codes.INTERNAL_SERVER_ERROR:
        return fail(f"supervisor failed to inject {fault.target}/{fault.fault}: {detail}")
    if response.status_code == httpx.codes.BAD_REQUEST:
        return fail(f"rejected by supervisor: {detail}")
    return fail(f"unexpected reply from {url}: HTTP {response.status_code}: {detail}")


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _stale_hint(pid: int | None, state_file: Path | None) -> str:
    """Tell a stale state file (the supervisor died without cleaning up) from a hung one."""
    if pid is None or state_file is None or _pid_alive(pid):
        return ""
    return f" (pid {pid} named in {state_file} is not running; stale state file?)"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists but belongs to someone else (EPERM)
    return True
