"""Trading faults on the wire (§8.10, §8.12): each makes a write's outcome unknown or misleading,
and the exchange's truth says what really happened."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from kalshi_sim.exchange import EmbeddedExchange
from kalshi_sim.trading_faults import TradingFault, parse_spec
from tests.conftest import ExchangeFactory
from tests.kalshi_sim.trading_support import ORDERS, Trader, quiet, trader


@pytest.fixture
def exchange(make_exchange: ExchangeFactory) -> EmbeddedExchange:
    return quiet(make_exchange(markets=6, write_limit=False, cancel_all_tail_s=0))


@pytest.fixture
def alice(exchange: EmbeddedExchange) -> Iterator[Trader]:
    t = trader(exchange, "alice")
    yield t
    t.close()


def _ids(exchange: EmbeddedExchange, status: str | None = None) -> list[str | None]:
    return [
        o.client_order_id
        for o in exchange.truth("alice")["alice"].orders
        if status is None or o.status == status
    ]


def test_drop_write_when_armed_applies_the_create_and_closes_without_reply(
    exchange: EmbeddedExchange, alice: Trader
) -> None:
    exchange.trading_faults.arm(TradingFault.DROP_WRITE)
    ticker = exchange.markets.tickers()[0]
    with pytest.raises(httpx.TransportError):
        alice.place(ticker, "bid", "1", "0.40", client_order_id="lost-reply")
    assert _ids(exchange, "resting") == ["lost-reply"]
    [found] = alice.orders(ticker=ticker)  # the safe client's lookup finds it
    assert found["client_order_id"] == "lost-reply"
    resend = alice.place(ticker, "bid", "1", "0.40", client_order_id="lost-reply")
    assert resend.status_code == 409  # the same id: never a duplicate order


@pytest.mark.parametrize("applied", [True, False])
def test_fail_write_when_armed_answers_5xx_applied_or_not(
    exchange: EmbeddedExchange, alice: Trader, applied: bool
) -> None:
    exchange.trading_faults.arm("fail_write", status=503, applied=applied)
    response = alice.place(exchange.markets.tickers()[0], "bid", "1", "0.40", client_order_id="x")
    assert response.status_code == 503
    assert _ids(exchange) == (["x"] if applied else [])
    assert exchange.trading_faults.pending() == 0


@pytest.mark.slow  # waits out a client timeout, then the held write
def test_hold_write_when_armed_times_the_client_out_but_applies_the_write(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = quiet(make_exchange(markets=6, write_limit=False))
    impatient = Trader(exchange, exchange.add_member("alice"), timeout=0.5)
    try:
        exchange.trading_faults.arm("hold_write", seconds=3.0)
        with pytest.raises(httpx.TimeoutException):
            impatient.place(
                exchange.markets.tickers()[0], "bid", "1", "0.40", client_order_id="slow"
            )
        assert _ids(exchange, "resting") == ["slow"]
        exchange.trading_faults.arm("hold_write", seconds=0.2)
        patient = Trader(exchange, impatient.key, timeout=30.0)
        try:  # a client that waits longer than the hold gets the reply
            late = patient.place(exchange.markets.tickers()[0], "bid", "1", "0.41")
            assert late.status_code == 201
        finally:
            patient.close()
    finally:
        impatient.close()


def test_wrong_order_when_armed_cancel_reply_names_another_order(
    exchange: EmbeddedExchange, alice: Trader
) -> None:
    ticker = exchange.markets.tickers()[0]
    first = alice.place(ticker, "bid", "1", "0.40").json()["order_id"]
    second = alice.place(ticker, "bid", "1", "0.41").json()["order_id"]
    exchange.trading_faults.arm("wrong_order")
    response = alice.cancel(first)
    assert response.status_code == 200
    assert response.json()["order_id"] != first  # a safe client compares order_id [CL]
    truth = {o.order_id: o.status for o in exchange.truth("alice")["alice"].orders}
    assert truth == {first: "canceled", second: "resting"}


def test_error_in_2xx_when_armed_answers_200_with_error_and_applies_nothing(
    exchange: EmbeddedExchange, alice: Trader
) -> None:
    exchange.trading_faults.arm("error_in_2xx")
    response = alice.place(exchange.markets.tickers()[0], "bid", "1", "0.40")
    assert response.status_code == 200
    assert "error" in response.json() and "order_id" not in response.json()
    assert _ids(exchange) == []


@pytest.mark.parametrize("applied", [True, False])
def test_cancel_all_503_when_armed_answers_503_applied_or_not(
    exchange: EmbeddedExchange, alice: Trader, applied: bool
) -> None:
    ticker = exchange.markets.tickers()[0]
    alice.place(ticker, "bid", "1", "0.40", client_order_id="r")
    alice.place(ticker, "bid", "1", "0.41", client_order_id="s")
    exchange.trading_faults.arm("cancel_all_503", applied=applied)
    create = alice.place(ticker, "bid", "1", "0.42", client_order_id="t")
    assert create.status_code == 201  # a create does not take a cancel-all fault
    assert alice.request("DELETE", ORDERS).status_code == 503
    assert sorted(_ids(exchange, "resting")) == ([] if applied else ["r", "s", "t"])


def test_read_lag_when_set_hides_a_write_from_reads_until_it_catches_up(
    exchange: EmbeddedExchange, alice: Trader
) -> None:
    exchange.trading_settings.read_lag_ms = 3_600_000
    ticker = exchange.markets.tickers()[0]
    order_id = alice.place(ticker, "bid", "1", "0.40", client_order_id="fresh").json()["order_id"]
    assert alice.orders() == []  # REST lags the write
    assert alice.orders(ticker=ticker, status="resting") == []
    assert alice.get(f"/portfolio/orders/{order_id}").status_code == 404
    assert _ids(exchange) == ["fresh"]  # the truth does not
    exchange.trading_settings.read_lag_ms = 0
    assert [o["client_order_id"] for o in alice.orders()] == ["fresh"]
    assert [o["order_id"] for o in alice.orders(ticker=ticker, status="resting")] == [order_id]
    assert alice.get(f"/portfolio/orders/{order_id}").json()["order"]["client_order_id"] == "fresh"


def test_user_data_timestamp_when_lagging_reports_the_lagged_time(
    exchange: EmbeddedExchange, alice: Trader
) -> None:
    now = alice.get("/exchange/user_data_timestamp").json()["as_of_time"]
    exchange.trading_settings.read_lag_ms = 3_600_000
    lagged = alice.get("/exchange/user_data_timestamp").json()["as_of_time"]
    assert lagged < now  # ISO strings of one format compare as times


def test_trading_fault_spec_when_posted_to_the_sim_endpoint_arms_it(
    exchange: EmbeddedExchange, alice: Trader
) -> None:
    armed = alice.http.post(
        "/_sim/trading_faults", json={"spec": "fail_write:count=2,applied=false"}
    )
    assert armed.status_code == 200
    assert exchange.trading_faults.pending() == 2
    bad = alice.http.post("/_sim/trading_faults", json={"spec": "no_such_fault"})
    assert bad.status_code == 400 and "unknown trading fault" in bad.json()["error"]["message"]


@pytest.mark.parametrize(
    ("spec", "kind", "options"),
    [
        ("drop_write", TradingFault.DROP_WRITE, {}),
        ("hold_write:seconds=2.5", TradingFault.HOLD_WRITE, {"seconds": 2.5}),
        ("cancel_all_503:applied=false", TradingFault.CANCEL_ALL_503, {"applied": False}),
        ("lose_private_events:member=bob", TradingFault.LOSE_PRIVATE_EVENTS, {"member": "bob"}),
    ],
)
def test_parse_spec_when_valid_gives_fault_and_options(
    spec: str, kind: TradingFault, options: dict[str, object]
) -> None:
    assert parse_spec(spec) == (kind, options)


@pytest.mark.parametrize(
    "spec", ["nope", "drop_write:count", "fail_write:status=abc", "drop_write:x=1"]
)
def test_parse_spec_when_invalid_raises_one_line_value_error(spec: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_spec(spec)
    assert "\n" not in str(caught.value)


def test_arm_trading_fault_when_member_given_to_a_write_fault_is_refused(
    exchange: EmbeddedExchange,
) -> None:
    with pytest.raises(ValueError, match="takes no member"):
        exchange.arm_trading_fault("drop_write:member=bob")
    assert exchange.trading_faults.pending() == 0
