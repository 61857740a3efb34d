"""Resolving an unknown create: a same-id resend answered 409 ``order_already_exists``
proves the first try landed, so the order is looked up again, found, and applied; never
given up on, never sent under another id.

Over real loopback sockets against a scripted exchange (tests/kalshi_api/scripted_exchange):
the create answers 503 (outcome unknown), the first lookup finds nothing although the data
covers the write (a lagging listing, as seen on demo), the resend meets 409, and the
second lookup finds the order.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import orjson
import pytest

from actors.gateway_io import resolve_unknown
from kalshi_api.errors import OutcomeUnknownError
from kalshi_api.order_models import CreateOrder
from kalshi_api.orders import OrderApi
from kalshi_api.rest import KalshiRestClient, RetryPolicy
from tests.kalshi_api.scripted_exchange import Answer, ScriptedExchange
from trading.lookup import Found, LookupPolicy

CID = "ks-00aa-1"
ORDERS = "/portfolio/events/orders"
ORDER = {
    "order_id": "o-1",
    "client_order_id": CID,
    "ticker": "KXT-1",
    "side": "yes",
    "action": "buy",
    "status": "resting",
    "yes_price_dollars": "0.5600",
    "fill_count_fp": "0.00",
    "remaining_count_fp": "3.00",
    "initial_count_fp": "3.00",
}


@pytest.fixture
def exchange() -> Iterator[ScriptedExchange]:
    scripted = ScriptedExchange().start()
    try:
        yield scripted
    finally:
        scripted.stop()


def test_resolve_unknown_when_the_resend_meets_409_looks_up_again_and_finds_the_order(
    exchange: ScriptedExchange,
) -> None:
    exchange.script("POST", ORDERS, Answer(503, b'{"error":{"code":"internal_error"}}'),
                    Answer(409, orjson.dumps({"error": {"code": "order_already_exists",
                                                        "message": "exists"}})))
    exchange.script("GET", "/exchange/user_data_timestamp",
                    Answer(200, orjson.dumps({"as_of_time": "2099-01-01T00:00:00Z"})))
    exchange.script("GET", "/portfolio/orders", Answer(200, b'{"orders":[],"cursor":""}'),
                    Answer(200, orjson.dumps({"orders": [ORDER], "cursor": ""})))
    exchange.script("GET", "/portfolio/fills", Answer(200, b'{"fills":[],"cursor":""}'))
    client = KalshiRestClient(exchange.url, retry=RetryPolicy(max_attempts=1))
    api = OrderApi(client, grid_for=lambda _ticker: None)
    try:
        with pytest.raises(OutcomeUnknownError) as unknown:
            api.create(CreateOrder(ticker="KXT-1", side="bid", count=Decimal(3),
                                   price=Decimal("0.56"), client_order_id=CID))

        resolution = resolve_unknown(api, unknown.value, "KXT-1", LookupPolicy(in_flight_ms=0),
                                     sleep=lambda _: None)
    finally:
        client.close()

    assert isinstance(resolution.decision, Found), resolution
    assert (resolution.decision.order.order_id, resolution.sends) == ("o-1", 2)
    creates = [s for s in exchange.seen if s.method == "POST"]
    assert [orjson.loads(s.body)["client_order_id"] for s in creates] == [CID, CID]
    assert creates[0].body == creates[1].body  # the resend is the same request, byte for byte
