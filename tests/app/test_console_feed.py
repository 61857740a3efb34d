"""The console's event feed and operations endpoints over real sockets, without a browser.

Events are real event models recorded into a real :class:`EventRecorder`; clients are real
WebSocket and HTTP clients on loopback.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from app.console_server import SLOW_CLIENT_CLOSE, ConsoleServer, allowed_hosts
from app.event_log import EventRecorder
from messages.events import (
    ExchangePaused,
    ExchangeResumed,
    RestartScheduled,
    StageFailureReported,
    StateTransition,
)
from messages.faults import FaultTarget, InjectFault
from messages.metadata import OrderbookConnectMetadata, ShutdownMetadata, StartupMetadata
from messages.states import State

TOKEN = "feed-token-0123456789abcdefghijklmnopqrstuvw"
WAIT = 10.0


def _inject(fault: InjectFault) -> dict[str, Any]:
    return {"accepted": True}


def transition(to_state: State, from_state: State = State.STARTUP) -> StateTransition:
    metadata: Any = {
        State.INITIALIZING: StartupMetadata(
            environment="local", host="127.0.0.1", log_level="INFO", mode="discovery"
        ),
        State.ORDERBOOK_CONNECT: OrderbookConnectMetadata(
            ws_url="ws://x", markets=("A", "B"), market_count=2, environment="local"
        ),
    }.get(to_state, ShutdownMetadata(reason="test"))
    return StateTransition(
        from_state=from_state, to_state=to_state, context="test", metadata=metadata, duration_ms=1.0
    )


def failure(n: int, reason_size: int = 10) -> StageFailureReported:
    return StageFailureReported(
        stage="orderbook",
        state=State.READY,
        error_type="Test",
        reason=f"{n}:" + "x" * reason_size,
    )


@pytest.fixture
def recorder() -> EventRecorder:
    return EventRecorder()


@pytest.fixture
def server(recorder: EventRecorder) -> Iterator[ConsoleServer]:
    console = ConsoleServer(recorder, port=0, token=TOKEN, inject=_inject)
    console.start()
    try:
        yield console
    finally:
        console.stop()


def ws_url(server: ConsoleServer, query: str = "") -> str:
    return f"ws://{server.address}/ws{query}"


def receive(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=WAIT))


def receive_ids(ws: ClientConnection, count: int) -> list[int]:
    return [receive(ws)["id"] for _ in range(count)]


# -- the feed ------------------------------------------------------------------------------------
def test_feed_when_connected_sends_hello_then_history_then_live_events(
    server: ConsoleServer, recorder: EventRecorder
) -> None:
    recorder(transition(State.INITIALIZING))
    recorder(transition(State.ORDERBOOK_CONNECT, State.INITIALIZING))
    with connect(ws_url(server)) as ws:
        hello = receive(ws)
        history = [receive(ws), receive(ws)]
        recorder(failure(3))
        live = receive(ws)

    assert hello["type"] == "hello"
    assert (hello["since"], hello["last_id"], hello["missed"]) == (0, 2, False)
    assert [e["id"] for e in history] == [1, 2]
    assert history[1]["metadata"] == {
        "ws_url": "ws://x",
        "markets": ["A", "B"],
        "market_count": 2,
        "environment": "local",
    }
    # The same object as an --events line, plus its id.
    expected = json.loads(recorder.events()[2].model_dump_json())
    assert live == {"id": 3, **expected}


def test_feed_when_since_is_given_sends_exactly_the_missed_events(
    server: ConsoleServer, recorder: EventRecorder
) -> None:
    for n in range(5):
        recorder(failure(n))
    with connect(ws_url(server, "?since=2")) as ws:
        hello = receive(ws)
        ids = receive_ids(ws, 3)
        recorder(failure(5))
        ids.append(receive(ws)["id"])

    assert (hello["since"], hello["missed"]) == (2, False)
    assert ids == [3, 4, 5, 6]


def test_feed_when_since_is_older_than_the_ring_says_so_and_backfills_the_cards() -> None:
    recorder = EventRecorder(capacity=4)
    recorder(transition(State.INITIALIZING))
    recorder(transition(State.ORDERBOOK_CONNECT, State.INITIALIZING))
    for n in range(8):
        recorder(failure(n))
    console = ConsoleServer(recorder, port=0, token=TOKEN, inject=_inject).start()
    try:
        with connect(ws_url(console, "?since=1")) as ws:
            hello = receive(ws)
            received = [receive(ws) for _ in range(5)]
    finally:
        console.stop()

    assert hello["missed"] is True
    assert "2..6 are no longer retained" in hello["missed_note"]
    # The ORDERBOOK_CONNECT card's transition (id 2) comes back first, then the ring (7..10).
    assert [e["id"] for e in received] == [2, 7, 8, 9, 10]
    assert received[0]["to_state"] == "orderbook_connect"


def test_feed_when_since_is_not_a_number_closes_with_a_reason(server: ConsoleServer) -> None:
    with connect(ws_url(server, "?since=abc")) as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=WAIT)

    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    assert "since" in closed.value.rcvd.reason


def test_feed_when_two_threads_publish_delivers_every_id_once_in_order(
    server: ConsoleServer, recorder: EventRecorder
) -> None:
    with connect(ws_url(server)) as ws:
        receive(ws)  # hello

        def publish() -> None:
            for n in range(300):
                recorder(failure(n))

        threads = [threading.Thread(target=publish) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        ids = receive_ids(ws, 600)

    assert ids == list(range(1, 601))


def _raw_feed_client(server: ConsoleServer) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads (tiny buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: {server.address}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    return sock


def _close_frame(stream: bytes) -> tuple[int, str] | None:
    """The (code, reason) of the first close frame in a server's unmasked frame stream."""
    _, _, stream = stream.partition(b"\r\n\r\n")  # the handshake reply
    while len(stream) >= 2:
        opcode, length, offset = stream[0] & 0x0F, stream[1] & 0x7F, 2
        if length == 126:
            length, offset = int.from_bytes(stream[2:4], "big"), 4
        elif length == 127:
            length, offset = int.from_bytes(stream[2:10], "big"), 10
        payload, stream = stream[offset : offset + length], stream[offset + length :]
        if opcode == 0x8:
            return int.from_bytes(payload[:2], "big"), payload[2:].decode()
    return None


