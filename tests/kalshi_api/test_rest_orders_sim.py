"""The order API against the embedded exchange over loopback sockets: what the client reads
back must be the exchange's own truth, and every trading fault must end in the right typed
result (refusal vs outcome-unknown), resolved by lookup, never by a new client_order_id."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from kalshi_api.account_limits import get_account_limits, get_endpoint_costs
from kalshi_api.errors import (
    DuplicateOrderError,
    InvalidOrderError,
    LocallyRefusedError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitedError,
    RequestRejectedError,
)
from kalshi_api.fixed_point import format_count, format_dollars
from kalshi_api.order_groups import OrderGroupApi
from kalshi_api.order_models import AmendOrder, CancelTarget, CreateOrder, DecreaseOrder
from kalshi_api.orders import OrderApi
from kalshi_api.rest import KalshiRestClient, RetryPolicy
from kalshi_api.write_pacer import WritePacer
from kalshi_sim.exchange import EmbeddedExchange
from kalshi_sim.write_limits import WriteLimits
from tests.conftest import ExchangeFactory
from tests.harness import signer_from_file

NO_RETRY = RetryPolicy(max_attempts=1)


@pytest.fixture
def exchange(make_exchange: ExchangeFactory) -> EmbeddedExchange:
    return make_exchange(markets=6, write_limit=False, cancel_all_tail_s=0)


def _api(
    exchange: EmbeddedExchange,
    member: str,
    *,
    timeout: float = 5.0,
    pacer: WritePacer | None = None,
) -> OrderApi:
    key = exchange.add_member(member, dict.fromkeys(range(4), 100_000))  # $1,000 per shard
    signer = signer_from_file(key.key_id, key.private_key_path)
    client = KalshiRestClient(
        exchange.rest_url, signer, timeout=timeout, retry=NO_RETRY, write_pacer=pacer
    )
    return OrderApi(client)


@pytest.fixture
def alice(exchange: EmbeddedExchange) -> Iterator[OrderApi]:
    api = _api(exchange, "alice")
    yield api
    api.client.close()


@pytest.fixture
def bob(exchange: EmbeddedExchange) -> Iterator[OrderApi]:
    api = _api(exchange, "bob")
    yield api
    api.client.close()


def _ticker(exchange: EmbeddedExchange, index: int = 0) -> str:
    return exchange.markets.tickers()[index]


def _inside_spread(exchange: EmbeddedExchange) -> tuple[str, str]:
    """A market and a YES price strictly inside its spread, so an order there becomes the best
    bid (the house's generated liquidity rests on both sides of every book)."""
    for ticker in exchange.markets.tickers():
        levels = exchange.markets.levels(ticker)
        best_bid = max((price for price, _ in levels.yes), default=0)
        best_ask = 1_000_000 - max((price for price, _ in levels.no), default=0)
        inside = best_bid + 10_000
        if inside < best_ask:
            return ticker, str(Decimal(inside) / 1_000_000)
    raise AssertionError("no market has a spread wider than one cent")


def _bid(
    ticker: str, coid: str, count: str = "3", price: str = "0.40", **kw: object
) -> CreateOrder:
    return CreateOrder(ticker, "bid", Decimal(count), Decimal(price), coid, **kw)  # type: ignore[arg-type]


def _truth_orders(exchange: EmbeddedExchange, member: str) -> dict[str, tuple[str, str, str, str]]:
    """order_id -> (status, price, filled, remaining) as the exchange itself holds them."""
    return {
        o.order_id: (
            o.status,
            format_dollars(o.price_micros),
            format_count(o.fill_centi),
            format_count(o.remaining_centi),
        )
        for o in exchange.truth(member)[member].orders
    }


def _client_orders(api: OrderApi) -> dict[str, tuple[str, str, str, str]]:
    return {
        o.order_id: (
            o.status,
            format_dollars(int(o.yes_price_dollars * 1_000_000)),  # type: ignore[operator]
            f"{o.fill_count_fp:.2f}",
            f"{o.remaining_count_fp:.2f}",
        )
        for o in api.list_orders()
    }


def _posts(exchange: EmbeddedExchange, path: str = "/trade-api/v2/portfolio/events/orders") -> int:
    return sum(1 for e in exchange.oplog.entries("rest") if e.detail == f"POST {path}")


# -- the happy paths, compared with the exchange's truth ------------------------------------------
def test_place_amend_decrease_cancel_when_driven_through_client_match_exchange_truth(
    exchange: EmbeddedExchange, alice: OrderApi
) -> None:
    ticker = _ticker(exchange)
    created = alice.create(_bid(ticker, "a:1", count="5"))
    assert (created.filled, created.resting, created.client_order_id) == (0, 5, "a:1")
    amended = alice.amend(AmendOrder(created.order_id, ticker, "bid", Decimal("0.41"), Decimal(4)))
    assert amended.order_id == created.order_id
    decreased = alice.decrease(DecreaseOrder(created.order_id, reduce_by=Decimal(1)))
    assert decreased.remaining_count == Decimal(3)
    assert _client_orders(alice) == _truth_orders(exchange, "alice")
    assert _truth_orders(exchange, "alice")[created.order_id] == (
        "resting",
        "0.4100",
        "0.00",
        "3.00",
    )
    cancelled = alice.cancel(created.order_id)
    assert cancelled.order_id == created.order_id and cancelled.reduced_by == Decimal(3)
    assert alice.get_order(created.order_id).status == "canceled"
    assert _client_orders(alice) == _truth_orders(exchange, "alice")
    with pytest.raises(NotFoundError):
        alice.cancel(created.order_id)  # already gone: 404, treat as gone


def test_crossing_orders_when_filled_report_fills_and_positions_as_the_exchange_does(
    exchange: EmbeddedExchange, alice: OrderApi, bob: OrderApi
) -> None:
    ticker, price = _inside_spread(exchange)
    maker = alice.create(_bid(ticker, "a:m", count="2", price=price))
    taker = bob.create(
        CreateOrder(
            ticker, "ask", Decimal(1), Decimal(price), "b:t", time_in_force="immediate_or_cancel"
        )
    )
    assert taker.filled == Decimal(1) and taker.average_fill_price == Decimal(price)
    truth = exchange.truth("bob")["bob"]
    fills = bob.list_fills(order_id=taker.order_id)
    assert [(f.order_id, f.count_fp, f.yes_price_dollars) for f in fills] == [
        (f.order_id, Decimal(f.count_centi) / 100, Decimal(f.yes_price_micros) / 1_000_000)
        for f in truth.fills
    ]
    assert {p.ticker: p.position_centi for p in bob.list_positions()} == {
        p.ticker: p.position_centi for p in truth.positions if p.position_centi
    }
    assert alice.get_order(maker.order_id).remaining_count_fp == Decimal(1)


def test_batch_place_and_cancel_all_when_driven_through_client_leave_nothing_resting(
    exchange: EmbeddedExchange, alice: OrderApi
) -> None:
    tickers = exchange.markets.tickers()[:3]
    items = alice.batch_create(
        [_bid(t, f"a:b{i}", price="0.30") for i, t in enumerate(tickers)]
        + [_bid(tickers[0], "a:bad", price="0.30", post_only=True, count="1")]
    )
    assert all(item.ok for item in items)
    assert sorted(o.client_order_id or "" for o in alice.list_orders(status="resting")) == [
        "a:b0",
        "a:b1",
        "a:b2",
        "a:bad",
    ]
    first = items[0].order_id
    assert first is not None
    cancelled = alice.batch_cancel([CancelTarget(first), CancelTarget("no-such-order")])
    assert cancelled[0].ok and not cancelled[1].ok
    assert isinstance(cancelled[1].error.as_error(), NotFoundError)  # type: ignore[union-attr]
    alice.cancel_all()
    assert alice.list_orders(status="resting") == []
    assert {s for s, *_ in _truth_orders(exchange, "alice").values()} == {"canceled"}


def test_create_when_refused_by_the_engine_is_typed_and_the_id_stays_spent(
    exchange: EmbeddedExchange, alice: OrderApi
) -> None:
    ticker = _ticker(exchange)
    created = alice.create(_bid(ticker, "a:once"))
    alice.create(_bid(ticker, "a:rest", price="0.35"))
    alice.cancel(created.order_id)
    with pytest.raises(DuplicateOrderError):
        alice.create(_bid(ticker, "a:once"))
    with pytest.raises(InvalidOrderError) as caught:
        alice.create(
            CreateOrder(ticker, "ask", Decimal(1), Decimal("0.30"), "a:po", post_only=True)
        )
    assert caught.value.code == "invalid_order"
    assert len(_truth_orders(exchange, "alice")) == 2


# -- faults: each ends in the right typed result ---------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "options", "applied", "lag_ms"),
    [
        ("drop_write", {}, True, 0),
        ("drop_write", {}, True, 300),
        ("fail_write", {"status": 503, "applied": False}, False, 0),
        ("fail_write", {"status": 503, "applied": False}, False, 300),
        ("fail_write", {"status": 500, "applied": True}, True, 0),
        pytest.param(  # waits out the client's 2 s timeout
            "hold_write", {"seconds": 5.0}, True, 0, marks=pytest.mark.slow
        ),
    ],
)
def test_create_when_fault_hides_the_outcome_is_unknown_then_resolved_by_lookup(
    exchange: EmbeddedExchange,
    fault: str,
    options: dict[str, object],
    applied: bool,
    lag_ms: int,
) -> None:
    exchange.trading_settings.read_lag_ms = lag_ms
    api = _api(exchange, "carol", timeout=2.0)
    ticker = _ticker(exchange)
    order = _bid(ticker, f"c:{fault}")
    exchange.trading_faults.arm(fault, **options)  # type: ignore[arg-type]
    try:
        with pytest.raises(OutcomeUnknownError) as caught:
            api.create(order)
        unknown = caught.value
        assert unknown.client_order_id == order.client_order_id
        assert _posts(exchange) == 1
        # The lookup waits out the read lag: found exactly when the exchange applied it.
        found = api.resolve_create(unknown, ticker=ticker)
        assert (found is not None) == applied
        truth = exchange.truth("carol")["carol"].orders
        assert [o.client_order_id for o in truth] == ([order.client_order_id] if applied else [])
        if found is None:
            # Provably absent: resend the same request, same id.
            assert api.resend_create(unknown).client_order_id == order.client_order_id
        else:
            assert found.order_id == truth[0].order_id
            with pytest.raises(DuplicateOrderError):
                api.resend_create(unknown)  # the id is spent: proof it exists
        assert len(exchange.truth("carol")["carol"].orders) == 1
        assert _posts(exchange) == 2
    finally:
        api.client.close()


