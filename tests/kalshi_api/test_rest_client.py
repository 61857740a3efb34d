"""The REST client against the embedded exchange (and, for shapes Kalshi's servers or proxies
might send but the exchange never does, a tiny scripted HTTP server), over real loopback sockets."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import pytest

from kalshi_api.auth import KalshiSigner
from kalshi_api.environments import (
    Endpoints,
    Environment,
    resolve_endpoints,
)
from kalshi_api.errors import (
    AuthenticationError,
    CursorLoopError,
    InvalidOrderError,
    KalshiError,
    NotFoundError,
    RateLimitedError,
    RequestRejectedError,
    RetiredEndpointError,
    ServerError,
    TransportError,
    UnexpectedResponseError,
)
from kalshi_api.fixed_point import parse_count, parse_dollars
from kalshi_api.models import Balance, Market, MarketPosition, Order, RestOrderbook
from kalshi_api.orderbook_digest import book_digest
from kalshi_api.rest import KalshiRestClient, RetryPolicy
from kalshi_sim.exchange import EmbeddedExchange
from tests.harness import signer_from_file

NO_RETRY = RetryPolicy(max_attempts=1)


class Delays:
    """An injected ``sleep`` that records instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def _signer(exchange: EmbeddedExchange) -> KalshiSigner:
    return signer_from_file(exchange.key_id, exchange.private_key_path)


def _client(exchange: EmbeddedExchange, **kwargs: Any) -> KalshiRestClient:
    return KalshiRestClient(exchange.rest_url, _signer(exchange), **kwargs)


def _rest_requests(exchange: EmbeddedExchange, path: str) -> int:
    return sum(1 for e in exchange.oplog.entries("rest") if e.detail == f"GET {path}")


# -- a scripted server for bodies the exchange never sends ----------------------------------------
class Script:
    """Responses served in order (the last one repeats) and the request targets seen."""

    def __init__(self, *responses: tuple[int, bytes]) -> None:
        self.responses = list(responses)
        self.targets: list[str] = []
        self._lock = threading.Lock()

    def next(self, target: str) -> tuple[int, bytes]:
        with self._lock:
            self.targets.append(target)
            return self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]


