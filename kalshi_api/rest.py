"""A small synchronous Kalshi REST client: one request path for reads and writes.

Synchronous on purpose: each actor owns one client and runs in its own thread, so an
event loop would only add a second concurrency model. Every request has a *total*
deadline (:mod:`kalshi_api.http_limits`) and a body size cap.

* **Reads** (GET) retry the transient failures (429, 408, 5xx, timeouts, refused or reset
  connections) with full-jitter exponential backoff (Kalshi sends no Retry-After), and
  raise a typed :mod:`kalshi_api.errors` exception otherwise. Listings follow cursors to
  the end and refuse to follow a cursor they have already seen.
* **Writes** (:meth:`KalshiRestClient.write`) are sent at most once. A refusal (4xx but
  408, or a 2xx whose body holds ``error``) is a ``RequestRejectedError`` subclass chosen
  by the exact ``error.code``; a timeout, dropped connection, 408 or 5xx once a byte of the
  request reached a socket is ``OutcomeUnknownError`` carrying the request as sent, to be
  resolved by lookup (protocol §8.10); a failure before that is a plain, retryable
  ``TransportError``. The typed order API is :mod:`kalshi_api.orders`.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import logging
import random as _random
import ssl
import time
import urllib.request
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote, urlsplit

import httpx
import orjson
from pydantic import BaseModel, ValidationError

from kalshi_api.auth import KalshiSigner
from kalshi_api.errors import (
    OUTCOME_UNKNOWN_CODES,
    CursorLoopError,
    KalshiError,
    OutcomeUnknownError,
    ProtocolViolationError,
    RateLimitedError,
    RequestRejectedError,
    ResponseTooLargeError,
    SentRequest,
    TransportError,
    UnexpectedResponseError,
    class_for,
    error_from_response,
    parse_error_body,
)
from kalshi_api.http_limits import (
    RAW_CHUNK,
    Attempt,
    BodyTooLarge,
    DeadlineExceeded,
    DeadlineTransport,
    RequestDeadlines,
    UnsupportedEncoding,
    read_capped_body,
)
from kalshi_api.models import (
    IMPOSSIBLE_VALUE,
    Balance,
    ExchangeStatus,
    Market,
    MarketPosition,
    Order,
    RestOrderbook,
)
from kalshi_api.url_budget import chunk_by_url_budget
from kalshi_api.write_pacer import WritePacer

log = logging.getLogger("kalshi_supervisor.kalshi_api.rest")

ModelT = TypeVar("ModelT", bound=BaseModel)

MAX_PAGE_LIMIT = 1000
MAX_ORDERBOOK_DEPTH = 100
URL_QUERY_BUDGET = 4000
"""Characters of ticker list per ``GET /markets?tickers=`` request (~150 typical tickers).