def test_create_when_2xx_carries_error_is_a_refusal_and_nothing_was_placed(
    exchange: EmbeddedExchange, alice: OrderApi
) -> None:
    exchange.trading_faults.arm("error_in_2xx")
    with pytest.raises(RequestRejectedError) as caught:
        alice.create(_bid(_ticker(exchange), "a:2xx"))
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert caught.value.status == 200 and caught.value.code == "internal_error"
    assert _truth_orders(exchange, "alice") == {}
    assert _posts(exchange) == 1


def test_cancel_when_reply_names_another_order_is_outcome_unknown_and_lookup_resolves_it(
    exchange: EmbeddedExchange, alice: OrderApi
) -> None:
    ticker = _ticker(exchange)
    first = alice.create(_bid(ticker, "a:w1"))
    second = alice.create(_bid(ticker, "a:w2", price="0.39"))
    exchange.trading_faults.arm("wrong_order")
    with pytest.raises(OutcomeUnknownError, match="describes order"):
        alice.cancel(second.order_id)
    assert alice.get_order(second.order_id).status == "canceled"
    assert alice.get_order(first.order_id).status == "resting"


def test_cancel_all_when_503_is_outcome_unknown_and_a_listing_shows_it_applied(
    exchange: EmbeddedExchange, alice: OrderApi
) -> None:
    for i in range(3):
        alice.create(_bid(_ticker(exchange, i), f"a:ca{i}"))
    exchange.trading_faults.arm("cancel_all_503")
    with pytest.raises(OutcomeUnknownError) as caught:
        alice.cancel_all()
    assert caught.value.status == 503
    assert alice.list_orders(status="resting") == []


