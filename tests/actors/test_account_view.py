"""``on_account`` over real sockets: a service's account view carries the gateway's live
positions and open orders, pushed when they move (not only at the next sync), and a burst
of fills is a bounded number of pushes whose last one is the exchange's truth."""

from __future__ import annotations

import threading
from decimal import Decimal

from messages.orders import OrderStatus
from tests.actors.gateway_support import (
    Counterparty,
    Recorder,
    assert_matches_truth,
    events_of,
    quiet_market,
    trading_supervisor,
)
from tests.conftest import ExchangeFactory

D = Decimal


def _shows(rec: Recorder, cid: str, status: OrderStatus) -> bool:
    last = rec.accounts[-1] if rec.accounts else None
    return last is not None and any(
        o.client_order_id == cid and o.status is status for o in last.open_orders
    )


def test_fill_reaches_on_account_with_its_position_before_the_next_sync(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=8)
    q = quiet_market(exchange)
    ticker = q.ticker
    bob = Counterparty(exchange)
    with trading_supervisor(exchange, "account_fill") as (supervisor, rec):
        assert rec.wait(lambda r: any(a.cause == "sync" for a in r.accounts))
        first = next(a for a in rec.accounts if a.cause == "sync")
        assert first.sync_type == "initial" and first.state is not None  # the old shape reads
        assert first.positions == ()

        cid = rec.call(lambda s: s.trading.place(ticker, "bid", 5, q.inside))
        assert rec.wait(lambda r: _shows(r, cid, OrderStatus.RESTING))

        bob.order(ticker, "ask", "2", q.inside)
        assert rec.wait(lambda r: r.accounts[-1].position(ticker) == D(2))
        view = rec.accounts[-1]
        assert view.cause == "trading" and view.live
        assert view.sync == first.sync  # no sync ran: the gateway pushed it
        assert [p.position for p in view.positions] == [D(2)]
        (order,) = view.orders_of("trader")
        assert (order.client_order_id, order.filled, order.remaining) == (cid, D(2), D(3))
        assert view.open_orders == view.orders_of("trader")
        assert sum(1 for a in rec.accounts if a.cause == "sync") == 1
        assert_matches_truth(supervisor, exchange, "alice")
    bob.close()


def test_burst_of_fills_gives_at_most_three_pushes_and_the_last_is_the_truth(
    make_exchange: ExchangeFactory,
) -> None:
    """The service is held in its first push while N fills arrive: however many snapshots the
    gateway makes, at most one more push is queued while it is held, and at most one more
    follows (the gateway's last refresh after that one was taken)."""
    n = 20
    exchange = make_exchange(markets=8, usage_tier="advanced")  # bob's 20 writes in a burst
    q = quiet_market(exchange)
    ticker = q.ticker
    bob = Counterparty(exchange)
    # the held service must not be judged hung while the burst arrives
    config = {"liveness_timeout": 60.0}
    with trading_supervisor(exchange, "account_burst", config=config) as (supervisor, rec):
        cid = rec.call(lambda s: s.trading.place(ticker, "bid", n + 3, q.inside))
        assert rec.wait(lambda r: _shows(r, cid, OrderStatus.RESTING))

        gate = threading.Event()
        armed = len(rec.accounts)
        rec.account_gate = gate
        for _ in range(n):
            bob.order(ticker, "ask", "1", q.inside)
        # the gateway has applied every fill and our order's last update before the release
        assert rec.wait(lambda r: len(events_of(supervisor, "fill")) >= n)
        assert rec.wait(
            lambda r: any(
                getattr(e, "client_order_id", None) == cid and D(e.filled) == n
                for e in events_of(supervisor, "order_update")
            )
        )
        gate.set()
        assert rec.wait(lambda r: r.accounts[-1].position(ticker) == D(n))
        assert rec.wait(lambda r: len(r.fills) == n)  # the service drained its mailbox
        pushes = [a for a in rec.accounts[armed:] if a.cause == "trading"]
        assert 1 <= len(pushes) <= 3, [a.position(ticker) for a in pushes]

        last = rec.accounts[-1]
        status = supervisor.trading_status()
        assert list(last.positions) == [p.model_copy(update={"cost": None})
                                        for p in status.positions]
        assert [(o.client_order_id, o.filled, o.remaining) for o in last.open_orders] == [
            (cid, D(n), D(3))
        ]
        assert_matches_truth(supervisor, exchange, "alice")
    bob.close()
