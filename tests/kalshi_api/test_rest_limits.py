"""Hostile REST input: trickling servers, gzip bombs, huge bodies, impossible values, long URLs.

The misbehaving servers are tiny raw-socket servers on loopback (the embedded exchange is
honest about transport); account values, pauses, shards and ticker batching run against
the embedded exchange itself.
"""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from kalshi_api.auth import KalshiSigner, load_signer
from kalshi_api.errors import (
    ProtocolViolationError,
    ResponseTooLargeError,
    ServerError,
    TransportError,
)
from kalshi_api.models import Balance, ExchangeStatus
from kalshi_api.rest import URL_QUERY_BUDGET, KalshiRestClient, RetryPolicy
from kalshi_api.shards import combine, read_account_money
from kalshi_api.url_budget import encoded_length
from kalshi_sim.exchange import EmbeddedExchange, ExchangeConfig

NO_RETRY = RetryPolicy(max_attempts=1)
WAIT = 10.0


def _signer(exchange: EmbeddedExchange) -> KalshiSigner:
    return load_signer(exchange.key_id, exchange.private_key_path, env={})


# -- a raw socket server: one behaviour per connection --------------------------------------------
class RawServer:
    """Accepts connections on loopback and hands each socket to ``behaviour`` on a thread.

    ``closed_by_peer`` is set when a behaviour finds the client gone (a send failed or a
    read returned EOF): proof the client let go of the socket.
    """

    def __init__(self, behaviour: Callable[[socket.socket, RawServer], None]) -> None:
        self.behaviour = behaviour
        self.closed_by_peer = threading.Event()
        self.stop = threading.Event()
        self.bytes_sent = 0
        self.targets: list[str] = []
        """Request targets (path and query) in arrival order."""
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._loop, daemon=True)
        self._accept.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/trade-api/v2"

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            request = _read_request(conn)
            if request.count(b" ") >= 2:
                self.targets.append(request.split(b" ", 2)[1].decode("latin-1"))
            try:
                self.behaviour(conn, self)
            except OSError:
                self.closed_by_peer.set()

    def close(self) -> None:
        self.stop.set()
        self._listener.close()
        self._accept.join(WAIT)
        for thread in self._threads:
            thread.join(WAIT)


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _trickle(conn: socket.socket, server: RawServer, data: bytes) -> None:
    """Send ``data`` one byte per 0.1 s until the client hangs up (or 30 s pass)."""
    for _ in range(300):
        for byte in data:
            if server.stop.wait(0.1):
                return
            conn.sendall(bytes([byte]))
            server.bytes_sent += 1


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[socket.socket, RawServer], None]], RawServer]]:
    servers: list[RawServer] = []

    def start(behaviour: Callable[[socket.socket, RawServer], None]) -> RawServer:
        server = RawServer(behaviour)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


# -- total deadline -------------------------------------------------------------------------------
def test_get_when_body_trickles_gives_up_at_total_deadline_and_closes_socket(
    raw_server: Callable[..., RawServer],
) -> None:
    def behaviour(conn: socket.socket, server: RawServer) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        _trickle(conn, server, b" ")

    server = raw_server(behaviour)
    # Each byte arrives well inside the 0.5 s read timeout: only a total deadline ends it.
    with (
        KalshiRestClient(server.url, timeout=0.5, retry=NO_RETRY) as client,
        pytest.raises(TransportError, match="total request deadline exceeded") as caught,
    ):
        client.get_exchange_status()
    assert "\n" not in str(caught.value)
    assert server.closed_by_peer.wait(WAIT), "the client kept the trickling socket open"
    assert server.bytes_sent < 100


