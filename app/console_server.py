"""The console server: the page, the live event feed, operations endpoints and fault injection.

One Starlette app on uvicorn, on its own thread (:class:`webstack.server_thread.ServerThread`),
so it starts, reports its port and stops on request without touching the actor threads.

Routes:

- ``GET /``            the console page (static HTML/JS/CSS from ``app/static``, no build);
- ``GET /ws``          WebSocket: every event as JSON with its ``id``; ``?since=ID`` resumes;
- ``GET /status``      the recorder's status (as the old console server served it);
- ``GET /alive``       200 while the process serves;
- ``GET /ready``       200 only in READY, else 503;
- ``GET /metrics``     Prometheus text, from a per-server ``CollectorRegistry``;
- ``GET /books``       top of book per market, with staleness (from the orderbook stage);
- ``GET /books/{ticker}`` one market's depth (404 for a market the stream does not carry);
- ``POST /inject``     fault injection, bearer token required (400 for a fault that does
                       not fit, e.g. a shard the embedded exchange does not have);
- ``POST /halt``       the kill switch: ``{"reason": "..."}`` (optional), token required;
                       answers the halt report once none of ours rest (409 in
                       orderbook-only mode, 503 when the order gateway cannot be reached);
- ``POST /resume``     trading ACTIVE again (``{}``), token required, same answers.

``/status`` carries ``trading`` (state, open orders, positions, P&L: exact decimal strings,
asked of the order gateway) and ``/metrics`` the trading series (``app.console_trading``).

Security, in order of the fences: the Host header must name the bound address (a DNS
rebinding page cannot read the balance); a WebSocket's Origin, when sent, must too (a page
elsewhere cannot open the feed); every state-changing call needs the token; bound to a
non-loopback address, reads need the token too (``Authorization: Bearer`` or ``?token=``
for the WebSocket, which browsers cannot give headers). Connections are capped
(``limit_concurrency``) and every WebSocket client has a bounded queue: a client that falls
behind is closed with a reason (it can resume with ``?since=``), so it can neither grow
memory nor block the thread that publishes events.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from app.book_source import BookSource, BooksUnavailable, NoOrderbookStage
from app.console_errors import (
    UNAUTHORIZED_MESSAGE,
    ConsoleServerError,
    describe_validation_error,
    one_line,
)
from app.console_http import HEADER_TIMEOUT_SECONDS, ConnectionPolicy, protocol_for
from app.console_trading import (
    NO_GATEWAY,
    NO_TRADING,
    BadControlBody,
    TradingCollector,
    TradingControl,
    as_json,
    parse_halt_body,
    parse_resume_body,
    status_part,
)
from app.event_log import CurrentState, EventRecorder, RecordedEvent
from messages.faults import InjectFault
from messages.states import State
from webstack.server_thread import ServerStartError, ServerThread, is_loopback

_T = TypeVar("_T")

__all__ = [
    "UNAUTHORIZED_MESSAGE",
    "ConsoleServer",
    "ConsoleServerError",
    "describe_validation_error",
    "one_line",
]

logger = logging.getLogger("kalshi_supervisor.app.console_server")

STATIC_DIR = Path(__file__).with_name("static")

MAX_BODY_BYTES = 64 * 1024
"""An ``InjectFault`` is under 200 bytes; anything near this is abuse, not a request."""

SEND_TIMEOUT_SECONDS = 5.0
"""A single send that does not complete in this long means the client stopped reading."""

MAX_TICKER_LENGTH = 128
"""Kalshi tickers are a few dozen characters; a longer path segment is not one."""

MAX_CONNECTIONS = 200
"""uvicorn's ``limit_concurrency``: connections beyond this get 503 instead of a thread/task."""

SLOW_CLIENT_CLOSE = 1013
"""WebSocket close code "try again later": the client fell behind and should resume."""


StatusCallback = Callable[[], Mapping[str, Any]]
InjectCallback = Callable[[InjectFault], Mapping[str, Any]]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": one_line(message)}, status_code=status)