class _ScriptedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: nothing to clean up

    def do_GET(self) -> None:
        status, body = self.server.script.next(self.path)  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if 300 <= status < 400:
            self.send_header("Location", "/elsewhere")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[tuple[str, Script]]:
    """``(base_url, script)``; set ``script.responses`` before making requests."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ScriptedHandler)
    server.script = Script((500, b"no script"))  # type: ignore[attr-defined]
    # shutdown() returns at the loop's next poll: 5 ms, not the 50 ms each test paid
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.005})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/trade-api/v2", server.script  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _json(payload: object) -> bytes:
    return orjson.dumps(payload)


# -- reads against the exchange -------------------------------------------------------------------
def test_get_exchange_status_when_exchange_up_reports_active(
    rest_exchange: EmbeddedExchange,
) -> None:
    with _client(rest_exchange) as client:
        status = client.get_exchange_status()
    assert status.exchange_active and status.trading_active
    assert status.exchange_estimated_resume_time is None


def test_get_balance_when_account_changed_reports_exact_cents_and_dollars(
    rest_exchange: EmbeddedExchange,
) -> None:
    for shard in rest_exchange.account.shard_indexes():  # all the cash on the default shard
        rest_exchange.account.set_balance(0, exchange_index=shard)
    rest_exchange.account.set_balance(123_456)
    rest_exchange.account.set_portfolio_value(78_900)
    with _client(rest_exchange) as client:
        balance = client.get_balance()
    assert (balance.balance, balance.portfolio_value) == (123_456, 78_900)
    assert balance.balance_dollars == Decimal("1234.56")
    assert balance.updated_ts == rest_exchange.account.updated_ts()


def test_get_positions_when_many_pages_returns_every_position_exactly_once(
    rest_exchange: EmbeddedExchange,
) -> None:
    rest_exchange.account.add_positions(11)
    truth = rest_exchange.account.positions()
    assert len(truth) == 14  # 3 demo + 11, at page size 3: five pages
    with _client(rest_exchange) as client:
        positions = client.get_positions()
    assert [p.ticker for p in positions] == [p.ticker for p in truth]
    for got, want in zip(positions, truth, strict=True):
        assert got.position_centi == want.position_centi
        assert parse_dollars(format(got.market_exposure_dollars, "f")) == want.exposure_micros
        assert parse_dollars(format(got.fees_paid_dollars, "f")) == want.fees_paid_micros
    assert _rest_requests(rest_exchange, "/trade-api/v2/portfolio/positions") == 5


def test_get_positions_when_filtered_by_ticker_returns_only_that_position(
    rest_exchange: EmbeddedExchange,
) -> None:
    target = rest_exchange.account.positions()[1]
    with _client(rest_exchange) as client:
        positions = client.get_positions(ticker=target.ticker, settlement_status="all")
        settled = client.get_positions(settlement_status="settled")
    assert [p.ticker for p in positions] == [target.ticker]
    assert settled == []


def test_get_orders_when_many_pages_returns_every_order_exactly_once(
    rest_exchange: EmbeddedExchange,
) -> None:
    rest_exchange.account.add_orders(12)
    with _client(rest_exchange, page_limit=5) as client:
        orders = client.get_orders(status="resting")
    truth = rest_exchange.account.resting_orders()
    assert len(truth) == 16
    assert [o.order_id for o in orders] == [o.order_id for o in truth]
    assert len({o.order_id for o in orders}) == 16
    for got, want in zip(orders, truth, strict=True):
        assert (got.outcome_side, got.book_side, got.side, got.action) == (
            want.outcome_side,
            want.book_side,
            want.side,
            want.action,
        )
        assert parse_dollars(format(got.yes_price_dollars, "f")) == want.yes_price_micros
        assert parse_count(format(got.remaining_count_fp, "f")) == want.remaining_centi


def test_get_orders_when_some_canceled_status_filter_excludes_them(
    rest_exchange: EmbeddedExchange,
) -> None:
    canceled = rest_exchange.account.resting_orders()[0].order_id
    assert rest_exchange.account.cancel_order(canceled)
    with _client(rest_exchange) as client:
        resting = client.get_orders(status="resting")
        everything = client.get_orders()
        single = client.get_order(canceled)
    assert canceled not in {o.order_id for o in resting}
    assert len(everything) == len(resting) + 1
    assert single.status == "canceled"
    assert single.remaining_count_fp == 0


def test_get_order_when_unknown_id_raises_not_found_without_retry(
    rest_exchange: EmbeddedExchange,
) -> None:
    delays = Delays()
    with (
        _client(rest_exchange, retry=RetryPolicy(sleep=delays)) as client,
        pytest.raises(NotFoundError) as caught,
    ):
        client.get_order("no-such-order")
    assert caught.value.code == "not_found"
    assert delays.calls == []


def test_get_markets_when_open_filter_returns_all_active_markets_across_pages(
    rest_exchange: EmbeddedExchange,
) -> None:
    with _client(rest_exchange) as client:
        markets = client.get_markets()
    assert sorted(m.ticker for m in markets) == sorted(rest_exchange.markets.tickers())
    assert {m.status for m in markets} == {"active"}
    assert _rest_requests(rest_exchange, "/trade-api/v2/markets") == 3  # 8 markets, pages of 3


def test_get_markets_when_max_items_reached_stops_fetching(
    rest_exchange: EmbeddedExchange,
) -> None:
    with _client(rest_exchange) as client:
        markets = client.get_markets(max_items=4)
    assert len(markets) == 4
    assert _rest_requests(rest_exchange, "/trade-api/v2/markets") == 2


def test_get_markets_when_tickers_and_event_given_filters_server_side(
    rest_exchange: EmbeddedExchange,
) -> None:
    wanted = rest_exchange.markets.tickers()[2:5]
    event = rest_exchange.markets.market(wanted[0]).event_ticker
    with _client(rest_exchange) as client:
        by_tickers = client.get_markets(tickers=wanted)
        by_event = client.get_markets(event_ticker=event, status=None, mve_filter=None)
        none = client.get_markets(tickers=[])
        with pytest.raises(TypeError):
            client.get_markets(tickers=wanted[0])
    assert sorted(m.ticker for m in by_tickers) == sorted(wanted)
    assert {m.event_ticker for m in by_event} == {event}
    assert none == []


def test_get_markets_when_status_filter_unknown_raises_request_rejected_without_retry(
    rest_exchange: EmbeddedExchange,
) -> None:
    delays = Delays()
    with (
        _client(rest_exchange, retry=RetryPolicy(sleep=delays)) as client,
        pytest.raises(RequestRejectedError) as caught,
    ):
        client.get_markets(status="active")  # response vocabulary, not the filter's
    assert caught.value.status == 400
    assert delays.calls == []


def test_get_market_when_sub_penny_market_reports_its_tick_grid(
    rest_exchange: EmbeddedExchange,
) -> None:
    deci = next(
        m for m in rest_exchange.markets.markets() if m.price_level_structure == "deci_cent"
    )
    with _client(rest_exchange) as client:
        market = client.get_market(deci.ticker)
    assert market.price_level_structure == "deci_cent"
    assert [r.step for r in market.price_ranges] == [Decimal("0.001")]


def test_get_orderbook_when_sub_penny_and_fractional_levels_matches_truth_exactly(
    rest_exchange: EmbeddedExchange,
) -> None:
    checked = 0
    with _client(rest_exchange) as client:
        for market in rest_exchange.markets.markets():
            book = client.get_orderbook(market.ticker)
            truth = rest_exchange.markets.levels(market.ticker)
            assert book.to_fixed() == (truth.yes, truth.no)
            assert book_digest(*book.to_fixed()) == rest_exchange.markets.digest(market.ticker)
            checked += 1
    levels = [lv for m in rest_exchange.markets.markets() for lv in m.levels().yes]
    assert any(price % 10_000 for price, _ in levels), "fixture lacks sub-penny prices"
    assert any(size % 100 for _, size in levels), "fixture lacks fractional sizes"
    assert checked == 8


def test_get_orderbook_when_side_empty_returns_empty_tuple(
    rest_exchange: EmbeddedExchange,
) -> None:
    tickers = rest_exchange.markets.tickers()
    one_sided, empty = tickers[2], tickers[3]  # see MarketSet.generate
    with _client(rest_exchange) as client:
        assert client.get_orderbook(one_sided).no_dollars == ()
        assert client.get_orderbook(one_sided).yes_dollars != ()
        book = client.get_orderbook(empty)
    assert (book.yes_dollars, book.no_dollars) == ((), ())
    assert book.best_yes_bid is None


def test_get_orderbook_when_depth_given_keeps_best_levels(
    rest_exchange: EmbeddedExchange,
) -> None:
    ticker = rest_exchange.markets.tickers()[0]
    truth = rest_exchange.markets.levels(ticker)
    with _client(rest_exchange) as client:
        book = client.get_orderbook(ticker, depth=2)
        with pytest.raises(ValueError):
            client.get_orderbook(ticker, depth=101)
    assert book.to_fixed() == (truth.yes[-2:], truth.no[-2:])


# -- retries --------------------------------------------------------------------------------------
def test_get_balance_when_429_twice_retries_with_bounded_backoff_then_succeeds(
    rest_exchange: EmbeddedExchange,
) -> None:
    rest_exchange.faults.fail_next_requests(2, 429)
    delays = Delays()
    policy = RetryPolicy(base_delay=0.05, max_delay=2.0, sleep=delays, random=lambda: 0.999)
    with _client(rest_exchange, retry=policy) as client:
        balance = client.get_balance()
    assert balance.balance == 50_000
    assert len(delays.calls) == 2
    for attempt, delay in enumerate(delays.calls):
        assert 0 <= delay <= min(2.0, 0.05 * 2**attempt)
    assert delays.calls[1] > delays.calls[0]
    assert _rest_requests(rest_exchange, "/trade-api/v2/portfolio/balance") == 3


def test_get_positions_when_5xx_burst_retries_and_returns_all_pages(
    rest_exchange: EmbeddedExchange,
) -> None:
    rest_exchange.faults.fail_next_requests(3, 503)
    delays = Delays()
    with _client(rest_exchange, retry=RetryPolicy(sleep=delays)) as client:
        positions = client.get_positions()
    assert len(positions) == 3
    assert len(delays.calls) == 3


def test_get_balance_when_5xx_persists_raises_server_error_after_max_attempts(
    rest_exchange: EmbeddedExchange,
) -> None:
    rest_exchange.faults.fail_next_requests(10, 500)
    delays = Delays()
    policy = RetryPolicy(
        max_attempts=5, base_delay=1.0, max_delay=2.0, sleep=delays, random=lambda: 1.0
    )
    with _client(rest_exchange, retry=policy) as client, pytest.raises(ServerError) as caught:
        client.get_balance()
    assert delays.calls == [1.0, 2.0, 2.0, 2.0]  # capped at max_delay
    assert caught.value.attempts == 5
    assert caught.value.code == "internal_error"
    assert "after 5 attempts" in str(caught.value)
    assert _rest_requests(rest_exchange, "/trade-api/v2/portfolio/balance") == 5


def test_get_balance_when_429_persists_raises_rate_limited_error(
    rest_exchange: EmbeddedExchange,
) -> None:
    rest_exchange.faults.fail_next_requests(10, 429)
    policy = RetryPolicy(max_attempts=3, sleep=Delays())
    with _client(rest_exchange, retry=policy) as client, pytest.raises(RateLimitedError) as caught:
        client.get_balance()
    assert caught.value.message == "too many requests"
    assert caught.value.code is None


def test_get_balance_when_real_jitter_every_delay_within_policy_bounds(
    rest_exchange: EmbeddedExchange,
) -> None:
    rest_exchange.faults.fail_next_requests(4, 502)
    delays = Delays()
    policy = RetryPolicy(base_delay=0.05, max_delay=0.08, sleep=delays)
    with _client(rest_exchange, retry=policy) as client:
        client.get_balance()
    assert len(delays.calls) == 4
    assert all(0 <= d <= min(0.08, 0.05 * 2**n) for n, d in enumerate(delays.calls))


def test_get_balance_when_read_bucket_drained_backs_off_until_refill_and_succeeds(
    make_exchange: Any,
) -> None:
    exchange = make_exchange(markets=3, read_tokens_per_second=20)  # 2 requests, +1 per 0.5 s
    with httpx.Client(trust_env=False) as http:
        statuses: list[int] = []
        while 429 not in statuses and len(statuses) < 100:  # drain the bucket
            statuses.append(http.get(f"{exchange.rest_url}/exchange/status").status_code)
    assert statuses[-1] == 429
    policy = RetryPolicy(max_attempts=10, base_delay=0.05, max_delay=0.2, random=lambda: 1.0)
    with _client(exchange, retry=policy) as client:
        assert client.get_balance().balance == 50_000  # real sleeps: waits for the refill
    assert _rest_requests(exchange, "/trade-api/v2/portfolio/balance") >= 2


def test_get_balance_when_auth_rejected_once_raises_immediately_then_recovers(
    rest_exchange: EmbeddedExchange,
) -> None:
    rest_exchange.faults.reject_auth(1)
    delays = Delays()
    with _client(rest_exchange, retry=RetryPolicy(sleep=delays)) as client:
        with pytest.raises(AuthenticationError):
            client.get_balance()
        assert client.get_balance().balance == 50_000
    assert delays.calls == []


def test_get_balance_when_connection_refused_raises_transport_error_after_retries() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    delays = Delays()
    client = KalshiRestClient(
        f"http://127.0.0.1:{port}/trade-api/v2", retry=RetryPolicy(max_attempts=3, sleep=delays)
    )
    with client, pytest.raises(TransportError) as caught:
        client.get_exchange_status()
    assert caught.value.status is None
    assert caught.value.attempts == 3
    assert len(delays.calls) == 2


def test_get_balance_when_response_slower_than_timeout_raises_transport_error(
    rest_exchange: EmbeddedExchange,
) -> None:
    rest_exchange.faults.slow_responses(5.0, 2)
    policy = RetryPolicy(max_attempts=2, sleep=Delays())
    with _client(rest_exchange, timeout=0.2, retry=policy) as client:
        with pytest.raises(TransportError, match="timed out"):
            client.get_balance()
        assert client.get_balance().balance == 50_000


# -- error bodies ---------------------------------------------------------------------------------
AUTH_BODY = {
    "error": {
        "code": "authentication_error",
        "message": "authentication_error",
        "details": "rpc error: code = Unauthenticated desc = INCORRECT_API_KEY_SIGNATURE",
    }
}


@pytest.mark.parametrize(
    ("status", "body", "kind", "code", "fragment"),
    [
        (401, _json(AUTH_BODY), AuthenticationError, "authentication_error", "INCORRECT_API"),
        (
            403,
            _json({"error": {"code": "insufficient_scope", "message": "missing scope"}}),
            AuthenticationError,
            "insufficient_scope",
            "missing scope",
        ),
        (
            404,
            _json({"error": {"code": "not_found", "message": "not found"}}),
            NotFoundError,
            "not_found",
            "not found",
        ),
        (
            400,
            _json({"error": {"code": "invalid_price", "message": "invalid price"}}),
            InvalidOrderError,
            "invalid_price",
            "invalid price",
        ),
        (
            409,
            _json({"error": {"code": "duplicate_client_order_id", "message": "dup"}}),
            RequestRejectedError,
            "duplicate_client_order_id",
            "dup",
        ),
        (
            410,
            _json(
                {
                    "error": {
                        "code": "deprecated_v1_order_endpoint",
                        "message": "Please switch to the V2 endpoints",
                        "details": "https://docs.kalshi.com/api-reference/orders/create-order-v2",
                    }
                }
            ),
            RetiredEndpointError,
            "deprecated_v1_order_endpoint",
            "create-order-v2",
        ),
        (429, _json({"error": "too many requests"}), RateLimitedError, None, "too many requests"),
        (
            500,
            _json({"error": {"code": "internal_error", "message": "internal error"}}),
            ServerError,
            "internal_error",
            "internal error",
        ),
        (502, b"<html>\n<body>Bad Gateway</body>\n</html>", ServerError, None, "Bad Gateway"),
        (503, b"", ServerError, None, "Service Unavailable"),
        (504, _json([1, 2]), ServerError, None, "[1,2]"),
        (500, _json({"error": {"details": {"nested": True}}}), ServerError, None, "nested"),
        (
            418,
            _json({"message": "teapot", "code": "teapot"}),
            RequestRejectedError,
            "teapot",
            "teapot",
        ),
        (302, b"", UnexpectedResponseError, None, "Found"),
    ],
)
def test_get_when_error_body_shape_raises_matching_typed_error(
    scripted: tuple[str, Script],
    status: int,
    body: bytes,
    kind: type[KalshiError],
    code: str | None,
    fragment: str,
) -> None:
    base_url, script = scripted
    script.responses = [(status, body)]
    with KalshiRestClient(base_url, retry=NO_RETRY) as client, pytest.raises(kind) as caught:
        client.get_exchange_status()
    error = caught.value
    assert type(error) is kind
    assert (error.status, error.code) == (status, code)
    assert fragment in str(error)
    assert "\n" not in str(error)
    assert "/trade-api/v2/exchange/status" in str(error)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"<html>ok</html>", "not JSON"),
        (_json(["not", "an", "object"]), "not an object"),
        (_json({"balance": 1}), "portfolio_value"),
        (_json({"balance": 1, "portfolio_value": 2, "balance_dollars": 0.01}), "floats"),
    ],
)
def test_get_balance_when_success_body_malformed_raises_unexpected_response(
    scripted: tuple[str, Script], body: bytes, fragment: str
) -> None:
    base_url, script = scripted
    script.responses = [(200, body)]
    with (
        KalshiRestClient(base_url, retry=NO_RETRY) as client,
        pytest.raises(UnexpectedResponseError, match=fragment),
    ):
        client.get_balance()
    assert len(script.targets) == 1


def test_get_balance_when_exchange_adds_fields_ignores_them(scripted: tuple[str, Script]) -> None:
    base_url, script = scripted
    payload = {
        "balance": 10,
        "portfolio_value": 20,
        "balance_dollars": "0.1000",
        "updated_ts": 1,
        "brand_new_field": {"x": 1},
    }
    script.responses = [(200, _json(payload))]
    with KalshiRestClient(base_url) as client:
        assert client.get_balance() == Balance(
            balance=10, portfolio_value=20, balance_dollars=Decimal("0.1"), updated_ts=1
        )


# -- cursors --------------------------------------------------------------------------------------
def _positions_page(tickers: list[str], cursor: str | None) -> bytes:
    page: dict[str, Any] = {
        "market_positions": [{"ticker": t, "position_fp": "1.00"} for t in tickers],
        "event_positions": [],
    }
    if cursor is not None:
        page["cursor"] = cursor
    return _json(page)


def test_get_positions_when_cursor_repeats_raises_cursor_loop_error(
    scripted: tuple[str, Script],
) -> None:
    base_url, script = scripted
    script.responses = [(200, _positions_page(["A"], "same"))]
    with KalshiRestClient(base_url) as client, pytest.raises(CursorLoopError):
        client.get_positions()
    assert len(script.targets) == 2


def test_get_orders_when_cursors_cycle_raises_cursor_loop_error(
    scripted: tuple[str, Script],
) -> None:
    base_url, script = scripted
    pages = [("c1", "o1"), ("c2", "o2"), ("c1", "o3")]
    script.responses = [
        (
            200,
            _json({"orders": [{"order_id": oid, "ticker": "T", "status": "resting"}], "cursor": c}),
        )
        for c, oid in pages
    ]
    with KalshiRestClient(base_url) as client, pytest.raises(CursorLoopError, match="repeated"):
        client.get_orders()
    assert "cursor=c2" in script.targets[2]


def test_get_positions_when_cursor_missing_or_empty_treats_as_last_page(
    scripted: tuple[str, Script],
) -> None:
    base_url, script = scripted
    script.responses = [
        (200, _positions_page(["A", "B"], "next")),
        (200, _positions_page(["C"], None)),
    ]
    with KalshiRestClient(base_url, page_limit=2) as client:
        positions = client.get_positions(event_ticker="EV")
    assert [p.ticker for p in positions] == ["A", "B", "C"]
    assert "limit=2" in script.targets[0] and "cursor" not in script.targets[0]
    assert "event_ticker=EV" in script.targets[1] and "cursor=next" in script.targets[1]


# -- client set-up --------------------------------------------------------------------------------
def test_client_when_proxy_env_set_still_reaches_loopback_exchange(
    rest_exchange: EmbeddedExchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with _client(rest_exchange, retry=NO_RETRY) as client:
        assert client.get_exchange_status().exchange_active


def test_client_when_remote_host_and_proxy_env_set_goes_through_the_proxy(
    scripted: tuple[str, Script], monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url, script = scripted
    script.responses = [(200, _json({"exchange_active": True, "trading_active": True}))]
    proxy = base_url.removesuffix("/trade-api/v2")
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with KalshiRestClient("http://exchange.example.invalid/trade-api/v2", retry=NO_RETRY) as c:
        assert c.api_path_prefix == "/trade-api/v2"
        assert c.get_exchange_status().exchange_active
    # A proxied request names the origin: the scripted server was the proxy, not the host.
    assert script.targets == ["http://exchange.example.invalid/trade-api/v2/exchange/status"]


@pytest.mark.parametrize("url", ["ftp://x/trade-api/v2", "http:///trade-api/v2", "not a url"])
def test_client_when_base_url_invalid_raises_value_error(url: str) -> None:
    with pytest.raises(ValueError):
        KalshiRestClient(url)


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"base_delay": -1.0}, {"max_delay": -0.5}])
def test_retry_policy_when_invalid_raises_value_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


# -- models ---------------------------------------------------------------------------------------
def test_models_when_optional_fields_missing_use_defaults() -> None:
    position = MarketPosition.model_validate({"ticker": "T", "position_fp": "-2.50"})
    order = Order.model_validate({"order_id": "o", "ticker": "T", "status": "resting"})
    market = Market.model_validate({"ticker": "T", "status": "active", "price_ranges": None})
    assert position.position_centi == -250
    assert position.market_exposure_dollars == 0
    assert order.yes_price_dollars is None and order.fill_count_fp == 0
    assert market.price_ranges == ()


@pytest.mark.parametrize("bad", [0.5, True, "1e-2", "NaN", "", None, [1]])
def test_models_when_money_not_exact_decimal_string_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        MarketPosition.model_validate({"ticker": "T", "position_fp": bad})


def test_rest_orderbook_when_levels_unsorted_sorts_ascending_best_last() -> None:
    book = RestOrderbook.from_response(
        {"orderbook_fp": {"yes_dollars": [["0.4200", "1.00"], ["0.0150", "2.50"]]}}
    )
    assert book.yes_dollars == ((Decimal("0.015"), Decimal("2.5")), (Decimal("0.42"), Decimal("1")))
    assert book.best_yes_bid == Decimal("0.42")
    assert book.no_dollars == ()


def test_get_orderbook_when_response_uses_legacy_shape_raises_unexpected_response(
    scripted: tuple[str, Script],
) -> None:
    base_url, script = scripted
    legacy = {"orderbook": {"yes": [[1, 200]], "no": None, "yes_dollars": [["0.010", 200]]}}
    script.responses = [(200, _json(legacy))]
    with (
        KalshiRestClient(base_url, retry=NO_RETRY) as client,
        pytest.raises(UnexpectedResponseError, match="orderbook_fp"),
    ):
        client.get_orderbook("FED-23DEC-T3.00")
    assert script.targets == ["/trade-api/v2/markets/FED-23DEC-T3.00/orderbook"]


def test_models_when_frozen_refuse_mutation() -> None:
    balance = Balance(balance=1, portfolio_value=2)
    with pytest.raises(ValueError):
        balance.balance = 5  # type: ignore[misc]


# -- environments ---------------------------------------------------------------------------------
def test_resolve_endpoints_when_paper_uses_recommended_demo_hosts() -> None:
    endpoints = resolve_endpoints("paper")
    assert endpoints == Endpoints(
        rest_url="https://external-api.demo.kalshi.co/trade-api/v2",
        ws_url="wss://external-api-ws.demo.kalshi.co/trade-api/ws/v2",
    )
    assert resolve_endpoints(Environment.PRODUCTION).rest_url == (
        "https://external-api.kalshi.com/trade-api/v2"
    )


def test_resolve_endpoints_when_overrides_given_applies_them_without_trailing_slash() -> None:
    endpoints = resolve_endpoints(
        Environment.PRODUCTION, rest_url="https://api.elections.kalshi.com/trade-api/v2/"
    )
    assert endpoints.rest_url == "https://api.elections.kalshi.com/trade-api/v2"
    assert endpoints.ws_url == "wss://external-api-ws.kalshi.com/trade-api/ws/v2"


def test_resolve_endpoints_when_local_with_exchange_urls_accepts_them(
    rest_exchange: EmbeddedExchange,
) -> None:
    endpoints = resolve_endpoints("local", rest_exchange.rest_url, rest_exchange.ws_url)
    assert endpoints.rest_url == rest_exchange.rest_url


@pytest.mark.parametrize(
    ("env", "rest", "ws", "fragment"),
    [
        ("local", None, "ws://127.0.0.1:1/trade-api/ws/v2", "rest_url"),
        ("local", None, None, "rest_url and ws_url"),
        ("staging", None, None, "unknown environment"),
        ("paper", "wss://x/trade-api/v2", None, "http or https"),
        ("paper", None, "https://x/trade-api/ws/v2", "ws or wss"),
        ("paper", "https:///trade-api/v2", None, "no host"),
        ("paper", "https://x:99999/trade-api/v2", None, "malformed"),
        ("paper", "https://x/trade-api/v2?a=1", None, "query"),
    ],
)
def test_resolve_endpoints_when_invalid_raises_one_line_value_error(
    env: str, rest: str | None, ws: str | None, fragment: str
) -> None:
    with pytest.raises(ValueError, match=fragment) as caught:
        resolve_endpoints(env, rest, ws)
    assert "\n" not in str(caught.value)