def test_get_when_headers_trickle_gives_up_at_total_deadline(
    raw_server: Callable[..., RawServer],
) -> None:
    def behaviour(conn: socket.socket, server: RawServer) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        _trickle(conn, server, b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n")

    server = raw_server(behaviour)
    with (
        KalshiRestClient(server.url, timeout=0.5, retry=NO_RETRY) as client,
        pytest.raises(TransportError, match="total request deadline exceeded"),
    ):
        client.get_exchange_status()
    assert server.closed_by_peer.wait(WAIT)


# -- body cap -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """256 MiB of JSON-ish whitespace in about 250 KiB of gzip."""
    return gzip.compress(b"{" + b" " * (256 << 20) + b"}", compresslevel=9)


@pytest.mark.slow  # gzips 256 MiB for the bomb (module fixture), then inflates to the cap
def test_get_when_gzip_bomb_stops_at_decompressed_cap_with_one_line_error(
    raw_server: Callable[..., RawServer], gzip_bomb: bytes
) -> None:
    def behaviour(conn: socket.socket, server: RawServer) -> None:
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
            f"Content-Length: {len(gzip_bomb)}\r\n\r\n"
        )
        conn.sendall(head.encode() + gzip_bomb)

    server = raw_server(behaviour)
    cap = 1 << 20
    with (
        KalshiRestClient(server.url, max_body_bytes=cap, retry=NO_RETRY) as client,
        pytest.raises(ResponseTooLargeError, match="decompressed size cap of 1048576") as e,
    ):
        client.get_exchange_status()
    assert len(gzip_bomb) < cap  # the compressed body alone would have passed the cap
    assert "\n" not in str(e.value) and len(str(e.value)) < 200


