"""Fixtures for the orderbook stream tests: an event recorder and a stream factory.

Shared by ``test_ws_session.py`` and ``test_ws_week.py``; every stream started here is
stopped at teardown, before the exchanges, and no stream or server thread may outlive a test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kalshi_api.protocol import WS_PATH
from kalshi_api.ws_session import OrderbookStream, ReconnectPolicy, StreamEvent
from kalshi_sim.exchange import EmbeddedExchange
from tests.harness import signer_for
from tests.listeners import Events

__all__ = ["WAIT", "Events", "Recorder", "StreamFactory"]

WAIT = 10.0

Recorder = Events
"""The orderbook streams' listener: the shared recorder under the name these tests use."""

StreamFactory = Callable[..., tuple[OrderbookStream, Recorder]]


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    yield
    names = {"orderbook-stream", "kalshi-sim-ws"}
    leaked = [t.name for t in threading.enumerate() if t.name in names and t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"


@pytest.fixture
def open_stream() -> Iterator[StreamFactory]:
    """Start streams on an exchange (fast reconnects, short repair timeouts); all are
    stopped at teardown, before the exchanges (fixture order)."""
    streams: list[OrderbookStream] = []

    def factory(
        exchange: EmbeddedExchange,
        *,
        auth_headers: Callable[[], dict[str, str]] | None = None,
        listener: Callable[[StreamEvent], None] | None = None,
        ws_url: str | None = None,
        **kwargs: Any,
    ) -> tuple[OrderbookStream, Recorder]:
        """``ws_url`` overrides the exchange's (a proxy in front of it)."""
        if auth_headers is None:
            signer = signer_for(exchange)
            auth_headers = lambda: signer.headers("GET", WS_PATH)  # noqa: E731
        recorder = Recorder()
        settings: dict[str, Any] = {
            "reconnect": ReconnectPolicy(
                min_delay=0.01, max_delay=0.05, max_attempts=20, healthy_after=0.0
            ),
            "snapshot_timeout": 2.0,
        }
        settings.update(kwargs)
        stream = OrderbookStream(
            ws_url or exchange.ws_url,
            exchange.markets.tickers(),
            auth_headers=auth_headers,
            listener=listener or recorder,
            **settings,
        )
        streams.append(stream)
        stream.start()
        return stream, recorder

    yield factory
    for stream in streams:
        stream.stop()
