"""The embedded exchange's REST API: Kalshi's 2026 ``/trade-api/v2`` read endpoints.

:class:`RestApi` turns ``(method, path, query, headers)`` into ``(status, JSON body)``:
routing, pagination, filters, the wire shapes, and the one signature check that depends
on the route (a signed orderbook read must be signed right). It moves no bytes: the
Starlette app in :mod:`kalshi_sim.server` serves it, and the exchange-wide rules
(operation log, gates, faults, the read bucket, signatures on ``/portfolio``) run as
middleware in front of it (:mod:`kalshi_sim.rules`). Any bug here becomes a 500 with
Kalshi's error shape, never a dead server or a traceback on stderr.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, unquote

from kalshi_api.fixed_point import MICROS_PER_DOLLAR, format_count, format_dollars
from kalshi_sim.account import ORDER_STATUSES, SimPosition
from kalshi_sim.api_errors import ApiError, bare_bad_request
from kalshi_sim.api_errors import bad_request as _bad_request
from kalshi_sim.api_errors import not_found as _not_found
from kalshi_sim.markets import BookLevels, SimMarket
from kalshi_sim.status import EXCHANGE_PAUSED_ERROR
from kalshi_sim.trading_routes import Reply, Request, TradingRoutes, balance_body
from kalshi_sim.trading_wire import order_json, position_json
from kalshi_sim.wire import AUTH_ERROR_BODY, INTERNAL_ERROR, REST_PREFIX

if TYPE_CHECKING:
    from kalshi_sim.close_times import CloseSchedule
    from kalshi_sim.exchange import EmbeddedExchange

log = logging.getLogger("kalshi_supervisor.kalshi_sim.rest_server")

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MAX_DEPTH = 100
MAX_BATCH_TICKERS = 100
MAX_EVENT_TICKERS = 10

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
_LISTED_SINCE = "2026-06-01T12:00:00Z"

T = TypeVar("T")


def route_segments(path: str) -> tuple[str, ...] | None:
    """The path's segments under the API root, or None when no route could match it.

    Shared by the router and the signature rule so both agree on what ``/portfolio``
    covers: ``/trade-api/v2/portfolio//x`` is a 404 before it is an auth failure.
    """
    if not path.startswith(REST_PREFIX + "/"):
        return None
    segments = tuple(unquote(s) for s in path[len(REST_PREFIX) + 1 :].split("/"))
    if any(not s for s in segments):
        return None
    return segments


_PRIVATE_ROOTS = frozenset({"portfolio", "account"})


def is_private(path: str) -> bool:
    """Whether ``path`` must carry a valid signature: ``/portfolio``, ``/account`` and the
    member's ``/exchange/user_data_timestamp``."""
    segments = route_segments(path)
    if segments is None:
        return False
    return segments[0] in _PRIVATE_ROOTS or segments == ("exchange", "user_data_timestamp")


