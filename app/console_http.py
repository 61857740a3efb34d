"""The console's HTTP connections: a deadline for request headers and a lane for control calls.

Two things an ASGI app cannot do, because both happen before a request reaches it, so they
live in uvicorn's h11 protocol (subclassed, as the embedded exchange does for its own ends):

* **A header deadline.** uvicorn closes a connection that stays idle between keep-alive
  requests, but one that sends its request headers one byte every few seconds is never
  idle and never finishes: a thousand of them hold every connection slot (``/status``
  answers 503 to everyone). Each connection must complete its request headers within
  ``header_timeout`` seconds of connecting (or of its previous response), else it is closed.
* **A control lane.** While the slots are full, a request that carries the control token
  (``POST /inject`` from ``kalshi-supervisor inject``, the kill switch's ``POST /halt`` and
  ``POST /resume``) is still served: it does not count against ``limit_concurrency`` but
  against a small budget of its own (``control_budget`` requests in flight), so flooding
  the console cannot take the operator's hands off the supervisor. The token is compared
  in constant time; a request with a wrong token gets no lane and meets the ordinary limit
  (then the app's 401).
"""

from __future__ import annotations

import asyncio
import hmac
import threading
from dataclasses import dataclass, field
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT_SECONDS = 5.0
"""A browser or ``curl`` sends its headers in one write; 5 s is generous on any network."""

CONTROL_BUDGET = 8
"""Token-authenticated requests served beyond ``limit_concurrency``, at once."""

CONTROL_PATHS = frozenset({"/inject", "/halt", "/resume"})
"""Paths that may take the control lane (state-changing calls, all token-guarded). A new
control route is added here (as the kill switch's were), or a flooded console won't reach it."""


@dataclass
class ConnectionPolicy:
    """Shared by every connection of one console server; counters are read by tests and
    ``/status``."""

    token: bytes
    header_timeout: float = HEADER_TIMEOUT_SECONDS
    control_budget: int = CONTROL_BUDGET
    closed_slow: int = 0
    """Connections closed because their request headers did not arrive in time."""
    control_in_flight: int = 0
    control_served: int = 0
    """Control requests let past a full ``limit_concurrency`` since start."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take_control_slot(self, scope: dict[str, Any]) -> bool:
        """True (and a slot held) when ``scope`` is a control call with the right token."""
        if scope.get("method") != "POST" or scope.get("path") not in CONTROL_PATHS:
            return False
        presented = b""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, rest = value.strip().partition(b" ")
                if scheme.lower() == b"bearer":
                    presented = rest.strip()
                break
        if not presented or not hmac.compare_digest(presented, self.token):
            return False
        with self._lock:
            if self.control_in_flight >= self.control_budget:
                return False
            self.control_in_flight += 1
            self.control_served += 1
            return True

    def release_control_slot(self) -> None:
        with self._lock:
            self.control_in_flight = max(0, self.control_in_flight - 1)


def protocol_for(policy: ConnectionPolicy) -> type[H11Protocol]:
    """An h11 protocol class bound to ``policy`` (uvicorn instantiates it per connection)."""
    return type("ConsoleHttpProtocol", (_ConsoleHttpProtocol,), {"policy": policy})


class _ConsoleHttpProtocol(H11Protocol):
    policy: ConnectionPolicy

    # uvicorn reads ``self.limit_concurrency`` when a request's headers are complete (the
    # scope is built by then): a control call with the token is waved through here, and
    # its slot is held until its response is complete or the connection is lost.
    @property  # type: ignore[override]
    def limit_concurrency(self) -> int | None:
        if self._control_slot:
            return None
        scope = getattr(self, "scope", None)
        if (
            scope is not None
            and self._limit is not None
            and self._over_limit()
            and self.policy.take_control_slot(scope)
        ):
            self._control_slot = True
            return None
        return self._limit

    @limit_concurrency.setter
    def limit_concurrency(self, value: int | None) -> None:
        self._limit = value
        self._control_slot = False
        self._header_deadline: asyncio.TimerHandle | None = None

    def _over_limit(self) -> bool:
        assert self._limit is not None
        return len(self.connections) >= self._limit or len(self.tasks) >= self._limit

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(
            self.policy.header_timeout, self._headers_too_slow
        )

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.policy.closed_slow += 1
            self.transport.close()

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # the request line and headers are in
            self._disarm_header_deadline()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._disarm_header_deadline()
        super().handle_websocket_upgrade(event)

    def on_response_complete(self) -> None:
        self._release_control_slot()
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_header_deadline()  # the next keep-alive request has the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        self._release_control_slot()
        super().connection_lost(exc)

    def _release_control_slot(self) -> None:
        if self._control_slot:
            self._control_slot = False
            self.policy.release_control_slot()
