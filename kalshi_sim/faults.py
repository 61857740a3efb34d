"""Switches that make the embedded exchange misbehave on command, like the real one sometimes does.

REST faults are consumed per request by the server's rules (:mod:`kalshi_sim.rules`);
authentication rejection also applies to the WebSocket upgrade. Stream faults (drop,
seq gap, malformed frame, stall) act on live connections and live on the WebSocket feed.

Gates (``hold``) are not faults of the real exchange: they let a test park a client on a
chosen request, so the supervisor sits in a known state for as long as the test needs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import StrEnum


class SimFault(StrEnum):
    """The exchange-side faults, named here so the simulator imports nothing above it.

    The values are the wire names ``kalshi-supervisor inject exchange FAULT`` uses (and
    ``messages.faults.ExchangeFault`` repeats): the supervisor passes the string through.
    """

    WS_DROP = "ws_drop"
    SEQ_GAP = "seq_gap"
    MALFORMED_FRAME = "malformed_frame"
    REST_5XX = "rest_5xx"
    REST_429 = "rest_429"
    AUTH_REJECT = "auth_reject"
    STALL = "stall"
    PAUSE_TRADING = "pause_trading"
    PAUSE_EXCHANGE = "pause_exchange"
    RESUME = "resume"


class Gate:
    """Holds every REST request under one path prefix until ``release()``.

    Events rather than sleeps, so a test knows *when* a request is parked
    (``wait_entered``) and the parked thread wakes the instant it is released.
    """

    def __init__(self, path_prefix: str) -> None:
        self.path_prefix = path_prefix
        self._entered = threading.Event()
        self._released = threading.Event()

    def wait_entered(self, timeout: float) -> bool:
        """True once a request has reached the gate (it may since have been released)."""
        return self._entered.wait(timeout)

    def release(self) -> None:
        """Let held and future requests through; idempotent."""
        self._released.set()

    @property
    def released(self) -> bool:
        return self._released.is_set()

    def hold(self) -> None:
        """Called on the request's own thread: park it until released."""
        self._entered.set()
        self._released.wait()

    def __repr__(self) -> str:
        state = "released" if self.released else "holding"
        return f"Gate({self.path_prefix!r}, {state})"


@dataclass
class ExchangeFaults:
    """Thread-safe fault counters; each ``take_*`` consumes one unit of a pending fault."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _fail_status: int = 0
    _fail_remaining: int = 0
    _reject_auth_remaining: int = 0
    _slow_seconds: float = 0.0
    _slow_remaining: int = 0
    _gates: list[Gate] = field(default_factory=list)

    def fail_next_requests(self, count: int, status: int = 500) -> None:
        """The next ``count`` REST requests answer ``status`` (5xx or 429) instead of data."""
        if status not in (429, 500, 502, 503, 504):
            raise ValueError(f"fail status must be 429 or 5xx, got {status}")
        with self._lock:
            self._fail_status, self._fail_remaining = status, count

    def reject_auth(self, count: int) -> None:
        """The next ``count`` authenticated requests or WS upgrades fail auth with 401."""
        with self._lock:
            self._reject_auth_remaining = count

    def slow_responses(self, seconds: float, count: int) -> None:
        """Delay the next ``count`` REST responses by ``seconds`` each."""
        with self._lock:
            self._slow_seconds, self._slow_remaining = seconds, count

    def hold(self, path_prefix: str) -> Gate:
        """Block every REST request whose path starts with ``path_prefix`` until released.

        The prefix is matched against the full path, e.g. ``/trade-api/v2/exchange/status``.
        """
        gate = Gate(path_prefix)
        with self._lock:
            self._gates.append(gate)
        return gate

    def gate_for(self, path: str) -> Gate | None:
        """The first unreleased gate covering ``path``, forgetting released ones."""
        with self._lock:
            self._gates = [g for g in self._gates if not g.released]
            return next((g for g in self._gates if path.startswith(g.path_prefix)), None)

    def release_all(self) -> None:
        """Release every gate, so no request (and no server stop) waits on one."""
        with self._lock:
            gates, self._gates = self._gates, []
        for gate in gates:
            gate.release()

    def clear(self) -> None:
        with self._lock:
            self._fail_remaining = self._reject_auth_remaining = self._slow_remaining = 0
        self.release_all()

    def take_failure(self) -> int | None:
        """The status to fail this request with, or None to serve it normally."""
        with self._lock:
            if self._fail_remaining <= 0:
                return None
            self._fail_remaining -= 1
            return self._fail_status

    def take_auth_rejection(self) -> bool:
        with self._lock:
            if self._reject_auth_remaining <= 0:
                return False
            self._reject_auth_remaining -= 1
            return True

    def take_delay(self) -> float:
        with self._lock:
            if self._slow_remaining <= 0:
                return 0.0
            self._slow_remaining -= 1
            return self._slow_seconds
