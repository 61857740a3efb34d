"""The console server's HTTP side over real loopback sockets: inject auth and validation,
status, failure isolation, start/stop. The feed and operations endpoints: test_console_feed.py."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest

from app.console_server import MAX_BODY_BYTES
from app.console_server import ConsoleServer as ControlServer
from app.console_server import ConsoleServerError as ControlServerError
from app.console_trading import status_part
from messages.faults import ActorFault, ExchangeFault, FaultTarget, InjectFault

TOKEN = "right-token-0123456789abcdefghijklmnopqrstu"
WRONG_TOKEN = "wrong-token-zyxwvutsrqponmlkjihgfedcba987"
STATUS = {"state": "READY", "actors": {"orderbook": "running"}, "uptime_seconds": 12.5}


class RecordingInject:
    """An ``inject`` callback that remembers what it got and can be told to fail."""

    def __init__(self) -> None:
        self.calls: list[InjectFault] = []
        self.error: Exception | None = None
        self._lock = threading.Lock()

    def __call__(self, fault: InjectFault) -> Mapping[str, Any]:
        with self._lock:
            self.calls.append(fault)
        if self.error is not None:
            raise self.error
        return {"accepted": True, "target": fault.target, "fault": fault.fault}


@pytest.fixture
def recorder() -> RecordingInject:
    return RecordingInject()


@pytest.fixture
def server(recorder: RecordingInject) -> Iterator[ControlServer]:
    control = ControlServer(port=0, token=TOKEN, status=lambda: STATUS, inject=recorder)
    control.start()
    try:
        yield control
    finally:
        control.stop()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=5.0) as http:
        yield http


def _post(
    client: httpx.Client, server: ControlServer, body: object, token: str | None = TOKEN
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.post(f"{server.url}/inject", json=body, headers=headers)


def _raw_request(server: ControlServer, request: bytes) -> bytes:
    """Send bytes no well-behaved client would, and read the reply until the server closes."""
    host, port = server.address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5.0) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _one_line_error(response: httpx.Response) -> str:
    error = response.json()["error"]
    assert isinstance(error, str)
    assert error
    assert "\n" not in error
    return error


def test_inject_when_token_is_right_passes_exact_fault_to_callback(
    server: ControlServer, client: httpx.Client, recorder: RecordingInject
) -> None:
    response = _post(
        client, server, {"target": "orderbook", "fault": "slow", "seconds": 2.5, "count": 3}
    )

    assert response.status_code == 200
    assert response.json() == {"accepted": True, "target": "orderbook", "fault": "slow"}
    assert recorder.calls == [
        InjectFault(target=FaultTarget.ORDERBOOK, fault=ActorFault.SLOW, seconds=2.5, count=3)
    ]


def test_inject_when_exchange_fault_targets_exchange_passes_exchange_fault(
    server: ControlServer, client: httpx.Client, recorder: RecordingInject
) -> None:
    response = _post(client, server, {"target": "exchange", "fault": "ws_drop"})

    assert response.status_code == 200
    assert recorder.calls == [InjectFault(target=FaultTarget.EXCHANGE, fault=ExchangeFault.WS_DROP)]
    assert isinstance(recorder.calls[0].fault, ExchangeFault)


@pytest.mark.parametrize(
    "authorization",
    [f"Bearer {WRONG_TOKEN}", None, "Bearer", f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x"],
    ids=["wrong", "missing", "empty", "prefix", "longer"],
)
def test_inject_when_token_is_wrong_or_missing_returns_401_and_logs_without_tokens(
    server: ControlServer,
    client: httpx.Client,
    recorder: RecordingInject,
    caplog: pytest.LogCaptureFixture,
    authorization: str | None,
) -> None:
    caplog.set_level(logging.WARNING, logger="kalshi_supervisor.app.console_server")
    headers = {"Authorization": authorization} if authorization is not None else {}

    response = client.post(
        f"{server.url}/inject", json={"target": "orderbook", "fault": "crash"}, headers=headers
    )

    assert response.status_code == 401
    assert response.json() == {"error": "invalid or missing control token"}
    assert recorder.calls == []
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "127.0.0.1" in warnings[0].getMessage()
    assert TOKEN[:-1] not in caplog.text  # neither the real token nor any prefix-sharing guess
    assert WRONG_TOKEN not in caplog.text


def test_inject_when_authorization_scheme_is_not_bearer_returns_401(
    server: ControlServer, client: httpx.Client, recorder: RecordingInject
) -> None:
    response = client.post(
        f"{server.url}/inject",
        json={"target": "orderbook", "fault": "crash"},
        headers={"Authorization": f"Basic {TOKEN}"},
    )

    assert response.status_code == 401
    assert recorder.calls == []


def test_inject_when_authorization_header_is_not_ascii_is_refused_and_keeps_serving(
    server: ControlServer, client: httpx.Client, recorder: RecordingInject
) -> None:
    body = b'{"target": "orderbook", "fault": "crash"}'
    reply = _raw_request(
        server,
        f"POST /inject HTTP/1.1\r\nHost: {server.address}\r\n".encode()
        + b"Authorization: Bearer \xe9\xff\x00t\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body,
    )

    # The HTTP parser refuses a NUL in a header before any route sees it.
    assert reply.startswith((b"HTTP/1.1 400", b"HTTP/1.1 401"))
    assert recorder.calls == []
    assert client.get(f"{server.url}/status").status_code == 200


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"{not json", "invalid JSON"),
        (b"", "must be a JSON object"),
        (b'["orderbook", "crash"]', "must be a JSON object"),
        (b"\xff\xfe\x00garbage", "invalid JSON"),
        (b"[" * 5000 + b"]" * 5000, ""),
        (b'{"target": "orderbook", "fault": "ws_drop"}', "'ws_drop' is an exchange fault"),
        (b'{"target": "exchange", "fault": "crash"}', "'crash' is an actor fault"),
        (b'{"target": "orderbook", "fault": "explode"}', "fault: Input should be one of"),
        (b'{"target": "The Moon!", "fault": "crash"}', "target:"),
        (b'{"target": "sync", "fault": "slow", "seconds": -1}', "seconds:"),
        (b'{"target": "sync", "fault": "crash", "token": "x"}', "token: Extra inputs"),
        (b'{"fault": "crash"}', "target: Field required"),
    ],
    ids=[
        "bad-json",
        "empty",
        "array",
        "not-utf8",
        "deeply-nested",
        "exchange-fault-on-actor",
        "actor-fault-on-exchange",
        "unknown-fault",
        "unknown-target",
        "negative-seconds",
        "extra-field",
        "missing-target",
    ],
)
def test_inject_when_body_is_invalid_returns_400_with_one_line_error(
    server: ControlServer,
    client: httpx.Client,
    recorder: RecordingInject,
    content: bytes,
    expected: str,
) -> None:
    response = client.post(
        f"{server.url}/inject",
        content=content,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert expected in _one_line_error(response)
    assert recorder.calls == []


def test_inject_when_fault_is_unknown_lists_every_accepted_fault(
    server: ControlServer, client: httpx.Client
) -> None:
    response = _post(client, server, {"target": "orderbook", "fault": "explode"})

    error = _one_line_error(response)
    assert all(f"'{f.value}'" in error for f in [*ActorFault, *ExchangeFault])


def test_inject_when_body_exceeds_cap_returns_413(
    server: ControlServer, client: httpx.Client, recorder: RecordingInject
) -> None:
    response = client.post(
        f"{server.url}/inject",
        content=b" " * (MAX_BODY_BYTES + 1),
        headers={"Authorization": f"Bearer {TOKEN}"},
    )

    assert response.status_code == 413
    _one_line_error(response)
    assert recorder.calls == []


@pytest.mark.parametrize("length", ["-1", "abc", "\u00b2", "1e3"])
def test_inject_when_content_length_is_invalid_returns_400_and_keeps_serving(
    server: ControlServer, client: httpx.Client, recorder: RecordingInject, length: str
) -> None:
    reply = _raw_request(
        server,
        f"POST /inject HTTP/1.1\r\nHost: {server.address}\r\n".encode()
        + f"Authorization: Bearer {TOKEN}\r\nContent-Length: {length}\r\n\r\n".encode("latin-1")
        + b"{}",
    )

    assert reply.startswith(b"HTTP/1.1 400")
    assert recorder.calls == []
    assert client.get(f"{server.url}/status").status_code == 200


def test_inject_when_callback_raises_returns_500_and_server_keeps_serving(
    server: ControlServer, client: httpx.Client, recorder: RecordingInject
) -> None:
    recorder.error = RuntimeError("orderbook actor is\nnot running")

    failed = _post(client, server, {"target": "orderbook", "fault": "crash"})
    recorder.error = None
    status = client.get(f"{server.url}/status")
    retried = _post(client, server, {"target": "orderbook", "fault": "crash"})

    assert failed.status_code == 500
    assert _one_line_error(failed) == "RuntimeError: orderbook actor is not running"
    assert status.status_code == 200
    assert retried.status_code == 200
    assert len(recorder.calls) == 2


def test_inject_when_callback_returns_unserialisable_value_returns_500(
    client: httpx.Client,
) -> None:
    control = ControlServer(
        port=0, token=TOKEN, status=lambda: STATUS, inject=lambda fault: {"x": object()}
    )
    control.start()
    try:
        response = _post(client, control, {"target": "orderbook", "fault": "crash"})
    finally:
        control.stop()

    assert response.status_code == 500
    assert _one_line_error(response).startswith("TypeError:")


def test_status_when_no_token_is_sent_returns_status_json(
    server: ControlServer, client: httpx.Client
) -> None:
    response = client.get(f"{server.url}/status")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {**STATUS, "trading": status_part(True, None)}


def test_status_when_callback_raises_returns_500_and_server_keeps_serving(
    client: httpx.Client, recorder: RecordingInject
) -> None:
    def broken_status() -> Mapping[str, Any]:
        raise KeyError("state")

    control = ControlServer(port=0, token=TOKEN, status=broken_status, inject=recorder)
    control.start()
    try:
        failed = client.get(f"{control.url}/status")
        injected = _post(client, control, {"target": "sync", "fault": "hang"})
    finally:
        control.stop()

    assert failed.status_code == 500
    assert _one_line_error(failed) == "KeyError: 'state'"
    assert injected.status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nope"),
        ("GET", "/inject"),
        ("POST", "/status"),
        ("PUT", "/inject"),
        ("DELETE", "/status"),
    ],
)
def test_request_when_route_is_unknown_returns_404_or_405_json(
    server: ControlServer, client: httpx.Client, recorder: RecordingInject, method: str, path: str
) -> None:
    response = client.request(
        method, f"{server.url}{path}", headers={"Authorization": f"Bearer {TOKEN}"}
    )

    assert response.status_code == (404 if path == "/nope" else 405)
    _one_line_error(response)
    assert recorder.calls == []


def test_request_when_request_line_is_garbage_returns_400_and_keeps_serving(
    server: ControlServer, client: httpx.Client
) -> None:
    reply = _raw_request(server, b"\x16\x03\x01 not http at all\r\n\r\n")

    head, _, body = reply.partition(b"\r\n\r\n")
    # uvicorn answers an unparseable request itself (plain text), before the app runs.
    assert head.startswith(b"HTTP/1.1 400")
    assert b"\n" not in body.strip()
    assert client.get(f"{server.url}/status").status_code == 200


def test_request_when_served_writes_nothing_to_stderr(
    server: ControlServer, client: httpx.Client, capfd: pytest.CaptureFixture[str]
) -> None:
    client.get(f"{server.url}/status")
    _post(client, server, {"target": "orderbook", "fault": "crash"}, token=WRONG_TOKEN)
    _raw_request(server, b"garbage\r\n\r\n")

    assert capfd.readouterr().err == ""


def test_start_when_port_is_zero_binds_a_free_loopback_port(recorder: RecordingInject) -> None:
    control = ControlServer(port=0, token=TOKEN, status=lambda: STATUS, inject=recorder)
    control.start()
    try:
        host, port = control.address.rsplit(":", 1)
        assert host == "127.0.0.1"
        assert int(port) > 0
        assert control.url == f"http://127.0.0.1:{port}"
    finally:
        control.stop()


def test_start_when_port_is_in_use_raises_one_line_control_server_error(
    recorder: RecordingInject,
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        port = occupant.getsockname()[1]
        control = ControlServer(port=port, token=TOKEN, status=lambda: STATUS, inject=recorder)
        before = set(threading.enumerate())

        with pytest.raises(ControlServerError) as caught:
            control.start()

        assert str(caught.value) == (
            f"status port 127.0.0.1:{port} is already in use "
            "(pass --status-port 0 for any free port)"
        )
        assert set(threading.enumerate()) == before


def test_start_when_already_running_raises_control_server_error(server: ControlServer) -> None:
    with pytest.raises(ControlServerError, match="already running"):
        server.start()


def test_init_when_token_is_empty_raises_value_error(recorder: RecordingInject) -> None:
    with pytest.raises(ValueError, match="token"):
        ControlServer(port=0, token="", status=lambda: STATUS, inject=recorder)


def test_stop_when_requests_were_served_leaves_no_thread_and_frees_the_port(
    client: httpx.Client, recorder: RecordingInject
) -> None:
    before = set(threading.enumerate())
    control = ControlServer(port=0, token=TOKEN, status=lambda: STATUS, inject=recorder)
    control.start()
    for _ in range(5):
        client.get(f"{control.url}/status")
        _post(client, control, {"target": "trading", "fault": "disconnect"})
    port = int(control.address.rsplit(":", 1)[1])

    control.stop()

    assert set(threading.enumerate()) == before
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()


def test_stop_when_called_twice_or_before_start_is_a_no_op(recorder: RecordingInject) -> None:
    control = ControlServer(port=0, token=TOKEN, status=lambda: STATUS, inject=recorder)
    control.stop()
    control.start()

    control.stop()
    control.stop()

    assert "running=False" in repr(control)


def test_repr_when_running_does_not_reveal_token(server: ControlServer) -> None:
    assert TOKEN not in repr(server)
