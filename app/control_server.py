"""The running supervisor's control port: read-only status for anyone local, fault injection
only for whoever holds the token.

Fault injection is how users test recovery against a *live* supervisor from another
terminal, so it has to be reachable while the actors are busy; a small stdlib HTTP server on
its own daemon thread gives that without touching the actor system's threads. Loopback is
the default bind because injecting faults is a destructive operation, and the bearer token is
the second fence: anything that can reach the port (another user's process, a browser doing
a DNS-rebinding trick) still cannot break the system without reading the 0600 state file.

Every reply, including the ones :mod:`http.server` would render as HTML, is one JSON object,
so the CLI and scripts never have to parse anything else.
"""

from __future__ import annotations

import errno
import hmac
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from datetime import time as time_of_day
from enum import Enum
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import PurePath
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from messages.faults import InjectFault

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
"""An ``InjectFault`` is under 200 bytes; anything near this is abuse, not a request."""

REQUEST_TIMEOUT_SECONDS = 10.0
"""Socket timeout per connection, so a client that stalls mid-request cannot pin a thread
(and with it ``stop()``, which joins request threads) forever."""

_IDLE_WAKEUP_SECONDS = 0.5
"""How often an idle serve loop re-checks for stop. ``stop()`` normally wakes the loop at
once by connecting to it; this only bounds the wait if that wake-up connection fails."""

_STOP_GRACE_SECONDS = REQUEST_TIMEOUT_SECONDS + 1.0
"""How long ``stop()`` waits for in-flight requests: past the socket timeout only a callback
that never returns can still be running, and that must not hang shutdown forever."""

_MAX_ERROR_CHARS = 500
"""Error strings are echoed to a terminal; a huge exception message should not flood it."""

UNAUTHORIZED_MESSAGE = "invalid or missing control token"

StatusCallback = Callable[[], Mapping[str, Any]]
InjectCallback = Callable[[InjectFault], Mapping[str, Any]]


class ControlServerError(RuntimeError):
    """The control server could not start; the message is one line, fit for a terminal."""


def one_line(text: str, limit: int = _MAX_ERROR_CHARS) -> str:
    """Collapse ``text`` to a single bounded line: replies and CLI errors are one line each."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def describe_validation_error(exc: ValidationError) -> str:
    """The first pydantic error as one human line, e.g. ``seconds: Input should be ...``.

    Pydantic reports a union of enums (``fault``) as one error per member, each listing only
    that member's values, which would tell a user that ``ws_drop`` is not a valid fault. The
    sibling errors for the same field are merged so the message lists every accepted value.
    """
    errors = exc.errors(include_url=False, include_input=False)
    if not errors:
        return one_line(str(exc))
    first = errors[0]
    loc = first.get("loc", ())
    field = str(loc[0]) if loc else ""
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if first.get("type") == "enum" and field:
        siblings = [e for e in errors if e.get("loc", ())[:1] == (loc[0],) and e["type"] == "enum"]
        if len(siblings) > 1:
            accepted: list[str] = []
            for sibling in siblings:
                expected = str(sibling.get("ctx", {}).get("expected", ""))
                accepted.extend(v for v in re.findall(r"'([^']*)'", expected) if v not in accepted)
            message = "Input should be one of " + ", ".join(repr(v) for v in accepted)
    return one_line(f"{field}: {message}" if field else message)


def _json_default(value: object) -> object:
    """Let status and inject callbacks return enums, models, datetimes and paths as-is."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date | time_of_day):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _encode(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, default=_json_default, allow_nan=False).encode("utf-8")