@pytest.mark.slow
def test_feed_when_client_stops_reading_is_closed_without_blocking_the_publisher(
    recorder: EventRecorder,
) -> None:
    # The raw client never reads: kernel buffers fill, a send stalls, and the server must
    # close this client rather than wait for it (nor make the publisher wait).
    server = ConsoleServer(recorder, port=0, token=TOKEN, inject=_inject, send_timeout=0.5)
    server.start()
    try:
        slow = _raw_feed_client(server)
        with connect(ws_url(server)) as healthy:
            receive(healthy)
            total = 1500
            for n in range(total):
                recorder(failure(n, reason_size=8000))  # returns at once: nobody waits
            got = receive_ids(healthy, total)
        chunks = []
        # The latest the server can close it is uvicorn's ping interval + ping timeout (20 s)
        # after it stopped answering; wait past that, generously, for a loaded machine.
        slow.settimeout(45.0)
        while chunk := slow.recv(1 << 20):  # the server closes it: read to EOF
            chunks.append(chunk)
        slow.close()
        metrics = httpx.get(f"{server.url}/metrics", timeout=WAIT).text
    finally:
        server.stop()

    assert got == list(range(1, total + 1))
    close = _close_frame(b"".join(chunks))
    assert close is not None
    # A client that reads nothing cannot be handed a reason through its full buffer: the
    # send that stalled leaves uvicorn to close with "internal error" (1011). A client that
    # is merely behind gets SLOW_CLIENT_CLOSE with "too slow ... resume with ?since=N".
    assert close[0] in (1011, SLOW_CLIENT_CLOSE)
    # Cut off by the send timeout (counted as dropped) or, on a machine so loaded that the
    # stalled send never reaches it first, by uvicorn's ping timeout: either way it is gone.
    assert "kalshi_supervisor_console_clients 0.0" in metrics


def test_feed_when_server_restarts_resumes_by_id_without_gap_or_duplicate(
    server: ConsoleServer, recorder: EventRecorder
) -> None:
    recorder(failure(1))
    with connect(ws_url(server)) as ws:
        hello = receive(ws)
        seen = receive_ids(ws, 1)
    server.stop()
    recorder(failure(2))  # published while nobody serves
    recorder(failure(3))
    server.start()
    with connect(ws_url(server, f"?since={seen[-1]}")) as ws:
        again = receive(ws)
        seen += receive_ids(ws, 2)

    assert again["instance"] == hello["instance"]
    assert seen == [1, 2, 3]


