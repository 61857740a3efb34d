"""The fault vocabulary and its limits, in plain Python: what may be broken, and how far.

Why apart from ``messages.faults``: ``kalshi-supervisor inject`` must check a request and
exit in well under 150 ms, and importing pydantic alone costs more than that. This module
imports nothing but the standard library; ``InjectFault`` (the pydantic model the
supervisor validates with) takes its enums, bounds and target rule from here, so the CLI's
early check and the model cannot disagree (a property test holds them together).
"""

from __future__ import annotations

import math
import re
from enum import StrEnum


class FaultTarget(StrEnum):
    ORDERBOOK = "orderbook"
    TRADING = "trading"
    SYNC = "sync"
    EXCHANGE = "exchange"


class ActorFault(StrEnum):
    """Faults any stage actor accepts."""

    CRASH = "crash"
    CRASH_ON_START = "crash_on_start"
    HANG = "hang"
    DISCONNECT = "disconnect"
    SLOW = "slow"
    BAD_METADATA = "bad_metadata"


class ExchangeFault(StrEnum):
    """Faults the embedded exchange applies (only when the supervisor runs it in-process)."""

    WS_DROP = "ws_drop"
    SEQ_GAP = "seq_gap"
    MALFORMED_FRAME = "malformed_frame"
    REST_5XX = "rest_5xx"
    REST_429 = "rest_429"
    AUTH_REJECT = "auth_reject"
    STALL = "stall"
    PAUSE_TRADING = "pause_trading"
    """Trading paused on one shard (``shard``) or every shard: the weekly pause [MP]."""
    PAUSE_EXCHANGE = "pause_exchange"
    """The whole exchange paused: ``/exchange/status`` answers 503 with its body [MP]."""
    RESUME = "resume"
    """End every pause (the exchange is back)."""


PAUSE_FAULTS = frozenset({ExchangeFault.PAUSE_TRADING, ExchangeFault.PAUSE_EXCHANGE})
"""The faults that take ``resume_in`` (the exchange's resume estimate, when it resumes)."""
SHARD_FAULTS = frozenset({ExchangeFault.PAUSE_TRADING})
"""The faults that take ``shard`` (an ``exchange_index``; none means every shard)."""
PAUSE_SWITCHES = PAUSE_FAULTS | {ExchangeFault.RESUME}
"""Switches of the exchange's status board: they take no ``seconds`` or ``count``."""


TARGET_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
"""A stage name (``orderbook``, ``trading``, ``sync`` or an added stage's) or ``exchange``."""
MAX_SECONDS = 3600.0
"""Longest timed fault: an hour is a drill; more is a mistake."""
MAX_COUNT = 10_000
"""Most firings of a counted fault."""
MAX_SHARD = 255
"""Largest ``shard`` (``exchange_index``) accepted before asking the exchange, which knows
its own shards (Kalshi has 0-3 so far [SH]) and refuses one it does not have."""
MAX_RESUME_IN = 86_400.0
"""Longest ``resume_in``: a day (Kalshi's weekly pause lasts two hours)."""

_TARGET = re.compile(TARGET_PATTERN)


def target_mismatch(target: str, fault: str) -> str | None:
    """Why ``fault`` cannot hit ``target`` (exchange faults only the exchange, actor faults
    only stages), or None when it fits."""
    is_exchange_fault = fault in ExchangeFault.__members__.values()
    if is_exchange_fault != (target == FaultTarget.EXCHANGE):
        kind = "an exchange" if is_exchange_fault else "an actor"
        return f"{fault!r} is {kind} fault and cannot target {target!r}"
    return None


def parameter_mismatch(
    fault: str,
    seconds: float | None = None,
    count: int | None = None,
    shard: int | None = None,
    resume_in: float | None = None,
) -> str | None:
    """Why a parameter does not fit ``fault`` (a pause takes ``shard``/``resume_in``, never
    ``seconds``/``count``; no other fault takes ``shard``/``resume_in``), or None.

    Refused rather than ignored: ``pause_exchange --seconds 5`` reads like a 5 s pause.
    """
    if shard is not None and fault not in SHARD_FAULTS:
        return f"shard: only {', '.join(sorted(SHARD_FAULTS))} takes a shard, not {fault!r}"
    if resume_in is not None and fault not in PAUSE_FAULTS:
        return f"resume_in: only {', '.join(sorted(PAUSE_FAULTS))} take resume_in, not {fault!r}"
    if fault in PAUSE_SWITCHES:
        for name, value in (("seconds", seconds), ("count", count)):
            if value is not None:
                hint = " (use resume_in for when it ends)" if fault in PAUSE_FAULTS else ""
                return f"{name}: {fault!r} takes no {name}{hint}"
    return None


def _out_of_range(
    name: str, value: float | None, low: float, high: float, *, exclusive: bool
) -> str | None:
    """pydantic's wording for one bound check (``gt`` when ``exclusive``, else ``ge``)."""
    if value is None:
        return None
    if not math.isfinite(value):
        return f"{name}: Input should be a finite number"
    if exclusive and value <= low:
        return f"{name}: Input should be greater than {low:g}"
    if not exclusive and value < low:
        return f"{name}: Input should be greater than or equal to {low:g}"
    if value > high:
        return f"{name}: Input should be less than or equal to {high:g}"
    return None


def check_fault(
    target: str,
    fault: str,
    seconds: float | None = None,
    count: int | None = None,
    shard: int | None = None,
    resume_in: float | None = None,
) -> str | None:
    """What is wrong with this request, as ``field: reason`` (pydantic's wording), or None.

    The same rules ``InjectFault`` enforces, without pydantic: the CLI refuses a bad request
    before sending anything.
    """
    if not _TARGET.match(target):
        return f"target: String should match pattern '{TARGET_PATTERN}'"
    accepted = [*ActorFault.__members__.values(), *ExchangeFault.__members__.values()]
    if fault not in accepted:
        return "fault: Input should be one of " + ", ".join(repr(f.value) for f in accepted)
    for name, value, low, high, exclusive in (
        ("seconds", seconds, 0, MAX_SECONDS, True),
        ("count", count, 1, MAX_COUNT, False),
        ("shard", shard, 0, MAX_SHARD, False),
        ("resume_in", resume_in, 0, MAX_RESUME_IN, True),
    ):
        problem = _out_of_range(name, value, low, high, exclusive=exclusive)
        if problem is not None:
            return problem
    return target_mismatch(target, fault) or parameter_mismatch(
        fault, seconds, count, shard, resume_in
    )
