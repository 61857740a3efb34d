"""The exchange's one web server: one port, Kalshi's pings, limits, prompt stop, its layer.

Raw sockets and websockets' sans-I/O client, so these tests see the bytes the server
sends (a ping's payload, a close code, a closed socket) rather than what a client
library makes of them.
"""

from __future__ import annotations

import ast
import asyncio
import socket
import threading
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosedError
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from kalshi_api.auth import load_signer
from kalshi_sim.exchange import EmbeddedExchange
from kalshi_sim.faults import SimFault
from kalshi_sim.oplog import DEFAULT_CAPACITY, OperationLog
from kalshi_sim.server import MAX_WS_MESSAGE
from kalshi_sim.wire import HEARTBEAT_PAYLOAD, WS_PATH
from tests.conftest import ExchangeFactory

WAIT = 5.0
SERVER_THREAD = "kalshi-sim-server"


def _server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == SERVER_THREAD and t.is_alive()]


class RawWebSocket:
    """A signed WebSocket on a bare socket, driven by websockets' sans-I/O client."""

    def __init__(self, exchange: EmbeddedExchange) -> None:
        self.protocol = ClientProtocol(parse_uri(exchange.ws_url))
        request = self.protocol.connect()
        signer = load_signer(exchange.key_id, exchange.private_key_path, env={})
        for name, value in signer.headers("GET", WS_PATH).items():
            request.headers[name] = value
        self.protocol.send_request(request)
        self.sock = socket.create_connection(("127.0.0.1", exchange.port), timeout=WAIT)
        self._pending: list[object] = []
        self.flush()
        response = self.next_event()
        assert isinstance(response, Response) and response.status_code == 101

    def flush(self) -> None:
        """Send whatever the protocol has queued (the handshake, a frame)."""
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)

    def next_event(self) -> object:
        """The next handshake response or frame, reading the socket as needed."""
        while True:
            self._pending.extend(self.protocol.events_received())
            if self._pending:
                return self._pending.pop(0)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed by the server")
            self.protocol.receive_data(data)

    def close(self) -> None:
        self.sock.close()


def test_rest_and_websocket_when_started_share_one_port(exchange: EmbeddedExchange) -> None:
    rest, ws = httpx.URL(exchange.rest_url), httpx.URL(exchange.ws_url)
    assert rest.port == ws.port == exchange.port
    assert (rest.path, ws.path) == ("/trade-api/v2", WS_PATH)


@pytest.fixture
def exchange(make_exchange: ExchangeFactory) -> EmbeddedExchange:
    return make_exchange(markets=2)


def test_ping_when_interval_elapses_carries_kalshis_heartbeat_payload(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=2, ping_interval=0.05)
    client = RawWebSocket(exchange)
    try:
        event = client.next_event()
        assert isinstance(event, Frame)
        assert event.opcode is Opcode.PING
        assert event.data == HEARTBEAT_PAYLOAD
    finally:
        client.close()


def test_connection_when_silent_is_closed_after_the_idle_timeout(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=2, idle_timeout=0.1)
    with socket.create_connection(("127.0.0.1", exchange.port), timeout=WAIT) as silent:
        assert silent.recv(1) == b""  # closed by the server, not by our timeout (that raises)


def test_request_when_connection_limit_reached_answers_503_and_keeps_serving(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=2, max_connections=2)
    status_path = f"{exchange.rest_url}/exchange/status"
    with httpx.Client(trust_env=False, timeout=WAIT) as first:
        assert first.get(status_path).status_code == 200  # its connection stays open
        with httpx.Client(trust_env=False, timeout=WAIT) as second:
            assert second.get(status_path).status_code == 503
        assert first.get(status_path).status_code == 200