# -- operations endpoints ------------------------------------------------------------------------
def test_alive_ready_and_metrics_follow_the_recorded_state(
    server: ConsoleServer, recorder: EventRecorder
) -> None:
    base = server.url
    assert httpx.get(f"{base}/alive").json() == {"alive": True}
    not_ready = httpx.get(f"{base}/ready")
    recorder(transition(State.INITIALIZING))
    recorder(transition(State.READY, State.KALSHI_DATA_SYNC))
    recorder(RestartScheduled(stages=("orderbook", "trading"), attempt=1, delay_ms=100))
    ready = httpx.get(f"{base}/ready")
    metrics = httpx.get(f"{base}/metrics")

    assert (not_ready.status_code, not_ready.json()["state"]) == (503, "startup")
    assert ready.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'kalshi_supervisor_state{state="ready"} 1.0' in text
    assert 'kalshi_supervisor_state{state="startup"} 0.0' in text
    assert 'kalshi_supervisor_transitions_total{state="ready"} 1.0' in text
    assert 'kalshi_supervisor_restarts_total{stage="trading"} 1.0' in text
    assert "kalshi_supervisor_time_in_state_seconds" in text
    # KALSHI_DATA_SYNC -> READY carried duration_ms=1.0: the last sync took 1 ms.
    assert "kalshi_supervisor_sync_duration_seconds 0.001" in text


def paused(index: int | None, scope: str, estimate: datetime | None = None) -> ExchangePaused:
    return ExchangePaused(exchange_index=index, scope=scope, resume_estimate=estimate)  # type: ignore[arg-type]


def resumed(index: int | None, scope: str) -> ExchangeResumed:
    return ExchangeResumed(exchange_index=index, scope=scope, paused_ms=5)  # type: ignore[arg-type]


def pause_series(text: str) -> list[str]:
    return sorted(
        line
        for line in text.splitlines()
        if line.startswith(
            ("kalshi_supervisor_exchange_paused", "kalshi_supervisor_exchange_pauses")
        )
    )


def test_metrics_when_pauses_start_and_end_count_them_and_show_one_series_each(
    server: ConsoleServer, recorder: EventRecorder
) -> None:
    base = server.url
    calm = pause_series(httpx.get(f"{base}/metrics").text)
    recorder(paused(None, "exchange"))
    recorder(paused(2, "trading"))
    recorder(paused(2, "trading", datetime(2026, 12, 3, 10, tzinfo=UTC)))  # a new estimate
    both = pause_series(httpx.get(f"{base}/metrics").text)
    recorder(resumed(None, "exchange"))
    one = pause_series(httpx.get(f"{base}/metrics").text)
    recorder(resumed(2, "trading"))
    none = pause_series(httpx.get(f"{base}/metrics").text)

    assert calm == none == ["kalshi_supervisor_exchange_pauses 0.0"]
    assert both == [
        'kalshi_supervisor_exchange_paused{scope="exchange",shard="all"} 1.0',
        'kalshi_supervisor_exchange_paused{scope="trading",shard="2"} 1.0',
        "kalshi_supervisor_exchange_pauses 2.0",
    ]
    assert one == [
        'kalshi_supervisor_exchange_paused{scope="trading",shard="2"} 1.0',
        "kalshi_supervisor_exchange_pauses 1.0",
    ]


def test_feed_hello_carries_the_pauses_in_force_and_the_event_they_include(
    server: ConsoleServer, recorder: EventRecorder
) -> None:
    """A page that starts over draws its pause banner from the hello, then applies only
    pause events with a later id (the ring may no longer hold the pause's first event)."""
    estimate = datetime(2026, 12, 3, 10, tzinfo=UTC)
    recorder(paused(None, "exchange"))
    recorder(paused(2, "trading", estimate))
    recorder(resumed(None, "exchange"))
    with connect(ws_url(server)) as ws:
        hello = receive(ws)

    assert hello["pauses_as_of"] == 3
    [pause] = hello["exchange_pauses"]
    assert pause["exchange_index"] == 2 and pause["scope"] == "trading"
    assert datetime.fromisoformat(pause["resume_estimate"]) == estimate
    assert datetime.fromisoformat(pause["since"]) == recorder.events()[1].timestamp


