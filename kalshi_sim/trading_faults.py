"""Trading faults: the ways a write's outcome becomes unknown or misleading (§8.10, §8.12).

Each is armed for the next N writes (thread-safe, consumed one per write) from a test
(:attr:`kalshi_sim.exchange.EmbeddedExchange.trading_faults`), from ``kalshi-supervisor
exchange --trading-fault SPEC`` or from ``POST /_sim/trading_faults`` on the standalone
exchange. A client must resolve every one of them by looking the order up, never by
resending under a new ``client_order_id``:

* ``drop_write``: the write is applied, then the connection is closed with no reply;
* ``fail_write``: answered 5xx (``status``, 500 by default), applied or not (``applied``);
* ``hold_write``: applied, the reply held ``seconds`` (past the client's timeout);
* ``wrong_order``: a cancel/amend reply that describes another order of the member;
* ``error_in_2xx``: a 2xx whose body carries ``error`` (nothing applied);
* ``cancel_all_503``: cancel-all answers 503, applied or not;
* ``lose_private_events``: a member's private WS session is cut just before its next event
  (a fill), which it never gets on the WS (``EmbeddedExchange.arm_trading_fault``).

Settings that are not one-shot (read lag, private-event order, cancel-all's tail) are
plain attributes of :class:`TradingSettings`, read at each use.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

MAX_ARMED = 1000
"""Distinct armed faults at once: memory stays bounded whatever arms them."""
MAX_HOLD_SECONDS = 600.0


class TradingFault(StrEnum):
    DROP_WRITE = "drop_write"
    FAIL_WRITE = "fail_write"
    HOLD_WRITE = "hold_write"
    WRONG_ORDER = "wrong_order"
    ERROR_IN_2XX = "error_in_2xx"
    CANCEL_ALL_503 = "cancel_all_503"
    LOSE_PRIVATE_EVENTS = "lose_private_events"
    """Not a write fault: the member's private WS sessions are cut just before its next
    event, which is lost to it (``member=NAME``, default any member); see
    :meth:`kalshi_sim.ws_server.WsFeed.lose_private_events`."""


WriteOp = Literal[
    "create", "cancel", "amend", "decrease", "batch_create", "batch_cancel", "cancel_all", "group"
]
_ONLY: dict[TradingFault, frozenset[str]] = {
    TradingFault.WRONG_ORDER: frozenset({"cancel", "amend"}),
    TradingFault.CANCEL_ALL_503: frozenset({"cancel_all"}),
}


@dataclass(frozen=True, slots=True)
class ArmedFault:
    """One armed fault as a write takes it."""

    kind: TradingFault
    applied: bool = True
    status: int = 500
    seconds: float = 0.0


@dataclass
class TradingSettings:
    """Exchange behaviours a test or the CLI sets; read at each use."""

    read_lag_ms: int = 0
    """REST portfolio reads show the state as of this long ago (demo: ~1 s [SYN])."""
    private_events: Literal["before", "after"] = "after"
    """Whether a write's private WS events are sent before its REST reply or after it."""
    private_event_delay_ms: int = 0
    """With ``after``: how long after the reply the events follow."""
    cancel_all_tail_s: float = 60.0
    """Orders placed up to this long after a cancel-all are cancelled too ("newly placed
    orders may also be cancelled during the minute after the request"); 0 disables."""
    legacy_v1_in_2xx: bool = False
    """Legacy v1 mutations answer 200 with the 410 body instead of 410 (seen, §7.1)."""


class TradingFaults:
    """Armed one-shot faults, consumed one per matching write."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[list[object]] = []  # [ArmedFault, remaining]

    def arm(
        self,
        kind: TradingFault | str,
        *,
        count: int = 1,
        applied: bool = True,
        status: int = 500,
        seconds: float = 5.0,
    ) -> None:
        """Arm ``kind`` for the next ``count`` writes it applies to; ValueError if unknown."""
        fault = TradingFault(str(kind))
        if fault is TradingFault.LOSE_PRIVATE_EVENTS:
            raise ValueError("lose_private_events is armed on the WS feed (arm_trading_fault)")
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        if fault is TradingFault.FAIL_WRITE and not 500 <= status <= 599:
            raise ValueError(f"fail_write status must be 5xx, got {status}")
        if fault is TradingFault.CANCEL_ALL_503:
            status = 503
        if not 0 <= seconds <= MAX_HOLD_SECONDS:
            raise ValueError(f"seconds must be 0 to {MAX_HOLD_SECONDS}, got {seconds}")
        armed = ArmedFault(fault, applied, status, seconds)
        with self._lock:
            if len(self._armed) >= MAX_ARMED:
                raise ValueError(f"at most {MAX_ARMED} trading faults armed at once")
            self._armed.append([armed, count])

    def take(self, op: str) -> ArmedFault | None:
        """The first armed fault that applies to ``op`` (one unit of it), or None."""
        with self._lock:
            for entry in self._armed:
                armed, remaining = entry
                assert isinstance(armed, ArmedFault) and isinstance(remaining, int)
                only = _ONLY.get(armed.kind)
                if only is not None and op not in only:
                    continue
                if remaining <= 1:
                    self._armed.remove(entry)
                else:
                    entry[1] = remaining - 1
                return armed
        return None

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()

    def pending(self) -> int:
        with self._lock:
            return sum(int(e[1]) for e in self._armed)  # type: ignore[call-overload]


def parse_spec(spec: str) -> tuple[TradingFault, dict[str, object]]:
    """``NAME[:key=value,...]`` (e.g. ``fail_write:count=2,status=503,applied=false``) ->
    the fault and its keyword arguments for :meth:`TradingFaults.arm`; ValueError if bad."""
    name, _, rest = spec.strip().partition(":")
    try:
        fault = TradingFault(name)
    except ValueError:
        known = ", ".join(f.value for f in TradingFault)
        raise ValueError(f"unknown trading fault {name!r} (known: {known})") from None
    options: dict[str, object] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"expected key=value in {spec!r}, got {part!r}")
        if key in ("count", "status"):
            if not value.isdigit():
                raise ValueError(f"{key} must be an integer in {spec!r}")
            options[key] = int(value)
        elif key == "seconds":
            try:
                options[key] = float(value)
            except ValueError:
                raise ValueError(f"seconds must be a number in {spec!r}") from None
        elif key == "member":
            if not value:
                raise ValueError(f"member must not be empty in {spec!r}")
            options[key] = value
        elif key == "applied":
            if value not in ("true", "false"):
                raise ValueError(f"applied must be true or false in {spec!r}")
            options[key] = value == "true"
        else:
            raise ValueError(f"unknown option {key!r} in {spec!r}")
    return fault, options
