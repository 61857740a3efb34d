"""The trading fault matrix: every trading fault knob of the embedded exchange, and the
lifecycle events that take orders away, over real sockets against ``EmbeddedExchange``
with a real supervisor, its order gateway and a trading service.

Each test arms one fault (and checks it was consumed, so the fault really happened), drives
orders through the service's ``self.trading``, and ends with
:func:`tests.trading_e2e.support.settle`: nothing at the exchange the process does not know,
no ``client_order_id`` twice, open orders and positions equal to ``EmbeddedExchange.truth()``,
and after a halt none of ours resting. Waits are on conditions; nothing is timed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from kalshi_sim.exchange import EmbeddedExchange
from messages.events import ExchangePaused, ExchangeResumed
from messages.fault_kinds import ActorFault, ExchangeFault
from messages.faults import InjectFault
from messages.orders import OrderStatus, TradingState
from tests.actors.gateway_support import Counterparty, Recorder, events_of, trading_supervisor
from tests.conftest import ExchangeFactory
from tests.trading_e2e.support import settle

pytestmark = pytest.mark.slow  # 22 end-to-end cases, a supervisor trading through each fault

D = Decimal


def _place(rec: Recorder, ticker: str, side: str, count: int | str, price: str, **kw: object
           ) -> str:
    return str(rec.call(lambda s: s.trading.place(ticker, side, count, price, **kw)))


def _wait_status(rec: Recorder, cid: str, *statuses: OrderStatus) -> None:
    assert rec.wait(lambda r: r.status_of(cid) in statuses), (cid, rec.status_of(cid))


def _inside(exchange: EmbeddedExchange, ticker: str) -> str:
    """A YES price strictly inside the book's spread (a bid there rests, first in line)."""
    levels = exchange.markets.levels(ticker)
    bid, ask = max(levels.yes)[0], 1_000_000 - max(levels.no)[0]
    price = (bid + ask) // 2 // 10_000 * 10_000
    assert bid < price < ask, (ticker, bid, ask)
    return str(D(price).scaleb(-6))


def _best_bid(exchange: EmbeddedExchange, ticker: str) -> str:
    return str(D(max(exchange.markets.levels(ticker).yes)[0]).scaleb(-6))


def _engage(rec: Recorder, ticker: str) -> str:
    """A first order engages the gateway (its order group, its first reconciliation), so the
    fault under test meets a gateway in its steady state."""
    cid = _place(rec, ticker, "bid", 1, "0.02")
    _wait_status(rec, cid, OrderStatus.RESTING)
    return cid


# -- write faults on a create -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "options"),
    [
        ("drop_write", {}),
        ("fail_write", {"status": 500, "applied": True}),
        ("fail_write", {"status": 503, "applied": False}),
        ("hold_write", {"seconds": 2.0}),
        ("error_in_2xx", {}),
    ],
    ids=["drop_write", "fail_write_applied", "fail_write_not_applied", "hold_write",
         "error_in_2xx"],
)
def test_create_when_write_fault_strikes_resolves_to_one_order_matching_truth(
    make_exchange: ExchangeFactory, fault: str, options: dict[str, object]
) -> None:
    exchange = make_exchange(markets=3)
    ticker = exchange.markets.tickers()[0]
    key = f"create-{fault}-{options.get('applied', '')}"
    with trading_supervisor(exchange, key) as (supervisor, rec):
        _engage(rec, ticker)
        exchange.trading_faults.arm(fault, **options)  # type: ignore[arg-type]
        cid = _place(rec, ticker, "bid", 3, "0.20")
        _wait_status(rec, cid, OrderStatus.RESTING, OrderStatus.REJECTED)
        assert exchange.trading_faults.pending() == 0, "the fault was not met"
        at_exchange = [o for o in exchange.truth("alice")["alice"].orders
                       if o.client_order_id == cid]
        if rec.status_of(cid) is OrderStatus.REJECTED:  # a definite refusal: never sent again
            assert at_exchange == [], at_exchange
        else:
            assert len(at_exchange) == 1 and at_exchange[0].status == "resting"
        settle(supervisor, exchange, rec)


