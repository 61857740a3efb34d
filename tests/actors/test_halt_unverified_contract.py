"""A halt that never manages to read the resting orders must not report "none rest":
``remaining`` stays what the gateway knew of (our tracked orders and creates in flight)
until a read shows fewer.

Over real loopback sockets against a scripted exchange whose cancel-all answers 204 and
whose every order listing answers 503.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actors.gateway_io import run_halt
from kalshi_api.orders import OrderApi
from kalshi_api.rest import KalshiRestClient, RetryPolicy
from tests.kalshi_api.scripted_exchange import Answer, ScriptedExchange

ORDERS = "/portfolio/orders"
CANCEL_ALL = "/portfolio/events/orders"
UNAVAILABLE = b'{"error":{"code":"service_unavailable","message":"down"}}'


@pytest.fixture
def exchange() -> Iterator[ScriptedExchange]:
    scripted = ScriptedExchange().start()
    try:
        yield scripted
    finally:
        scripted.stop()


def test_halt_when_every_read_fails_reports_what_it_knew_of_as_remaining(
    exchange: ScriptedExchange,
) -> None:
    exchange.script("DELETE", CANCEL_ALL, Answer(204))
    exchange.script("GET", ORDERS, Answer(503, UNAVAILABLE))
    client = KalshiRestClient(exchange.url, retry=RetryPolicy(max_attempts=1))
    api = OrderApi(client, grid_for=lambda _ticker: None)
    try:
        outcome = run_halt(api, prefix="ks-00aa", view=lambda: ({"o-1", "o-2"}, 1),
                           timeout=0.3, sleep=lambda _: None)
    finally:
        client.close()

    assert exchange.count("DELETE", CANCEL_ALL) >= 1
    assert exchange.count("GET", ORDERS) >= 1 and outcome.verify_reads >= 1
    assert outcome.remaining == 3  # two tracked, one create in flight: none verified gone