# -- the write bucket -----------------------------------------------------------------------------
def test_pacer_when_sized_from_the_exchange_keeps_creates_clear_of_429(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=6, usage_tier="basic", cancel_all_tail_s=0)
    plain = _api(exchange, "dave")
    ticker = _ticker(exchange)
    # The premise (unpaced creates hit 429) must not depend on how fast this machine sends
    # them: the bucket refills 100 tokens/s, so a loaded machine sending 11 creates over
    # 0.1 s never emptied it. Meanwhile the exchange's Write clock stands still (no refill).
    real_limits = exchange.write_limits
    exchange.write_limits = WriteLimits("basic", clock=lambda: 0.0)
    try:
        with pytest.raises(RateLimitedError):
            for i in range(11):  # Basic: 100 tokens, 10 per create
                plain.create(_bid(ticker, f"d:{i}", price="0.20", count="1"))
        limits, costs = get_account_limits(plain.client), get_endpoint_costs(plain.client)
    finally:
        plain.client.close()
        exchange.write_limits = real_limits  # the paced client meets the real, refilling one
    paced = _api(exchange, "erin", pacer=WritePacer.from_account(limits, costs))
    try:
        with pytest.raises(LocallyRefusedError, match="11 orders"):
            paced.batch_create(
                [_bid(ticker, f"e:b{i}", price="0.20", count="1") for i in range(11)]
            )
        for i in range(15):
            paced.create(_bid(ticker, f"e:{i}", price="0.20", count="1"))
    finally:
        paced.client.close()
    assert len(exchange.truth("erin")["erin"].orders) == 15
    assert exchange.oplog.count("rest") > 0


