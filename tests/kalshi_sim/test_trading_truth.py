"""The exchange's truth about members (Python API and ``GET /_sim/truth``) and the comparison of a
client's view with it."""

from __future__ import annotations

import httpx

from kalshi_api.fixed_point import parse_dollars
from kalshi_sim.exchange import EmbeddedExchange
from kalshi_sim.truth import ClientView, differences
from tests.kalshi_sim.trading_support import Trader


def _rest_view(t: Trader) -> ClientView:
    return ClientView.from_rest(
        orders=t.orders(),
        positions=t.get("/portfolio/positions").json()["market_positions"],
        fills=t.get("/portfolio/fills").json()["fills"],
        balance=t.get("/portfolio/balance").json(),
    )


def test_truth_when_members_traded_matches_what_rest_reports(
    exchange: EmbeddedExchange, alice: Trader, bob: Trader
) -> None:
    ticker = exchange.markets.tickers()[0]
    alice.place(ticker, "bid", "3", "0.45")
    bob.place(ticker, "ask", "2", "0.45", time_in_force="immediate_or_cancel")
    truths = exchange.truth()
    assert {"alice", "bob", "demo"} <= set(truths)
    assert differences(_rest_view(alice), truths["alice"]) == []
    assert differences(_rest_view(bob), truths["bob"]) == []


def test_differences_when_client_missed_a_fill_and_holds_a_phantom_name_each(
    exchange: EmbeddedExchange, alice: Trader, bob: Trader
) -> None:
    ticker = exchange.markets.tickers()[0]
    order_id = alice.place(ticker, "bid", "3", "0.45").json()["order_id"]
    bob.place(ticker, "ask", "1", "0.45", time_in_force="immediate_or_cancel")
    view = _rest_view(alice)
    [fill_id] = view.fill_ids
    view.fill_ids.clear()
    view.orders[order_id] = ("resting", 0, 300)  # a client that never saw the fill
    view.orders["phantom"] = ("resting", 0, 100)
    view.positions[ticker] = 0
    problems = differences(view, exchange.truth("alice")["alice"])
    assert f"fill {fill_id} missing" in problems
    assert "order phantom unknown to the exchange" in problems
    assert any(p.startswith(f"order {order_id}: client resting filled 0.00") for p in problems)
    assert f"position {ticker}: client 0.00, exchange 1.00" in problems


def test_sim_truth_endpoint_when_asked_on_loopback_lists_every_member(
    exchange: EmbeddedExchange, alice: Trader
) -> None:
    alice.place(exchange.markets.tickers()[0], "bid", "1", "0.40", client_order_id="seen")
    body = httpx.get(f"http://127.0.0.1:{exchange.port}/_sim/truth", trust_env=False).json()
    member = body["members"]["alice"]
    assert [o["client_order_id"] for o in member["orders"]] == ["seen"]
    cash, held = member["cash_by_shard"]["0"], member["reserved_by_shard"]["0"]
    assert held != "0.0000"  # the resting bid holds its cost out of the cash
    assert parse_dollars(cash) + parse_dollars(held) == parse_dollars("1000.00")
    one = httpx.get(
        f"http://127.0.0.1:{exchange.port}/_sim/truth", params={"member": "alice"}, trust_env=False
    ).json()
    assert list(one["members"]) == ["alice"]
    missing = httpx.get(
        f"http://127.0.0.1:{exchange.port}/_sim/truth", params={"member": "nobody"}, trust_env=False
    )
    assert missing.status_code == 404