def test_get_when_content_length_over_cap_refuses_before_reading(
    raw_server: Callable[..., RawServer],
) -> None:
    def behaviour(conn: socket.socket, server: RawServer) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n{")
        _trickle(conn, server, b" ")

    server = raw_server(behaviour)
    with (
        KalshiRestClient(server.url, max_body_bytes=4096, retry=NO_RETRY) as client,
        pytest.raises(ResponseTooLargeError, match="999999999999 bytes exceeds"),
    ):
        client.get_exchange_status()
    assert server.closed_by_peer.wait(WAIT)


def test_get_when_endless_chunked_body_stops_at_cap(raw_server: Callable[..., RawServer]) -> None:
    def behaviour(conn: socket.socket, server: RawServer) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
        for _ in range(10_000):
            conn.sendall(chunk)

    server = raw_server(behaviour)
    with (
        KalshiRestClient(server.url, max_body_bytes=1 << 20, retry=NO_RETRY) as client,
        pytest.raises(ResponseTooLargeError, match="size cap of 1048576 bytes"),
    ):
        client.get_exchange_status()
    assert server.closed_by_peer.wait(WAIT)


def test_get_when_huge_error_body_reads_only_its_start(
    raw_server: Callable[..., RawServer],
) -> None:
    body = orjson.dumps({"error": {"code": "internal", "message": "x" * (4 << 20)}})

    def behaviour(conn: socket.socket, server: RawServer) -> None:
        conn.sendall(b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    server = raw_server(behaviour)
    with (
        KalshiRestClient(server.url, retry=NO_RETRY) as client,
        pytest.raises(ServerError) as caught,
    ):
        client.get_exchange_status()
    assert caught.value.status == 500 and len(str(caught.value)) < 400


# -- impossible account values --------------------------------------------------------------------
def test_get_balance_when_exchange_reports_negative_balance_raises_protocol_error(
    rest_exchange: EmbeddedExchange,
) -> None:
    for shard in rest_exchange.account.shard_indexes():
        rest_exchange.account.set_balance(0, exchange_index=shard)
    rest_exchange.account.set_balance(-5)
    with (
        KalshiRestClient(rest_exchange.rest_url, _signer(rest_exchange)) as client,
        pytest.raises(ProtocolViolationError, match=r"protocol error: balance: .*-5"),
    ):
        client.get_balance()


def test_get_balance_when_exchange_reports_negative_portfolio_value_raises_protocol_error(
    rest_exchange: EmbeddedExchange,
) -> None:
    rest_exchange.account.set_portfolio_value(-1)
    with (
        KalshiRestClient(rest_exchange.rest_url, _signer(rest_exchange)) as client,
        pytest.raises(ProtocolViolationError, match=r"portfolio_value.*must not be negative"),
    ):
        client.get_balance()


def test_get_orders_when_count_negative_raises_protocol_error(
    raw_server: Callable[..., RawServer],
) -> None:
    order = {
        "order_id": "o1",
        "ticker": "KXA-1",
        "status": "resting",
        "remaining_count_fp": "-3.00",
    }
    body = orjson.dumps({"orders": [order], "cursor": ""})

    def behaviour(conn: socket.socket, server: RawServer) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    server = raw_server(behaviour)
    with (
        KalshiRestClient(server.url, retry=NO_RETRY) as client,
        pytest.raises(ProtocolViolationError, match="remaining_count_fp"),
    ):
        client.get_orders(status="resting")


# -- shards ---------------------------------------------------------------------------------------
def test_get_balance_when_scoped_to_shard_reports_that_shard(
    rest_exchange: EmbeddedExchange,
) -> None:
    account = rest_exchange.account
    with KalshiRestClient(rest_exchange.rest_url, _signer(rest_exchange)) as client:
        total = client.get_balance()
        per_shard = {i: client.get_balance(exchange_index=i) for i in account.shard_indexes()}
    assert total.balance == account.balance_cents() == sum(b.balance for b in per_shard.values())
    for index, balance in per_shard.items():
        assert balance.balance == account.balance_cents(index)
        assert balance.portfolio_value == account.portfolio_value_cents(index)
    # The protocol trap: unscoped portfolio_value is the default shard's, not the total.
    assert total.portfolio_value == account.portfolio_value_cents(0)
    assert account.portfolio_value_cents(2) > 0 and account.balance_cents(3) > 0


def test_positions_and_orders_when_listed_carry_their_market_shard(
    rest_exchange: EmbeddedExchange,
) -> None:
    account = rest_exchange.account
    with KalshiRestClient(rest_exchange.rest_url, _signer(rest_exchange)) as client:
        positions = client.get_positions()
        orders = client.get_orders()
        crypto = client.get_positions(exchange_index=2)
    truth = {p.ticker: p.exchange_index for p in account.positions()}
    assert {p.ticker: p.exchange_index for p in positions} == truth
    assert {o.order_id: o.exchange_index for o in orders} == {
        o.order_id: o.exchange_index for o in account.orders()
    }
    assert {p.exchange_index for p in positions} >= {0, 2}
    assert [p.ticker for p in crypto] == [t for t, shard in sorted(truth.items()) if shard == 2]


def test_read_account_money_when_value_on_several_shards_totals_every_shard(
    rest_exchange: EmbeddedExchange,
) -> None:
    account = rest_exchange.account
    rest_exchange.status.pause_trading(2)
    with KalshiRestClient(rest_exchange.rest_url, _signer(rest_exchange)) as client:
        money = read_account_money(client, client.get_exchange_status())
    assert money.scoped
    assert (money.balance, money.portfolio_value) == (
        account.balance_cents(),
        account.portfolio_value_cents(),
    )
    assert [s.exchange_index for s in money.shards] == [0, 1, 2, 3]
    assert [(s.balance, s.portfolio_value) for s in money.shards] == [
        (account.balance_cents(i), account.portfolio_value_cents(i)) for i in range(4)
    ]
    assert [s.trading_active for s in money.shards] == [True, True, False, True]


def test_combine_when_exchange_ignores_shard_filter_does_not_multiply_totals() -> None:
    unscoped = Balance(balance=1000, portfolio_value=300)
    status = ExchangeStatus.model_validate(
        {
            "exchange_active": True,
            "trading_active": True,
            "exchange_index_statuses": [{"exchange_index": i} for i in range(4)],
        }
    )
    money = combine(unscoped, dict.fromkeys(range(4), unscoped), status)
    assert (money.balance, money.portfolio_value, money.scoped) == (1000, 300, False)


# -- pauses ---------------------------------------------------------------------------------------
def test_get_exchange_status_when_exchange_paused_returns_typed_503_status_without_retrying(
    rest_exchange: EmbeddedExchange,
) -> None:
    resume = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    rest_exchange.status.pause_exchange(resume_at=resume)
    with KalshiRestClient(rest_exchange.rest_url) as client:
        status = client.get_exchange_status()
        with pytest.raises(ServerError, match="exchange is paused"):
            client.get_markets(max_items=1)
    assert status.unavailable and status.paused and status.http_status == 503
    assert not status.exchange_active and not status.trading_active
    assert status.exchange_estimated_resume_time == resume
    assert not status.trading_active_on(0)
    requests = [e for e in rest_exchange.oplog.entries("rest") if "exchange/status" in e.detail]
    assert len(requests) == 1  # a pause is not a transient failure: no retry storm


def test_get_exchange_status_when_503_without_status_body_stays_a_retryable_server_error(
    rest_exchange: EmbeddedExchange,
) -> None:
    rest_exchange.faults.fail_next_requests(1, 503)
    with KalshiRestClient(rest_exchange.rest_url, retry=RetryPolicy(sleep=lambda _: None)) as c:
        status = c.get_exchange_status()
    assert status.http_status == 200 and not status.paused
    requests = [e for e in rest_exchange.oplog.entries("rest") if "exchange/status" in e.detail]
    assert len(requests) == 2  # the 503 error body was retried, not read as a status


def test_get_exchange_status_when_trading_paused_on_one_shard_reports_that_shard(
    rest_exchange: EmbeddedExchange,
) -> None:
    rest_exchange.status.pause_trading(3)
    with KalshiRestClient(rest_exchange.rest_url) as client:
        status = client.get_exchange_status()
        rest_exchange.status.pause_trading()  # the weekly pause: every shard
        weekly = client.get_exchange_status()
        rest_exchange.status.resume()
        resumed = client.get_exchange_status()
    assert status.http_status == 200 and status.exchange_active and status.trading_active
    assert status.paused and [status.trading_active_on(i) for i in range(4)] == [
        True,
        True,
        True,
        False,
    ]
    assert weekly.exchange_active and not weekly.trading_active
    assert not any(weekly.trading_active_on(i) for i in range(4))
    assert not resumed.paused and resumed.shard_indexes() == (0, 1, 2, 3)


# -- one URL --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def big_exchange() -> Iterator[EmbeddedExchange]:
    config = ExchangeConfig(markets=5000, delta_rate=0, read_tokens_per_second=None, page_size=1000)
    with EmbeddedExchange(config) as exchange:
        yield exchange


@pytest.mark.slow  # 5,000 markets listed over sockets
def test_get_markets_when_5000_tickers_batches_under_url_budget(
    big_exchange: EmbeddedExchange,
) -> None:
    tickers = big_exchange.markets.tickers()
    assert len(tickers) == 5000
    with KalshiRestClient(big_exchange.rest_url) as client:
        markets = client.get_markets(status=None, tickers=tickers, mve_filter=None)
    assert [m.ticker for m in markets] == tickers
    requests = [
        e for e in big_exchange.oplog.entries("rest") if e.detail == "GET /trade-api/v2/markets"
    ]
    joined = encoded_length(",".join(tickers))
    # One batch per budget's worth of tickers, each one page: no page repeats the whole list.
    assert len(requests) <= joined // URL_QUERY_BUDGET + 2


def test_get_markets_when_tickers_batched_every_query_fits_budget(
    raw_server: Callable[..., RawServer],
) -> None:
    body = orjson.dumps({"markets": [], "cursor": ""})

    def behaviour(conn: socket.socket, server: RawServer) -> None:
        head = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
        conn.sendall(head % len(body) + body)

    server = raw_server(behaviour)
    tickers = [f"KXLONG-26DEC31-T{i:05d}.{i % 97:02d}" for i in range(6000)]
    with KalshiRestClient(server.url, retry=NO_RETRY) as client:
        assert client.get_markets(status=None, tickers=tickers, mve_filter=None) == []
    seen: list[str] = []
    for target in server.targets:
        query = urlsplit(target).query
        assert len(query) < URL_QUERY_BUDGET + 200
        seen += parse_qs(query)["tickers"][0].split(",")
    assert seen == tickers and len(server.targets) > 1


def test_get_markets_when_server_pages_small_later_batches_fit_one_page() -> None:
    config = ExchangeConfig(markets=1000, delta_rate=0, read_tokens_per_second=None, page_size=100)
    with EmbeddedExchange(config) as exchange:
        tickers = exchange.markets.tickers()
        with KalshiRestClient(exchange.rest_url) as client:
            markets = client.get_markets(status=None, tickers=tickers, mve_filter=None)
        requests = [e for e in exchange.oplog.entries("rest") if e.detail.endswith("/markets")]
    assert sorted(m.ticker for m in markets) == sorted(tickers)
    # The first batch shows the 100-item page; every later batch is one page of 100.
    assert len(requests) <= len(tickers) // 100 + 2