def test_create_when_reads_lag_and_reply_dropped_waits_for_the_read_and_never_duplicates(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=3, read_lag_ms=1500)
    ticker = exchange.markets.tickers()[0]
    with trading_supervisor(exchange, "lag") as (supervisor, rec):
        _engage(rec, ticker)
        exchange.trading_settings.private_event_delay_ms = 5_000  # only reads can tell
        exchange.trading_faults.arm("drop_write")
        cid = _place(rec, ticker, "ask", 2, "0.85")
        _wait_status(rec, cid, OrderStatus.RESTING)
        orders = [o for o in exchange.truth("alice")["alice"].orders if o.client_order_id == cid]
        assert len(orders) == 1
        settle(supervisor, exchange, rec)


# -- faults on cancels ---------------------------------------------------------------------------
def test_cancel_when_reply_describes_another_order_keeps_both_right(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=3)
    ticker = exchange.markets.tickers()[0]
    with trading_supervisor(exchange, "wrong") as (supervisor, rec):
        keep = _place(rec, ticker, "bid", 1, "0.10")
        drop = _place(rec, ticker, "bid", 1, "0.11")
        _wait_status(rec, keep, OrderStatus.RESTING)
        _wait_status(rec, drop, OrderStatus.RESTING)
        exchange.trading_faults.arm("wrong_order")
        rec.call(lambda s: s.trading.cancel(drop))
        _wait_status(rec, drop, OrderStatus.CANCELED)
        assert exchange.trading_faults.pending() == 0
        settle(supervisor, exchange, rec)
        assert rec.status_of(keep) is OrderStatus.RESTING


@pytest.mark.parametrize("op", ["drop_write", "fail_write"])
def test_cancel_when_its_reply_is_lost_is_settled_by_reading(
    make_exchange: ExchangeFactory, op: str
) -> None:
    exchange = make_exchange(markets=3)
    ticker = exchange.markets.tickers()[0]
    with trading_supervisor(exchange, f"cancel-{op}") as (supervisor, rec):
        cid = _place(rec, ticker, "bid", 2, "0.12")
        _wait_status(rec, cid, OrderStatus.RESTING)
        exchange.trading_faults.arm(op)
        rec.call(lambda s: s.trading.cancel(cid))
        _wait_status(rec, cid, OrderStatus.CANCELED)
        assert exchange.trading_faults.pending() == 0
        settle(supervisor, exchange, rec)


# -- the kill switch against cancel-all's faults -------------------------------------------------
@pytest.mark.parametrize("applied", [True, False], ids=["applied", "not_applied"])
def test_halt_when_cancel_all_answers_503_leaves_none_of_ours_resting(
    make_exchange: ExchangeFactory, applied: bool
) -> None:
    exchange = make_exchange(markets=3)
    ticker = exchange.markets.tickers()[0]
    with trading_supervisor(exchange, f"halt503-{applied}", order_group_limit=None) as (
        supervisor, rec,
    ):
        cids = [_place(rec, ticker, "bid", 1, p) for p in ("0.10", "0.11", "0.12")]
        for cid in cids:
            _wait_status(rec, cid, OrderStatus.RESTING)
        exchange.trading_faults.arm("cancel_all_503", applied=applied)
        report = supervisor.halt("matrix")
        assert report.remaining == 0
        assert exchange.trading_faults.pending() == 0
        for cid in cids:
            _wait_status(rec, cid, OrderStatus.CANCELED)
        settle(supervisor, exchange, rec, halted=True)


def test_place_when_within_cancel_alls_tail_is_cancelled_and_known_so(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=3, cancel_all_tail_s=60)
    ticker = exchange.markets.tickers()[0]
    with trading_supervisor(exchange, "tail", order_group_limit=None) as (supervisor, rec):
        _engage(rec, ticker)
        assert supervisor.halt("tail").remaining == 0
        supervisor.resume_trading()
        cid = _place(rec, ticker, "bid", 1, "0.14")
        # the exchange's tail takes it (at once or at its next sweep); we must see it go
        _wait_status(rec, cid, OrderStatus.CANCELED)
        true = next(o for o in exchange.truth("alice")["alice"].orders
                    if o.client_order_id == cid)
        assert true.status == "canceled"
        settle(supervisor, exchange, rec)