class RestApi:
    """Kalshi's REST routes over the exchange's state; pure request -> response."""

    def __init__(self, exchange: EmbeddedExchange) -> None:
        self.exchange = exchange
        self.trading = TradingRoutes(exchange)
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
        self._member_routes = {self._balance, self._positions, self._orders, self._order}

    def respond(
        self, method: str, path: str, query_text: str, headers: Mapping[str, str]
    ) -> tuple[int, Mapping[str, Any]]:
        """The status and JSON body for one bodiless request (see :meth:`handle`)."""
        reply = self.handle(method, path, query_text, headers, b"")
        return reply.status, reply.body if reply.body is not None else {}

    def handle(
        self,
        method: str,
        path: str,
        query_text: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> Reply:
        """The reply for one request that got past the exchange's rules.

        ``path`` is the raw request path (as signed), ``query_text`` the raw query string,
        ``body`` the request body. Any bug in a handler is a 500 with Kalshi's body.
        """
        self.exchange.status.before_request(path)
        if self.exchange.status.exchange_paused and not path.endswith("/exchange/status"):
            return Reply(503, EXCHANGE_PAUSED_ERROR)
        try:
            segments = route_segments(path)
            if segments is not None:
                member = self.member(headers)
                query = _parse_query(query_text)
                request = Request(member, method, segments, query, body)
                reply = self.trading.handle(request)
                if reply is not None:
                    return reply
            return Reply(200, self._route(method, path, query_text, headers))
        except ApiError as error:
            return Reply(error.status, error.body)
        except Exception:
            log.exception("REST handler failed on %s %s", method, path)
            return Reply(500, INTERNAL_ERROR)

    def member(self, headers: Mapping[str, str]) -> str:
        """The member the request's API key trades for (the demo member when unsigned)."""
        key_id = headers.get("KALSHI-ACCESS-KEY")
        return self.exchange.trading.member_of(key_id) or self.exchange.account.member

    # -- routing ----------------------------------------------------------------------------------
    def _route(
        self, method: str, path: str, query_text: str, headers: Mapping[str, str]
    ) -> dict[str, Any]:
        segments = route_segments(path)
        if segments is None:
            raise _not_found(f"no route for {path}")
        if method != "GET":
            raise _not_found(f"no route for {method} {path}")
        handler, arguments = self._match(segments, path)
        query = _parse_query(query_text)
        # The spec lists security on the orderbook while the guide says it is public:
        # accept unsigned requests, but a signature that is present must be right.
        if (
            handler in (self._orderbook, self._orderbooks)
            and headers.get("KALSHI-ACCESS-KEY")
            and not self.exchange.keys.verify(headers, method, path)
        ):
            raise ApiError(401, **AUTH_ERROR_BODY["error"])
        if handler in self._member_routes:
            result: dict[str, Any] = handler(query, self.member(headers), *arguments)
        else:
            result = handler(query, *arguments)
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

    # -- exchange and markets ---------------------------------------------------------------------
    def _exchange_status(self, query: Mapping[str, str]) -> dict[str, Any]:
        status, body = self.exchange.status.response()
        if status != 200:
            paused = ApiError(status, "exchange_unavailable", "exchange is paused")
            paused.body = body  # Kalshi sends the status body itself with the 503 [MP]
            raise paused
        return body

    def _markets(self, query: Mapping[str, str]) -> dict[str, Any]:
        markets = self.exchange.markets.markets()
        listing_order = self.exchange.markets.listing_keys()
        status = query.get("status", "")
        if status:
            if status not in _STATUS_FILTER:
                raise _bad_request(f"invalid status filter {status!r}")
            closes, wanted = self.exchange.close_times, _STATUS_FILTER[status]
            markets = [m for m in markets if closes.status(m.ticker, m.status) in wanted]
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
            closes = self.exchange.close_times
            listed = [_market_json(m, m.levels(), closes) for m in page]
        return {"markets": listed, "cursor": cursor}

    def _market(self, query: Mapping[str, str], ticker: str) -> dict[str, Any]:
        market = self._find_market(ticker)
        with self.exchange.markets.lock:
            return {"market": _market_json(market, market.levels(), self.exchange.close_times)}

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
    # Every member's state is the engine's. The demo member's (the demo key's) is read through
    # ``Account``, whose orders keep the direction they were created with (its fixtures set
    # ``action``/``side``); other members', and the demo's while reads lag, through the
    # desk's (lagged) view.
    def _legacy(self, member: str) -> bool:
        return (
            member == self.exchange.account.member
            and self.exchange.trading_settings.read_lag_ms <= 0
        )

    def _balance(self, query: Mapping[str, str], member: str) -> dict[str, Any]:
        shard = _int_param(query, "exchange_index", default=None, low=0, high=63)
        if self._legacy(member):
            return self.exchange.account.balance_response(shard)
        return balance_body(self.exchange.trading.view(member), shard)

    def _positions(self, query: Mapping[str, str], member: str) -> dict[str, Any]:
        settlement = query.get("settlement_status", "") or "unsettled"
        if settlement not in ("unsettled", "settled", "all"):
            raise _bad_request(f"invalid settlement_status {settlement!r}")
        count_filter = _comma_list(query.get("count_filter", ""))
        if any(f not in ("position", "total_traded") for f in count_filter):
            raise _bad_request(f"invalid count_filter {query['count_filter']!r}")
        rows: list[_Row]
        if self._legacy(member):
            rows = [
                _Row(
                    p.ticker,
                    p.event_ticker,
                    p.exchange_index,
                    p.position_centi,
                    p.total_traded_micros,
                    lambda p=p: _position_json(p),
                    lambda p=p: (
                        p.total_traded_micros,
                        p.position_centi,
                        p.exposure_micros,
                        p.realized_pnl_micros,
                        p.fees_paid_micros,
                    ),
                )
                for p in self.exchange.account.positions()
            ]
        else:
            rows = [
                _Row(
                    p.ticker,
                    p.event_ticker,
                    p.exchange_index,
                    p.position_centi,
                    p.total_traded_micros,
                    lambda p=p: position_json(p),
                    lambda p=p: (
                        p.total_traded_micros,
                        p.position_centi,
                        p.cost_micros,
                        p.realized_pnl_micros,
                        p.fees_paid_micros,
                    ),
                )
                for p in self.exchange.trading.view(member).positions
            ]
        if settlement == "settled":
            rows = []
        if query.get("ticker"):
            rows = [r for r in rows if r.ticker == query["ticker"]]
        if query.get("event_ticker"):
            rows = [r for r in rows if r.event_ticker == query["event_ticker"]]
        shard = _int_param(query, "exchange_index", default=None, low=0, high=63)
        if shard is not None:
            rows = [r for r in rows if r.exchange_index == shard]
        if "position" in count_filter:
            rows = [r for r in rows if r.position_centi]
        if "total_traded" in count_filter:
            rows = [r for r in rows if r.total_traded_micros]
        rows.sort(key=lambda r: r.ticker)
        page, cursor = self._page(rows, lambda r: r.ticker, query, "p")
        return {
            "cursor": cursor,
            "market_positions": [r.render() for r in page],
            "event_positions": _event_rows_json(page),
        }

    def _orders(self, query: Mapping[str, str], member: str) -> dict[str, Any]:
        status = query.get("status", "")
        if status and status not in ORDER_STATUSES:
            raise _bad_request(f"invalid status {status!r}")
        ticker = query.get("ticker") or None
        rows = [
            _OrderRow(
                f"{o.seq:012d}",
                o.ticker,
                o.event_ticker,
                o.status,
                o.exchange_index,
                o.subaccount,
                o.created_ms // 1000,
                lambda o=o: order_json(o, self._direction(member, o.order_id)),
            )
            for o in self.exchange.trading.orders(member, ticker=ticker, status=status or None)
        ]
        events = _comma_list(query.get("event_ticker", ""))
        if len(events) > MAX_EVENT_TICKERS:
            raise _bad_request(f"at most {MAX_EVENT_TICKERS} event tickers")
        if events:
            rows = [o for o in rows if o.event_ticker in events]
        shard = _int_param(query, "exchange_index", default=None, low=0, high=63)
        if shard is not None:
            rows = [o for o in rows if o.exchange_index == shard]
        subaccount = _int_param(query, "subaccount", default=None, low=0, high=63)
        if subaccount is not None:
            rows = [o for o in rows if o.subaccount == subaccount]
        min_ts = _int_param(query, "min_ts", default=None, low=0)
        max_ts = _int_param(query, "max_ts", default=None, low=0)
        if min_ts is not None:
            rows = [o for o in rows if o.created_s >= min_ts]
        if max_ts is not None:
            rows = [o for o in rows if o.created_s <= max_ts]
        page, cursor = self._page(rows, lambda o: o.key, query, "o")
        return {"orders": [o.render() for o in page], "cursor": cursor}

    def _order(self, query: Mapping[str, str], member: str, order_id: str) -> dict[str, Any]:
        order = self.exchange.trading.order(member, order_id)
        if order is None:
            raise _not_found(f"order {order_id} not found")
        return {"order": order_json(order, self._direction(member, order_id))}

    def _direction(self, member: str, order_id: str) -> tuple[str, str] | None:
        """The deprecated ``(action, side)`` a fixture gave one of the demo account's orders
        (None: derived from the book side, as for every other order)."""
        if member != self.exchange.account.member:
            return None
        return self.exchange.account.direction(order_id)

    def market_body(self, ticker: str) -> dict[str, Any]:
        """One market as ``GET /markets/{ticker}`` renders it (events embed these)."""
        market = self._find_market(ticker)
        with self.exchange.markets.lock:
            return _market_json(market, market.levels(), self.exchange.close_times)

    def page(
        self, keyed: Sequence[tuple[str, T]], query: Mapping[str, str], kind: str
    ) -> tuple[list[tuple[str, T]], str]:
        """:meth:`_page` over ``(key, item)`` pairs already sorted by key."""
        return self._page(keyed, lambda pair: pair[0], query, kind)

    # -- pagination -------------------------------------------------------------------------------
    def _page(
        self, items: Sequence[T], key: Callable[[T], str], query: Mapping[str, str], kind: str
    ) -> tuple[list[T], str]:
        """One page of ``items`` (sorted by ``key``) after the cursor, and the next cursor.

        Cursors name the last key served rather than an offset, so items added or removed
        between pages never make a client see one twice or skip one that stayed.
        """
        limit = _limit_param(query)
        size = max(1, min(limit, self.exchange.config.page_size))
        cursor = query.get("cursor", "")
        if cursor:
            after = _decode_cursor(cursor, kind)
            # Items arrive sorted by key: a bisect keeps paging a long listing linear.
            items = items[bisect.bisect_right(items, after, key=key) :]
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


def _limit_param(query: Mapping[str, str]) -> int:
    """``limit``: 1-1000. Out of range (a number) is Kalshi's bare ``{"msg": ...}`` 400 (§8.3);
    anything that is not a number stays the nested ``bad_request``."""
    text = query.get("limit", "")
    if text.isdigit() and len(text) <= 18 and not 1 <= int(text) <= MAX_LIMIT:
        raise bare_bad_request(f"limit must be between 1 and {MAX_LIMIT}")
    limit: int = _int_param(query, "limit", default=DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
    return limit


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


def _market_json(market: SimMarket, levels: BookLevels, closes: CloseSchedule) -> dict[str, Any]:
    yes_bid = levels.yes[-1] if levels.yes else (0, 0)
    no_bid = levels.no[-1] if levels.no else (0, 0)
    close_time = _iso(closes.close_time(market.ticker))
    return {
        "ticker": market.ticker,
        "event_ticker": market.event_ticker,
        "market_type": "binary",
        "title": market.title,
        "yes_sub_title": market.title,
        "no_sub_title": market.title,
        "status": closes.status(market.ticker, market.status),
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
        "exchange_index": market.exchange_index,
        "price_ranges": [
            {"start": start, "end": end, "step": step}
            for start, end, step in _PRICE_RANGES.get(
                market.price_level_structure, _PRICE_RANGES["linear_cent"]
            )
        ],
    }


def _position_json(position: SimPosition) -> dict[str, Any]:
    return {
        "ticker": position.ticker,
        "exchange_index": position.exchange_index,
        "total_traded_dollars": format_dollars(position.total_traded_micros),
        "position_fp": format_count(position.position_centi),
        "market_exposure_dollars": format_dollars(position.exposure_micros),
        "realized_pnl_dollars": format_dollars(position.realized_pnl_micros),
        "fees_paid_dollars": format_dollars(position.fees_paid_micros),
        "last_updated_ts": _iso(position.last_updated),
    }


@dataclass(frozen=True, slots=True)
class _Row:
    """A position row of either source (demo portfolio or trading), filterable alike."""

    ticker: str
    event_ticker: str
    exchange_index: int
    position_centi: int
    total_traded_micros: int
    render: Callable[[], dict[str, Any]]
    sums: Callable[[], tuple[int, int, int, int, int]]


@dataclass(frozen=True, slots=True)
class _OrderRow:
    """An order of either source, filterable alike; ``key`` orders listings and cursors."""

    key: str
    ticker: str
    event_ticker: str
    status: str
    exchange_index: int
    subaccount: int
    created_s: int
    render: Callable[[], dict[str, Any]]


def _event_rows_json(rows: Sequence[_Row]) -> list[dict[str, Any]]:
    events: dict[str, list[tuple[int, int, int, int, int]]] = {}
    for row in rows:
        events.setdefault(row.event_ticker, []).append(row.sums())
    return [
        {
            "event_ticker": event,
            "total_cost_dollars": format_dollars(sum(g[0] for g in group)),
            "total_cost_shares_fp": format_count(sum(abs(g[1]) for g in group)),
            "event_exposure_dollars": format_dollars(sum(g[2] for g in group)),
            "realized_pnl_dollars": format_dollars(sum(g[3] for g in group)),
            "fees_paid_dollars": format_dollars(sum(g[4] for g in group)),
        }
        for event, group in events.items()
    ]
