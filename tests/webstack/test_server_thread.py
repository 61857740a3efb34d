"""The server thread's contract: bound when start() returns, gone when stop() returns."""

from __future__ import annotations

import socket
import threading

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from webstack.server_thread import ServerStartError, ServerThread, is_loopback


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


APP = Starlette(routes=[Route("/", hello)])


def test_start_when_port_zero_serves_on_the_reported_port_at_once() -> None:
    with ServerThread(APP, name="t") as server:
        assert server.port > 0
        assert httpx.get(server.url(path="/"), timeout=5.0).text == "hello"


def test_stop_when_serving_ends_the_thread_and_frees_the_port() -> None:
    server = ServerThread(APP, name="t").start()
    port = server.port
    assert server.stop()
    assert not server.running
    assert not any(t.name == "t-server" for t in threading.enumerate())
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))


def test_start_when_port_in_use_raises_one_line() -> None:
    with ServerThread(APP, name="first") as first:
        with pytest.raises(ServerStartError) as caught:
            ServerThread(APP, port=first.port, name="second").start()
        assert "cannot listen on 127.0.0.1" in str(caught.value)
        assert "\n" not in str(caught.value)


def test_start_when_host_unknown_raises_one_line() -> None:
    with pytest.raises(ServerStartError, match="cannot resolve host"):
        ServerThread(APP, host="no-such-host.invalid", name="t").start()


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.0.0.9", True),
        ("localhost", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("192.168.1.2", False),
        ("example.com", False),
    ],
)
def test_is_loopback_when_given_host_classifies(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_connection_when_accepted_has_nagle_off_so_responses_never_wait_for_delayed_acks() -> None:
    with ServerThread(APP, name="t") as server, httpx.Client(trust_env=False) as client:
        assert client.get(server.url(path="/"), timeout=5.0).text == "hello"
        assert server._server is not None
        connections = list(server._server.server_state.connections)  # the kept-alive one
        assert connections
        for connection in connections:
            sock = connection.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