def test_create_when_price_off_the_market_grid_refuses_before_sending(
    exchange: EmbeddedExchange, alice: OrderApi
) -> None:
    ticker = _ticker(exchange)
    step = alice.client.get_market(ticker).price_ranges[0].step
    off_grid = Decimal("0.40") + step / 2
    with pytest.raises(ValueError, match=r"off .* price grid"):
        alice.create(_bid(ticker, "a:off", price=str(off_grid)))
    with pytest.raises(ValueError, match=r"off .* price grid"):
        alice.amend(AmendOrder("any", ticker, "bid", off_grid, Decimal(1)))
    assert _posts(exchange) == 0
    assert alice.create(_bid(ticker, "a:on", price=str(Decimal("0.40") + step))).resting == 3


def test_order_group_when_triggered_reset_and_deleted_through_client_matches_exchange(
    exchange: EmbeddedExchange, alice: OrderApi
) -> None:
    groups = OrderGroupApi(alice.client)
    ticker = _ticker(exchange)
    created = groups.create(Decimal(5))
    assert [g.id for g in groups.list()] == [created.order_group_id]
    order = alice.create(_bid(ticker, "a:g1", count="1", order_group_id=created.order_group_id))
    assert len(groups.get(created.order_group_id).orders) == 1
    groups.set_limit(created.order_group_id, Decimal(7))
    assert groups.list()[0].contracts_limit_fp == Decimal(7)
    groups.trigger(created.order_group_id)
    assert alice.get_order(order.order_id).status == "canceled"
    with pytest.raises(RequestRejectedError) as refused:
        alice.create(_bid(ticker, "a:g2", count="1", order_group_id=created.order_group_id))
    assert refused.value.status == 409 and not isinstance(refused.value, OutcomeUnknownError)
    groups.reset(created.order_group_id)
    alice.create(_bid(ticker, "a:g3", count="1", order_group_id=created.order_group_id))
    exchange.trading_faults.arm("fail_write", status=502, applied=True)
    with pytest.raises(OutcomeUnknownError) as unknown:
        groups.delete(created.order_group_id)
    assert unknown.value.status == 502 and unknown.value.client_order_id is None
    with pytest.raises(NotFoundError):  # the lookup: the delete was carried out
        groups.get(created.order_group_id)
    assert alice.list_orders(status="resting") == []
    assert [g.order_group_id for g in exchange.truth("alice")["alice"].groups] == []
