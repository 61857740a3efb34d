"""The calendar acting on orders (§8.6): close, deactivation, trading and exchange pauses."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from kalshi_sim.engine_types import Outcome
from kalshi_sim.exchange import EmbeddedExchange
from tests.conftest import ExchangeFactory
from tests.kalshi_sim.trading_support import Trader, quiet, trader


@pytest.fixture
def exchange(make_exchange: ExchangeFactory) -> EmbeddedExchange:
    return quiet(make_exchange(markets=6, write_limit=False, cancel_all_tail_s=0))


@pytest.fixture
def alice(exchange: EmbeddedExchange) -> Iterator[Trader]:
    t = trader(exchange, "alice")
    yield t
    t.close()


def _wait_for_reason(exchange: EmbeddedExchange, order_id: str, reason: str) -> bool:
    """Wait (event-driven, generous timeout) until the exchange ends ``order_id`` for ``reason``."""
    ended = threading.Event()

    def listener(outcome: Outcome) -> None:
        for order in outcome.orders_changed:
            if order.order_id == order_id and order.last_update_reason == reason:
                ended.set()

    exchange.trading.add_listener(listener)
    if any(
        o.order_id == order_id and o.last_update_reason == reason
        for o in exchange.truth("alice")["alice"].orders
    ):
        return True
    return ended.wait(10.0)


def test_close_when_time_passes_cancels_resting_orders_and_refuses_every_op(
    exchange: EmbeddedExchange, alice: Trader
) -> None:
    ticker = exchange.markets.tickers()[0]
    order_id = alice.place(ticker, "bid", "2", "0.40").json()["order_id"]
    exchange.close_times.close_at(ticker, datetime.now(UTC) - timedelta(seconds=1))
    assert _wait_for_reason(exchange, order_id, "CloseCancel")  # the sweeper, unprompted
    assert alice.get(f"/portfolio/orders/{order_id}").json()["order"]["status"] == "canceled"
    refused = alice.place(ticker, "bid", "1", "0.40")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "market_closed"
    assert alice.cancel(order_id).status_code in (404, 409)


def test_deactivated_market_when_ordered_answers_409_and_reactivation_cancels_resting(
    exchange: EmbeddedExchange, alice: Trader
) -> None:
    ticker = exchange.markets.tickers()[0]
    order_id = alice.place(ticker, "bid", "2", "0.40").json()["order_id"]
    exchange.ws.set_market_status(ticker, "inactive")
    refused = alice.place(ticker, "bid", "1", "0.40")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "trading_is_paused"
    assert alice.orders(status="resting")[0]["order_id"] == order_id  # kept while inactive
    exchange.ws.set_market_status(ticker, "active")
    assert _wait_for_reason(exchange, order_id, "HaltCancel")
    assert alice.orders(status="resting") == []
    assert alice.place(ticker, "bid", "1", "0.40").status_code == 201


def test_trading_pause_when_in_force_refuses_creates_allows_cancels_and_honours_the_flag(
    exchange: EmbeddedExchange, alice: Trader
) -> None:
    ticker = exchange.markets.tickers()[0]
    keep = alice.place(ticker, "bid", "1", "0.40").json()["order_id"]
    drop = alice.place(ticker, "bid", "1", "0.41", cancel_order_on_pause=True).json()["order_id"]
    exchange.apply_fault("pause_trading")
    refused = alice.place(ticker, "bid", "1", "0.40")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "trading_is_paused"
    states = {o["order_id"]: o["status"] for o in alice.orders()}
    assert states == {keep: "resting", drop: "canceled"}
    assert alice.cancel(keep).status_code == 200
    exchange.apply_fault("resume")
    assert alice.place(ticker, "bid", "1", "0.40").status_code == 201


def test_exchange_pause_when_in_force_refuses_every_trading_call_with_503(
    exchange: EmbeddedExchange, alice: Trader
) -> None:
    ticker = exchange.markets.tickers()[0]
    order_id = alice.place(ticker, "bid", "1", "0.40").json()["order_id"]
    exchange.apply_fault("pause_exchange")
    assert alice.place(ticker, "bid", "1", "0.40").status_code == 503
    assert alice.cancel(order_id).status_code == 503
    assert alice.get("/portfolio/orders").status_code == 503
    exchange.apply_fault("resume")
    [still] = alice.orders(status="resting")
    assert still["order_id"] == order_id


@pytest.mark.slow  # an expiry passing on the real clock (~1 s)
def test_expiration_when_due_cancels_the_order_with_expiry_cancel(
    exchange: EmbeddedExchange, alice: Trader
) -> None:
    ticker = exchange.markets.tickers()[0]
    soon = int(datetime.now(UTC).timestamp()) + 1
    order_id = alice.place(ticker, "bid", "1", "0.40", expiration_time=soon).json()["order_id"]
    assert _wait_for_reason(exchange, order_id, "ExpiryCancel")
    assert alice.get(f"/portfolio/orders/{order_id}").json()["order"]["status"] == "canceled"
