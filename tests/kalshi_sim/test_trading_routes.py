"""The V2 trading endpoints on the wire (§8.1, §8.2, §8.8, §8.9): shapes, statuses, error bodies.

Real loopback sockets against the embedded exchange; two members trade with each other.
"""

from __future__ import annotations

import pytest

from kalshi_sim.exchange import EmbeddedExchange
from kalshi_sim.write_limits import WriteLimits
from tests.conftest import ExchangeFactory
from tests.kalshi_sim.trading_support import ORDERS, Trader, order, quiet, trader


def _ticker(exchange: EmbeddedExchange, index: int = 0) -> str:
    return exchange.markets.tickers()[index]


def test_create_when_resting_answers_201_with_counts_and_no_averages(
    exchange: EmbeddedExchange, alice: Trader
) -> None:
    response = alice.place(_ticker(exchange), "bid", "3", "0.40", client_order_id="a-1")
    assert response.status_code == 201
    body = response.json()
    assert body["fill_count"] == "0.00" and body["remaining_count"] == "3.00"
    assert body["client_order_id"] == "a-1" and isinstance(body["ts_ms"], int)
    assert "average_fill_price" not in body
    [listed] = alice.orders()
    assert listed["order_id"] == body["order_id"] and listed["status"] == "resting"


def test_create_when_crossing_fills_at_the_maker_price_with_averages_and_fee(
    exchange: EmbeddedExchange, alice: Trader, bob: Trader
) -> None:
    ticker = _ticker(exchange)
    assert alice.place(ticker, "bid", "2", "0.52").status_code == 201
    response = bob.place(ticker, "ask", "1", "0.50", time_in_force="immediate_or_cancel")
    assert response.status_code == 201
    body = response.json()
    assert body["fill_count"] == "1.00" and body["remaining_count"] == "0.00"
    assert body["average_fill_price"] == "0.520000"
    assert body["average_fee_paid"] == "0.017500"  # 0.07 x 0.52 x 0.48 ceiled to $0.0001 [FR]
    fills = bob.get("/portfolio/fills").json()["fills"]
    assert [f["fee_cost"] for f in fills] == ["0.017500"]
    assert fills[0]["yes_price_dollars"] == "0.5200" and fills[0]["is_taker"] is True


@pytest.mark.parametrize(
    ("field", "value"),
    [("count", 1), ("price", 0.4), ("count", "1"), ("post_only", "yes")],
)
def test_create_when_a_field_has_the_wrong_json_type_answers_flat_bad_request(
    exchange: EmbeddedExchange, alice: Trader, field: str, value: object
) -> None:
    body = order(_ticker(exchange), "bid", "1", "0.40")
    body[field] = value
    if value == "1":  # the control: a string count is accepted
        assert alice.request("POST", ORDERS, json=body).status_code == 201
        return
    response = alice.request("POST", ORDERS, json=body)
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request" and "error" not in response.json()
    assert alice.orders() == []


def test_create_when_body_is_not_json_answers_flat_bad_request(alice: Trader) -> None:
    response = alice.request("POST", ORDERS, content=b"{not json")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"


@pytest.mark.parametrize(
    ("missing", "code"),
    [("ticker", "missing_parameters"), ("side", "missing_parameters"), ("count", "invalid_order")],
)
def test_create_when_a_required_field_is_missing_answers_nested_error(
    exchange: EmbeddedExchange, alice: Trader, missing: str, code: str
) -> None:
    body = order(_ticker(exchange), "bid", "1", "0.40")
    del body[missing]
    response = alice.request("POST", ORDERS, json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_create_when_client_order_id_spent_answers_409_even_after_cancel(
    exchange: EmbeddedExchange, alice: Trader
) -> None:
    ticker = _ticker(exchange)
    first = alice.place(ticker, "bid", "1", "0.40", client_order_id="once")
    assert alice.cancel(first.json()["order_id"]).status_code == 200
    again = alice.place(ticker, "bid", "1", "0.40", client_order_id="once")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "order_already_exists"


def test_create_when_price_is_off_grid_answers_invalid_price(
    exchange: EmbeddedExchange, alice: Trader
) -> None:
    response = alice.place(_ticker(exchange), "bid", "1", "0.405")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_price"


def test_create_when_post_only_would_cross_answers_invalid_order_post_only_cross(
    exchange: EmbeddedExchange, alice: Trader, bob: Trader
) -> None:
    ticker = _ticker(exchange)
    alice.place(ticker, "bid", "1", "0.50")
    response = bob.place(ticker, "ask", "1", "0.45", post_only=True)
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid_order",
        "message": response.json()["error"]["message"],
        "details": "post only cross",
    }