def _format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _ControlHTTPServer(ThreadingHTTPServer):
    """Carries the routes' dependencies to the handler, tracks request threads, and keeps
    tracebacks off stderr.

    Request threads are daemons so a callback stuck forever cannot block interpreter exit,
    but socketserver does not track daemon threads at all; they are tracked here instead so
    ``stop()`` can join them and leave nothing running behind it.
    """

    daemon_threads = True
    block_on_close = False  # joining is done by join_request_threads, with a bound
    timeout = _IDLE_WAKEUP_SECONDS

    def __init__(
        self,
        address: tuple[str, int],
        token: bytes,
        status: StatusCallback,
        inject: InjectCallback,
    ) -> None:
        self.token = token
        self.status = status
        self.inject = inject
        self._request_threads: list[threading.Thread] = []
        self._request_threads_lock = threading.Lock()
        super().__init__(address, _ControlRequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"control-request-{self.server_address[1]}",
            daemon=True,
        )
        with self._request_threads_lock:
            self._request_threads = [t for t in self._request_threads if t.is_alive()]
            self._request_threads.append(thread)
        thread.start()

    def join_request_threads(self, timeout: float) -> int:
        """Wait up to ``timeout`` in total for in-flight requests; returns how many remain."""
        with self._request_threads_lock:
            threads, self._request_threads = self._request_threads, []
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return sum(thread.is_alive() for thread in threads)

    def handle_error(self, request: object, client_address: Any) -> None:
        """A client hanging up mid-reply is routine here; socketserver would print a traceback."""
        logger.debug("control connection from %s failed", client_address, exc_info=True)


class _ControlHTTPServerV6(_ControlHTTPServer):
    address_family = socket.AF_INET6


