"""Writes over real loopback sockets: every refusal typed by its exact code, every possibly-
executed write outcome-unknown, and each write sent exactly once whatever came back.

The exchange here is scripted (tests/kalshi_api/scripted_exchange.py): a Starlette app on
the project's ServerThread that counts each request, plus a raw socket server for the one
thing an ASGI app cannot do, read a request and drop the connection.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from decimal import Decimal

import orjson
import pytest

from kalshi_api.account_limits import (
    get_account_limits,
    get_endpoint_costs,
    get_user_data_timestamp,
)
from kalshi_api.errors import (
    AuthenticationError,
    DuplicateOrderError,
    FillOrKillUnfilledError,
    InsufficientBalanceError,
    InvalidOrderError,
    KalshiError,
    LocallyRefusedError,
    MarketClosedError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitedError,
    RequestRejectedError,
    RetiredEndpointError,
    RiskLimitError,
    TradingPausedError,
    TransportError,
)
from kalshi_api.order_groups import OrderGroupApi
from kalshi_api.order_models import CancelTarget, CreateOrder
from kalshi_api.orders import OrderApi
from kalshi_api.rest import KalshiRestClient, RetryPolicy
from kalshi_api.write_pacer import WritePacer
from tests.kalshi_api.scripted_exchange import WAIT, Answer, DroppingServer, ScriptedExchange

ORDERS = "/portfolio/events/orders"
NO_RETRY = RetryPolicy(max_attempts=1)
CREATED = orjson.dumps(
    {"order_id": "o-1", "fill_count": "0.00", "remaining_count": "3.00", "ts_ms": 1}
)


def _order(client_order_id: str = "svc-a:1") -> CreateOrder:
    return CreateOrder(
        ticker="KXT-1",
        side="bid",
        count=Decimal(3),
        price=Decimal("0.56"),
        client_order_id=client_order_id,
    )


@pytest.fixture
def exchange() -> Iterator[ScriptedExchange]:
    scripted = ScriptedExchange().start()
    try:
        yield scripted
    finally:
        scripted.stop()


def _api(url: str, **kwargs: object) -> OrderApi:
    client = KalshiRestClient(url, retry=kwargs.pop("retry", NO_RETRY), **kwargs)  # type: ignore[arg-type]
    return OrderApi(client, grid_for=lambda _ticker: None)


def _json(payload: object) -> bytes:
    return orjson.dumps(payload)


def _nested(code: str, message: str = "refused", details: str | None = None) -> bytes:
    error = {"code": code, "message": message}
    if details:
        error["details"] = details
    return _json({"error": error})


# -- refusals -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (409, _nested("order_already_exists"), DuplicateOrderError, "order_already_exists"),
        (409, _nested("trading_is_paused"), TradingPausedError, "trading_is_paused"),
        (
            409,
            _nested("fill_or_kill_insufficient_resting_volume"),
            FillOrKillUnfilledError,
            "fill_or_kill_insufficient_resting_volume",
        ),
        (409, _nested("MARKET_INACTIVE"), MarketClosedError, "MARKET_INACTIVE"),
        (409, _nested("EXCEEDED_ORDER_GROUP_RISK_LIMIT"), RiskLimitError, None),
        (400, _nested("insufficient_balance"), InsufficientBalanceError, "insufficient_balance"),
        (400, _nested("invalid_order", details="post only cross"), InvalidOrderError, None),
        (
            400,
            _json({"code": "bad_request", "message": "bad json", "details": "count: number"}),
            InvalidOrderError,
            "bad_request",
        ),
        (400, _json({"msg": "limit must be at most 1000"}), RequestRejectedError, None),
        (429, _json({"error": "too many requests"}), RateLimitedError, None),
        (404, _nested("not_found"), NotFoundError, "not_found"),
        (410, _nested("deprecated_v1_order_endpoint"), RetiredEndpointError, None),
        (403, _nested("insufficient_scope"), AuthenticationError, "insufficient_scope"),
        (409, _nested("something_new"), RequestRejectedError, "something_new"),
        # Codes match exactly: a case variant nobody listed is a plain refusal.
        (409, _nested("Order_Already_Exists"), RequestRejectedError, "Order_Already_Exists"),
        (200, _nested("deprecated_v1_order_endpoint"), RetiredEndpointError, None),
        (201, _json({"error": "no order created"}), RequestRejectedError, None),
    ],
)
def test_create_when_exchange_refuses_raises_error_typed_by_code_and_sends_once(
    exchange: ScriptedExchange, status: int, body: bytes, kind: type[KalshiError], code: str | None
) -> None:
    exchange.script("POST", ORDERS, Answer(status, body))
    with _api(exchange.url).client as client, pytest.raises(RequestRejectedError) as caught:
        OrderApi(client, grid_for=lambda _: None).create(_order())
    error = caught.value
    assert type(error) is kind
    assert not isinstance(error, OutcomeUnknownError)
    assert error.status == status
    if code is not None:
        assert error.code == code
    assert "\n" not in str(error)
    assert exchange.count("POST", ORDERS) == 1


def test_create_when_429_with_pacer_empties_the_local_bucket(exchange: ScriptedExchange) -> None:
    exchange.script("POST", ORDERS, Answer(429, _json({"error": "too many requests"})))
    now = [0.0]
    pacer = WritePacer(
        100, 200, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s)
    )
    client = KalshiRestClient(exchange.url, retry=NO_RETRY, write_pacer=pacer)
    with client, pytest.raises(RateLimitedError):
        OrderApi(client, grid_for=lambda _: None).create(_order())
    assert pacer.tokens == 0 and pacer.rate_limited_count == 1
    assert exchange.count("POST", ORDERS) == 1


# -- outcome unknown ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "body"),
    [
        (408, b""),
        (500, _nested("internal_error")),
        (502, b"<html>bad gateway</html>"),
        (503, b""),
        (504, _json({"error": {"code": "timeout"}})),
        (400, _nested("EXCHANGE_UNAVAILABLE")),
    ],
)
def test_create_when_408_or_5xx_raises_outcome_unknown_with_the_request_and_sends_once(
    exchange: ScriptedExchange, status: int, body: bytes
) -> None:
    exchange.script("POST", ORDERS, Answer(status, body))
    api = _api(exchange.url)
    with api.client, pytest.raises(OutcomeUnknownError) as caught:
        api.create(_order("svc-a:408"))
    error = caught.value
    assert error.status == status and error.client_order_id == "svc-a:408"
    assert error.request.method == "POST" and error.request.path.endswith(ORDERS)
    assert orjson.loads(error.request.body or b"")["client_order_id"] == "svc-a:408"
    assert not error.retryable
    assert exchange.count("POST", ORDERS) == 1


def test_create_when_response_held_past_deadline_raises_outcome_unknown_sent_once(
    exchange: ScriptedExchange,
) -> None:
    exchange.script("POST", ORDERS, Answer(201, CREATED, hold=True))
    api = _api(exchange.url, timeout=0.3)
    with api.client, pytest.raises(OutcomeUnknownError, match="timed out") as caught:
        api.create(_order("svc-a:held"))
    assert caught.value.client_order_id == "svc-a:held" and caught.value.status is None
    assert exchange.count("POST", ORDERS) == 1


def test_create_when_connection_dropped_after_request_raises_outcome_unknown_sent_once() -> None:
    server = DroppingServer()
    try:
        api = _api(server.url)
        with api.client, pytest.raises(OutcomeUnknownError, match="connection failed") as e:
            api.create(_order("svc-a:drop"))
        with server.done:
            assert server.done.wait_for(lambda: len(server.requests) >= 1, WAIT)
            requests = list(server.requests)
    finally:
        server.close()
    assert e.value.client_order_id == "svc-a:drop"
    assert len(requests) == 1 and b"svc-a:drop" in requests[0]


def test_create_when_connection_refused_raises_transport_error_not_outcome_unknown() -> None:
    with socket.create_server(("127.0.0.1", 0)) as held:
        port = held.getsockname()[1]
    api = _api(f"http://127.0.0.1:{port}/trade-api/v2")
    with api.client, pytest.raises(TransportError) as caught:
        api.create(_order())
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert caught.value.retryable  # nothing left this process: the same request may be resent


def test_create_when_2xx_body_unreadable_raises_outcome_unknown(
    exchange: ScriptedExchange,
) -> None:
    exchange.script(
        "POST",
        ORDERS,
        Answer(201, b"<html>created</html>"),
        Answer(201, _json({"fill_count": "0.00"})),
    )
    api = _api(exchange.url)
    with api.client:
        with pytest.raises(OutcomeUnknownError, match="not JSON"):
            api.create(_order("svc-a:1"))
        with pytest.raises(OutcomeUnknownError, match="order_id"):
            api.create(_order("svc-a:2"))
    assert exchange.count("POST", ORDERS) == 2


def test_cancel_when_reply_names_another_order_raises_outcome_unknown(
    exchange: ScriptedExchange,
) -> None:
    other = _json({"order_id": "o-other", "reduced_by": "2.00", "ts_ms": 5})
    exchange.script("DELETE", ORDERS + "/o-1", Answer(200, other))
    api = _api(exchange.url)
    with api.client, pytest.raises(OutcomeUnknownError, match="o-other"):
        api.cancel("o-1")
    assert exchange.count("DELETE", ORDERS + "/o-1") == 1


# -- what goes out --------------------------------------------------------------------------------
def test_create_when_accepted_sends_strings_not_numbers_and_reads_the_reply(
    exchange: ScriptedExchange,
) -> None:
    reply = {
        "order_id": "o-1",
        "client_order_id": "svc-a:1",
        "fill_count": "1.00",
        "remaining_count": "2.00",
        "average_fill_price": "0.5500",
        "average_fee_paid": "0.0174",
        "ts_ms": 1765000000123,
    }
    exchange.script("POST", ORDERS, Answer(201, _json(reply)))
    api = _api(exchange.url)
    with api.client:
        result = api.create(_order())
    sent = orjson.loads(exchange.seen[0].body)
    assert sent == {
        "ticker": "KXT-1",
        "side": "bid",
        "count": "3.00",
        "price": "0.56",
        "time_in_force": "good_till_canceled",
        "self_trade_prevention_type": "taker_at_cross",
        "client_order_id": "svc-a:1",
    }
    assert (result.filled, result.resting) == (Decimal("1.00"), Decimal("2.00"))
    assert result.average_fill_price == Decimal("0.55")


def test_batch_create_when_one_item_fails_returns_per_item_results_in_order(
    exchange: ScriptedExchange,
) -> None:
    items = [
        {"order_id": "o-1", "client_order_id": "b:1", "fill_count": "0.00", "ts_ms": 1},
        {
            "client_order_id": "b:2",
            "error": {"code": "invalid_price", "message": "bad", "details": "x"},
        },
    ]
    exchange.script("POST", ORDERS + "/batched", Answer(201, _json({"orders": items})))
    api = _api(exchange.url)
    with api.client:
        results = api.batch_create([_order("b:1"), _order("b:2")])
    assert [r.ok for r in results] == [True, False]
    assert results[1].error is not None
    assert isinstance(results[1].error.as_error(), InvalidOrderError)
    assert [o["client_order_id"] for o in orjson.loads(exchange.seen[0].body)["orders"]] == [
        "b:1",
        "b:2",
    ]


def test_batch_create_when_bucket_too_small_refuses_locally_without_sending(
    exchange: ScriptedExchange,
) -> None:
    pacer = WritePacer(10, 20, clock=lambda: 0.0, sleep=lambda _: None)
    client = KalshiRestClient(exchange.url, retry=NO_RETRY, write_pacer=pacer)
    api = OrderApi(client, grid_for=lambda _: None)
    with client, pytest.raises(LocallyRefusedError, match="3 orders costs 30"):
        api.batch_create([_order("c:1"), _order("c:2"), _order("c:3")])
    assert exchange.seen == []


def test_batch_cancel_when_some_gone_reports_each_item(exchange: ScriptedExchange) -> None:
    items = [
        {"order_id": "o-1", "reduced_by": "3.00", "ts_ms": 2},
        {"order_id": "o-2", "error": {"code": "not_found", "message": "not found"}},
    ]
    exchange.script("DELETE", ORDERS + "/batched", Answer(200, _json({"orders": items})))
    api = _api(exchange.url)
    with api.client:
        results = api.batch_cancel([CancelTarget("o-1"), CancelTarget("o-2", exchange_index=0)])
    assert results[0].reduced_by == Decimal(3) and results[0].ok
    assert results[1].error is not None and isinstance(results[1].error.as_error(), NotFoundError)
    assert orjson.loads(exchange.seen[0].body)["orders"][1] == {
        "order_id": "o-2",
        "exchange_index": 0,
    }


def test_cancel_all_when_204_returns_and_when_503_is_outcome_unknown(
    exchange: ScriptedExchange,
) -> None:
    exchange.script("DELETE", ORDERS, Answer(204), Answer(503, b""))
    api = _api(exchange.url)
    with api.client:
        api.cancel_all(subaccount=2)
        with pytest.raises(OutcomeUnknownError):
            api.cancel_all()
    assert exchange.count("DELETE", ORDERS) == 2
    assert exchange.seen[0].query == "subaccount=2" and exchange.seen[1].query == ""


def test_get_when_503_still_retries_while_a_write_never_does(exchange: ScriptedExchange) -> None:
    exchange.script(
        "GET",
        "/portfolio/orders/o-1",
        Answer(503, b""),
        Answer(200, _json({"order": {"order_id": "o-1", "ticker": "T", "status": "resting"}})),
    )
    exchange.script("POST", ORDERS, Answer(503, b""), Answer(201, CREATED))
    api = _api(exchange.url, retry=RetryPolicy(sleep=lambda _: None))
    with api.client:
        assert api.get_order("o-1").status == "resting"
        with pytest.raises(OutcomeUnknownError):
            api.create(_order())
    assert exchange.count("GET", "/portfolio/orders/o-1") == 2
    assert exchange.count("POST", ORDERS) == 1


# -- account reads and order groups ---------------------------------------------------------------
def test_account_reads_when_served_build_a_pacer_and_read_the_data_timestamp(
    exchange: ScriptedExchange,
) -> None:
    limits = {
        "usage_tier": "basic",
        "read": {"refill_rate": 200, "bucket_capacity": 400},
        "write": {"refill_rate": 100, "bucket_capacity": 100},
        "grants": [{"anything": 1}],
    }
    costs = {
        "default_cost": 10,
        "endpoint_costs": [{"method": "DELETE", "path": ORDERS + "/{order_id}", "cost": 2}],
    }
    exchange.script("GET", "/account/limits", Answer(200, _json(limits)))
    exchange.script("GET", "/account/endpoint_costs", Answer(200, _json(costs)))
    exchange.script(
        "GET",
        "/exchange/user_data_timestamp",
        Answer(200, _json({"as_of_time": "2026-12-06T18:00:00Z"})),
    )
    with KalshiRestClient(exchange.url, retry=NO_RETRY) as client:
        pacer = WritePacer.from_account(get_account_limits(client), get_endpoint_costs(client))
        as_of = get_user_data_timestamp(client)
    assert (pacer.refill_rate, pacer.capacity) == (100, 100)
    assert pacer.costs.cost("DELETE", ORDERS + "/o-9") == 2
    assert as_of is not None and as_of.hour == 18


def test_order_groups_when_driven_send_each_action_once_with_string_limits(
    exchange: ScriptedExchange,
) -> None:
    groups = "/portfolio/order_groups"
    exchange.script(
        "POST", groups + "/create", Answer(201, _json({"order_group_id": "g1", "subaccount": 0}))
    )
    exchange.script(
        "GET",
        groups,
        Answer(
            200,
            _json(
                {
                    "order_groups": [
                        {"id": "g1", "contracts_limit_fp": "50.00", "is_auto_cancel_enabled": False}
                    ]
                }
            ),
        ),
    )
    for action in ("/reset", "/trigger", "/limit"):
        exchange.script("PUT", f"{groups}/g1{action}", Answer(200, b"{}"))
    exchange.script("DELETE", groups + "/g1", Answer(200, b"{}"))
    exchange.script("GET", groups + "/g1", Answer(404, _nested("order_group_not_found")))
    with KalshiRestClient(exchange.url, retry=NO_RETRY) as client:
        api = OrderGroupApi(client)
        created = api.create(Decimal(50))
        listed = api.list()
        api.trigger("g1")
        api.reset("g1", exchange_index=0)
        api.set_limit("g1", Decimal(75))
        api.delete("g1")
        with pytest.raises(NotFoundError):
            api.get("g1")
    assert created.order_group_id == "g1" and listed[0].contracts_limit_fp == Decimal(50)
    bodies = {(s.method, s.path.rsplit("/", 1)[-1]): s for s in exchange.seen}
    assert orjson.loads(bodies[("POST", "create")].body) == {"contracts_limit_fp": "50.00"}
    assert orjson.loads(bodies[("PUT", "limit")].body) == {"contracts_limit_fp": "75.00"}
    assert bodies[("PUT", "reset")].query == "exchange_index=0"
    assert [s.method for s in exchange.seen] == [
        "POST",
        "GET",
        "PUT",
        "PUT",
        "PUT",
        "DELETE",
        "GET",
    ]


def test_list_orders_when_many_event_tickers_asks_ten_per_request_and_reads_all_pages(
    exchange: ScriptedExchange,
) -> None:
    def page(order_id: str, cursor: str) -> Answer:
        order = {"order_id": order_id, "ticker": "T", "status": "resting"}
        return Answer(200, _json({"orders": [order], "cursor": cursor}))

    exchange.script("GET", "/portfolio/orders", page("o1", "c2"), page("o2", ""), page("o3", ""))
    events = [f"EV{i}" for i in range(12)]
    api = _api(exchange.url)
    with api.client:
        orders = api.list_orders(event_tickers=events, status="resting")
    assert [o.order_id for o in orders] == ["o1", "o2", "o3"]
    queries = [s.query for s in exchange.seen]
    assert "event_ticker=" + "%2C".join(events[:10]) in queries[0]
    assert "cursor=c2" in queries[1] and "event_ticker=EV10%2CEV11" in queries[2]
    assert all("status=resting" in q and "subaccount" not in q for q in queries)
