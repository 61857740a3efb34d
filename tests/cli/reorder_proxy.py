"""A loopback WebSocket proxy that delivers ``get_snapshot`` replies out of order.

Kalshi answers a ``get_snapshot`` repair with snapshot frames carrying the command's id, in
the stream; nothing says they arrive before the deltas that follow, or in command order.
This proxy sits between a client and the embedded exchange, forwards everything, but holds
each repair snapshot and releases the held ones newest first a few frames later. It is a
real server on loopback (no mocked transport): the client connects to :attr:`ws_url`, the
proxy connects upstream with the client's own signed headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import orjson
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

RELEASE_EVERY = 5
"""Held replies go out after this many other frames, newest first."""


class ReorderProxy:
    """Run with ``with ReorderProxy(upstream) as proxy:``; counts what it reordered."""

    def __init__(self, upstream_ws_url: str) -> None:
        self._upstream = upstream_ws_url
        self.held = 0
        """Repair replies held back and sent out of order, since start."""
        self._held_changed = threading.Condition()
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="reorder-proxy", daemon=True)
        self.port = 0

    @property
    def ws_url(self) -> str:
        path = "/" + self._upstream.split("/", 3)[3]
        return f"ws://127.0.0.1:{self.port}{path}"

    def wait_held(self, count: int, timeout: float) -> bool:
        """Until ``count`` repair replies have been reordered; False on timeout."""
        with self._held_changed:
            return self._held_changed.wait_for(lambda: self.held >= count, timeout)

    def __enter__(self) -> ReorderProxy:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the reorder proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self._handle, "127.0.0.1", 0, max_size=None, compression=None) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._started.set()
            await self._stop.wait()

    async def _handle(self, client: ServerConnection) -> None:
        assert client.request is not None
        headers = {
            name: value
            for name, value in client.request.headers.raw_items()
            if name.lower().startswith("kalshi-access")
        }
        with contextlib.suppress(ConnectionClosed, OSError):
            async with connect(
                self._upstream, additional_headers=headers, max_size=None, compression=None
            ) as upstream:
                await asyncio.gather(
                    self._forward(client, upstream), self._reorder(upstream, client)
                )

    async def _forward(self, client: ServerConnection, upstream: Any) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in client:
                await upstream.send(message)
        await upstream.close()

    async def _reorder(self, upstream: Any, client: ServerConnection) -> None:
        held: list[str | bytes] = []
        sent = 0
        with contextlib.suppress(ConnectionClosed):
            async for message in upstream:
                if _is_repair_reply(message):
                    held.append(message)
                    with self._held_changed:
                        self.held += 1
                        self._held_changed.notify_all()
                    continue
                await client.send(message)
                sent += 1
                if held and sent % RELEASE_EVERY == 0:
                    for reply in reversed(held):
                        await client.send(reply)
                    held.clear()
        await client.close()


def _is_repair_reply(message: str | bytes) -> bool:
    try:
        frame = orjson.loads(message)
    except orjson.JSONDecodeError:
        return False
    return (
        isinstance(frame, dict)
        and frame.get("type") == "orderbook_snapshot"
        and bool(frame.get("id"))
    )