Kalshi publishes no URL cap; 8 KiB request lines are a common proxy/server limit, httpx
refuses queries past 65,536 characters, and a shorter list also keeps each page of a
batch cheap. The other parameters and the path fit easily in what is left of 8 KiB.
"""
MAX_PAGES = 100_000
"""A listing with more pages than this is treated as a server bug, not followed forever."""
_USER_AGENT = "kalshi-supervisor/0.1"
MAX_BODY_BYTES = 16 * 1024 * 1024
"""Default cap on one response body, after decompression. A full 1,000-market page is ~2 MiB."""
MAX_ERROR_BODY_BYTES = 64 * 1024
"""Only this much of an error body is read: a message needs a line, not megabytes."""
STATUS_BODY_STATUSES = frozenset({503})
"""Statuses on which ``/exchange/status`` still sends its status body (an exchange pause)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How GETs retry transient failures: full jitter, ``uniform(0, min(max, base * 2**n))``.

    ``sleep`` and ``random`` are injectable so tests run instantly and deterministically;
    ``random`` returns a float in ``[0, 1)`` like :func:`random.random`.
    """

    max_attempts: int = 5
    base_delay: float = 0.05
    max_delay: float = 2.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    random: Callable[[], float] = field(default=_random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("retry delays must not be negative")

    def delay(self, attempt: int) -> float:
        """The pause after failed attempt number ``attempt`` (0-based)."""
        cap = min(self.max_delay, self.base_delay * 2**attempt)
        return cap * min(max(self.random(), 0.0), 1.0)


DEFAULT_RETRY = RetryPolicy()


@functools.cache
def _shared_ssl_context() -> ssl.SSLContext:
    """One verifying SSL context per process.

    httpx builds a new one (loading the whole CA bundle, ~15 ms) for every client; each stage
    actor owns a client and every restart makes a new one, so that cost sat on the path to
    READY. SSLContext is safe to share between threads.
    """
    return httpx.create_ssl_context()


class KalshiRestClient:
    """Signed requests against one Kalshi REST base URL (``.../trade-api/v2``): retrying
    GETs, writes sent once.

    Not meant to be shared between threads: give each actor its own client.
    """

    def __init__(
        self,
        base_url: str,
        signer: KalshiSigner | None = None,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        page_limit: int = MAX_PAGE_LIMIT,
        max_body_bytes: int = MAX_BODY_BYTES,
        write_pacer: WritePacer | None = None,
    ) -> None:
        """``timeout`` is the *total* deadline of one attempt (connect, send, headers, body).

        It is enforced on every socket operation, so a server trickling bytes cannot hold a
        request longer; retries each get a fresh deadline. ``write_pacer`` (shared by every
        client of one account) paces writes to the account's write bucket.
        """
        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"REST base URL must be http(s)://host/..., got {base_url!r}")
        if not 1 <= page_limit <= MAX_PAGE_LIMIT:
            raise ValueError(f"page_limit must be between 1 and {MAX_PAGE_LIMIT}, got {page_limit}")
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if max_body_bytes < 1024:
            raise ValueError(f"max_body_bytes must be at least 1024, got {max_body_bytes}")
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._prefix = parts.path.rstrip("/")
        self._signer = signer
        self._retry = retry
        self._page_limit = page_limit
        self._timeout = timeout
        self._max_body = max_body_bytes
        self._deadlines = RequestDeadlines()
        self._pacer = write_pacer
        # Environment proxies are right for reaching Kalshi from behind a corporate proxy,
        # and wrong for the embedded exchange on loopback: a proxy cannot reach our 127.0.0.1.
        proxy = None if _is_loopback(parts.hostname) else _env_proxy(parts.scheme, parts.hostname)
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout),
            transport=DeadlineTransport(
                self._deadlines, ssl_context=_shared_ssl_context(), proxy=proxy
            ),
            trust_env=False,
            headers={
                "Accept": "application/json",
                "User-Agent": _USER_AGENT,
                # Only what read_capped_body can inflate with a bounded output.
                "Accept-Encoding": "gzip",
            },
        )

    # -- properties -------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"{self._origin}{self._prefix}"

    @property
    def api_path_prefix(self) -> str:
        """The path part of the base URL (``/trade-api/v2``): the start of every signed path."""
        return self._prefix

    # -- endpoints --------------------------------------------------------------------------------
    def get_exchange_status(self) -> ExchangeStatus:
        """The exchange's status; during an exchange pause a typed status, not an error.

        Kalshi answers 503 *with the status body* while the exchange is paused. That body is
        parsed like a 200 one (``http_status`` says which it was) and not retried: a pause is
        a condition to wait out, and hammering the endpoint would not end it sooner.
        """
        path = "/exchange/status"
        data = self._get(path, status_bodies=STATUS_BODY_STATUSES)
        return self._parse(ExchangeStatus, data, path)

    def get_balance(self, *, exchange_index: int | None = None) -> Balance:
        """The balance; totals across shards, or one shard's with ``exchange_index``.

        Kalshi's ``portfolio_value`` covers only the requested shard (the default shard when
        none is named), so a full portfolio value needs one call per shard: see
        :mod:`kalshi_api.shards`.
        """
        if exchange_index is not None and exchange_index < 0:
            raise ValueError(f"exchange_index must not be negative, got {exchange_index}")
        params = None if exchange_index is None else {"exchange_index": exchange_index}
        return self._parse(Balance, self._get("/portfolio/balance", params), "/portfolio/balance")

    def get_positions(
        self,
        *,
        settlement_status: str | None = None,
        ticker: str | None = None,
        event_ticker: str | None = None,
        exchange_index: int | None = None,
    ) -> list[MarketPosition]:
        """Every market position, across all pages (all shards unless ``exchange_index``)."""
        params = {
            "settlement_status": settlement_status,
            "ticker": ticker,
            "event_ticker": event_ticker,
            "exchange_index": exchange_index,
        }
        return self._paginate("/portfolio/positions", params, "market_positions", MarketPosition)

    def get_orders(self, *, status: str | None = None, ticker: str | None = None) -> list[Order]:
        """Every order matching the filters (``status="resting"`` for open orders), all pages."""
        params = {"status": status, "ticker": ticker}
        return self._paginate("/portfolio/orders", params, "orders", Order)

    def get_order(self, order_id: str) -> Order:
        path = f"/portfolio/orders/{quote(order_id, safe='')}"
        return self._parse(Order, self._unwrap(self._get(path), "order", path), path)

    def get_markets(
        self,
        *,
        status: str | None = "open",
        series_ticker: str | None = None,
        event_ticker: str | None = None,
        tickers: Sequence[str] | None = None,
        mve_filter: str | None = "exclude",
        max_items: int | None = None,
    ) -> list[Market]:
        """Markets matching the filters, across pages, stopping once ``max_items`` are in hand.

        ``status`` uses the *filter* vocabulary (``open``), responses say ``active``.
        ``mve_filter="exclude"`` by default: unfiltered listings are mostly auto-generated
        multivariate legs. An empty ``tickers`` sequence matches nothing. Many ``tickers``
        are looked up in batches whose query stays under :data:`URL_QUERY_BUDGET`
        characters (each batch paged on its own), so no ticker count makes a URL too long
        and no page repeats more than one batch.
        """
        if isinstance(tickers, str):
            raise TypeError("tickers must be a sequence of tickers, not one string")
        if tickers is not None and not tickers:
            return []
        if max_items is not None and max_items <= 0:
            return []
        params = {
            "status": status,
            "series_ticker": series_ticker,
            "event_ticker": event_ticker,
            "mve_filter": mve_filter,
        }
        if tickers is None:
            return self._paginate("/markets", params, "markets", Market, max_items=max_items)
        found: list[Market] = []
        pending = list(dict.fromkeys(tickers))
        full_pages: list[int] = []
        while pending:
            # Once the server shows its page size (a full page with a cursor), batches stop
            # at that many tickers: every batch is then one page and no query is repeated.
            most = min(full_pages) if full_pages else len(pending)
            batch = next(chunk_by_url_budget(pending[:most], URL_QUERY_BUDGET))
            pending = pending[len(batch) :]
            left = None if max_items is None else max_items - len(found)
            found += self._paginate(
                "/markets",
                {**params, "tickers": ",".join(batch)},
                "markets",
                Market,
                max_items=left,
                full_pages=full_pages,
            )
            if max_items is not None and len(found) >= max_items:
                break
        return found

    def get_market(self, ticker: str) -> Market:
        path = f"/markets/{quote(ticker, safe='')}"
        return self._parse(Market, self._unwrap(self._get(path), "market", path), path)

    def get_orderbook(self, ticker: str, depth: int = 0) -> RestOrderbook:
        """The REST book (no seq: use it to check, not to seed a streamed book)."""
        if not 0 <= depth <= MAX_ORDERBOOK_DEPTH:
            raise ValueError(f"depth must be between 0 and {MAX_ORDERBOOK_DEPTH}, got {depth}")
        path = f"/markets/{quote(ticker, safe='')}/orderbook"
        data = self._get(path, {"depth": depth} if depth else None)
        try:
            return RestOrderbook.from_response(data, ticker=ticker)
        except (ValidationError, ValueError) as exc:
            raise self._shape_error(path, exc) from None

    # -- the generic request path (the typed order API in kalshi_api.orders builds on it) ------
    def read(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``GET path`` (under the base URL) with retries: the decoded JSON object."""
        return self._get(path, dict(params or {}))

    def read_all(
        self,
        path: str,
        params: Mapping[str, Any],
        items_key: str,
        model: type[ModelT],
        *,
        max_items: int | None = None,
    ) -> list[ModelT]:
        """Every item of a cursor-paged listing, validated as ``model``."""
        return self._paginate(path, dict(params), items_key, model, max_items=max_items)

    def parse(self, model: type[ModelT], data: object, path: str) -> ModelT:
        """``data`` validated as ``model``; a bad shape is an ``UnexpectedResponseError``."""
        return self._parse(model, data, path)

    def write(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        client_order_id: str | None = None,
        client_order_ids: Sequence[str] = (),
        route: str | None = None,
        items: int = 1,
    ) -> Reply:
        """One write, sent at most once: never retried, whatever happens.

        Returns the 2xx reply. Raises a :class:`RequestRejectedError` subclass when the
        exchange refused it (chosen by ``error.code``), :class:`OutcomeUnknownError` when it
        may have happened without an answer (timeout, dropped connection, 408, 5xx), and
        :class:`TransportError` only when no byte of it left this process. ``route`` is the
        path template the write pacer prices it by (``/portfolio/events/orders/{order_id}``);
        ``items`` how many orders a batch holds.
        """
        full_path = self._prefix + path
        query = _query(params)
        content = orjson.dumps(body) if body is not None else None
        if self._pacer is not None:
            self._pacer.acquire(method, route or path, items=items)
        sent = SentRequest(
            method=method,
            path=full_path,
            query=tuple((k, str(v)) for k, v in query.items()),
            body=content,
            client_order_id=client_order_id,
            client_order_ids=tuple(client_order_ids),
            sent_at=time.time(),
        )
        return self._send_once(sent)

    def resend(self, request: SentRequest) -> Reply:
        """Send a write again exactly as it was sent (same body, same ``client_order_id``):
        the last step of resolving an unknown outcome once a lookup found nothing. A 409
        ``order_already_exists`` then proves the first try was carried out."""
        if not request.path.startswith(self._prefix + "/"):
            raise ValueError(f"{request.path} is not under {self._prefix}")
        if self._pacer is not None:
            items = max(len(request.client_order_ids), 1)
            self._pacer.acquire(request.method, request.path, items=items)
        again = dataclasses.replace(request, sent_at=time.time())
        return self._send_once(again)

    def _send_once(self, sent: SentRequest) -> Reply:
        query = dict(sent.query)
        outcome = self._attempt(sent.method, sent.path, query, sent.body, frozenset(), sent)
        if isinstance(outcome, Reply):
            return Reply(outcome.status, outcome.data, sent)
        if isinstance(outcome, RateLimitedError) and self._pacer is not None:
            self._pacer.rate_limited()
        raise outcome

    # -- lifecycle --------------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        key = self._signer.key_id if self._signer else None
        return f"KalshiRestClient(base_url={self.base_url!r}, key_id={key!r})"

    # -- plumbing ---------------------------------------------------------------------------------
    def _paginate(
        self,
        path: str,
        params: dict[str, Any],
        items_key: str,
        model: type[ModelT],
        *,
        max_items: int | None = None,
        full_pages: list[int] | None = None,
    ) -> list[ModelT]:
        """Every item across pages; sizes of pages that came with a next cursor go to
        ``full_pages`` (what the server's page size really is, whatever ``limit`` said)."""
        items: list[ModelT] = []
        seen: set[str] = set()
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            limit = self._page_limit
            if max_items is not None:
                limit = min(limit, max_items - len(items))
            page = self._get(path, {**params, "limit": limit, "cursor": cursor})
            raw_items = page.get(items_key)
            if raw_items is None:
                raw_items = []
            if not isinstance(raw_items, list):
                raise UnexpectedResponseError(
                    f"{items_key!r} is not a list", method="GET", path=self._prefix + path
                )
            for raw in raw_items:
                items.append(self._parse(model, raw, path))
            if max_items is not None and len(items) >= max_items:
                return items[:max_items]
            next_cursor = page.get("cursor")
            if next_cursor is None or next_cursor == "":
                return items
            if full_pages is not None and raw_items:
                full_pages.append(len(raw_items))
            if not isinstance(next_cursor, str):
                raise UnexpectedResponseError(
                    "cursor is not a string", method="GET", path=self._prefix + path
                )
            if next_cursor in seen or next_cursor == cursor:
                raise CursorLoopError(
                    f"cursor repeated after {len(seen) + 1} pages ({len(items)} items read)",
                    method="GET",
                    path=self._prefix + path,
                )
            seen.add(next_cursor)
            cursor = next_cursor
        raise CursorLoopError(
            f"no last page after {MAX_PAGES} pages", method="GET", path=self._prefix + path
        )

    def _get(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        status_bodies: frozenset[int] = frozenset(),
    ) -> dict[str, Any]:
        """One GET with retries; returns the decoded JSON object or raises a KalshiError.

        A response whose status is in ``status_bodies`` and whose body is a JSON object is
        returned as data (with ``http_status`` added) instead of becoming an error.
        """
        full_path = self._prefix + path
        query = _query(params)
        attempts = self._retry.max_attempts
        for attempt in range(attempts):
            outcome = self._attempt("GET", full_path, query, None, status_bodies, None)
            if isinstance(outcome, Reply):
                return outcome.data
            error = outcome
            error.attempts = attempt + 1
            if not error.retryable or attempt + 1 >= attempts:
                raise error
            delay = self._retry.delay(attempt)
            log.info(
                "GET %s failed (%s); retry %d/%d in %.3fs",
                full_path,
                error,
                attempt + 1,
                attempts - 1,
                delay,
            )
            self._retry.sleep(delay)
        raise AssertionError("unreachable: the last attempt either returns or raises")

    def _attempt(
        self,
        method: str,
        full_path: str,
        query: dict[str, Any],
        content: bytes | None,
        status_bodies: frozenset[int],
        write: SentRequest | None,
    ) -> Reply | KalshiError:
        """One request. Failures are *returned* (the caller decides about retries), except
        those no retry can mend, which are raised. For a write (``write`` is the request as
        sent) every failure after a byte may have reached the exchange is outcome-unknown."""
        headers: dict[str, str] = {}
        if self._signer is not None:
            headers.update(self._signer.headers(method, full_path))
        if content is not None:
            headers["Content-Type"] = "application/json"
        started = time.monotonic()
        url = self._origin + full_path
        with self._deadlines.within(self._timeout) as progress:
            try:
                status, reason, body = self._fetch(method, url, full_path, query, headers, content)
            except httpx.TimeoutException as exc:
                if time.monotonic() - started >= self._timeout or isinstance(
                    exc.__cause__, DeadlineExceeded
                ):
                    what = f"total request deadline exceeded ({self._timeout:g}s)"
                else:
                    what = type(exc).__name__
                return self._no_answer(f"timed out: {what}", method, full_path, write, progress)
            except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as exc:
                what = f"connection failed ({type(exc).__name__}: {exc})"
                return self._no_answer(what, method, full_path, write, progress)
            except httpx.InvalidURL as exc:
                raise RequestRejectedError(
                    f"request not sent: invalid URL ({exc})", method=method, path=full_path
                ) from None
            except httpx.HTTPError as exc:
                what = f"request failed ({type(exc).__name__}: {exc})"
                raise self._no_answer(what, method, full_path, write, progress) from None
            except UnexpectedResponseError as exc:
                # The body could not be read (too large, undecodable). A refused write stays
                # refused; any other write may have happened.
                if write is not None and not _refusal_status(exc.status):
                    return _unknown(str(exc), write, status=exc.status)
                raise
        ok = 200 <= status <= 299
        if not ok:
            return self._refusal(method, full_path, status, reason, body, status_bodies, write)
        if status == 204 or (write is not None and not body.strip()):
            return Reply(status, {})
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            what = "not JSON" if data is None else f"JSON {type(data).__name__}, not an object"
            message = f"HTTP {status} body is {what} ({len(body)} bytes)"
            if write is not None:
                return _unknown(message, write, status=status)
            raise UnexpectedResponseError(message, status=status, method=method, path=full_path)
        if data.get("error") not in (None, "", {}):
            # A 2xx holding an error is a failure (a retired path answers this way).
            code, message, details = parse_error_body(body)
            if write is not None and code in OUTCOME_UNKNOWN_CODES:
                return _unknown(message, write, status=status, code=code)
            kind = class_for(status, code, message)
            return kind(
                message or "error in a success response",
                status=status,
                code=code,
                details=details,
                method=method,
                path=full_path,
            )
        return Reply(status, data)

    def _refusal(
        self,
        method: str,
        full_path: str,
        status: int,
        reason: str,
        body: bytes,
        status_bodies: frozenset[int],
        write: SentRequest | None,
    ) -> Reply | KalshiError:
        if status in status_bodies:
            data = _json_object(body)
            # Only a status body counts; a 503 error body stays a retryable ServerError.
            if data is not None and "exchange_active" in data:
                return Reply(status, {**data, "http_status": status})
        error = error_from_response(status, body, method=method, path=full_path, reason=reason)
        if write is not None and (
            not _refusal_status(status) or error.code in OUTCOME_UNKNOWN_CODES
        ):
            return _unknown(
                error.message, write, status=status, code=error.code, details=error.details
            )
        return error

    def _no_answer(
        self,
        what: str,
        method: str,
        full_path: str,
        write: SentRequest | None,
        progress: Attempt,
    ) -> KalshiError:
        """No response: outcome-unknown for a write that may have been sent, else a
        transport error (for a write: provably unsent, safe to send again unchanged)."""
        if write is not None and progress.sent:
            return _unknown(what, write)
        return TransportError(what, method=method, path=full_path)

    def _fetch(
        self,
        method: str,
        url: str,
        full_path: str,
        query: dict[str, Any],
        headers: dict[str, str],
        content: bytes | None,
    ) -> tuple[int, str, bytes]:
        """Stream one response and read its body under the cap (errors: only the start)."""
        with self._http.stream(
            method, url, params=query, headers=headers, content=content
        ) as response:
            ok = 200 <= response.status_code <= 299
            cap = self._max_body if ok else MAX_ERROR_BODY_BYTES
            length = response.headers.get("content-length", "")
            encoding = response.headers.get("content-encoding", "")
            if ok and length.isdigit() and int(length) > cap:
                raise ResponseTooLargeError(
                    f"response body of {int(length)} bytes exceeds the size cap of {cap} bytes",
                    status=response.status_code,
                    method=method,
                    path=full_path,
                )
            try:
                body = read_capped_body(
                    response.iter_raw(RAW_CHUNK), encoding, cap, truncate=not ok
                )
            except BodyTooLarge as exc:
                raise ResponseTooLargeError(
                    str(exc), status=response.status_code, method=method, path=full_path
                ) from None
            except (UnsupportedEncoding, zlib.error) as exc:
                raise UnexpectedResponseError(
                    f"undecodable response body ({exc})",
                    status=response.status_code,
                    method=method,
                    path=full_path,
                ) from None
            return response.status_code, response.reason_phrase, body

    def _parse(self, model: type[ModelT], data: object, path: str) -> ModelT:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise self._shape_error(path, exc) from None

    def _unwrap(self, data: dict[str, Any], key: str, path: str) -> object:
        if key not in data:
            raise UnexpectedResponseError(
                f"response has no {key!r} field", method="GET", path=self._prefix + path
            )
        return data[key]

    def _shape_error(self, path: str, exc: Exception) -> UnexpectedResponseError:
        if isinstance(exc, ValidationError):
            impossible = [e for e in exc.errors(include_url=False) if e["type"] == IMPOSSIBLE_VALUE]
            if impossible:
                where = ".".join(str(part) for part in impossible[0]["loc"])
                return ProtocolViolationError(
                    f"protocol error: {where}: {impossible[0]['msg']}",
                    method="GET",
                    path=self._prefix + path,
                )
            first = exc.errors(include_url=False)[0] if exc.error_count() else {}
            where = ".".join(str(part) for part in first.get("loc", ()))
            summary = f"{exc.title}: {where or 'body'}: {first.get('msg', 'invalid')}"
            if exc.error_count() > 1:
                summary += f" (+{exc.error_count() - 1} more)"
        else:
            summary = str(exc)
        return UnexpectedResponseError(
            f"unexpected response shape: {summary}", method="GET", path=self._prefix + path
        )