def test_websocket_when_message_exceeds_limit_closes_with_1009(exchange: EmbeddedExchange) -> None:
    headers = load_signer(exchange.key_id, exchange.private_key_path).headers("GET", WS_PATH)

    async def body() -> None:
        async with connect(
            exchange.ws_url, additional_headers=headers, proxy=None, max_size=None
        ) as ws:
            await ws.send("x" * (MAX_WS_MESSAGE + 1))
            with pytest.raises(ConnectionClosedError) as closed:
                await asyncio.wait_for(ws.recv(), WAIT)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        assert exchange.ws.connection_count() == 0

    asyncio.run(asyncio.wait_for(body(), 20))


def test_stop_when_slow_clients_attached_ends_the_server_thread_within_its_2s_join(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=2, delta_rate=200.0)
    address = ("127.0.0.1", exchange.port)
    silent = [socket.create_connection(address, timeout=WAIT) for _ in range(5)]
    partial = socket.create_connection(address, timeout=WAIT)
    partial.sendall(b"GET /trade-api/v2/markets HTTP/1.1\r\nHost: x\r\n")  # never finished
    reader = RawWebSocket(exchange)  # upgraded, subscribed, and never reads again
    subscribe = {
        "id": 1,
        "cmd": "subscribe",
        "params": {"channels": ["orderbook_delta"], "market_tickers": exchange.markets.tickers()},
    }
    reader.protocol.send_text(orjson.dumps(subscribe))
    reader.flush()
    assert exchange.ws.connection_count() == 1
    try:
        assert _server_threads()
        exchange.stop()  # joins the server thread for at most 2 s
        assert _server_threads() == []
    finally:
        for sock in [*silent, partial]:
            sock.close()
        reader.close()


def test_apply_fault_when_given_the_fault_name_as_a_string_applies_it(
    exchange: EmbeddedExchange,
) -> None:
    exchange.apply_fault("rest_5xx", count=1)
    with httpx.Client(trust_env=False, timeout=WAIT) as http:
        assert http.get(f"{exchange.rest_url}/exchange/status").status_code == 500
        assert http.get(f"{exchange.rest_url}/exchange/status").status_code == 200
    exchange.apply_fault(SimFault.REST_429, count=1)
    with httpx.Client(trust_env=False, timeout=WAIT) as http:
        response = http.get(f"{exchange.rest_url}/exchange/status")
    assert response.status_code == 429 and response.json() == {"error": "too many requests"}
    assert "retry-after" not in response.headers
    with pytest.raises(ValueError):
        exchange.apply_fault("melt_down")


def test_oplog_when_over_capacity_keeps_the_most_recent_and_counts_everything() -> None:
    log = OperationLog(capacity=3)
    for index in range(5):
        log.record("rest", str(index))
    log.record("ws_handshake")
    assert [e.detail for e in log.entries("rest")] == ["3", "4"]
    assert len(log.entries()) == 3
    assert log.count("rest") == 5 and log.counts() == {"rest": 5, "ws_handshake": 1}
    log.clear()
    assert log.entries() == [] and log.count("rest") == 0
    assert OperationLog().capacity == DEFAULT_CAPACITY
    with pytest.raises(ValueError):
        OperationLog(capacity=0)


FIRST_PARTY = {"messages", "supervision", "actors", "core", "app", "cli", "supervisor", "bench"}
"""Our packages above the simulator's layer (it may import kalshi_api and webstack only)."""


def test_kalshi_sim_when_imports_scanned_uses_only_kalshi_api_and_webstack() -> None:
    package = Path(__file__).resolve().parents[2] / "kalshi_sim"
    offending: list[str] = []
    for module in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(), str(module))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                root = name.split(".")[0]
                if root in FIRST_PARTY or root == "tests":
                    offending.append(f"{module.name}: {name}")
    assert offending == []


def test_sim_faults_when_compared_with_the_fault_vocabulary_are_the_same_names() -> None:
    """The simulator keeps its own fault names (it may not import ``messages``); every
    exchange fault ``inject`` accepts must be one the simulator carries out, and no more."""
    from messages.fault_kinds import ExchangeFault

    assert {f.value for f in SimFault} == {f.value for f in ExchangeFault}
