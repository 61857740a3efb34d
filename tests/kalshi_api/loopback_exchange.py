"""A small real WebSocket server on loopback that speaks Kalshi's private channels (§3.8,
§8.7) and just enough of the orderbook channel for a stream to sync, for the transport and
private-channel tests.

Why not the embedded exchange: its private channels are being written elsewhere; this
server lets the tests push exactly the frames they mean (a gap, a malformed fill, an unknown
field) over a real socket, with real reconnects. It runs ``websockets``' own server on
its own loop thread, on an ephemeral port; every method is called from the test thread
and returns once its effect applies on the server loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

AUTH_HEADER = "KALSHI-ACCESS-KEY"


@dataclass
class _Conn:
    ws: ServerConnection
    request_headers: Headers
    sids: dict[int, str] = field(default_factory=dict)
    seqs: dict[int, int] = field(default_factory=dict)
    commands: list[dict[str, Any]] = field(default_factory=list)
    next_sid: int = 1


class LoopbackExchange:
    """Start with :meth:`start`, stop with :meth:`stop` (a fixture does both)."""

    def __init__(self, *, compression: str | None = "deflate", max_size: int = 2**24) -> None:
        self._compression = compression
        self._max_size = max_size
        self.refuse: dict[str, int] = {}
        """Channel -> error code its subscribe is answered with."""
        self.reject_upgrade: int | None = None
        self.silent: set[str] = set()
        """Channels whose subscribe gets no answer at all."""
        self.connections: list[_Conn] = []
        self.upgrades = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/trade-api/ws/v2"

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> LoopbackExchange:
        self._thread = threading.Thread(target=self._run, name="loopback-exchange", daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "loopback exchange did not start"
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and self._server is not None:
            server = self._server

            async def close() -> None:
                server.close()
                await server.wait_closed()

            asyncio.run_coroutine_threadsafe(close(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop

        async def open_server() -> None:
            self._server = await serve(
                self._handle,
                "127.0.0.1",
                0,
                process_request=self._check_upgrade,
                compression=self._compression,
                max_size=self._max_size,
                ping_interval=None,
            )
            self.port = self._server.sockets[0].getsockname()[1]

        loop.run_until_complete(open_server())
        self._ready.set()
        loop.run_forever()
        loop.close()

    def _check_upgrade(self, connection: ServerConnection, request: Request) -> Response | None:
        self.upgrades += 1
        if self.reject_upgrade is not None:
            return connection.respond(self.reject_upgrade, "refused\n")
        if AUTH_HEADER not in request.headers:
            return connection.respond(401, "authentication_error\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        conn = _Conn(ws, ws.request.headers)
        self.connections.append(conn)
        try:
            async for raw in ws:
                command = orjson.loads(raw)
                conn.commands.append(command)
                await self._command(conn, command)
        except ConnectionClosed:
            pass

    async def _command(self, conn: _Conn, command: dict[str, Any]) -> None:
        cid = command.get("id")
        cmd = command.get("cmd")
        params = command.get("params") or {}
        if cmd == "list_subscriptions":
            subs = [{"channel": ch, "sid": sid} for sid, ch in conn.sids.items()]
            await conn.ws.send(orjson.dumps({"id": cid, "type": "ok", "msg": subs}).decode())
        elif cmd == "subscribe":
            for channel in params.get("channels", []):
                if channel in self.silent:
                    continue
                code = self.refuse.get(channel)
                if code is not None:
                    error = {"code": code, "msg": "Unknown channel name"}
                    await conn.ws.send(
                        orjson.dumps({"id": cid, "type": "error", "msg": error}).decode()
                    )
                    continue
                sid = conn.next_sid
                conn.next_sid += 1
                conn.sids[sid] = channel
                reply = {"id": cid, "type": "subscribed", "msg": {"channel": channel, "sid": sid}}
                await conn.ws.send(orjson.dumps(reply).decode())
                if channel == "orderbook_delta":
                    for ticker in params.get("market_tickers", []):
                        snapshot = {
                            "market_ticker": ticker,
                            "market_id": "00000000-0000-0000-0000-000000000000",
                            "yes_dollars_fp": [["0.4000", "10.00"]],
                            "no_dollars_fp": [["0.5000", "20.00"]],
                        }
                        await self._send_seq(conn, sid, "orderbook_snapshot", snapshot)
        else:
            error = {"code": 5, "msg": "Unknown command"}
            await conn.ws.send(orjson.dumps({"id": cid, "type": "error", "msg": error}).decode())

    async def _send_seq(self, conn: _Conn, sid: int, kind: str, msg: Any) -> None:
        seq = conn.seqs.get(sid, 0) + 1
        conn.seqs[sid] = seq
        await conn.ws.send(
            orjson.dumps({"type": kind, "sid": sid, "seq": seq, "msg": msg}).decode()
        )

    # -- for tests (any thread) ----------------------------------------------------------
    def _on_loop(self, coro: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def latest(self) -> _Conn:
        return self.connections[-1]

    def sid_of(self, channel: str) -> int:
        return next(sid for sid, ch in self.latest().sids.items() if ch == channel)

    def send(self, *frames: dict[str, Any] | str | bytes) -> None:
        """Send frames, in order, on the latest connection (dicts as JSON text)."""
        conn = self.latest()

        async def go() -> None:
            for frame in frames:
                if isinstance(frame, dict):
                    await conn.ws.send(orjson.dumps(frame).decode())
                else:
                    await conn.ws.send(frame)

        self._on_loop(go())

    def send_data(self, channel: str, kind: str, msgs: Iterable[Any]) -> None:
        """Data frames on ``channel``'s sid: no seq (fill, user_order, market_position)."""
        sid = self.sid_of(channel)
        self.send(*({"type": kind, "sid": sid, "msg": msg} for msg in msgs))

    def send_group_updates(self, msgs: Iterable[Any], *, skip: int = 0) -> None:
        """``order_group_updates`` frames with the sid's next seqs, after skipping ``skip``."""
        conn = self.latest()
        sid = self.sid_of("order_group_updates")
        conn.seqs[sid] = conn.seqs.get(sid, 0) + skip

        async def go() -> None:
            for msg in msgs:
                await self._send_seq(conn, sid, "order_group_updates", msg)

        self._on_loop(go())

    def drop(self) -> int:
        """Abort every open connection with no close frame; returns how many."""

        async def go() -> int:
            count = 0
            for conn in self.connections:
                if conn.ws.transport is not None and not conn.ws.transport.is_closing():
                    conn.ws.transport.abort()
                    count += 1
            return count

        count: int = self._on_loop(go())
        return count

    def negotiated_extensions(self) -> list[str]:
        """Extensions the server side of the latest connection negotiated."""
        return [ext.name for ext in self.latest().ws.protocol.extensions]

    def kill(self, channel: str, code: int = 10) -> int:
        """A terminal error scoped to ``channel``'s sid (the sid is gone); returns the sid."""
        conn = self.latest()
        sid = self.sid_of(channel)

        async def go() -> None:
            del conn.sids[sid]
            error = {"type": "error", "sid": sid, "msg": {"code": code, "msg": "Channel error"}}
            await conn.ws.send(orjson.dumps(error).decode())

        self._on_loop(go())
        return sid