# -- the private channel's order and losses -----------------------------------------------------
@pytest.mark.parametrize("order", ["before", "after"])
def test_fill_when_private_events_come_before_or_after_the_reply_counts_once(
    make_exchange: ExchangeFactory, order: str
) -> None:
    exchange = make_exchange(markets=3, private_events=order)
    if order == "after":
        exchange.trading_settings.private_event_delay_ms = 300
    ticker = exchange.markets.tickers()[0]
    bob = Counterparty(exchange)
    price = _inside(exchange, ticker)
    with trading_supervisor(exchange, f"events-{order}") as (supervisor, rec):
        cid = _place(rec, ticker, "bid", 4, price)
        _wait_status(rec, cid, OrderStatus.RESTING)
        bob.order(ticker, "ask", "3", price)  # a maker fill of ours
        _wait_status(rec, cid, OrderStatus.PARTIALLY_FILLED)
        taker = _place(rec, exchange.markets.tickers()[1], "ask", 1,
                       _best_bid(exchange, exchange.markets.tickers()[1]),
                       time_in_force="immediate_or_cancel")  # and a taker fill
        _wait_status(rec, taker, OrderStatus.EXECUTED)
        settle(supervisor, exchange, rec)
        fills = [f for f in rec.fills if f.client_order_id == cid]
        assert sum(f.count for f in fills) == D(3), fills
    bob.close()


def test_fill_when_private_events_are_lost_reconciliation_applies_it(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=3)
    ticker = exchange.markets.tickers()[0]
    bob = Counterparty(exchange)
    price = _inside(exchange, ticker)
    with trading_supervisor(exchange, "lost") as (supervisor, rec):
        cid = _place(rec, ticker, "bid", 4, price)
        _wait_status(rec, cid, OrderStatus.RESTING)
        exchange.arm_trading_fault("lose_private_events:member=alice")
        bob.order(ticker, "ask", "4", price)
        _wait_status(rec, cid, OrderStatus.EXECUTED)
        settle(supervisor, exchange, rec)
    bob.close()


# -- the gateway crashing mid-order --------------------------------------------------------------
def test_gateway_when_it_crashes_with_a_create_in_flight_leaves_nothing_unknown(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=3, cancel_all_tail_s=0)  # the tail has its own test
    ticker = exchange.markets.tickers()[0]
    with trading_supervisor(exchange, "crash") as (supervisor, rec):
        _engage(rec, ticker)
        exchange.trading_faults.arm("hold_write", seconds=2.0)
        cid = _place(rec, ticker, "bid", 2, "0.25")
        assert rec.wait(lambda r: r.status_of(cid) is not None)
        supervisor.inject(InjectFault(target="order_gateway", fault=ActorFault.CRASH))
        assert rec.wait(lambda _: bool(events_of(supervisor, "child_restarted"))
                        or bool(events_of(supervisor, "service_restarted")))
        # the held create lands; the crashed gateway's stop halted (every order of ours
        # cancelled, the held one once it showed), and the new one starts HALTED
        assert rec.wait(lambda _: exchange.trading_faults.pending() == 0)
        settle(supervisor, exchange, rec, halted=True)
        supervisor.resume_trading()  # a person looks, then trades again
        after = _place(rec, ticker, "bid", 1, "0.03")
        _wait_status(rec, after, OrderStatus.RESTING, OrderStatus.REJECTED)
        assert rec.status_of(after) is OrderStatus.RESTING, rec.last(after)
        settle(supervisor, exchange, rec)


def test_gateway_when_it_crashes_with_orders_resting_tells_their_service_they_ended(
    make_exchange: ExchangeFactory,
) -> None:
    """The crashed incarnation's stop cancels our orders at the exchange; its successor
    (the tracker lives in the link) must tell the owning service how they ended, so
    ``self.trading.open_orders`` does not keep them forever."""
    exchange = make_exchange(markets=3)
    ticker = exchange.markets.tickers()[0]
    with trading_supervisor(exchange, "crash-view") as (supervisor, rec):
        resting = _engage(rec, ticker)
        supervisor.inject(InjectFault(target="order_gateway", fault=ActorFault.CRASH))
        settle(supervisor, exchange, rec, halted=True)
        _wait_status(rec, resting, OrderStatus.CANCELED)
        assert rec.call(lambda s: s.trading.open_orders) == {}


