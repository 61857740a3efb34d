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


TARGET_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
"""A stage name (``orderbook``, ``trading``, ``sync`` or an added stage's) or ``exchange``."""
MAX_SECONDS = 3600.0
"""Longest timed fault: an hour is a drill; more is a mistake."""
MAX_COUNT = 10_000
"""Most firings of a counted fault."""

_TARGET = re.compile(TARGET_PATTERN)


def target_mismatch(target: str, fault: str) -> str | None:
    """Why ``fault`` cannot hit ``target`` (exchange faults only the exchange, actor faults
    only stages), or None when it fits."""
    is_exchange_fault = fault in ExchangeFault.__members__.values()
    if is_exchange_fault != (target == FaultTarget.EXCHANGE):
        kind = "an exchange" if is_exchange_fault else "an actor"
        return f"{fault!r} is {kind} fault and cannot target {target!r}"
    return None


def check_fault(
    target: str, fault: str, seconds: float | None = None, count: int | None = None
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
    if seconds is not None:
        if not math.isfinite(seconds):
            return "seconds: Input should be a finite number"
        if seconds <= 0:
            return "seconds: Input should be greater than 0"
        if seconds > MAX_SECONDS:
            return f"seconds: Input should be less than or equal to {MAX_SECONDS:g}"
    if count is not None:
        if count < 1:
            return "count: Input should be greater than or equal to 1"
        if count > MAX_COUNT:
            return f"count: Input should be less than or equal to {MAX_COUNT}"
    return target_mismatch(target, fault)
