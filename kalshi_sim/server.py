"""The embedded exchange's one web server: REST and WebSocket on one port, as Kalshi's hosts do.

One Starlette app serves ``/trade-api/v2/...`` (:class:`~kalshi_sim.rest_server.RestApi`)
and ``/trade-api/ws/v2`` (:class:`~kalshi_sim.ws_server.WsFeed`) behind the exchange's
rules (:mod:`kalshi_sim.rules`), on uvicorn in its own thread
(:class:`webstack.server_thread.ServerThread`).

Two small uvicorn protocol subclasses carry what an ASGI app cannot say:

* HTTP (h11): a malformed request gets Kalshi's JSON error shape rather than uvicorn's
  plain text, and a connection that sends nothing is closed after the keep-alive
  timeout (uvicorn only times out idle keep-alive connections, so a silent client
  would otherwise hold a slot of ``limit_concurrency`` for ever);
* WebSocket (websockets' sans-I/O protocol, no deprecated API with websockets 17): pings
  carry Kalshi's ``heartbeat`` payload, and the feed is handed the connection so a
  ``ws_drop`` fault can cut the socket with no close frame.

Limits (see :class:`~kalshi_sim.exchange.ExchangeConfig`): loopback by default, at most
``max_connections`` concurrent connections (503 beyond), silent connections closed after
``idle_timeout``, WebSocket messages up to :data:`MAX_WS_MESSAGE` bytes, and the server
stops within 2 s whatever its clients do.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import h11
import orjson
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from kalshi_sim.order_requests import MAX_BODY_BYTES as MAX_BODY
from kalshi_sim.rules import (
    FaultRule,
    GateRule,
    OperationLogRule,
    RateLimitRule,
    SignatureRule,
    deny_upgrade,
    raw_path,
    send_json,
)
from kalshi_sim.truth import truth_json
from kalshi_sim.wire import HEARTBEAT_PAYLOAD, WS_PATH
from kalshi_sim.ws_server import CONNECTION_EXTENSION
from webstack.server_thread import ServerThread, is_loopback

if TYPE_CHECKING:
    from kalshi_sim.exchange import EmbeddedExchange

TRANSPORT_STATE = "kalshi_sim.transport"
"""Key of a connection's transport in each request's ``scope["state"]``."""
MAX_WS_MESSAGE = 1 << 20
"""Largest client WebSocket message; a subscribe naming every market fits many times over."""
MIN_PING_TIMEOUT = 20.0


class _KalshiHttpProtocol(H11Protocol):
    """uvicorn's h11 protocol, with Kalshi's error shape and a first-request timeout."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Each request's scope["state"] is a copy of app_state: give this connection's copy
        # its transport, so a trading fault can cut it with no reply (``drop_write``).
        self.app_state = {**self.app_state, TRANSPORT_STATE: transport}
        # Armed until the first byte arrives (data_received cancels it), as for keep-alive.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def send_400_response(self, msg: str) -> None:
        body = orjson.dumps({"error": {"code": "bad_request", "message": msg}})
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()


class _KalshiWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, pinging as Kalshi does and exposing itself."""

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:  # set only when the upgrade went ahead
            scope["extensions"][CONNECTION_EXTENSION] = self

    async def send(self, message: Any) -> None:
        """uvicorn's send, counting a finished denial response as a completed handshake.

        Why: uvicorn marks the handshake complete when an app closes before accepting, but
        not when it answers with a denial response (the ``websocket.http.response``
        extension), so every refused upgrade (401, 429, 503 during a pause) logged "ASGI
        callable returned without completing handshake" at ERROR, once per attempt.
        """
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get(
            "more_body", False
        ):
            self.handshake_complete = True

    def send_keepalive_ping(self) -> None:
        """uvicorn's keep-alive ping with ``heartbeat`` as its payload instead of random bytes."""
        self.ping_timer = None
        if self.close_sent or self.transport.is_closing():
            return
        self.pending_ping_payload = HEARTBEAT_PAYLOAD
        self.ping_sent_at = self.loop.time()
        self.conn.send_ping(HEARTBEAT_PAYLOAD)
        self.transport.write(b"".join(self.conn.data_to_send()))
        if self.ping_timeout is not None:
            self.pong_timer = self.loop.call_later(self.ping_timeout, self.keepalive_timeout)
        else:
            self.schedule_ping()


class _RestEndpoint:
    """Every HTTP path: the REST API answers (404 JSON outside ``/trade-api/v2``).

    Around the reply it does what a trading :class:`~kalshi_sim.trading_routes.Reply` asks:
    the write's private events before or after it, a dropped connection, a held reply.
    """

    def __init__(self, exchange: EmbeddedExchange) -> None:
        self.exchange = exchange

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = scope.get("query_string", b"").decode("latin-1")
        headers = Headers(scope=scope)
        body = await _read_body(receive)
        if body is None:
            await send_json(
                send, 413, {"error": {"code": "bad_request", "message": "body too large"}}
            )
            return
        reply = self.exchange.rest.handle(scope["method"], raw_path(scope), query, headers, body)
        settings = self.exchange.trading.settings
        before = settings.private_events == "before"
        if reply.events:  # the public events in the loop step that made the change
            self.exchange.ws.publish(reply.events, private=False)
        if reply.events and before:
            await self.exchange.ws.publish_and_flush(reply.events)
        if reply.drop:
            transport = scope.get("state", {}).get(TRANSPORT_STATE)
            if transport is not None:
                transport.abort()
                while (await receive())["type"] != "http.disconnect":
                    pass
            if reply.events and not before:
                self.exchange.ws.publish(reply.events, public=False)
            return
        if reply.hold_s > 0 and await _client_left_within(receive, reply.hold_s):
            return  # the client gave up first, as a timed-out client does: nobody to answer
        if reply.body is None:
            await send({"type": "http.response.start", "status": reply.status, "headers": []})
            await send({"type": "http.response.body", "body": b""})
        else:
            await send_json(send, reply.status, reply.body)
        if reply.events and not before:
            delay = settings.private_event_delay_ms
            if delay > 0:
                events = reply.events
                asyncio.get_running_loop().call_later(
                    delay / 1000, lambda: self.exchange.ws.publish(events, public=False)
                )
            else:
                self.exchange.ws.publish(reply.events, public=False)