class FrameTap:
    """A TCP relay on loopback between a client and a server that records the header of
    every server-to-client WebSocket frame as it crosses the wire: ``(rsv1, opcode,
    payload_length)``. RSV1 set means the frame is permessage-deflate compressed (RFC 7692),
    and the length is what actually crossed, so a test can tell what the client *got*, not
    only what the handshake said."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self.frames: list[tuple[bool, int, int]] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/trade-api/ws/v2"

    def start(self) -> FrameTap:
        self._thread = threading.Thread(target=self._run, name="loopback-tap", daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "tap did not start"
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def recorded(self) -> list[tuple[bool, int, int]]:
        with self._lock:
            return list(self.frames)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop

        async def open_server() -> None:
            self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]

        loop.run_until_complete(open_server())
        self._ready.set()
        loop.run_forever()
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self._target)
        await asyncio.gather(
            self._pump(client_r, server_w, parse=False),
            self._pump(server_r, client_w, parse=True),
            return_exceptions=True,
        )

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, parse: bool
    ) -> None:
        buffer = b""
        upgraded = False
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
                if not parse:
                    continue
                buffer += chunk
                if not upgraded:
                    end = buffer.find(b"\r\n\r\n")
                    if end < 0:
                        continue
                    buffer, upgraded = buffer[end + 4 :], True
                buffer = self._frames(buffer)
        finally:
            writer.close()

    def _frames(self, buffer: bytes) -> bytes:
        while len(buffer) >= 2:
            first, second = buffer[0], buffer[1]
            length, header = second & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    break
                length, header = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                if len(buffer) < 10:
                    break
                length, header = int.from_bytes(buffer[2:10], "big"), 10
            if second & 0x80:
                header += 4
            if len(buffer) < header + length:
                break
            with self._lock:
                self.frames.append((bool(first & 0x40), first & 0x0F, length))
            buffer = buffer[header + length :]
        return buffer
