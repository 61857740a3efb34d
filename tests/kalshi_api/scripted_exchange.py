"""A scripted HTTP exchange for write-path tests: real loopback sockets, counted requests.

A Starlette app on :class:`webstack.server_thread.ServerThread` answers each request with the
next scripted reply (status and raw body), or holds it until the test releases it (a
response later than the client's deadline). A raw-socket server covers what an ASGI app
cannot do: read the request and drop the connection without a word. Both count what
arrived, per method and path, so a test can prove a write went out exactly once.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from dataclasses import dataclass, field

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from webstack.server_thread import ServerThread

WAIT = 10.0
METHODS = ["GET", "POST", "PUT", "DELETE"]


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    hold: bool = False
    """Hold the request until the script is released (then answer)."""


@dataclass
class Seen:
    method: str
    path: str
    query: str
    body: bytes


@dataclass
class ScriptedExchange:
    """Scripted answers per ``(method, path)``; the last answer of a list repeats."""

    answers: dict[tuple[str, str], list[Answer]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    server: ServerThread | None = None

    def script(self, method: str, path: str, *answers: Answer) -> None:
        self.answers[(method, "/trade-api/v2" + path)] = list(answers)

    def count(self, method: str, path: str) -> int:
        with self.arrived:
            return Counter((s.method, s.path) for s in self.seen)[(method, "/trade-api/v2" + path)]

    def wait_for(self, n: int) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.seen) >= n, WAIT)

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url(path="/trade-api/v2")

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        key = (request.method, request.url.path)
        with self.arrived:
            self.seen.append(Seen(request.method, request.url.path, request.url.query, body))
            self.arrived.notify_all()
            queue = self.answers.get(key) or [Answer(599, b'{"error":"unscripted"}')]
            answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if answer.hold:
            await anyio.to_thread.run_sync(self.release.wait, WAIT)
        return Response(answer.body, status_code=answer.status, media_type="application/json")

    def start(self) -> ScriptedExchange:
        app = Starlette(routes=[Route("/{path:path}", self.endpoint, methods=METHODS)])
        self.server = ServerThread(app, name="scripted-exchange").start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self.server is not None:
            self.server.stop()


class DroppingServer:
    """Reads each request whole (headers and body), counts it, and closes the connection."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.done = threading.Condition()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/trade-api/v2"

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(WAIT)
                request = _read_whole_request(conn)
            with self.done:
                self.requests.append(request)
                self.done.notify_all()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(WAIT)


def _read_whole_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body