def test_metrics_when_two_servers_run_each_has_its_own_registry() -> None:
    first, second = EventRecorder(), EventRecorder()
    first(transition(State.INITIALIZING))
    with (
        ConsoleServer(first, port=0, token=TOKEN, inject=_inject) as a,
        ConsoleServer(second, port=0, token=TOKEN, inject=_inject) as b,
    ):
        text_a = httpx.get(f"{a.url}/metrics").text
        text_b = httpx.get(f"{b.url}/metrics").text

    assert 'kalshi_supervisor_state{state="initializing"} 1.0' in text_a
    assert 'kalshi_supervisor_state{state="startup"} 1.0' in text_b


def test_page_is_served_with_its_assets(server: ConsoleServer) -> None:
    page = httpx.get(f"{server.url}/")
    script = httpx.get(f"{server.url}/static/console.js")

    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "/static/console.js" in page.text
    assert script.status_code == 200


# -- security ------------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1:1"])
def test_request_when_host_header_is_foreign_is_refused(server: ConsoleServer, host: str) -> None:
    response = httpx.get(f"{server.url}/status", headers={"Host": host})

    assert response.status_code == 421
    assert "unknown Host" in response.json()["error"]


def test_request_when_host_is_localhost_or_the_bound_address_is_served(
    server: ConsoleServer,
) -> None:
    for host in (f"localhost:{server.port}", server.address):
        assert httpx.get(f"{server.url}/status", headers={"Host": host}).status_code == 200


def test_feed_when_origin_is_foreign_is_refused(server: ConsoleServer) -> None:
    with pytest.raises(InvalidStatus):
        connect(ws_url(server), origin="http://evil.example")  # type: ignore[arg-type]
    with connect(ws_url(server), origin=f"http://localhost:{server.port}") as ws:  # type: ignore[arg-type]
        assert receive(ws)["type"] == "hello"


def test_non_loopback_bind_warns_and_needs_the_token_for_reads(
    recorder: EventRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="kalshi_supervisor.app.console_server")
    with ConsoleServer(recorder, "0.0.0.0", 0, token=TOKEN, inject=_inject) as console:
        base = f"http://127.0.0.1:{console.port}"
        refused = httpx.get(f"{base}/status")
        allowed = httpx.get(f"{base}/status", headers={"Authorization": f"Bearer {TOKEN}"})
        metrics = httpx.get(f"{base}/metrics")
        with connect(f"ws://127.0.0.1:{console.port}/ws") as ws, pytest.raises(ConnectionClosed):
            ws.recv(timeout=WAIT)
        with connect(f"ws://127.0.0.1:{console.port}/ws?token={TOKEN}") as ws:
            hello = receive(ws)

    assert refused.status_code == 401
    assert metrics.status_code == 401
    assert allowed.status_code == 200
    assert hello["type"] == "hello"
    assert any("reachable from other machines" in r.getMessage() for r in caplog.records)
    assert TOKEN not in caplog.text


@pytest.mark.parametrize("bind", ["0.0.0.0", "::"])
def test_request_when_bind_is_wildcard_and_host_is_foreign_is_refused(
    recorder: EventRecorder, bind: str
) -> None:
    """A wildcard bind keeps the Host check: loopback and the configured public names only."""
    with ConsoleServer(
        recorder, bind, 0, token=TOKEN, inject=_inject, public_names=("console.example",)
    ) as console:
        port = console.port
        loopback = "127.0.0.1" if bind == "0.0.0.0" else "[::1]"
        base = f"http://{loopback}:{port}"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        foreign = [
            httpx.get(f"{base}{path}", headers={"Host": "evil.example", **auth})
            for path in ("/ready", "/alive", "/status", "/")
        ]
        wrong_port = httpx.get(f"{base}/status", headers={"Host": "console.example:1", **auth})
        public = httpx.get(f"{base}/status", headers={"Host": f"console.example:{port}", **auth})
        local = httpx.get(f"{base}/status", headers={"Host": f"localhost:{port}", **auth})
        with pytest.raises(InvalidStatus):
            connect(
                f"ws://{loopback}:{port}/ws?token={TOKEN}",
                origin="http://evil.example",  # type: ignore[arg-type]
            )

    assert [r.status_code for r in foreign] == [421, 421, 421, 421]
    assert wrong_port.status_code == 421
    assert public.status_code == 200 and public.json()["state"] == "startup"
    assert local.status_code == 200


