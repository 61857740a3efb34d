"""A published Kalshi client library, unmodified, trading on the embedded exchange.

The official SDK (``kalshi-python-sync`` 3.34.0) needs Python >= 3.13 and this project
runs on 3.11, so the test uses ``pykalshi`` 2.0.0 from PyPI, the closest published client
that speaks the V2 ``/portfolio/events/orders`` paths. If the exchange's wire differed from
what a real client expects (shapes, signing, statuses), this is where it shows.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pykalshi import KalshiClient
from pykalshi.enums import OrderStatus, TimeInForce

from kalshi_sim.exchange import EmbeddedExchange
from kalshi_sim.truth import ClientView, differences
from tests.conftest import ExchangeFactory
from tests.kalshi_sim.trading_support import quiet


@pytest.fixture
def exchange(make_exchange: ExchangeFactory) -> EmbeddedExchange:
    return quiet(make_exchange(markets=6, write_limit=False, cancel_all_tail_s=0))


def _client(exchange: EmbeddedExchange, member: str) -> KalshiClient:
    key = exchange.add_member(member)
    return KalshiClient(
        api_key_id=key.key_id,
        private_key_path=str(key.private_key_path),
        api_base=exchange.rest_url,
        max_retries=0,
    )


@pytest.fixture
def alice(exchange: EmbeddedExchange) -> Iterator[KalshiClient]:
    with _client(exchange, "alice") as client:
        yield client


@pytest.fixture
def bob(exchange: EmbeddedExchange) -> Iterator[KalshiClient]:
    with _client(exchange, "bob") as client:
        yield client


def test_pykalshi_when_trading_places_amends_cancels_and_batches_against_the_exchange(
    exchange: EmbeddedExchange, alice: KalshiClient, bob: KalshiClient
) -> None:
    ticker = exchange.markets.tickers()[0]
    placed = alice.portfolio.place_order(
        ticker, book_side="bid", price_dollars="0.40", count_fp="3.00", client_order_id="pk-1"
    )
    order_id = placed.order_id
    assert alice.portfolio.get_order(order_id).data.status == "resting"

    alice.portfolio.amend_order(order_id, price_dollars="0.42", count_fp="4.00")
    amended = alice.portfolio.get_order(order_id).data
    assert amended.yes_price_dollars == "0.4200" and amended.remaining_count_fp == "4.00"

    bob.portfolio.place_order(
        ticker,
        book_side="ask",
        price_dollars="0.42",
        count_fp="1.00",
        time_in_force=TimeInForce.IOC,
    )
    [fill] = alice.portfolio.get_fills(order_id=order_id)
    assert fill.count_fp == "1.00" and fill.yes_price_dollars == "0.4200"
    [position] = alice.portfolio.get_positions()
    assert position.ticker == ticker and position.position_fp == "1.00"

    alice.portfolio.cancel_order(order_id)
    assert alice.portfolio.get_order(order_id).data.status == "canceled"

    batch = alice.portfolio.batch_place_orders(
        [
            {
                "ticker": ticker,
                "book_side": "bid",
                "price_dollars": "0.30",
                "count_fp": "1.00",
                "client_order_id": "pk-b1",
            },
            {
                "ticker": ticker,
                "book_side": "bid",
                "price_dollars": "0.31",
                "count_fp": "2.00",
                "client_order_id": "pk-b2",
            },
        ]
    )
    assert len(batch) == 2
    resting = alice.portfolio.get_orders(status=OrderStatus.RESTING)
    assert sorted(o.data.client_order_id for o in resting) == ["pk-b1", "pk-b2"]
    alice.portfolio.batch_cancel_orders([o.order_id for o in resting])
    assert alice.portfolio.get_orders(status=OrderStatus.RESTING) == []

    truth = exchange.truth("alice")["alice"]
    view = ClientView(
        orders={
            o.order_id: (
                o.data.status,
                _centi(o.data.fill_count_fp),
                _centi(o.data.remaining_count_fp),
            )
            for o in alice.portfolio.get_orders()
        },
        positions={p.ticker: _centi(p.position_fp) for p in alice.portfolio.get_positions()},
        fill_ids={f.fill_id or f.trade_id for f in alice.portfolio.get_fills()},
    )
    assert differences(view, truth) == []


def _centi(text: str | None) -> int:
    whole, _, frac = (text or "0").partition(".")
    sign = -1 if whole.startswith("-") else 1
    return sign * (abs(int(whole)) * 100 + int((frac + "00")[:2]))
