"""One Kalshi WebSocket connection that carries any channel: connect, auth, keep-alive,
reconnect with paced backoff, and command ids routed back to whoever sent the command.

Why it is apart from the channels: Kalshi multiplexes every channel on one authenticated
connection (protocol §3.1), and what a connection needs (a fresh signature per upgrade,
ping/pong, one-line reasons when it fails, a backoff that neither storms a flapping
exchange nor sulks after one) is the same whatever rides on it. Each channel is a
:class:`ChannelClient`: the orderbook stream (:mod:`kalshi_api.ws_session`) and the private
trading channels (:mod:`kalshi_api.private_channels`) are two. The transport only does
I/O and routing; what a frame means is the client's business.

Routing, so two clients on one socket never see each other's replies:

* **by command id**: every command goes out through :meth:`WsTransport.send` with an id from
  the transport's one counter (:meth:`WsTransport.allocate_id`: strictly increasing for the
  transport's life, never reused across reconnects), and a reply carrying that id goes to
  the client that sent it; a ``subscribed`` reply also records its sid as that client's;
* **by sid** for data frames of a subscription;
* **by frame type** for the rest (each client names its data types); an ``error`` nobody
  owns goes to every client (an unscoped terminal error may concern any of them).

The hot path: a client may supply its own reader coroutine (``fast_reader``; the orderbook
stream's inlined delta loop), which hands every frame it does not handle itself to
:meth:`WsTransport.route`. Without one, a generic reader parses each frame and routes it.

Pacing (:class:`~kalshi_api.stream_events.ReconnectPolicy`): a session resets the backoff
only when it was *healthy*: every client says it delivered what it should (the orderbook:
its snapshots, then data; private channels: every subscription acknowledged) and it stayed
up ``healthy_after`` seconds. Sessions that die right after they sync keep the backoff
growing (no reconnect storm); one that delivered data resets it, so after a storm a single
ordinary drop heals at once instead of waiting out the grown backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Protocol

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

from kalshi_api.loop_thread import LoopThread
from kalshi_api.stream_events import (
    ReconnectPolicy,
    StreamConnected,
    StreamDisconnected,
    StreamEvent,
    StreamFailed,
)
from kalshi_api.ws_connect import (
    DEFAULT_MAX_FRAME_BYTES,
    connect_options,
    describe_close,
    describe_connect_error,
    one_line,
)

__all__ = ["ChannelClient", "FastReader", "WsTransport"]

log = logging.getLogger("kalshi_supervisor.kalshi_api.ws_transport")

Router = Callable[[dict[str, Any]], None]
FastReader = Callable[[ClientConnection, Router], Coroutine[Any, Any, None]]
"""A client's own read loop: reads frames until the socket closes (``ConnectionClosed``
ends it), handles its hot frames inline and passes every other parsed frame to the router."""

_MAX_OWNERS = 4096
"""Unanswered command ids remembered per session (oldest forgotten first): a command the
exchange never answers must not grow the table for the life of a week-long session. An id
leaves at its first reply other than ``subscribed`` (a multi-channel subscribe answers one
``subscribed`` per channel; a ``get_snapshot`` answers with snapshots that carry the id and
a sid); ``subscribed`` ones leave when the session ends."""


class ChannelClient(Protocol):
    """What rides on a :class:`WsTransport`. Every method runs on the transport's thread."""

    frame_types: frozenset[str]
    """Data-frame ``type`` values this client reads (routing when no id or sid decides)."""

    def transport_started(self) -> None:
        """The transport's thread runs, before its first connection attempt."""

    def on_transport_event(self, event: StreamEvent) -> None:
        """A connection event (connected, disconnected, failed) for the client's owner."""

    def session_started(self) -> None:
        """A socket opened: (re)subscribe through :meth:`WsTransport.send`."""

    def session_ended(self) -> None:
        """The socket closed: every sid, seq and pending reply of it is gone."""

    def on_frame(self, message: dict[str, Any]) -> None:
        """A parsed frame routed to this client (a reply to its command, its sid's data...)."""

    def session_healthy(self) -> bool:
        """Whether this session delivered what the client needs (resets the backoff)."""

    def transport_stopped(self) -> None:
        """The transport's thread is ending (stopped, failed or crashed)."""