def test_create_when_fok_cannot_fill_answers_409(
    exchange: EmbeddedExchange, alice: Trader, bob: Trader
) -> None:
    ticker = _ticker(exchange)
    alice.place(ticker, "bid", "1", "0.50")
    response = bob.place(ticker, "ask", "5", "0.50", time_in_force="fill_or_kill")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "fill_or_kill_insufficient_resting_volume"


def test_cancel_when_resting_answers_200_reduced_by_then_404_when_gone(
    exchange: EmbeddedExchange, alice: Trader, bob: Trader
) -> None:
    ticker = _ticker(exchange)
    order_id = alice.place(ticker, "bid", "5", "0.50", client_order_id="c-1").json()["order_id"]
    bob.place(ticker, "ask", "2", "0.50", time_in_force="immediate_or_cancel")
    response = alice.cancel(order_id)
    assert response.status_code == 200
    body = response.json()
    assert body["order_id"] == order_id and body["reduced_by"] == "3.00"
    assert body["client_order_id"] == "c-1" and isinstance(body["ts_ms"], int)
    gone = alice.cancel(order_id)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    assert alice.get(f"/portfolio/orders/{order_id}").json()["order"]["status"] == "canceled"


def test_cancel_when_order_is_another_members_answers_404(
    exchange: EmbeddedExchange, alice: Trader, bob: Trader
) -> None:
    order_id = alice.place(_ticker(exchange), "bid", "1", "0.40").json()["order_id"]
    assert bob.cancel(order_id).status_code == 404
    assert alice.orders(status="resting")[0]["order_id"] == order_id


def test_amend_when_count_is_the_new_total_answers_200_and_replaces_the_order(
    exchange: EmbeddedExchange, alice: Trader
) -> None:
    ticker = _ticker(exchange)
    order_id = alice.place(ticker, "bid", "3", "0.40").json()["order_id"]
    body = {
        "ticker": ticker,
        "side": "bid",
        "price": "0.42",
        "count": "5",
        "updated_client_order_id": "amended-1",
    }
    response = alice.request("POST", f"{ORDERS}/{order_id}/amend", json=body)
    assert response.status_code == 200
    assert response.json()["order_id"] == order_id and "ts_ms" in response.json()
    listed = alice.get(f"/portfolio/orders/{order_id}").json()["order"]
    assert listed["yes_price_dollars"] == "0.4200" and listed["remaining_count_fp"] == "5.00"
    assert listed["client_order_id"] == "amended-1"


def test_amend_when_a_required_field_is_missing_answers_400(
    exchange: EmbeddedExchange, alice: Trader
) -> None:
    ticker = _ticker(exchange)
    order_id = alice.place(ticker, "bid", "3", "0.40").json()["order_id"]
    body = {"ticker": ticker, "side": "bid", "count": "5"}
    response = alice.request("POST", f"{ORDERS}/{order_id}/amend", json=body)
    assert response.status_code == 400


def test_decrease_when_reduce_to_given_answers_remaining_and_both_is_refused(
    exchange: EmbeddedExchange, alice: Trader
) -> None:
    order_id = alice.place(_ticker(exchange), "bid", "5", "0.40").json()["order_id"]
    path = f"{ORDERS}/{order_id}/decrease"
    response = alice.request("POST", path, json={"reduce_to": "2"})
    assert response.status_code == 200 and response.json()["remaining_count"] == "2.00"
    both = alice.request("POST", path, json={"reduce_to": "1", "reduce_by": "1"})
    assert both.status_code == 400
    assert alice.orders()[0]["remaining_count_fp"] == "2.00"


def test_batch_create_when_one_item_fails_answers_per_item_and_siblings_go_through(
    exchange: EmbeddedExchange, alice: Trader
) -> None:
    ticker = _ticker(exchange)
    items = [
        order(ticker, "bid", "1", "0.30", client_order_id="b-1"),
        order(ticker, "bid", "1", "0.305", client_order_id="b-2"),  # off the cent grid
        order(ticker, "bid", "1", "0.31", client_order_id="b-3"),
    ]
    response = alice.request("POST", f"{ORDERS}/batched", json={"orders": items})
    assert response.status_code == 201
    results = response.json()["orders"]
    assert [("error" in r) for r in results] == [False, True, False]
    assert results[1]["error"]["code"] == "invalid_price" and "ts_ms" not in results[1]
    assert results[1]["client_order_id"] == "b-2"
    assert sorted(o["client_order_id"] for o in alice.orders()) == ["b-1", "b-3"]