# -- the Host / Origin fence ---------------------------------------------------------------------
class HostCheckMiddleware:
    """Refuse requests whose Host (or WebSocket Origin) does not name this server.

    A DNS-rebinding page resolves its own name to 127.0.0.1 and reads whatever answers;
    its requests still carry its own name in Host, which is how they are told apart.
    ``allowed`` is read per request because the port is known only after binding.
    """

    def __init__(self, app: ASGIApp, allowed: Callable[[], frozenset[str]]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        allowed = self.allowed()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "").lower()
        origin = headers.get("origin")
        refused = host not in allowed
        if not refused and origin is not None and scope["type"] == "websocket":
            origin_host = origin.lower().split("://", 1)[-1].rstrip("/")
            refused = origin_host not in allowed
        if refused:
            logger.warning("refused request with Host %r Origin %r", host, origin)
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": "host refused"})
                return
            response = _error(421, f"unknown Host {host!r}: use the console's own address")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


# -- metrics -------------------------------------------------------------------------------------
class _RecorderCollector:
    """Reads the recorder's counters at scrape time: nothing is updated per event.

    The state gauge and time in state come from ``truth`` (the supervisor's own snapshot
    when there is one), never from a recorder the event bus may have left behind.
    """

    def __init__(
        self,
        recorder: EventRecorder,
        clients: Callable[[], tuple[int, int]],
        truth: EventRecorder | CurrentState,
        dropped_events: Callable[[], int],
    ) -> None:
        self._recorder = recorder
        self._clients = clients
        self._truth = truth
        self._dropped_events = dropped_events

    def describe(self) -> list[Metric]:
        return []  # collected lazily: registering must not scrape

    def collect(self) -> Iterator[Metric]:
        recorder = self._recorder
        current = self._truth.state
        state = GaugeMetricFamily(
            "kalshi_supervisor_state",
            "1 for the current state, 0 for the others",
            labels=["state"],
        )
        for each in State:
            state.add_metric([each.value], 1.0 if each is current else 0.0)
        yield state
        yield GaugeMetricFamily(
            "kalshi_supervisor_time_in_state_seconds",
            "Seconds since the last transition",
            value=self._truth.time_in_state(),
        )
        dropped_events = CounterMetricFamily(
            "kalshi_supervisor_events_dropped",
            "Events the event bus dropped because its listeners fell behind (the record and "
            "the feed miss them; the state gauge does not)",
        )
        dropped_events.add_metric([], self._dropped_events())
        yield dropped_events
        yield _counter(
            "kalshi_supervisor_transitions",
            "Transitions into each state",
            "state",
            dict(recorder.transitions_by_state),
        )
        yield _counter(
            "kalshi_supervisor_restarts",
            "Restarts scheduled per stage",
            "stage",
            dict(recorder.restarts_by_stage),
        )
        yield _counter(
            "kalshi_supervisor_stage_failures",
            "Stage failures per stage",
            "stage",
            dict(recorder.failures_by_stage),
        )
        yield _counter(
            "kalshi_supervisor_events",
            "Events published per type",
            "type",
            dict(recorder.events_by_type),
        )
        yield _counter(
            "kalshi_supervisor_stream_heals",
            "Orderbook stream recoveries in place while READY, per kind",
            "kind",
            dict(recorder.stream_heals_by_kind),
        )
        yield _counter(
            "kalshi_supervisor_faults_injected",
            "Faults injected per target",
            "target",
            dict(recorder.faults_by_target),
        )
        pauses = recorder.exchange_pauses()
        yield GaugeMetricFamily(
            "kalshi_supervisor_exchange_pauses",
            "Exchange pauses in force (the whole exchange, or one shard each)",
            value=len(pauses),
        )
        paused = GaugeMetricFamily(
            "kalshi_supervisor_exchange_paused",
            "1 for each pause in force, by shard (exchange_index; 'all' for the whole "
            "exchange) and scope (exchange: nothing allowed; trading: new orders refused)",
            labels=["shard", "scope"],
        )
        for pause in pauses:
            shard = "all" if pause.exchange_index is None else str(pause.exchange_index)
            paused.add_metric([shard, pause.scope], 1.0)
        yield paused
        if recorder.last_sync_duration_seconds is not None:
            yield GaugeMetricFamily(
                "kalshi_supervisor_sync_duration_seconds",
                "Duration of the last KALSHI_DATA_SYNC state",
                value=recorder.last_sync_duration_seconds,
            )
        connected, dropped = self._clients()
        yield GaugeMetricFamily(
            "kalshi_supervisor_console_clients", "Connected event-feed clients", value=connected
        )
        dropped_family = CounterMetricFamily(
            "kalshi_supervisor_console_clients_dropped",
            "Event-feed clients closed for falling behind",
        )
        dropped_family.add_metric([], dropped)
        yield dropped_family