class WsTransport:
    """One authenticated WebSocket to Kalshi, reconnected with paced backoff, shared by clients.

    Clients attach before :meth:`start`. ``auth_headers`` is called once per connection
    attempt so every upgrade carries a fresh timestamp and signature. A 401/403 on the
    upgrade is final (retrying a bad key forever only hides the problem); so is a bad URL
    or ``max_attempts`` consecutive failures: each ends in ``StreamFailed``.
    """

    def __init__(
        self,
        ws_url: str,
        *,
        auth_headers: Callable[[], Mapping[str, str]] | None,
        reconnect: ReconnectPolicy | None = None,
        open_timeout: float = 5.0,
        ping_interval: float | None = 10.0,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        compression: bool = False,
        name: str = "kalshi-ws",
    ) -> None:
        self.url = ws_url
        self._auth_headers = auth_headers
        self.policy = reconnect or ReconnectPolicy()
        self.open_timeout = open_timeout
        self._options = connect_options(
            ws_url,
            open_timeout=open_timeout,
            ping_interval=ping_interval,
            max_frame_bytes=max_frame_bytes,
            compression=compression,
        )
        self.runner = LoopThread(
            self._main, name=name, on_crash=self._crashed, on_exit=self._exited
        )
        self._clients: list[ChannelClient] = []
        self._fast_reader: FastReader | None = None
        self._type_owners: dict[str, ChannelClient] = {}
        self._next_id = 1
        self.connected = False
        """True while a socket is open (any thread may read it)."""
        self.sessions = 0
        """Sessions opened so far (the first is 1)."""
        self.failed_reason: str | None = None
        self.malformed_frames = 0
        """Frames the generic reader could not parse (a client's fast reader counts its own)."""
        self.last_frame_monotonic = 0.0
        """``time.monotonic()`` of the last frame the generic reader read (0.0 = none yet)."""

        # session state (transport thread only)
        self._ws: ClientConnection | None = None
        self._close_reason: str | None = None
        self._retry_now: asyncio.Event | None = None
        self._send_tasks: set[asyncio.Task[None]] = set()
        self._owners: dict[int, ChannelClient] = {}
        self._sid_owners: dict[int, ChannelClient] = {}
        self._logged_bad: set[str] = set()

    # -- wiring (before start) ---------------------------------------------------------------
    def attach(self, client: ChannelClient, *, fast_reader: FastReader | None = None) -> None:
        """Add a client (before :meth:`start`); at most one may bring its own reader."""
        if self.runner.loop is not None or self.runner.stopping:
            raise RuntimeError("attach clients before the transport starts")
        if fast_reader is not None and self._fast_reader is not None:
            raise ValueError("only one client may supply the transport's reader")
        taken = sorted(kind for kind in client.frame_types if kind in self._type_owners)
        if taken:
            raise ValueError(f"frame types {taken} already have a client on this transport")
        if fast_reader is not None:
            self._fast_reader = fast_reader
        for kind in client.frame_types:
            self._type_owners[kind] = client
        self._clients.append(client)

    # -- lifecycle (any thread) ---------------------------------------------------------------
    def start(self) -> None:
        """Start the transport's thread (idempotent); connecting happens in the background."""
        if not self._clients:
            raise RuntimeError("a transport needs at least one client")
        try:
            self.runner.start()
        except RuntimeError:
            raise RuntimeError("a stopped WebSocket transport cannot be restarted") from None

    def stop(self, timeout: float = 2.0) -> None:
        """Close the socket and join the thread; idempotent and safe from any thread."""
        self.runner.stop(timeout)

    def retry_now(self) -> None:
        """Skip the rest of the current backoff wait and start the backoff afresh (an owner
        may know an outage is over before the backoff does). Does nothing while connected."""

        def wake() -> None:
            event = self._retry_now
            if event is not None and self._ws is None:
                event.set()

        self.runner.call_soon(wake)

    def drop_connection(self) -> None:
        """Client-side fault: abort the socket with no close frame, so the reconnect path runs."""
        self.runner.run_sync(
            lambda: self.close_session("connection dropped by the client (fault injection)")
        )

    # -- for clients (transport thread) -------------------------------------------------------
    def allocate_id(self) -> int:
        """A fresh command id, unique for the transport's life (every client shares it)."""
        command_id = self._next_id
        self._next_id += 1
        return command_id

    def send(self, client: ChannelClient, command_id: int, payload: Mapping[str, Any]) -> bool:
        """Queue ``{"id": command_id, **payload}`` on the current socket; replies carrying
        that id go to ``client``. Order of calls = wire order. False when no socket is open."""
        ws = self._ws
        if ws is None:
            return False
        owners = self._owners
        owners[command_id] = client
        if len(owners) > _MAX_OWNERS:
            del owners[next(iter(owners))]
        data = orjson.dumps({"id": command_id, **payload})
        task = asyncio.get_running_loop().create_task(_send_quietly(ws, data))
        self._send_tasks.add(task)
        task.add_done_callback(self._send_tasks.discard)
        return True

    def close_session(self, reason: str) -> None:
        """End the current session (the reconnect loop takes over); ``reason`` is reported."""
        ws = self._ws
        if ws is not None and ws.transport is not None:
            self._close_reason = reason
            ws.transport.abort()

    def route(self, message: dict[str, Any]) -> None:
        """Hand a parsed frame to its client: by command id, then sid, then frame type.

        Raises what the client raises (a reader counts that frame as malformed)."""
        client: ChannelClient | None = None
        kind = message["type"]
        command_id = message.get("id")
        if type(command_id) is int and command_id:
            client = self._owners.get(command_id)
            if client is not None:
                if kind == "subscribed":
                    msg = message.get("msg")
                    sid = msg.get("sid") if type(msg) is dict else None
                    if type(sid) is int:
                        self._sid_owners[sid] = client
                else:  # answered (later frames with this id carry a sid we route by)
                    del self._owners[command_id]
        if client is None:
            sid = message.get("sid")
            if type(sid) is int:
                client = self._sid_owners.get(sid)
                if client is not None and kind == "unsubscribed":
                    del self._sid_owners[sid]
        if client is None:
            client = self._type_owners.get(kind)
        if client is None:
            if kind == "error" and len(self._clients) > 1:  # unscoped: may concern anyone
                for each in self._clients:
                    each.on_frame(message)
                return
            client = self._clients[0]  # counts it as ignored (or handles an unowned reply)
        client.on_frame(message)

    # -- thread plumbing ----------------------------------------------------------------------
    def _crashed(self, exc: BaseException) -> None:
        """A bug in the transport must still surface as an event, not a dead thread."""
        log.error("WebSocket transport crashed", exc_info=exc)
        self._fail(f"internal error: {type(exc).__name__}: {one_line(exc)}")

    def _exited(self) -> None:
        self.connected = False
        for client in self._clients:
            client.transport_stopped()

    def _emit(self, event: StreamEvent) -> None:
        for client in self._clients:
            client.on_transport_event(event)

    def _fail(self, reason: str) -> None:
        self.failed_reason = reason
        log.error("WebSocket stream failed: %s", reason)
        self._emit(StreamFailed(reason))

    # -- the connection loop ------------------------------------------------------------------
    async def _main(self) -> None:
        """Connect, run a session, pace the next attempt; until stopped or given up."""
        rng = random.Random()
        failures = 0
        policy = self.policy
        runner = self.runner
        retry_now = self._retry_now = asyncio.Event()
        for client in self._clients:
            client.transport_started()
        while not runner.stopping:
            throttled = False
            refused: int | None = None
            retry_now.clear()
            try:
                headers = dict(self._auth_headers()) if self._auth_headers is not None else {}
            except Exception as exc:
                self._fail(f"cannot sign the WebSocket upgrade: {one_line(exc)}")
                return
            try:
                ws = await connect(self.url, additional_headers=headers, **self._options)
            except asyncio.CancelledError:
                raise
            except InvalidStatus as exc:
                reason = describe_connect_error(exc, self.url, self.open_timeout)
                status = refused = exc.response.status_code
                if status in (401, 403):
                    self._emit(StreamDisconnected(reason, will_retry=False, refused_status=status))
                    self._fail(reason)
                    return
                if status == 429:
                    throttled = True
                    failures += 1  # a refusal for load counts double: back off harder
            except InvalidURI as exc:
                self._fail(f"invalid WebSocket URL {self.url!r}: {one_line(exc)}")
                return
            except Exception as exc:
                reason = describe_connect_error(exc, self.url, self.open_timeout)
            else:
                reason, healthy = await self._session(ws, attempt=failures + 1)
                if runner.stopping:
                    return
                # Only a session that delivered (and stayed up a little) was a success: its
                # end starts a fresh outage. A flapping one keeps the backoff growing.
                failures = -1 if healthy else failures
            failures += 1
            limit = policy.max_attempts
            give_up = limit is not None and failures >= limit
            log.warning("WebSocket stream: %s", reason)
            delay = 0.0 if give_up else policy.delay(max(1, failures), rng, throttled=throttled)
            self._emit(
                StreamDisconnected(
                    reason, will_retry=not give_up, retry_in=delay, refused_status=refused
                )
            )
            if give_up:
                self._fail(f"gave up after {failures} failed attempt(s): {reason}")
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(retry_now.wait(), delay)
            if retry_now.is_set():
                log.info("WebSocket stream: retrying now (backoff reset)")
                failures = 0

    async def _session(self, ws: ClientConnection, attempt: int) -> tuple[str, bool]:
        """Run one connection until it ends; returns (one-line reason, whether it was healthy)."""
        self._ws = ws
        self._close_reason = None
        self.connected = True
        self.sessions += 1
        self._emit(StreamConnected(attempt))
        opened = time.monotonic()
        reason = "connection ended"
        try:
            for client in self._clients:
                client.session_started()
            reader = self._fast_reader
            await (reader(ws, self.route) if reader is not None else self._read_frames(ws))
        except ConnectionClosed as exc:
            reason = self._close_reason or describe_close(exc)
        finally:
            self.connected = False
            self._ws = None
            healthy = all(client.session_healthy() for client in self._clients)
            for client in self._clients:
                client.session_ended()
            self._owners.clear()
            self._sid_owners.clear()
            if self.runner.stopping:
                with contextlib.suppress(Exception):
                    await ws.close()
            else:
                ws.transport.abort()
        up_for = time.monotonic() - opened
        return reason, healthy and up_for >= self.policy.healthy_after

    async def _read_frames(self, ws: ClientConnection) -> None:
        """The generic reader: parse, route; a frame that cannot be read is counted, logged
        once per kind and skipped (never fatal)."""
        recv = ws.recv
        loads = orjson.loads
        route = self.route
        monotonic = time.monotonic
        while True:
            raw = await recv(decode=False)
            self.last_frame_monotonic = monotonic()
            try:
                message = loads(raw)
                if type(message) is not dict or type(message.get("type")) is not str:
                    raise TypeError("a frame must be a JSON object with a string type")
                route(message)
            except (orjson.JSONDecodeError, TypeError) as exc:
                self._bad_frame("unparseable frame", exc)
            except Exception as exc:  # a client bug, not the exchange's fault: never fatal
                log.exception("WebSocket client failed to handle a frame; skipped")
                self._bad_frame("frame a client could not handle", exc)

    def _bad_frame(self, kind: str, exc: BaseException) -> None:
        self.malformed_frames += 1
        if kind not in self._logged_bad and len(self._logged_bad) < 64:
            self._logged_bad.add(kind)
            log.warning(
                "WebSocket %s skipped (%s); further ones are only counted",
                kind,
                one_line(exc)[:200],
            )


async def _send_quietly(ws: ClientConnection, data: bytes) -> None:
    """Send a command; a closed socket is reported by the reader, not here."""
    with contextlib.suppress(ConnectionClosed):
        await ws.send(data, text=True)