def test_batch_cancel_when_one_id_is_unknown_answers_per_item(
    exchange: EmbeddedExchange, alice: Trader
) -> None:
    order_id = alice.place(_ticker(exchange), "bid", "2", "0.40").json()["order_id"]
    body = {"orders": [{"order_id": order_id}, {"order_id": "no-such-order"}]}
    response = alice.request("DELETE", f"{ORDERS}/batched", json=body)
    assert response.status_code == 200
    first, second = response.json()["orders"]
    assert first["order_id"] == order_id and first["reduced_by"] == "2.00"
    assert second["error"]["code"] == "not_found"


def test_batch_create_when_it_does_not_fit_the_write_bucket_is_refused_whole(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = quiet(make_exchange(markets=6, usage_tier="basic", max_batch_size=20))
    alice = trader(exchange, "alice")
    try:
        ticker = _ticker(exchange)
        items = [order(ticker, "bid", "1", f"0.{10 + i}") for i in range(11)]  # 110 > 100
        response = alice.request("POST", f"{ORDERS}/batched", json={"orders": items})
        assert response.status_code == 429
        assert response.json() == {"error": "too many requests"}
        assert alice.orders() == []
        ten = {"orders": items[:10]}  # exactly the bucket: accepted
        assert alice.request("POST", f"{ORDERS}/batched", json=ten).status_code == 201
        assert len(alice.orders()) == 10
    finally:
        alice.close()


def test_write_bucket_when_empty_answers_429_but_reads_still_pass(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = quiet(make_exchange(markets=6, usage_tier="basic"))
    # the bucket refills 100 tokens/s: on a loaded machine 11 creates took long enough for an
    # 11th to fit, so the exchange's write clock stands still here (no refill at all)
    exchange.write_limits = WriteLimits("basic", clock=lambda: 0.0)
    alice = trader(exchange, "alice")
    try:
        ticker = _ticker(exchange)
        statuses = [alice.place(ticker, "bid", "1", "0.20").status_code for _ in range(11)]
        assert statuses.count(201) == 10 and statuses[-1] == 429
        assert alice.get("/portfolio/orders").status_code == 200
    finally:
        alice.close()


def test_cancel_all_when_called_answers_204_with_no_body_and_cancels_resting(
    exchange: EmbeddedExchange, alice: Trader
) -> None:
    ticker = _ticker(exchange)
    for price in ("0.30", "0.31"):
        alice.place(ticker, "bid", "1", price)
    response = alice.request("DELETE", ORDERS)
    assert response.status_code == 204 and response.content == b""
    assert alice.orders(status="resting") == []


def test_cancel_all_when_tail_set_cancels_orders_placed_just_after(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = quiet(make_exchange(markets=6, write_limit=False, cancel_all_tail_s=60))
    alice = trader(exchange, "alice")
    try:
        ticker = _ticker(exchange)
        assert alice.request("DELETE", ORDERS).status_code == 204
        placed = alice.place(ticker, "bid", "1", "0.30")
        assert placed.status_code == 201 and placed.json()["remaining_count"] == "1.00"
        [after] = alice.orders()
        assert after["status"] == "canceled"  # 201 was not "resting" [§8.1]
        exchange.trading_settings.cancel_all_tail_s = 0
        alice.place(ticker, "bid", "1", "0.31")
        assert len(alice.orders(status="resting")) == 1
    finally:
        alice.close()


def test_order_groups_when_created_triggered_reset_and_deleted_follow_the_docs(
    exchange: EmbeddedExchange, alice: Trader
) -> None:
    created = alice.request("POST", "/portfolio/order_groups/create", json={"contracts_limit": 5})
    assert created.status_code == 201
    group_id = created.json()["order_group_id"]
    assert created.json()["subaccount"] == 0 and created.json()["exchange_index"] == 0
    [listed] = alice.get("/portfolio/order_groups").json()["order_groups"]
    assert listed["id"] == group_id and listed["contracts_limit_fp"] == "5.00"
    alice.place(_ticker(exchange), "bid", "1", "0.30", order_group_id=group_id)
    one = alice.get(f"/portfolio/order_groups/{group_id}").json()
    assert len(one["orders"]) == 1 and one["is_auto_cancel_enabled"] is False
    base = f"/portfolio/order_groups/{group_id}"
    assert alice.request("PUT", base + "/limit", json={"contracts_limit_fp": "7.00"}).json() == {}
    assert alice.request("PUT", base + "/trigger").status_code == 200
    assert alice.orders(status="resting") == []
    assert alice.get(base).json()["is_auto_cancel_enabled"] is True
    refused = alice.place(_ticker(exchange), "bid", "1", "0.30", order_group_id=group_id)
    assert refused.status_code == 409
    assert alice.request("PUT", base + "/reset").json() == {}
    assert (
        alice.place(_ticker(exchange), "bid", "1", "0.30", order_group_id=group_id).status_code
        == 201
    )
    assert alice.request("DELETE", base).json() == {}
    assert alice.get(base).status_code == 404


def test_orders_when_filtered_and_paged_return_each_order_once(
    exchange: EmbeddedExchange, alice: Trader
) -> None:
    ticker, other = _ticker(exchange, 0), _ticker(exchange, 4)
    ids = [alice.place(ticker, "bid", "1", f"0.{20 + i}").json()["order_id"] for i in range(4)]
    alice.place(other, "bid", "1", "0.20", subaccount=2)
    alice.cancel(ids[0])
    assert {o["order_id"] for o in alice.orders(ticker=ticker)} == set(ids)
    assert [o["order_id"] for o in alice.orders(status="canceled")] == [ids[0]]
    assert [o["ticker"] for o in alice.orders(subaccount=2)] == [other]
    seen: list[str] = []
    cursor = ""
    while True:
        page = alice.get("/portfolio/orders", params={"limit": 2, "cursor": cursor}).json()
        seen += [o["order_id"] for o in page["orders"]]
        cursor = page["cursor"]
        if not cursor:
            break
    assert len(seen) == 5 == len(set(seen))


def test_resting_orders_when_an_amend_requeues_one_list_and_page_in_creation_order(
    exchange: EmbeddedExchange, alice: Trader
) -> None:
    ticker = _ticker(exchange)
    ids = [alice.place(ticker, "bid", "1", f"0.{20 + i}").json()["order_id"] for i in range(3)]
    body = {"ticker": ticker, "side": "bid", "price": "0.30", "count": "1"}
    assert alice.request("POST", f"{ORDERS}/{ids[0]}/amend", json=body).status_code == 200
    assert [o["order_id"] for o in alice.orders(status="resting")] == ids
    paged: list[str] = []
    cursor = ""
    while True:
        params = {"status": "resting", "limit": 1, "cursor": cursor}
        page = alice.get("/portfolio/orders", params=params).json()
        paged += [o["order_id"] for o in page["orders"]]
        cursor = page["cursor"]
        if not cursor:
            break
    assert paged == ids  # the cursor names a key: out of order, a page would skip one


def test_orders_by_ticker_when_finished_orders_are_forgotten_list_only_the_kept_ones(
    exchange: EmbeddedExchange, alice: Trader
) -> None:
    with exchange.markets.lock:
        exchange.markets.engine.limit_history("alice", orders=2, fills=100)
    ticker, other = _ticker(exchange, 0), _ticker(exchange, 1)
    ids = [alice.place(ticker, "bid", "1", "0.20").json()["order_id"] for _ in range(4)]
    kept = alice.place(other, "bid", "1", "0.20").json()["order_id"]
    for order_id in ids:
        assert alice.cancel(order_id).status_code == 200
    assert [o["order_id"] for o in alice.orders(ticker=ticker)] == ids[2:]
    assert alice.get(f"/portfolio/orders/{ids[0]}").status_code == 404
    assert alice.get(f"/portfolio/orders/{ids[3]}").json()["order"]["status"] == "canceled"
    assert [o["order_id"] for o in alice.orders(ticker=other)] == [kept]


def test_order_when_unknown_answers_404(alice: Trader) -> None:
    response = alice.get("/portfolio/orders/no-such-order")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_fills_positions_and_settlements_when_traded_and_settled_agree(
    exchange: EmbeddedExchange, alice: Trader, bob: Trader
) -> None:
    ticker = _ticker(exchange)
    maker = alice.place(ticker, "bid", "2", "0.60").json()["order_id"]
    bob.place(ticker, "ask", "2", "0.60", time_in_force="immediate_or_cancel")
    [fill] = alice.get("/portfolio/fills", params={"order_id": maker}).json()["fills"]
    assert fill["count_fp"] == "2.00" and fill["is_taker"] is False
    assert fill["trade_id"] == fill["fill_id"] and "client_order_id" not in fill
    [position] = alice.get("/portfolio/positions").json()["market_positions"]
    assert position["position_fp"] == "2.00"
    [bob_position] = bob.get("/portfolio/positions").json()["market_positions"]
    assert bob_position["position_fp"] == "-2.00"
    exchange.trading.call(lambda engine, now: engine.settle(ticker, "yes", now))
    [settled] = alice.get("/portfolio/settlements").json()["settlements"]
    assert settled["market_result"] == "yes" and settled["revenue"] == 200
    assert settled["yes_count_fp"] == "2.00"


def test_account_limits_and_costs_when_read_report_the_tier_and_the_costs(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = quiet(make_exchange(markets=6, usage_tier="premier", cancel_all_cost=20))
    alice = trader(exchange, "alice")
    try:
        limits = alice.get("/account/limits").json()
        assert limits["usage_tier"] == "premier"
        assert limits["write"] == {"refill_rate": 1000, "bucket_capacity": 2000}
        costs = alice.get("/account/endpoint_costs").json()
        assert costs["default_cost"] == 10
        table = {(c["method"], c["path"]): c["cost"] for c in costs["endpoint_costs"]}
        assert table[("DELETE", "/trade-api/v2/portfolio/events/orders")] == 20
        assert table[("DELETE", "/trade-api/v2/portfolio/events/orders/{order_id}")] == 2
    finally:
        alice.close()


def test_account_limits_when_unsigned_answers_401(
    exchange: EmbeddedExchange, alice: Trader
) -> None:
    assert alice.http.get("/trade-api/v2/account/limits").status_code == 401


def test_series_and_event_when_read_carry_fee_type_and_multiplier(
    exchange: EmbeddedExchange, alice: Trader
) -> None:
    series = alice.http.get("/trade-api/v2/series/KXFED").json()["series"]
    assert series["fee_type"] == "quadratic_with_maker_fees" and series["fee_multiplier"] == 1
    market = exchange.markets.market(_ticker(exchange))
    event = alice.http.get(f"/trade-api/v2/events/{market.event_ticker}").json()
    assert event["event"]["series_ticker"] == market.series_ticker
    assert event["event"]["fee_type"] == "quadratic"
    assert market.ticker in [m["ticker"] for m in event["markets"]]
    assert alice.http.get("/trade-api/v2/series/NOPE").status_code == 404


@pytest.mark.parametrize(("in_2xx", "status"), [(False, 410), (True, 200)])
def test_legacy_v1_mutation_when_sent_answers_deprecated_code(
    exchange: EmbeddedExchange, alice: Trader, in_2xx: bool, status: int
) -> None:
    exchange.trading_settings.legacy_v1_in_2xx = in_2xx
    for method, path in (("POST", "/portfolio/orders"), ("DELETE", "/portfolio/orders/x")):
        response = alice.request(method, path, json={})
        assert response.status_code == status
        assert response.json()["error"]["code"] == "deprecated_v1_order_endpoint"
    assert alice.orders() == []


def test_balance_when_member_trades_moves_by_cost_and_fee(
    exchange: EmbeddedExchange, alice: Trader, bob: Trader
) -> None:
    ticker = _ticker(exchange)
    before = bob.get("/portfolio/balance").json()["balance_dollars"]
    assert before == "1000.0000"
    alice.place(ticker, "bid", "1", "0.52")
    bob.place(ticker, "ask", "1", "0.52", time_in_force="immediate_or_cancel")
    after = bob.get("/portfolio/balance").json()
    assert after["balance_dollars"] == "999.5025"  # paid 1 - 0.52 = 0.48, fee 0.0175


def test_create_when_market_unknown_or_shard_wrong_is_refused(
    exchange: EmbeddedExchange, alice: Trader
) -> None:
    unknown = alice.place("NO-SUCH-MARKET", "bid", "1", "0.40")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "market_not_found"
    wrong_shard = alice.place(_ticker(exchange), "bid", "1", "0.40", exchange_index=3)
    assert wrong_shard.status_code == 400
    auto = alice.place(_ticker(exchange), "bid", "1", "0.40", exchange_index=-1)
    assert auto.status_code == 201  # -1 auto-routes
    assert len(alice.orders()) == 1


def test_queue_position_when_another_order_rests_first_counts_it(
    exchange: EmbeddedExchange, alice: Trader, bob: Trader
) -> None:
    ticker = _ticker(exchange)
    alice.place(ticker, "bid", "4", "0.33")
    mine = bob.place(ticker, "bid", "1", "0.33").json()["order_id"]
    one = bob.get(f"/portfolio/orders/{mine}/queue_position").json()
    assert one["queue_position_fp"] == "4.00"
    many = bob.get("/portfolio/orders/queue_positions", params={"market_tickers": ticker}).json()
    assert many["queue_positions"] == [
        {"order_id": mine, "market_ticker": ticker, "queue_position_fp": "4.00"}
    ]