# -- the exchange taking orders away --------------------------------------------------------------
def test_market_when_it_closes_with_orders_resting_they_end_canceled(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=3)
    tickers = exchange.markets.tickers()
    with trading_supervisor(exchange, "close") as (supervisor, rec):
        closing = _place(rec, tickers[0], "bid", 2, "0.30")
        other = _place(rec, tickers[1], "bid", 2, "0.30")
        _wait_status(rec, closing, OrderStatus.RESTING)
        _wait_status(rec, other, OrderStatus.RESTING)
        exchange.close_times.close_at(tickers[0], datetime.now(UTC) - timedelta(seconds=1))
        _wait_status(rec, closing, OrderStatus.CANCELED)
        settle(supervisor, exchange, rec)
        assert rec.status_of(other) is OrderStatus.RESTING


def test_market_when_reactivated_loses_every_resting_order_and_we_know_it(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=3)
    ticker = exchange.markets.tickers()[0]
    with trading_supervisor(exchange, "reactivate") as (supervisor, rec):
        cids = [_place(rec, ticker, side, 1, p) for side, p in (("bid", "0.10"), ("ask", "0.90"))]
        for cid in cids:
            _wait_status(rec, cid, OrderStatus.RESTING)
        exchange.ws.set_market_status(ticker, "inactive")
        refused = _place(rec, ticker, "bid", 1, "0.10")  # the exchange now refuses it (409)
        _wait_status(rec, refused, OrderStatus.REJECTED)
        assert all(rec.status_of(c) is OrderStatus.RESTING for c in cids)  # kept while inactive
        exchange.ws.set_market_status(ticker, "active")
        for cid in cids:
            _wait_status(rec, cid, OrderStatus.CANCELED)
        settle(supervisor, exchange, rec)


@pytest.mark.parametrize("cancel_on_pause", [True, False], ids=["cancel_on_pause", "kept"])
def test_trading_pause_when_orders_rest_follows_cancel_order_on_pause(
    make_exchange: ExchangeFactory, cancel_on_pause: bool
) -> None:
    exchange = make_exchange(markets=3)
    ticker = exchange.markets.tickers()[0]
    with trading_supervisor(exchange, f"pause-{cancel_on_pause}") as (supervisor, rec):
        cid = _place(rec, ticker, "bid", 2, "0.20", cancel_order_on_pause=cancel_on_pause)
        _wait_status(rec, cid, OrderStatus.RESTING)
        supervisor.inject(InjectFault(target="exchange", fault=ExchangeFault.PAUSE_TRADING))
        assert rec.wait(lambda r: any(isinstance(e, ExchangePaused) for e in r.events))
        if cancel_on_pause:
            _wait_status(rec, cid, OrderStatus.CANCELED)
        settle(supervisor, exchange, rec)
        assert rec.status_of(cid) is (
            OrderStatus.CANCELED if cancel_on_pause else OrderStatus.RESTING
        )
        supervisor.inject(InjectFault(target="exchange", fault=ExchangeFault.RESUME))
        assert rec.wait(lambda r: any(isinstance(e, ExchangeResumed) for e in r.events))
        after = _place(rec, ticker, "bid", 1, "0.05")
        _wait_status(rec, after, OrderStatus.RESTING)
        settle(supervisor, exchange, rec)


def test_order_group_when_it_triggers_halts_and_leaves_none_of_ours_resting(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=3)
    ticker = exchange.markets.tickers()[0]
    bob = Counterparty(exchange)
    price = _inside(exchange, ticker)
    with trading_supervisor(exchange, "group", order_group_limit=D(2)) as (supervisor, rec):
        first = _place(rec, ticker, "bid", 5, price)
        second = _place(rec, ticker, "bid", 1, "0.10")
        _wait_status(rec, first, OrderStatus.RESTING)
        _wait_status(rec, second, OrderStatus.RESTING)
        bob.order(ticker, "ask", "3", price)
        assert rec.wait(lambda _: supervisor.trading_status().state is TradingState.HALTED)
        assert supervisor.trading_status().reason == "order_group_triggered"
        settle(supervisor, exchange, rec, halted=True)
    bob.close()
