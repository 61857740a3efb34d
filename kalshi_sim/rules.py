"""The exchange's rules, as ASGI middleware in front of its REST routes and WebSocket feed.

Order matters and is Kalshi's (as far as a client can observe it), outermost first:

1. :class:`OperationLogRule` - every REST request is recorded before anything can refuse it,
   so a test can prove a request *arrived* even when a fault answered it;
2. :class:`GateRule` - test gates park a request, and slow-response faults delay it;
3. :class:`FaultRule` - injected 5xx/429 answers;
4. :class:`RateLimitRule` - the read token bucket (429 ``{"error": "too many requests"}``,
   no Retry-After), charged to public requests too: whether Kalshi limits unauthenticated
   reads is unconfirmed, and a client has to cope with a 429 anywhere;
5. :class:`SignatureRule` - ``KALSHI-ACCESS-*`` signatures on ``/portfolio`` and on the
   WebSocket upgrade (401 with Kalshi's body), consuming injected auth rejections.

Each rule reads the exchange's switches (``exchange.faults``) at request time, so a fault
armed from any thread applies to the next request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import orjson
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from kalshi_sim.rate_limit import TokenBucket, request_cost
from kalshi_sim.rest_server import is_private
from kalshi_sim.status import EXCHANGE_PAUSED_ERROR
from kalshi_sim.wire import (
    AUTH_ERROR_BODY,
    AUTH_HEADERS,
    INTERNAL_ERROR,
    TOO_MANY_REQUESTS,
    WS_PATH,
)
from kalshi_sim.write_limits import is_write

if TYPE_CHECKING:
    from kalshi_sim.exchange import EmbeddedExchange

_JSON = [(b"content-type", b"application/json")]


def raw_path(scope: Scope) -> str:
    """The path exactly as the client sent (and signed) it, without the query string."""
    raw = scope.get("raw_path")
    return raw.decode("latin-1") if raw else str(scope["path"])


async def send_json(send: Send, status: int, payload: Mapping[str, Any]) -> None:
    """One complete JSON response on an HTTP scope."""
    body = orjson.dumps(payload)
    headers = [*_JSON, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def deny_upgrade(receive: Receive, send: Send, status: int, body: bytes, kind: bytes) -> None:
    """Refuse a WebSocket upgrade with a real HTTP response, as Kalshi does before 101."""
    await receive()  # websocket.connect: the ASGI handshake starts with it
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
    await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


class _Rule:
    """A middleware that only looks at HTTP requests unless it says otherwise."""

    def __init__(self, app: ASGIApp, exchange: EmbeddedExchange) -> None:
        self.app = app
        self.exchange = exchange

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or await self.admit(scope, send):
            await self.app(scope, receive, send)

    async def admit(self, scope: Scope, send: Send) -> bool:
        """True to pass the request on; False once this rule has answered it."""
        raise NotImplementedError


class OperationLogRule(_Rule):
    async def admit(self, scope: Scope, send: Send) -> bool:
        self.exchange.oplog.record("rest", f"{scope['method']} {raw_path(scope)}")
        return True


class GateRule(_Rule):
    """Test gates and slow responses: the request waits, the server keeps serving others."""

    async def admit(self, scope: Scope, send: Send) -> bool:
        faults = self.exchange.faults
        gate = faults.gate_for(raw_path(scope))
        if gate is not None:
            # Gates are threading primitives (tests release them from their own thread);
            # wait on one off the loop. Stopping the exchange releases every gate first.
            await anyio.to_thread.run_sync(gate.hold, abandon_on_cancel=True)
        delay = faults.take_delay()
        if delay > 0:
            await asyncio.sleep(delay)  # cancelled, not waited for, when the server stops
        return True


class FaultRule(_Rule):
    async def admit(self, scope: Scope, send: Send) -> bool:
        failure = self.exchange.faults.take_failure()
        if failure is None:
            return True
        await send_json(send, failure, TOO_MANY_REQUESTS if failure == 429 else INTERNAL_ERROR)
        return False


class RateLimitRule(_Rule):
    def __init__(self, app: ASGIApp, exchange: EmbeddedExchange) -> None:
        super().__init__(app, exchange)
        rate = exchange.config.read_tokens_per_second
        self._bucket = TokenBucket(rate) if rate else None

    async def admit(self, scope: Scope, send: Send) -> bool:
        method, path = scope["method"], raw_path(scope)
        if is_write(method, path):
            return (
                True  # billed to the member's Write bucket by the route (kalshi_sim.write_limits)
            )
        if self._bucket is None or self._bucket.try_take(request_cost(method, path)):
            return True
        await send_json(send, 429, TOO_MANY_REQUESTS)
        return False


class SignatureRule(_Rule):
    """Kalshi's signature check: ``timestamp + METHOD + path`` signed by a registered key."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == WS_PATH:
            if self.exchange.status.exchange_paused:  # nothing is allowed, the feed included
                self.exchange.oplog.record("ws_handshake_rejected", "HTTP 503 (exchange paused)")
                body = orjson.dumps(EXCHANGE_PAUSED_ERROR)
                await deny_upgrade(receive, send, 503, body, b"application/json")
                return
            status = self.exchange.ws.behaviour.upgrade_status
            if status is not None:  # e.g. 429: the connection limit is reached
                self.exchange.oplog.record("ws_handshake_rejected", f"HTTP {status}")
                body = orjson.dumps(TOO_MANY_REQUESTS if status == 429 else INTERNAL_ERROR)
                await deny_upgrade(receive, send, status, body, b"application/json")
                return
            why = self._refuse_upgrade(scope)
            if why is not None:
                self.exchange.oplog.record("ws_handshake_rejected", why)
                body = orjson.dumps(AUTH_ERROR_BODY)
                await deny_upgrade(receive, send, 401, body, b"application/json")
                return
        await super().__call__(scope, receive, send)

    def _refuse_upgrade(self, scope: Scope) -> str | None:
        headers = Headers(scope=scope)
        exchange = self.exchange
        if exchange.faults.take_auth_rejection():
            return "fault injected"
        anonymous = not any(name in headers for name in AUTH_HEADERS)
        if anonymous and exchange.ws.allow_anonymous:
            return None
        if not exchange.keys.verify(headers, "GET", WS_PATH):
            return "bad or missing signature"
        return None

    async def admit(self, scope: Scope, send: Send) -> bool:
        path = raw_path(scope)
        if not is_private(path):
            return True
        faults, keys = self.exchange.faults, self.exchange.keys
        if not faults.take_auth_rejection() and keys.verify(
            Headers(scope=scope), scope["method"], path
        ):
            return True
        await send_json(send, 401, AUTH_ERROR_BODY)
        return False