class _BooksCollector:
    """Stream counters, last-frame age and per-book staleness, asked of the stage per scrape.

    A stage that is absent or does not answer yields no series (and ``..._answering 0``),
    so a scrape never fails because the orderbook stage is restarting.
    """

    def __init__(self, books: BookSource) -> None:
        self._books = books

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        try:
            health = self._books.health()
            tops = self._books.tops()
        except BooksUnavailable:
            yield GaugeMetricFamily(
                "kalshi_supervisor_orderbook_stage_answering",
                "1 when the orderbook stage answered this scrape",
                value=0.0,
            )
            return
        yield GaugeMetricFamily(
            "kalshi_supervisor_orderbook_stage_answering",
            "1 when the orderbook stage answered this scrape",
            value=1.0,
        )
        yield GaugeMetricFamily(
            "kalshi_supervisor_orderbook_connected",
            "1 while the orderbook WebSocket is open",
            value=1.0 if health["connected"] else 0.0,
        )
        yield _counter(
            "kalshi_supervisor_orderbook_stream",
            "Orderbook stream counters (frames, gaps, resyncs, reconnects, ...) by name",
            "counter",
            dict(health["counters"]),
        )
        age = health["last_frame_age_seconds"]
        if age is not None:
            yield GaugeMetricFamily(
                "kalshi_supervisor_orderbook_last_frame_age_seconds",
                "Seconds since the orderbook stream last received a frame",
                value=age,
            )
        unchanged = GaugeMetricFamily(
            "kalshi_supervisor_book_unchanged_seconds",
            "Seconds since each book was last seen to change (resolution: between reads)",
            labels=["market"],
        )
        stale = GaugeMetricFamily(
            "kalshi_supervisor_book_stale",
            "1 while the stream marks a book stale (before its snapshot, during a repair)",
            labels=["market"],
        )
        for book in tops["books"]:
            unchanged.add_metric([book["ticker"]], book["unchanged_for_seconds"])
            stale.add_metric([book["ticker"]], 1.0 if book["stale"] else 0.0)
        yield unchanged
        yield stale


def _counter(name: str, documentation: str, label: str, values: dict[str, int]) -> Metric:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


# -- the event feed ------------------------------------------------------------------------------
@dataclass(eq=False)
class _FeedClient:
    """One WebSocket client: a cursor into the recorder's ring, and a wake-up flag.

    A client holds no queue of its own: it reads the recorder's (bounded) ring from the id
    it last sent, so a burst costs no memory per client. Its bound is the ring itself: a
    client whose cursor falls out of the ring, or whose send does not complete within the
    send timeout, is closed with a reason and resumes with ``?since=``.
    """

    wake: asyncio.Event = field(default_factory=asyncio.Event)


class _Feed:
    """Wakes WebSocket clients on the server's event loop when events are recorded.

    The recorder calls :meth:`publish` on whatever thread publishes events; it only hands
    a wake-up to the loop (``call_soon_threadsafe``), so the supervisor never waits on a
    client.
    """

    def __init__(self, recorder: EventRecorder) -> None:
        self.recorder = recorder
        self.loop: asyncio.AbstractEventLoop | None = None
        self.clients: set[_FeedClient] = set()
        self.dropped = 0
        self._pending = False
        self._lock = threading.Lock()

    def publish(self, record: RecordedEvent) -> None:
        loop = self.loop
        if loop is None or loop.is_closed() or not self.clients:
            return
        with self._lock:
            if self._pending:
                return  # a wake-up is already on its way: one per burst is enough
            self._pending = True
        try:
            loop.call_soon_threadsafe(self._wake)
        except RuntimeError:  # loop closed between the check and the call
            with self._lock:
                self._pending = False

    def _wake(self) -> None:
        with self._lock:
            self._pending = False
        for client in self.clients:
            client.wake.set()

    def counts(self) -> tuple[int, int]:
        return len(self.clients), self.dropped