@dataclass(frozen=True, slots=True)
class Reply:
    """A 2xx answer: its status and its decoded JSON object (``{}`` for 204); for a write,
    also the request as sent (to resolve a reply that cannot be read)."""

    status: int
    data: dict[str, Any]
    request: SentRequest | None = None


def _query(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Query parameters without the unset ones; booleans as Kalshi spells them."""
    query: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if value is None or value == "":
            continue
        query[key] = ("true" if value else "false") if isinstance(value, bool) else value
    return query


def _refusal_status(status: int | None) -> bool:
    """A status that means the exchange refused the request (it was not carried out)."""
    return status is not None and 400 <= status <= 499 and status != 408


def _unknown(
    what: str,
    request: SentRequest,
    *,
    status: int | None = None,
    code: str | None = None,
    details: str | None = None,
) -> OutcomeUnknownError:
    return OutcomeUnknownError(
        f"outcome unknown: {what}",
        request=request,
        status=status,
        code=code,
        details=details,
        method=request.method,
        path=request.path,
    )


def _env_proxy(scheme: str, host: str) -> str | None:
    """The environment's proxy for ``scheme://host`` (``HTTPS_PROXY``...), if any we can use."""
    if urllib.request.proxy_bypass(host):
        return None
    proxy = urllib.request.getproxies().get(scheme)
    if not proxy:
        return None
    if urlsplit(proxy).scheme not in ("http", "https"):
        log.warning("ignoring the %s proxy %s: only http(s) proxies are supported", scheme, proxy)
        return None
    return proxy


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(
        ".localhost"
    ):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