class _ControlRequestHandler(BaseHTTPRequestHandler):
    """Routes ``GET /status`` and ``POST /inject``; everything else is a JSON 404."""

    server: _ControlHTTPServer
    timeout = REQUEST_TIMEOUT_SECONDS
    server_version = "kalshi-supervisor-control"
    sys_version = ""
    # http.server assumes HTTP/0.9 until the request line parses, and HTTP/0.9 replies have
    # no status line or headers; a garbled request should still get a readable JSON 400.
    default_request_version = "HTTP/1.0"

    # -- plumbing -------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request access log http.server writes to stderr: it would
        interleave with the supervisor's own console output."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, oversized headers) as JSON, not HTML."""
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "error"
        self.close_connection = True
        self._reply(code, {"error": one_line(message or phrase)})

    def _reply(self, code: int, payload: Mapping[str, Any]) -> None:
        self._send_json(code, _encode(payload))

    def _send_json(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _not_found(self) -> None:
        self._reply(HTTPStatus.NOT_FOUND, {"error": f"no route for {self.command} {self._path()}"})

    def _path(self) -> str:
        return urlsplit(self.path).path

    def _client(self) -> str:
        host, port = self.client_address[:2]
        return _format_address(str(host), int(port))

    # -- routes ---------------------------------------------------------------------------

    def do_GET(self) -> None:
        if self._path() != "/status":
            self._not_found()
            return
        try:
            payload = _encode(dict(self.server.status()))
        except Exception as exc:
            logger.exception("control status callback failed")
            self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": _describe_exception(exc)})
            return
        self._send_json(HTTPStatus.OK, payload)

    def do_POST(self) -> None:
        if self._path() != "/inject":
            self._not_found()
            return
        self._inject()

    def do_HEAD(self) -> None:
        self._not_found()

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = do_HEAD

    def _inject(self) -> None:
        if "Transfer-Encoding" in self.headers:
            self._reply(HTTPStatus.LENGTH_REQUIRED, {"error": "send the body with Content-Length"})
            return
        raw_length = self.headers.get("Content-Length", "0").strip()
        if not (raw_length.isascii() and raw_length.isdigit()):
            self._reply(HTTPStatus.BAD_REQUEST, {"error": "invalid Content-Length"})
            return
        length = int(raw_length)
        if length > MAX_BODY_BYTES:
            self._reply(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                {"error": f"request body exceeds {MAX_BODY_BYTES} bytes"},
            )
            return
        # Read the body before answering, even to refuse it: closing a socket with unread
        # data makes the kernel send RST, and the client could lose the 401 it is owed.
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True
            return  # the client hung up mid-body; nobody is left to answer
        if not self._authorized():
            logger.warning(
                "refused fault injection from %s: %s", self._client(), UNAUTHORIZED_MESSAGE
            )
            self._reply(HTTPStatus.UNAUTHORIZED, {"error": UNAUTHORIZED_MESSAGE})
            return
        try:
            document = json.loads(body) if body else None
        except (ValueError, RecursionError) as exc:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": one_line(f"invalid JSON: {exc}")})
            return
        if not isinstance(document, dict):
            self._reply(HTTPStatus.BAD_REQUEST, {"error": "request body must be a JSON object"})
            return
        try:
            fault = InjectFault.model_validate(document)
        except ValidationError as exc:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": describe_validation_error(exc)})
            return
        logger.info("fault injection from %s: %s", self._client(), fault)
        try:
            payload = _encode(dict(self.server.inject(fault)))
        except Exception as exc:
            logger.exception("inject callback failed for %s", fault)
            self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": _describe_exception(exc)})
            return
        self._send_json(HTTPStatus.OK, payload)

    def _authorized(self) -> bool:
        """Constant-time check of ``Authorization: Bearer <token>``.

        Compared as bytes because ``hmac.compare_digest`` raises on non-ASCII ``str``, and a
        hostile header must produce a 401, not a crashed request.
        """
        header = self.headers.get("Authorization", "")
        scheme, _, presented = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        candidate = presented.strip().encode("utf-8", errors="surrogateescape")
        return hmac.compare_digest(candidate, self.server.token)


def _describe_exception(exc: BaseException) -> str:
    return one_line(f"{type(exc).__name__}: {exc}")


class ControlServer:
    """Owns the listening socket and the one thread that serves it.

    ``status`` and ``inject`` are called on request threads, concurrently with the rest of
    the supervisor, so they must be thread-safe (e.g. tell/ask an actor, read a snapshot).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8005,
        *,
        token: str,
        status: StatusCallback,
        inject: InjectCallback,
    ) -> None:
        if not token:
            raise ValueError("control token must not be empty")
        self._host = host
        self._port = port
        self._token = token.encode("utf-8")
        self._status = status
        self._inject = inject
        self._lock = threading.Lock()
        self._server: _ControlHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def __repr__(self) -> str:
        return f"ControlServer(address={self.address!r}, running={self._server is not None})"

    @property
    def address(self) -> str:
        """``host:port`` actually bound while running (the requested one before start)."""
        return _format_address(self._host, self._port)

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self) -> None:
        """Bind, listen and serve on a daemon thread; returns once connections are accepted.

        The socket is listening when the server object exists, so a client connecting right
        after ``start()`` returns is queued in the backlog even before the thread's loop runs.
        """
        with self._lock:
            if self._server is not None:
                raise ControlServerError(f"control server already running on {self.address}")
            server_class = _ControlHTTPServerV6 if ":" in self._host else _ControlHTTPServer
            try:
                server = server_class(
                    (self._host, self._port), self._token, self._status, self._inject
                )
            except OSError as exc:
                raise ControlServerError(self._bind_failure(exc)) from None
            self._port = int(server.server_address[1])
            self._stopping = threading.Event()
            thread = threading.Thread(
                target=_serve,
                args=(server, self._stopping),
                name=f"control-server-{self._port}",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread
        logger.info("control server listening on %s", self.url)

    def _bind_failure(self, exc: OSError) -> str:
        where = _format_address(self._host, self._port)
        if exc.errno == errno.EADDRINUSE:
            return f"status port {where} is already in use (pass --status-port 0 for any free port)"
        reason = exc.strerror or str(exc)
        return one_line(f"cannot listen on {where}: {reason}")

    def stop(self) -> None:
        """Stop serving, close the socket and join the serve and request threads.

        Idempotent, and a no-op before ``start()``, so shutdown paths can call it blindly.
        """
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
            self._stopping.set()
        if server is None or thread is None:
            return
        _wake(server)
        thread.join()
        server.server_close()
        stragglers = server.join_request_threads(_STOP_GRACE_SECONDS)
        if stragglers:
            logger.warning(
                "control server on %s stopped with %d request(s) still running in callbacks",
                self.address,
                stragglers,
            )
        else:
            logger.info("control server on %s stopped", self.address)


def _serve(server: _ControlHTTPServer, stopping: threading.Event) -> None:
    """The serve loop: ``serve_forever`` can only notice shutdown on a polling tick, so
    stopping would cost up to a tick per server; ``handle_request`` returns as soon as a
    connection arrives, which lets ``stop()`` wake it immediately with one of its own."""
    while not stopping.is_set():
        server.handle_request()


def _wake(server: _ControlHTTPServer) -> None:
    """Connect once so a loop blocked waiting for a connection sees ``stopping`` now."""
    host, port = server.server_address[:2]
    wildcard = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}
    try:
        socket.create_connection((wildcard.get(str(host), str(host)), port), timeout=1.0).close()
    except OSError:
        logger.debug("could not wake the control server loop; it stops on its next tick")