async def _client_left_within(receive: Receive, seconds: float) -> bool:
    """Hold for ``seconds``; True as soon as the client disconnects (the body is read)."""

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    try:
        await asyncio.wait_for(disconnected(), timeout=seconds)
    except TimeoutError:
        return False
    return True


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None past :data:`MAX_BODY` bytes (memory stays bounded)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class _SimEndpoint:
    """``/_sim/...``: the exchange's own view for tests and people, loopback clients only.

    ``GET /_sim/truth[?member=NAME]`` returns every member's orders, fills, positions, cash,
    settlements and groups; ``POST /_sim/trading_faults`` with ``{"spec": "drop_write"}``
    arms a trading fault. Not Kalshi's API: nothing under ``/trade-api`` changes.
    """

    def __init__(self, exchange: EmbeddedExchange) -> None:
        self.exchange = exchange

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read_body(receive) or b""
        client = scope.get("client") or ("", 0)
        if not is_loopback(str(client[0])):
            await send_json(send, 403, {"error": {"code": "forbidden", "message": "loopback only"}})
            return
        path, method = scope["path"], scope["method"]
        if path == "/_sim/truth" and method == "GET":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            member = query.get("member", [None])[0]
            if member is not None and member not in self.exchange.trading.members():
                await send_json(send, 404, {"error": {"code": "not_found", "message": member}})
                return
            await send_json(send, 200, truth_json(self.exchange.truth(member)))
            return
        if path == "/_sim/trading_faults" and method == "POST":
            try:
                spec = orjson.loads(body or b"{}").get("spec")
                self.exchange.arm_trading_fault(str(spec))
            except (ValueError, AttributeError, orjson.JSONDecodeError) as exc:
                message = str(exc).splitlines()[0] if str(exc) else "bad spec"
                await send_json(send, 400, {"error": {"code": "bad_request", "message": message}})
                return
            await send_json(send, 200, {"armed": str(spec)})
            return
        await send_json(send, 404, {"error": {"code": "not_found", "message": path}})


class _NoSuchSocket:
    """An upgrade anywhere but the WS root: 404, before any signature check (as Kalshi)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await deny_upgrade(receive, send, 404, b"Not Found\n", b"text/plain")


class _Lifespan:
    """Starts the WS feed with the server; the rest of the ASGI traffic goes to the app.

    Our server threads stop with a forced exit, which never sends ``lifespan.shutdown``:
    the lifespan task is cancelled with the loop instead. Handled here, that is a quiet
    end; inside Starlette's lifespan it would be logged as an error with a traceback.
    """

    def __init__(self, app: Starlette, exchange: EmbeddedExchange) -> None:
        self.app = app
        self.exchange = exchange

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        await receive()  # lifespan.startup
        self.exchange.ws.begin()
        await send({"type": "lifespan.startup.complete"})
        try:
            await receive()  # lifespan.shutdown, when the server exits gracefully
        except asyncio.CancelledError:
            return  # the loop is closing: the feed was stopped by EmbeddedExchange.stop
        self.exchange.ws.stop()
        await send({"type": "lifespan.shutdown.complete"})


def build_app(exchange: EmbeddedExchange) -> _Lifespan:
    """The exchange as one ASGI app: rules as middleware, then REST and the WS feed."""
    rest = _RestEndpoint(exchange)
    app = Starlette(
        routes=[
            WebSocketRoute(WS_PATH, exchange.ws),
            WebSocketRoute("/{path:path}", _NoSuchSocket()),
            Route("/_sim/{path:path}", _SimEndpoint(exchange)),
            Route("/{path:path}", rest),
        ],
        middleware=[
            Middleware(OperationLogRule, exchange=exchange),
            Middleware(GateRule, exchange=exchange),
            Middleware(FaultRule, exchange=exchange),
            Middleware(RateLimitRule, exchange=exchange),
            Middleware(SignatureRule, exchange=exchange),
        ],
    )
    return _Lifespan(app, exchange)


def exchange_server(exchange: EmbeddedExchange) -> ServerThread:
    """The server thread for ``exchange``, configured with the limits above (not started)."""
    config = exchange.config
    ping = config.ping_interval if config.ping_interval > 0 else None
    return ServerThread(
        build_app(exchange),
        config.host,
        config.port,
        name="kalshi-sim",
        http=_KalshiHttpProtocol,
        ws=_KalshiWebSocketProtocol,
        lifespan="on",
        limit_concurrency=config.max_connections,
        timeout_keep_alive=config.idle_timeout,
        ws_max_size=MAX_WS_MESSAGE,
        ws_ping_interval=ping,
        ws_ping_timeout=max(MIN_PING_TIMEOUT, 2 * config.ping_interval),
        ws_per_message_deflate=False,
        backlog=512,
    )