def testallowed_hosts_when_public_names_given_keep_their_port_or_take_the_bound_one() -> None:
    allowed = allowed_hosts("0.0.0.0", 8005, ("Console.Example", "10.0.0.5:9000", " "))
    assert allowed == {
        "localhost:8005",
        "127.0.0.1:8005",
        "[::1]:8005",
        "console.example:8005",
        "10.0.0.5:9000",
    }
    assert "0.0.0.0:8005" not in allowed


def _slow_clients(console: ConsoleServer, count: int) -> list[socket.socket]:
    """``count`` connections that each send the start of a request and then nothing."""
    host, port = console.address.rsplit(":", 1)
    clients = []
    for _ in range(count):
        sock = socket.create_connection((host, int(port)), timeout=WAIT)
        sock.sendall(b"GET /status HTTP/1.1\r\nHo")
        clients.append(sock)
    return clients


def _wait_for_flood(console: ConsoleServer) -> None:
    """Until the server counts the slow connections (an ordinary request gets 503)."""
    deadline = threading.Event()
    timer = threading.Timer(WAIT, deadline.set)
    timer.start()
    try:
        while httpx.get(f"{console.url}/alive").status_code != 503:
            assert not deadline.is_set(), "the slow connections never filled the server"
    finally:
        timer.cancel()


def test_inject_when_console_is_flooded_with_slow_connections_still_reaches_the_callback(
    recorder: EventRecorder,
) -> None:
    injected: list[InjectFault] = []

    def inject(fault: InjectFault) -> dict[str, Any]:
        injected.append(fault)
        return {"accepted": True}

    with ConsoleServer(
        recorder, port=0, token=TOKEN, inject=inject, max_connections=50, header_timeout=120.0
    ) as console:
        slow = _slow_clients(console, 250)
        try:
            _wait_for_flood(console)
            refused = httpx.get(f"{console.url}/status")
            wrong_token = httpx.post(
                f"{console.url}/inject",
                json={"target": "orderbook", "fault": "crash"},
                headers={"Authorization": "Bearer not-the-token"},
            )
            answered = httpx.post(
                f"{console.url}/inject",
                json={"target": "orderbook", "fault": "crash"},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            served_over_limit = console.connections.control_served
        finally:
            for sock in slow:
                sock.close()

    assert refused.status_code == 503  # the flood is real: ordinary requests are turned away
    assert wrong_token.status_code == 503  # no lane without the token
    assert answered.status_code == 200, answered.text
    assert [f.target for f in injected] == [FaultTarget.ORDERBOOK]
    assert served_over_limit == 1
    assert console.connections.control_in_flight == 0  # the lane's slot was given back


def test_connections_when_headers_do_not_complete_in_time_are_closed(
    recorder: EventRecorder,
) -> None:
    with ConsoleServer(
        recorder, port=0, token=TOKEN, inject=_inject, max_connections=50, header_timeout=0.5
    ) as console:
        slow = _slow_clients(console, 250)
        try:
            for sock in slow:
                assert sock.recv(1024) == b""  # closed by the server, not by us
            closed = console.connections.closed_slow
            after = httpx.get(f"{console.url}/alive")
        finally:
            for sock in slow:
                sock.close()

    assert closed == 250
    assert after.status_code == 200  # the slots are free again


def test_feed_when_open_longer_than_the_header_deadline_stays_open(
    recorder: EventRecorder,
) -> None:
    """The deadline is for request headers: a feed client (headers long complete) is kept."""
    with ConsoleServer(recorder, port=0, token=TOKEN, inject=_inject, header_timeout=0.5) as c:
        with connect(ws_url(c)) as ws:
            assert receive(ws)["type"] == "hello"
            (slow,) = _slow_clients(c, 1)  # opened after the feed, so closed after its deadline
            with slow:
                assert slow.recv(1024) == b""
            recorder(transition(State.INITIALIZING))
            event = receive(ws)
        closed = c.connections.closed_slow
    assert event["to_state"] == "initializing"
    assert closed == 1


def test_connections_beyond_the_limit_get_503(recorder: EventRecorder) -> None:
    with ConsoleServer(recorder, port=0, token=TOKEN, inject=_inject, max_connections=3) as c:
        served = httpx.get(f"{c.url}/alive")
        with contextlib.ExitStack() as feeds:
            for _ in range(3):
                feeds.enter_context(connect(ws_url(c)))
            refused = httpx.get(f"{c.url}/alive")

    assert served.status_code == 200
    assert refused.status_code == 503
