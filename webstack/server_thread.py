"""A uvicorn server on its own thread, with a started/stopped contract.

Why a thread of its own: the supervisor's process is made of actor threads, and every
server we run (the embedded exchange, the console) must start, report its bound port and
stop on request without owning the main thread or its signals. trio's ``started()`` is
the model: :meth:`ServerThread.start` returns only once the socket is bound and the
server accepts connections, or raises :class:`ServerStartError` with one line saying why.

We bind the listening socket ourselves, before uvicorn runs, so that a port in use or a
bad host is reported at once and ``port=0`` gives the real port immediately.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import threading
from types import TracebackType
from typing import Any, Self

import uvicorn

logger = logging.getLogger("kalshi_supervisor.webstack.server_thread")

DEFAULT_STOP_TIMEOUT = 2.0
"""Everything we serve must be gone within the 2 s the README promises on a signal."""


_CONNECTION_CLOSE_GRACE = 0.1
"""Seconds a stop lets the connections it asked to close finish closing (uvicorn's pause)."""


class ServerStartError(RuntimeError):
    """The server could not bind or start; the message is one line."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Server(uvicorn.Server):
    """uvicorn's server, telling the starting thread when it is up (or why it is not), and
    noticing a stop request at once.

    uvicorn polls ``should_exit`` every 0.1 s; a stop therefore took up to 0.1 s before the
    shutdown even began, paid by every server a test suite starts and stops. Here the tick
    also wakes on :meth:`wake`, so a stop begins as soon as it is asked for.
    """

    def __init__(self, config: uvicorn.Config, started: threading.Event) -> None:
        super().__init__(config)
        self._started_event = started
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        await super().startup(sockets)
        self._started_event.set()

    async def main_loop(self) -> None:
        """uvicorn's tick (``on_tick`` every 0.1 s), woken early by :meth:`wake`."""
        wake = self._wake or asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), 0.1)
            should_exit = await self.on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's shutdown, without its fixed 0.1 s pause once no connection is left.

        uvicorn asks each open connection to close, then sleeps 0.1 s so they can. A stop
        with nothing open (clients gone first, the usual case) paid the whole pause anyway,
        once for every server a test suite starts and stops. A forced stop (ours always is)
        now waits only while connections remain, for at most the same 0.1 s; a graceful one
        is uvicorn's own.
        """
        if not self.force_exit:
            await super().shutdown(sockets)
            return
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        state = self.server_state
        for connection in list(state.connections):
            connection.shutdown()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _CONNECTION_CLOSE_GRACE
        while state.connections and loop.time() < deadline:
            await asyncio.sleep(0.005)  # a closing transport leaves the set on the next turns
        try:
            async with asyncio.timeout(self.config.timeout_graceful_shutdown):
                for server in self.servers:
                    await server.wait_closed()
        except TimeoutError:
            for task in list(state.tasks):
                task.cancel(msg="task cancelled: server stopped")

    def wake(self) -> None:
        """From any thread: re-check ``should_exit`` now rather than at the next tick."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(wake.set)


class ServerThread:
    """Serve an ASGI app on ``host:port`` from a daemon thread until :meth:`stop`.

    ``uvicorn_options`` go to :class:`uvicorn.Config` (limits, timeouts, WebSocket
    settings); logging, lifespan and signal handling are ours to decide and fixed here.
    """

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        name: str = "server",
        **uvicorn_options: Any,
    ) -> None:
        self.app = app
        self.host = host
        self._requested_port = port
        self.name = name
        self._options = {
            "log_level": "warning",
            "access_log": False,
            "lifespan": "off",
            "server_header": False,
            "date_header": False,
            "timeout_graceful_shutdown": 1.0,
            **uvicorn_options,
        }
        self._socket: socket.socket | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._failure: BaseException | None = None
        self.port = 0

    # -- addresses ---------------------------------------------------------------------------
    @property
    def address(self) -> str:
        """``host:port`` as a person would type it (IPv6 hosts bracketed)."""
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{host}:{self.port}"

    def url(self, scheme: str = "http", path: str = "") -> str:
        return f"{scheme}://{self.address}{path}"

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, timeout: float = 5.0) -> Self:
        """Bind, start serving, and return once connections are accepted."""
        if self._thread is not None:
            raise ServerStartError(f"{self.name} server already started")
        self._socket = _bind(self.host, self._requested_port, self._options.get("backlog", 2048))
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(self.app, **self._options)
        self._server = _Server(config, self._started)
        self._thread = threading.Thread(target=self._serve, name=f"{self.name}-server", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            self.stop()
            raise ServerStartError(f"{self.name} server did not start within {timeout:g}s")
        if self._failure is not None:
            failure = self._failure
            self.stop()
            raise ServerStartError(f"{self.name} server failed to start: {failure}")
        return self

    def _serve(self) -> None:
        assert self._server is not None and self._socket is not None
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # SystemExit from uvicorn included: report, never escape
            self._failure = exc
            logger.warning("%s server stopped: %s: %s", self.name, type(exc).__name__, exc)
        finally:
            self._started.set()  # release a start() still waiting

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> bool:
        """Stop accepting, close open connections, and join; True if the thread ended."""
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True
            self._server.wake()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        if self._socket is not None:
            self._socket.close()
        return thread is None or not thread.is_alive()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _bind(host: str, port: int, backlog: int) -> socket.socket:
    """A listening socket for ``host:port``, or one line saying why there is none."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise ServerStartError(f"cannot resolve host {host!r}: {exc}") from None
    family, _, proto, _, address = infos[0]
    # The protocol number matters: asyncio sets TCP_NODELAY only on accepted sockets whose
    # listener says IPPROTO_TCP, and without it a response written in two parts (headers,
    # then body) waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.set_inheritable(True)
    except OSError as exc:
        sock.close()
        raise ServerStartError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock
