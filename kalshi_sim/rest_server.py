"""The embedded exchange's REST API: Kalshi's 2026 ``/trade-api/v2`` read endpoints on loopback.

Built on the stdlib ``ThreadingHTTPServer`` so the simulator needs no web framework:
it speaks HTTP/1.1 with keep-alive (httpx reuses connections, as against real Kalshi),
and ``stop()`` closes idle keep-alive connections itself so no handler thread or
socket outlives the server.

Request handling is split in two. ``_Api`` turns ``(method, target, headers)`` into
``(status, JSON body)`` and owns every exchange rule: signature checks on
``/portfolio/*``, fault injection, the read token bucket, pagination, filters.
``_Handler`` only moves bytes. Any bug in ``_Api`` becomes a 500 with Kalshi's error
shape, never a dead server thread or a traceback on stderr.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from kalshi_api.fixed_point import MICROS_PER_DOLLAR, format_count, format_dollars
from kalshi_api.protocol import AUTH_ERROR_BODY, REST_PREFIX
from kalshi_sim.account import ORDER_STATUSES, SimOrder, SimPosition
from kalshi_sim.markets import BookLevels, SimMarket
from kalshi_sim.rate_limit import TokenBucket, request_cost

if TYPE_CHECKING:
    from kalshi_sim.exchange import EmbeddedExchange

log = logging.getLogger(__name__)

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MAX_DEPTH = 100
MAX_BATCH_TICKERS = 100
MAX_EVENT_TICKERS = 10
_MAX_BODY = 1 << 20
_LINGER_SECONDS = 0.5
_JOIN_SECONDS = 5.0

_AUTH_FAILED = AUTH_ERROR_BODY
_TOO_MANY_REQUESTS = {"error": "too many requests"}
_INTERNAL_ERROR = {"error": {"code": "internal_error", "message": "internal error"}}
_RETIRED_V1 = {
    "error": {
        "code": "deprecated_v1_order_endpoint",
        "message": "Please switch to the V2 endpoints",
        "details": "https://docs.kalshi.com/api-reference/orders/create-order-v2",
    }
}

_STATUS_FILTER: dict[str, frozenset[str]] = {
    "unopened": frozenset({"initialized"}),
    "open": frozenset({"active"}),
    "paused": frozenset({"inactive"}),
    "closed": frozenset({"closed"}),
    "settled": frozenset({"determined", "finalized", "amended", "disputed"}),
}
"""The ``/markets`` status *filter* vocabulary -> the ``Market.status`` *response* vocabulary."""

_PRICE_RANGES: dict[str, list[tuple[str, str, str]]] = {
    "linear_cent": [("0.0000", "1.0000", "0.0100")],
    "deci_cent": [("0.0000", "1.0000", "0.0010")],
    "tapered_deci_cent": [
        ("0.0000", "0.1000", "0.0010"),
        ("0.1000", "0.9000", "0.0100"),
        ("0.9000", "1.0000", "0.0010"),
    ],
}
_EVENT_DATE = re.compile(r"-(\d{2})([A-Z]{3})(\d{2})(?:-|$)")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_LISTED_SINCE = "2026-06-01T12:00:00Z"

T = TypeVar("T")


class ApiError(Exception):
    """An error response: HTTP status plus Kalshi's ``{"error": {...}}`` body."""

    def __init__(self, status: int, code: str, message: str, details: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        error: dict[str, str] = {"code": code, "message": message}
        if details:
            error["details"] = details
        self.body: dict[str, Any] = {"error": error}


def _bad_request(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


def _not_found(details: str) -> ApiError:
    return ApiError(404, "not_found", "not found", details)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes


class RestServer:
    """Serves the embedded exchange's REST API in a daemon thread until ``stop()``."""

    def __init__(self, exchange: EmbeddedExchange) -> None:
        self._exchange = exchange
        self._lock = threading.Lock()
        self._server: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    def start(self, host: str, port: int) -> None:
        """Bind and listen, then serve in a daemon thread; returns once connections are accepted."""
        with self._lock:
            if self._server is not None:
                raise RuntimeError("REST server already started")
            server = _HttpServer((host, port), _Api(self._exchange))
            self._port = server.server_address[1]
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"kalshi-sim-rest:{self._port}",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread

    def stop(self) -> None:
        """Stop accepting, close every connection and the listening socket, join threads."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None or thread is None:
            return
        server.api.stopping.set()
        self._exchange.faults.release_all()  # a held request must not outlive the server
        server.shutdown()
        server.close_connections()
        server.server_close()
        server.join_handlers(timeout=_JOIN_SECONDS)
        thread.join()

    @property
    def port(self) -> int:
        """The bound port (0 before the first start)."""
        return self._port

    @property
    def running(self) -> bool:
        return self._server is not None


class _HttpServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that tracks its connections so ``stop()`` can close idle keep-alives."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], api: _Api) -> None:
        self.api = api
        self._connections: set[socket.socket] = set()
        self._handlers: list[threading.Thread] = []
        self._connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn), which can stall for
        # seconds on a badly configured machine; the name is never used here.
        TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        """One daemon thread per connection, tracked here (the stdlib does not track daemons).

        Registered on the accepting thread, before the handler thread runs, so a connection
        accepted just before shutdown() cannot escape close_connections() or join_handlers().
        """
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"kalshi-sim-rest-conn:{self.server_address[1]}",
            daemon=True,
        )
        with self._connections_lock:
            self._connections.add(request)
            self._handlers = [t for t in self._handlers if t.is_alive()]
            self._handlers.append(thread)
        thread.start()

    def join_handlers(self, timeout: float) -> None:
        with self._connections_lock:
            handlers = list(self._handlers)
        deadline = time.monotonic() + timeout
        for thread in handlers:
            thread.join(max(0.0, deadline - time.monotonic()))

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake every handler blocked on a keep-alive read so it can finish."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("REST connection from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    """Moves bytes between a socket and ``_Api``; HTTP/1.1 with keep-alive."""

    protocol_version = "HTTP/1.1"
    server_version = "kalshi-sim"
    timeout = 30
    disable_nagle_algorithm = True
    """Headers and body go out in two writes; with Nagle on, delayed ACKs add ~40 ms each."""
    server: _HttpServer

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def version_string(self) -> str:
        return self.server_version

    def _serve(self, method: str) -> None:
        if not self._drain_body():
            return
        try:
            response = self.server.api.handle(method, self.path, self.headers)
        except Exception:
            log.exception("REST handler failed on %s %s", method, self.path)
            response = Response(500, orjson.dumps(_INTERNAL_ERROR))
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(response.body)
        except OSError:
            self.close_connection = True

    def _drain_body(self) -> bool:
        """Read a request body so keep-alive stays in sync; refuse ones we cannot frame."""
        length_header = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") or (
            length_header is not None and not length_header.strip().isdigit()
        ):
            self.close_connection = True
            self._reply_and_close(400, ApiError(400, "bad_request", "unsupported body").body)
            return False
        length = int(length_header or 0)
        if length > _MAX_BODY:
            self._reply_and_close(413, ApiError(413, "bad_request", "body too large").body)
            return False
        if length:
            self.rfile.read(length)
        return True

    def _reply_and_close(self, status: int, payload: Mapping[str, Any]) -> None:
        body = orjson.dumps(payload)
        self.close_connection = True
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            return
        self._linger()

    def _linger(self) -> None:
        """Discard unread input briefly before closing, so the client gets our reply.

        Closing a socket with unread bytes (the rest of an oversized request line or
        header) sends a TCP reset, and the reset can destroy the error response before
        the client reads it; web servers "linger" on close for exactly this reason.
        """
        deadline = time.monotonic() + _LINGER_SECONDS
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)
            while (remaining := deadline - time.monotonic()) > 0:
                self.connection.settimeout(remaining)
                if not self.connection.recv(65536):
                    break

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level errors (bad request line, huge headers, unknown verb) in Kalshi's shape.

        The stdlib answers these with an HTML page, and with no status line at all when
        it could not parse the request line (it assumes HTTP/0.9); clients expect JSON.
        """
        if self.request_version == "HTTP/0.9":
            self.request_version = "HTTP/1.0"
        phrase = self.responses.get(code, ("error", ""))[0]
        code_name = {404: "not_found", 501: "not_implemented"}.get(
            code, "bad_request" if code < 500 else "internal_error"
        )
        self._reply_and_close(code, {"error": {"code": code_name, "message": message or phrase}})

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: a request log on stderr per call would drown test and demo output."""


class _Api:
    """Kalshi's REST rules over the exchange's state; pure request -> response."""

    def __init__(self, exchange: EmbeddedExchange) -> None:
        self.exchange = exchange
        self.stopping = threading.Event()
        rate = exchange.config.read_tokens_per_second
        self._bucket = TokenBucket(rate) if rate else None
        self._routes: list[tuple[tuple[str, ...], Callable[..., Any]]] = [
            (("exchange", "status"), self._exchange_status),
            (("markets",), self._markets),
            (("markets", "orderbooks"), self._orderbooks),
            (("markets", "*"), self._market),
            (("markets", "*", "orderbook"), self._orderbook),
            (("portfolio", "balance"), self._balance),
            (("portfolio", "positions"), self._positions),
            (("portfolio", "orders"), self._orders),
            (("portfolio", "orders", "*"), self._order),
        ]

    def handle(self, method: str, target: str, headers: Mapping[str, str]) -> Response:
        """Log, then gates and faults (delay, forced failure), then the read bucket, then the route.

        The bucket charges public requests too: whether Kalshi limits unauthenticated
        reads is unconfirmed, and a client has to cope with a 429 anywhere.
        """
        parts = urlsplit(target) if target.startswith("/") else None
        path, query_text = (parts.path, parts.query) if parts else (target, "")
        self.exchange.oplog.record("rest", f"{method} {path}")
        faults = self.exchange.faults
        gate = None if self.stopping.is_set() else faults.gate_for(path)
        if gate is not None:
            gate.hold()
        delay = faults.take_delay()
        if delay > 0:
            self.stopping.wait(delay)
        failure = faults.take_failure()
        if failure is not None:
            return _json(failure, _TOO_MANY_REQUESTS if failure == 429 else _INTERNAL_ERROR)
        if self._bucket is not None and not self._bucket.try_take(request_cost(method, path)):
            return _json(429, _TOO_MANY_REQUESTS)
        try:
            return _json(200, self._route(method, path, query_text, headers))
        except ApiError as error:
            return _json(error.status, error.body)

    # -- routing ----------------------------------------------------------------------------------
    def _route(
        self, method: str, path: str, query_text: str, headers: Mapping[str, str]
    ) -> dict[str, Any]:
        if not path.startswith(REST_PREFIX + "/"):
            raise _not_found(f"no route for {path}")
        segments = tuple(unquote(s) for s in path[len(REST_PREFIX) + 1 :].split("/"))
        if any(not s for s in segments):
            raise _not_found(f"no route for {path}")
        if segments[0] == "portfolio":
            self._authenticate(method, path, headers)
        if method != "GET":
            if segments[:2] == ("portfolio", "orders") and method in ("POST", "DELETE"):
                raise ApiError(410, **_RETIRED_V1["error"])
            raise _not_found(f"no route for {method} {path}")
        handler, arguments = self._match(segments, path)
        query = _parse_query(query_text)
        if handler in (self._orderbook, self._orderbooks) and headers.get("KALSHI-ACCESS-KEY"):
            # The spec lists security on the orderbook while the guide says it is public:
            # accept unsigned requests, but a signature that is present must be right.
            self._authenticate(method, path, headers, consume_fault=False)
        result: dict[str, Any] = handler(query, *arguments)
        return result

    def _match(
        self, segments: tuple[str, ...], path: str
    ) -> tuple[Callable[..., dict[str, Any]], list[str]]:
        for pattern, handler in self._routes:
            if len(pattern) != len(segments):
                continue
            arguments: list[str] = []
            for want, got in zip(pattern, segments, strict=True):
                if want == "*":
                    arguments.append(got)
                elif want != got:
                    break
            else:
                return handler, arguments
        raise _not_found(f"no route for {path}")

    def _authenticate(
        self, method: str, path: str, headers: Mapping[str, str], *, consume_fault: bool = True
    ) -> None:
        if consume_fault and self.exchange.faults.take_auth_rejection():
            raise ApiError(401, **_AUTH_FAILED["error"])
        if not self.exchange.keys.verify(headers, method, path):
            raise ApiError(401, **_AUTH_FAILED["error"])

    # -- exchange and markets ---------------------------------------------------------------------
    def _exchange_status(self, query: Mapping[str, str]) -> dict[str, Any]:
        status = {"exchange_active": True, "trading_active": True}
        return {
            **status,
            "exchange_estimated_resume_time": None,
            "intra_exchange_transfers_active": True,
            "exchange_index_statuses": [
                {
                    "exchange_index": 0,
                    "description": "Kalshi (embedded simulator)",
                    **status,
                    "intra_exchange_transfers_active": True,
                }
            ],
        }

    def _markets(self, query: Mapping[str, str]) -> dict[str, Any]:
        markets = self.exchange.markets.markets()
        listing_order = {m.ticker: f"{index:06d}" for index, m in enumerate(markets)}
        status = query.get("status", "")
        if status:
            if status not in _STATUS_FILTER:
                raise _bad_request(f"invalid status filter {status!r}")
            markets = [m for m in markets if m.status in _STATUS_FILTER[status]]
        mve = query.get("mve_filter", "")
        if mve not in ("", "only", "exclude"):
            raise _bad_request(f"invalid mve_filter {mve!r}")
        if mve:
            markets = [m for m in markets if m.ticker.startswith("KXMVE") == (mve == "only")]
        for field in ("series_ticker", "event_ticker"):
            if query.get(field):
                markets = [m for m in markets if getattr(m, field) == query[field]]
        if "tickers" in query:
            wanted = set(_comma_list(query["tickers"]))
            markets = [m for m in markets if m.ticker in wanted]
        # Listed in creation order, as MarketSet holds them (the order a UI would show).
        page, cursor = self._page(markets, lambda m: listing_order[m.ticker], query, "m")
        with self.exchange.markets.lock:
            listed = [_market_json(m, m.levels()) for m in page]
        return {"markets": listed, "cursor": cursor}

    def _market(self, query: Mapping[str, str], ticker: str) -> dict[str, Any]:
        market = self._find_market(ticker)
        with self.exchange.markets.lock:
            return {"market": _market_json(market, market.levels())}

    def _orderbook(self, query: Mapping[str, str], ticker: str) -> dict[str, Any]:
        self._find_market(ticker)
        depth = _int_param(query, "depth", default=0, low=0, high=MAX_DEPTH)
        return {"orderbook_fp": _book_json(self.exchange.markets.levels(ticker), depth)}

    def _orderbooks(self, query: Mapping[str, str]) -> dict[str, Any]:
        tickers = _comma_list(query.get("tickers", ""))
        if not tickers:
            raise _bad_request("tickers is required")
        if len(tickers) > MAX_BATCH_TICKERS:
            raise _bad_request(f"at most {MAX_BATCH_TICKERS} tickers per request")
        for ticker in tickers:
            self._find_market(ticker)
        with self.exchange.markets.lock:
            return {
                "orderbooks": [
                    {"ticker": t, "orderbook_fp": _book_json(self.exchange.markets.levels(t), 0)}
                    for t in tickers
                ]
            }

    def _find_market(self, ticker: str) -> SimMarket:
        try:
            return self.exchange.markets.market(ticker)
        except KeyError:
            raise _not_found(f"market {ticker} not found") from None

    # -- portfolio --------------------------------------------------------------------------------
    def _balance(self, query: Mapping[str, str]) -> dict[str, Any]:
        snapshot = self.exchange.account.snapshot()
        return {
            "balance": snapshot.balance_cents,
            "balance_dollars": snapshot.balance_dollars,
            "portfolio_value": snapshot.portfolio_value_cents,
            "updated_ts": snapshot.updated_ts,
            "balance_breakdown": [{"exchange_index": 0, "balance": snapshot.balance_dollars}],
        }

    def _positions(self, query: Mapping[str, str]) -> dict[str, Any]:
        settlement = query.get("settlement_status", "") or "unsettled"
        if settlement not in ("unsettled", "settled", "all"):
            raise _bad_request(f"invalid settlement_status {settlement!r}")
        count_filter = _comma_list(query.get("count_filter", ""))
        if any(f not in ("position", "total_traded") for f in count_filter):
            raise _bad_request(f"invalid count_filter {query['count_filter']!r}")
        positions = [] if settlement == "settled" else self.exchange.account.positions()
        if query.get("ticker"):
            positions = [p for p in positions if p.ticker == query["ticker"]]
        if query.get("event_ticker"):
            positions = [p for p in positions if p.event_ticker == query["event_ticker"]]
        if "position" in count_filter:
            positions = [p for p in positions if p.position_centi]
        if "total_traded" in count_filter:
            positions = [p for p in positions if p.total_traded_micros]
        page, cursor = self._page(positions, lambda p: p.ticker, query, "p")
        return {
            "cursor": cursor,
            "market_positions": [_position_json(p) for p in page],
            "event_positions": _event_positions_json(page),
        }

    def _orders(self, query: Mapping[str, str]) -> dict[str, Any]:
        status = query.get("status", "")
        if status and status not in ORDER_STATUSES:
            raise _bad_request(f"invalid status {status!r}")
        orders = self.exchange.account.orders(status or None)
        if query.get("ticker"):
            orders = [o for o in orders if o.ticker == query["ticker"]]
        events = _comma_list(query.get("event_ticker", ""))
        if len(events) > MAX_EVENT_TICKERS:
            raise _bad_request(f"at most {MAX_EVENT_TICKERS} event tickers")
        if events:
            orders = [o for o in orders if o.event_ticker in events]
        min_ts = _int_param(query, "min_ts", default=None, low=0)
        max_ts = _int_param(query, "max_ts", default=None, low=0)
        if min_ts is not None:
            orders = [o for o in orders if o.created_time.timestamp() >= min_ts]
        if max_ts is not None:
            orders = [o for o in orders if o.created_time.timestamp() <= max_ts]
        page, cursor = self._page(orders, lambda o: f"{o.seq:012d}", query, "o")
        return {"orders": [_order_json(o) for o in page], "cursor": cursor}

    def _order(self, query: Mapping[str, str], order_id: str) -> dict[str, Any]:
        order = self.exchange.account.order(order_id)
        if order is None:
            raise _not_found(f"order {order_id} not found")
        return {"order": _order_json(order)}

    # -- pagination -------------------------------------------------------------------------------
    def _page(
        self, items: Sequence[T], key: Callable[[T], str], query: Mapping[str, str], kind: str
    ) -> tuple[list[T], str]:
        """One page of ``items`` (sorted by ``key``) after the cursor, and the next cursor.

        Cursors name the last key served rather than an offset, so items added or removed
        between pages never make a client see one twice or skip one that stayed.
        """
        limit = _int_param(query, "limit", default=DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
        size = max(1, min(limit, self.exchange.config.page_size))
        cursor = query.get("cursor", "")
        if cursor:
            after = _decode_cursor(cursor, kind)
            items = [item for item in items if key(item) > after]
        page = list(items[:size])
        next_cursor = _encode_cursor(kind, key(page[-1])) if len(items) > size else ""
        return page, next_cursor


# -- query helpers --------------------------------------------------------------------------------
def _parse_query(text: str) -> dict[str, str]:
    """First value of each parameter; malformed encodings are a 400, never a crash."""
    try:
        parsed = parse_qs(text, keep_blank_values=True, errors="strict", max_num_fields=64)
    except ValueError as exc:
        raise _bad_request(f"malformed query string ({type(exc).__name__})") from None
    return {name: values[0] for name, values in parsed.items()}


def _int_param(
    query: Mapping[str, str], name: str, *, default: T, low: int, high: int | None = None
) -> int | T:
    text = query.get(name, "")
    if text == "":
        return default
    if not text.isdigit() or len(text) > 18:
        raise _bad_request(f"{name} must be an integer")
    value = int(text)
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise _bad_request(f"{name} must be {bounds}")
    return value


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _encode_cursor(kind: str, key: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{key}".encode()).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str, kind: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError):
        raise _bad_request("invalid cursor") from None
    prefix, sep, key = raw.partition(":")
    if prefix != kind or not sep:
        raise _bad_request("invalid cursor")
    return key


def _json(status: int, payload: Mapping[str, Any]) -> Response:
    return Response(status, orjson.dumps(payload))


# -- wire shapes ----------------------------------------------------------------------------------
def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _book_json(levels: BookLevels, depth: int) -> dict[str, list[list[str]]]:
    """Bids ascending (best last); ``depth`` > 0 keeps only the best ``depth`` of each side."""

    def side(entries: tuple[tuple[int, int], ...]) -> list[list[str]]:
        kept = entries[-depth:] if depth else entries
        return [[format_dollars(price), format_count(size)] for price, size in kept]

    return {"yes_dollars": side(levels.yes), "no_dollars": side(levels.no)}


def _market_json(market: SimMarket, levels: BookLevels) -> dict[str, Any]:
    yes_bid = levels.yes[-1] if levels.yes else (0, 0)
    no_bid = levels.no[-1] if levels.no else (0, 0)
    close_time = _close_time(market.event_ticker)
    return {
        "ticker": market.ticker,
        "event_ticker": market.event_ticker,
        "market_type": "binary",
        "title": market.title,
        "yes_sub_title": market.title,
        "no_sub_title": market.title,
        "status": market.status,
        "created_time": _LISTED_SINCE,
        "updated_time": _LISTED_SINCE,
        "open_time": _LISTED_SINCE,
        "close_time": close_time,
        "latest_expiration_time": close_time,
        "settlement_timer_seconds": 3600,
        "notional_value_dollars": "1.0000",
        "yes_bid_dollars": format_dollars(yes_bid[0]),
        "yes_ask_dollars": format_dollars(MICROS_PER_DOLLAR - no_bid[0]),
        "no_bid_dollars": format_dollars(no_bid[0]),
        "no_ask_dollars": format_dollars(MICROS_PER_DOLLAR - yes_bid[0]),
        "yes_bid_size_fp": format_count(yes_bid[1]),
        "yes_ask_size_fp": format_count(no_bid[1]),
        "last_price_dollars": format_dollars(market.fair_micros),
        "previous_yes_bid_dollars": format_dollars(yes_bid[0]),
        "previous_yes_ask_dollars": format_dollars(MICROS_PER_DOLLAR - no_bid[0]),
        "previous_price_dollars": format_dollars(market.fair_micros),
        "volume_fp": "0.00",
        "volume_24h_fp": "0.00",
        "open_interest_fp": "0.00",
        "liquidity_dollars": "0.0000",
        "result": "",
        "can_close_early": True,
        "fractional_trading_enabled": True,
        "expiration_value": "",
        "rules_primary": f"Resolves YES if: {market.title}.",
        "rules_secondary": "",
        "price_level_structure": market.price_level_structure,
        "price_ranges": [
            {"start": start, "end": end, "step": step}
            for start, end, step in _PRICE_RANGES.get(
                market.price_level_structure, _PRICE_RANGES["linear_cent"]
            )
        ],
    }


def _close_time(event_ticker: str) -> str:
    match = _EVENT_DATE.search(event_ticker)
    if match is None or match.group(2) not in _MONTHS:
        return "2026-12-31T21:00:00Z"
    year, month, day = int(match.group(1)), _MONTHS.index(match.group(2)) + 1, int(match.group(3))
    try:
        return _iso(datetime(2000 + year, month, day, 21, tzinfo=UTC)) or ""
    except ValueError:
        return "2026-12-31T21:00:00Z"


def _position_json(position: SimPosition) -> dict[str, Any]:
    return {
        "ticker": position.ticker,
        "exchange_index": 0,
        "total_traded_dollars": format_dollars(position.total_traded_micros),
        "position_fp": format_count(position.position_centi),
        "market_exposure_dollars": format_dollars(position.exposure_micros),
        "realized_pnl_dollars": format_dollars(position.realized_pnl_micros),
        "fees_paid_dollars": format_dollars(position.fees_paid_micros),
        "last_updated_ts": _iso(position.last_updated),
    }


def _event_positions_json(positions: Sequence[SimPosition]) -> list[dict[str, Any]]:
    events: dict[str, list[SimPosition]] = {}
    for position in positions:
        events.setdefault(position.event_ticker, []).append(position)
    return [
        {
            "event_ticker": event,
            "total_cost_dollars": format_dollars(sum(p.total_traded_micros for p in group)),
            "total_cost_shares_fp": format_count(sum(abs(p.position_centi) for p in group)),
            "event_exposure_dollars": format_dollars(sum(p.exposure_micros for p in group)),
            "realized_pnl_dollars": format_dollars(sum(p.realized_pnl_micros for p in group)),
            "fees_paid_dollars": format_dollars(sum(p.fees_paid_micros for p in group)),
        }
        for event, group in events.items()
    ]


def _order_json(order: SimOrder) -> dict[str, Any]:
    zero_fee = format_dollars(0, places=6)
    return {
        "order_id": order.order_id,
        "user_id": "sim-user",
        "client_order_id": order.client_order_id,
        "ticker": order.ticker,
        "outcome_side": order.outcome_side,
        "book_side": order.book_side,
        "type": "limit",
        "status": order.status,
        "yes_price_dollars": format_dollars(order.yes_price_micros),
        "no_price_dollars": format_dollars(order.no_price_micros),
        "fill_count_fp": format_count(order.fill_centi),
        "remaining_count_fp": format_count(order.remaining_centi),
        "initial_count_fp": format_count(order.initial_centi),
        "taker_fees_dollars": zero_fee,
        "maker_fees_dollars": zero_fee,
        "taker_fill_cost_dollars": zero_fee,
        "maker_fill_cost_dollars": zero_fee,
        "side": order.side,
        "action": order.action,
        "expiration_time": None,
        "created_time": _iso(order.created_time),
        "last_update_time": _iso(order.last_update_time),
        "self_trade_prevention_type": "taker_at_cross",
        "order_group_id": None,
        "cancel_order_on_pause": False,
        "subaccount_number": 0,
        "exchange_index": 0,
    }