# -- the server ----------------------------------------------------------------------------------
class ConsoleServer:
    """Owns the Starlette app and the thread that serves it.

    ``status`` and ``inject`` are called from the server's thread (``inject`` in a worker
    thread), concurrently with the supervisor, so they must be thread-safe.
    """

    def __init__(
        self,
        recorder: EventRecorder | None = None,
        host: str = "127.0.0.1",
        port: int = 8005,
        *,
        token: str,
        inject: InjectCallback,
        status: StatusCallback | None = None,
        books: BookSource | None = None,
        trading_enabled: bool = True,
        trading: TradingControl | None = None,
        max_connections: int = MAX_CONNECTIONS,
        send_timeout: float = SEND_TIMEOUT_SECONDS,
        public_names: Sequence[str] = (),
        header_timeout: float = HEADER_TIMEOUT_SECONDS,
        current: CurrentState | None = None,
        dropped_events: Callable[[], int] | None = None,
    ) -> None:
        if not token:
            raise ValueError("control token must not be empty")
        self.recorder = recorder = recorder if recorder is not None else EventRecorder()
        self.host = host
        self._port = port
        self._token = token.encode("utf-8")
        self._inject = inject
        self._status = status or recorder.status
        self._current = current
        """The supervisor's published state: what /ready and /status say (else the recorder)."""
        self._truth: EventRecorder | CurrentState = current if current is not None else recorder
        self._dropped_events = dropped_events or (lambda: 0)
        self._books = books
        self.trading_enabled = trading_enabled
        self._trading = trading if trading_enabled else None
        """The kill switch and the gateway's status; None in orderbook-only mode."""
        self.max_connections = max_connections
        self.send_timeout = send_timeout
        self.reads_need_token = not is_loopback(host)
        self.public_names = tuple(public_names)
        """Names (``host`` or ``host:port``) clients on other machines use for this console:
        with loopback's and the bound address, the only Host headers answered."""
        self.connections = ConnectionPolicy(token=self._token, header_timeout=header_timeout)
        """The header deadline and the control lane (see :mod:`app.console_http`)."""
        self.instance = secrets.token_hex(8)
        """Changes when the process restarts: a page seeing a new one starts over at id 0."""
        self._feed = _Feed(recorder)
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(
            _RecorderCollector(recorder, self._feed.counts, self._truth, self._dropped_events)  # type: ignore[arg-type]
        )
        if books is not None:
            self._registry.register(_BooksCollector(books))  # type: ignore[arg-type]
        if trading_enabled:
            self._registry.register(TradingCollector(recorder.trading, self._trading))  # type: ignore[arg-type]
        self._allowed: frozenset[str] = frozenset()
        self._thread: ServerThread | None = None
        self._blocking: ThreadPoolExecutor | None = None
        """Where handlers run blocking calls (an actor ask, a metrics scrape): our own pool,
        shut down and joined by :meth:`stop`, so no worker thread outlives the server."""
        self.app = self._build_app()

    def __repr__(self) -> str:
        return f"ConsoleServer(address={self.address!r}, running={self.running})"

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.running

    @property
    def port(self) -> int:
        return self._thread.port if self._thread is not None else self._port

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self) -> ConsoleServer:
        """Bind and serve; returns once connections are accepted, else ConsoleServerError."""
        if self.running:
            raise ConsoleServerError(f"console server already running on {self.address}")
        thread = ServerThread(
            self.app,
            self.host,
            self._port,
            name="console",
            limit_concurrency=self.max_connections,
            http=protocol_for(self.connections),
            timeout_keep_alive=5,
            ws_ping_interval=10.0,
            ws_ping_timeout=10.0,
            ws_max_size=64 * 1024,
            h11_max_incomplete_event_size=16 * 1024,
        )
        self._blocking = ThreadPoolExecutor(max_workers=4, thread_name_prefix="console-blocking")
        try:
            thread.start()
        except ServerStartError as exc:
            self._blocking.shutdown(wait=False)
            self._blocking = None
            message = str(exc)
            if "in use" in message:
                message = (
                    f"status port {self.address} is already in use "
                    "(pass --status-port 0 for any free port)"
                )
            raise ConsoleServerError(one_line(message)) from None
        self._thread = thread
        self._port = thread.port  # a restart rebinds the same port
        self._allowed = allowed_hosts(self.host, thread.port, self.public_names)
        self.recorder.subscribe(self._feed.publish)
        if self.reads_need_token:
            logger.warning(
                "console on %s is reachable from other machines: every request needs the token",
                self.url,
            )
        logger.info("console listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and close every connection; idempotent, bounded by 2 s."""
        thread, self._thread = self._thread, None
        self.recorder.unsubscribe(self._feed.publish)
        if thread is None:
            return
        if not thread.stop():
            logger.warning("console server on %s did not stop within its timeout", self.address)
        if self._blocking is not None:
            self._blocking.shutdown(wait=True, cancel_futures=True)
            self._blocking = None
        self._feed.loop = None
        self._feed.clients.clear()

    async def _run_blocking(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run ``fn`` off the event loop, on this server's own pool."""
        pool = self._blocking
        if pool is None:
            raise ConsoleServerError("console server is stopping")
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    def __enter__(self) -> ConsoleServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the app -----------------------------------------------------------------------------
    def _build_app(self) -> ASGIApp:
        routes = [
            Route("/", self._page, methods=["GET"]),
            Route("/alive", self._alive, methods=["GET"]),
            Route("/ready", self._ready, methods=["GET"]),
            Route("/status", self._status_route, methods=["GET"]),
            Route("/metrics", self._metrics, methods=["GET"]),
            Route("/books", self._books_route, methods=["GET"]),
            Route("/books/{ticker:str}", self._book_route, methods=["GET"]),
            Route("/inject", self._inject_route, methods=["POST"]),
            Route("/halt", self._halt_route, methods=["POST"]),
            Route("/resume", self._resume_route, methods=["POST"]),
            WebSocketRoute("/ws", self._ws),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ]
        app = Starlette(routes=routes)
        app.add_exception_handler(404, self._not_found)
        app.add_exception_handler(405, self._not_allowed)
        return HostCheckMiddleware(app, lambda: self._allowed)

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        return _error(404, f"no route for {request.method} {request.url.path}")

    async def _not_allowed(self, request: Request, exc: Exception) -> Response:
        return _error(405, f"no route for {request.method} {request.url.path}")

    def _authorized(self, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
        """Constant-time check of ``Authorization: Bearer <token>`` (or ``?token=``).

        Compared as bytes because ``hmac.compare_digest`` raises on non-ASCII ``str``, and a
        hostile header must produce a 401, not a crashed request.
        """
        header = headers.get("authorization", "")
        scheme, _, presented = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            presented = query.get("token", "")
            if not presented:
                return False
        candidate = presented.strip().encode("utf-8", errors="surrogateescape")
        return hmac.compare_digest(candidate, self._token)

    def _read_refused(self, request: Request) -> Response | None:
        if self.reads_need_token and not self._authorized(request.headers, request.query_params):
            return _error(401, UNAUTHORIZED_MESSAGE)
        return None

    async def _page(self, request: Request) -> Response:
        # The page holds no data (it reads the feed), so it is served without the token;
        # it asks for one when the feed refuses it.
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})

    async def _alive(self, request: Request) -> Response:
        return JSONResponse({"alive": True})

    async def _ready(self, request: Request) -> Response:
        state = self._truth.state
        return JSONResponse(
            {"ready": state is State.READY, "state": state.value},
            status_code=200 if state is State.READY else 503,
        )

    async def _status_route(self, request: Request) -> Response:
        if (refused := self._read_refused(request)) is not None:
            return refused
        try:
            payload = dict(self._status())
            if self._current is not None:
                payload.update(self._current.status_fields())
                payload["events_dropped"] = self._dropped_events()
                payload["console"] = self._connection_counts()
        except Exception as exc:
            logger.exception("console status callback failed")
            return _error(500, f"{type(exc).__name__}: {exc}")
        if self._books is not None:
            payload["orderbook_stream"] = await self._run_blocking(self._stream_health)
        payload["trading"] = await self._run_blocking(
            status_part, self.trading_enabled, self._trading
        )
        return JSONResponse(payload, headers={"Cache-Control": "no-store"})

    def _connection_counts(self) -> dict[str, int]:
        """What the connection policy did: slow-header connections closed, control calls
        served past a full connection cap (see :mod:`app.console_http`)."""
        policy = self.connections
        return {
            "closed_slow_connections": policy.closed_slow,
            "control_requests_over_limit": policy.control_served,
        }

    def _stream_health(self) -> dict[str, Any]:
        """The stream's health for ``/status``, or why there is none (never an error)."""
        assert self._books is not None
        try:
            return {"available": True, **self._books.health()}
        except BooksUnavailable as exc:
            return {"available": False, "reason": one_line(str(exc))}

    async def _metrics(self, request: Request) -> Response:
        if (refused := self._read_refused(request)) is not None:
            return refused
        # Collecting asks the orderbook stage (bounded by its timeout): off the event loop.
        body = await self._run_blocking(generate_latest, self._registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def _books_route(self, request: Request) -> Response:
        if (refused := self._read_refused(request)) is not None:
            return refused
        no_store = {"Cache-Control": "no-store"}
        if self._books is None:
            return JSONResponse(
                {"available": False, "reason": "no orderbook stage here", "books": []},
                headers=no_store,
            )
        try:
            tops = await self._run_blocking(self._books.tops)
        except BooksUnavailable as exc:
            if isinstance(exc, NoOrderbookStage):
                return JSONResponse(
                    {"available": False, "reason": one_line(str(exc)), "books": []},
                    headers=no_store,
                )
            return _error(exc.status, str(exc))
        return JSONResponse({"available": True, **tops}, headers=no_store)

    async def _book_route(self, request: Request) -> Response:
        if (refused := self._read_refused(request)) is not None:
            return refused
        ticker = request.path_params["ticker"]
        if self._books is None:
            return _error(503, "no orderbook stage here")
        if not ticker or len(ticker) > MAX_TICKER_LENGTH:
            return _error(404, "no such market in the orderbook stream")
        try:
            depth = await self._run_blocking(self._books.depth, ticker)
        except BooksUnavailable as exc:
            return _error(exc.status, str(exc))
        if depth is None:
            return _error(404, f"no market {ticker!r} in the orderbook stream")
        return JSONResponse(dict(depth), headers={"Cache-Control": "no-store"})

    async def _control_body(self, request: Request, what: str) -> Response | object:
        """The JSON body of a token-guarded call (None when empty), or the refusal to send.

        The token is checked after the body is read (bounded by Content-Length) so that a
        refused client cannot leave an unread body on a keep-alive connection.
        """
        if "transfer-encoding" in request.headers:
            return _error(411, "send the body with Content-Length")
        raw_length = request.headers.get("content-length", "0").strip()
        if not (raw_length.isascii() and raw_length.isdigit()):
            return _error(400, "invalid Content-Length")
        if int(raw_length) > MAX_BODY_BYTES:
            return _error(413, f"request body exceeds {MAX_BODY_BYTES} bytes")
        body = await request.body()
        if not self._authorized(request.headers, {}):
            client = request.client.host if request.client else "?"
            logger.warning("refused %s from %s: %s", what, client, UNAUTHORIZED_MESSAGE)
            return _error(401, UNAUTHORIZED_MESSAGE)
        try:
            return json.loads(body) if body.strip() else None
        except (ValueError, RecursionError) as exc:
            return _error(400, f"invalid JSON: {exc}")

    async def _inject_route(self, request: Request) -> Response:
        document = await self._control_body(request, "fault injection")
        if isinstance(document, Response):
            return document
        if not isinstance(document, dict):
            return _error(400, "request body must be a JSON object")
        try:
            fault = InjectFault.model_validate(document)
        except ValidationError as exc:
            return _error(400, describe_validation_error(exc))
        logger.info("fault injection: %s", fault.model_dump(mode="json", exclude_none=True))
        try:
            reply = dict(await self._run_blocking(self._inject, fault))
            if reply.get("invalid") is True:  # e.g. a shard the exchange does not have
                return _error(400, str(reply.get("error") or "invalid fault"))
            return JSONResponse(json.loads(json.dumps(reply, default=_json_default)))
        except Exception as exc:
            logger.exception("inject callback failed for %s", fault)
            return _error(500, f"{type(exc).__name__}: {exc}")

    async def _halt_route(self, request: Request) -> Response:
        document = await self._control_body(request, "halt")
        if isinstance(document, Response):
            return document
        try:
            reason = parse_halt_body(document)
        except BadControlBody as exc:
            return _error(400, str(exc))
        if self._trading is None:
            return _error(409, NO_TRADING if not self.trading_enabled else NO_GATEWAY)
        logger.warning("kill switch pressed: halting trading (%s)", reason)
        return await self._trading_call("halt", self._trading.halt, reason)

    async def _resume_route(self, request: Request) -> Response:
        document = await self._control_body(request, "resume")
        if isinstance(document, Response):
            return document
        try:
            parse_resume_body(document)
        except BadControlBody as exc:
            return _error(400, str(exc))
        if self._trading is None:
            return _error(409, NO_TRADING if not self.trading_enabled else NO_GATEWAY)
        logger.warning("trading resumed by request")
        return await self._trading_call("resume", self._trading.resume_trading)

    async def _trading_call(self, what: str, fn: Callable[..., Any], *args: Any) -> Response:
        """Ask the gateway (off the event loop); its reply as JSON, or 503 with why not."""
        try:
            reply = await self._run_blocking(fn, *args)
        except Exception as exc:
            logger.warning("%s failed: %s: %s", what, type(exc).__name__, exc)
            return _error(503, f"{what} failed: {one_line(str(exc)) or type(exc).__name__}")
        body = as_json(reply)
        if not isinstance(body, dict):
            body = {"result": body}
        return JSONResponse({"accepted": True, **body})

    # -- the feed ----------------------------------------------------------------------------
    async def _ws(self, websocket: WebSocket) -> None:
        query = websocket.query_params
        # Accept before refusing: a refused handshake reaches a browser as a bare 1006, and
        # the page needs the reason (e.g. to ask for the token).
        await websocket.accept()
        if self.reads_need_token and not self._authorized(websocket.headers, query):
            await websocket.close(code=1008, reason=UNAUTHORIZED_MESSAGE)
            return
        raw_since = query.get("since", "0")
        if not (raw_since.isascii() and raw_since.isdigit()) or len(raw_since) > 18:
            await websocket.close(code=1008, reason="since must be a non-negative integer id")
            return
        since = int(raw_since)
        feed = self._feed
        feed.loop = asyncio.get_running_loop()
        client = _FeedClient()
        # Register and snapshot with no await in between: every later event reaches the
        # queue, every earlier one is in the snapshot, and duplicates are dropped by id.
        feed.clients.add(client)
        try:
            await self._serve_client(websocket, client, since)
        finally:
            feed.clients.discard(client)

    async def _serve_client(self, websocket: WebSocket, client: _FeedClient, since: int) -> None:
        recorder = self.recorder
        records, dropped = recorder.records_since(since)
        last_id = recorder.last_id
        pauses, pauses_as_of = recorder.pauses_as_of()
        if since > last_id:
            since = 0  # ids from another process: start over (the page sees the new instance)
            records, dropped = recorder.records_since(0)
        first_sent = records[0].id if records else last_id + 1
        # Cards and the account must survive the ring moving on: the latest transition into
        # each state and the latest event of each type the client has not seen come first.
        backfill = [r for r in recorder.latest() if since < r.id < first_sent] if dropped else []
        hello = {
            "type": "hello",
            "instance": self.instance,
            "since": since,
            "last_id": last_id,
            "first_retained_id": first_sent,
            "missed": bool(dropped),
            "missed_note": (
                f"events {since + 1}..{first_sent - 1} are no longer retained "
                f"(the recorder keeps the last {recorder.capacity}); the latest transition per "
                "state and the latest event of each type are sent first"
                if dropped
                else None
            ),
            "trading_enabled": self.trading_enabled,
            "capacity": recorder.capacity,
            # The pauses in force as of event `pauses_as_of`: a page that starts over (or
            # missed events) draws its pause banner from this, then from later pause events.
            "exchange_pauses": [p.model_dump(mode="json") for p in pauses],
            "pauses_as_of": pauses_as_of,
            "counters": {
                "restarts_by_stage": dict(recorder.restarts_by_stage),
                "failures_by_stage": dict(recorder.failures_by_stage),
                "stream_heals_by_kind": dict(recorder.stream_heals_by_kind),
                "events_by_type": dict(recorder.events_by_type),
                "events_dropped": self._dropped_events(),
            },
        }
        receiver = asyncio.create_task(_drain_incoming(websocket))
        try:
            sent = since
            if not await self._send(websocket, json.dumps(hello)):
                return
            for record in backfill:
                if not await self._send(websocket, record.json):
                    return
                sent = record.id
            pending = records
            while True:
                for record in pending:
                    if record.id <= sent:
                        continue
                    if not await self._send(websocket, record.json):
                        return
                    sent = record.id
                client.wake.clear()
                pending, fell_behind = recorder.records_since(sent)
                if fell_behind:
                    await self._cut_off(
                        websocket,
                        f"too slow: fell out of the last {recorder.capacity} events; "
                        f"resume with ?since={sent}",
                    )
                    return
                if pending:
                    continue
                waiter = asyncio.ensure_future(client.wake.wait())
                done, _ = await asyncio.wait(
                    {waiter, receiver}, return_when=asyncio.FIRST_COMPLETED
                )
                waiter.cancel()
                if receiver in done:
                    return  # the client went away
        finally:
            receiver.cancel()

    async def _send(self, websocket: WebSocket, text: str) -> bool:
        """Send one message; False (and the client cut off) if it is not sent in time."""
        try:
            await asyncio.wait_for(websocket.send_text(text), self.send_timeout)
        except TimeoutError:
            await self._cut_off(
                websocket,
                f"too slow: a send took over {self.send_timeout:g}s; resume with ?since=",
            )
            return False
        except (WebSocketDisconnect, RuntimeError, OSError):
            return False
        return True

    async def _cut_off(self, websocket: WebSocket, reason: str) -> None:
        self._feed.dropped += 1
        logger.warning("closing a console feed client: %s", reason)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                websocket.close(code=SLOW_CLIENT_CLOSE, reason=reason[:120]), 1.0
            )


async def _drain_incoming(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, to notice when it disconnects."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return


def _json_default(value: object) -> object:
    from enum import Enum

    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def allowed_hosts(host: str, port: int, public_names: Sequence[str] = ()) -> frozenset[str]:
    """Host header values this server answers to: its bound address, loopback's names when it
    listens on loopback (a wildcard bind does), and the configured public names.

    A wildcard bind (``0.0.0.0``, ``::``) cannot know the name its clients use, so it
    answers loopback and the names given with ``--status-public-name``; anything else
    (``Host: evil.example``, a DNS-rebinding page) gets 421 on every route."""
    wildcard = host in ("0.0.0.0", "::", "")
    bare = host.strip("[]").lower()
    names = set() if wildcard else {f"[{bare}]" if ":" in bare else bare}
    if wildcard or is_loopback(host):
        names |= {"localhost", "127.0.0.1", "[::1]"}
    allowed = {f"{name}:{port}" for name in names} | (
        {bare} if port == 80 and not wildcard else set()
    )
    for public in public_names:
        name = public.strip().lower()
        if not name:
            continue
        if name.rsplit(":", 1)[-1].isdigit() and not name.endswith("]"):
            allowed.add(name)  # host:port as given
        else:
            allowed.add(f"{name}:{port}")
            if port == 80:
                allowed.add(name)
    return frozenset(allowed)
