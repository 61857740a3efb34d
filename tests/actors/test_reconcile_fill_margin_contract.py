"""Reconciliation pulls fills from *before* the last one seen, so a missed fill older than a
later, delivered one is still found.

The private channels carry no sequence numbers (§8.7): a fill lost with a dropped session
is found only by the REST pull after the reconnect. That pull can miss it too (the
exchange's portfolio reads lag), and by the next reconciliation a later fill may have come
through on the new session. Pulling "since the last fill seen" would then skip the older,
missed one for good (the position would be corrected by a seed, and the service would never
hear of the fill); the pull starts a margin earlier (``trading.reconcile.fills_since``).
Over real sockets against the embedded exchange.
"""

from __future__ import annotations

import threading

from messages.orders import OrderStatus
from tests.actors.gateway_support import (
    WAIT,
    Counterparty,
    assert_matches_truth,
    events_of,
    quiet_market,
    trading_supervisor,
)
from tests.conftest import ExchangeFactory


def test_reconcile_when_a_missed_fill_is_older_than_the_last_fill_seen_still_finds_it(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=8)
    q = quiet_market(exchange)
    ticker = q.ticker
    bob = Counterparty(exchange)
    with trading_supervisor(exchange, "margin", order_group_limit=None) as (supervisor, rec):
        cid = rec.call(lambda s: s.trading.place(ticker, "bid", 3, q.inside))
        assert rec.wait(lambda r: r.status_of(cid) is OrderStatus.RESTING)

        # Fill A is lost with alice's session, and the reconnect's REST pull cannot see it yet.
        exchange.trading_settings.read_lag_ms = 60_000
        before = len(events_of(supervisor, "reconciled"))
        exchange.ws.lose_private_events("alice")
        bob.order(ticker, "ask", "1", q.inside)
        assert rec.wait(lambda _: len(events_of(supervisor, "reconciled")) > before)
        assert not [f for f in rec.fills if f.client_order_id == cid]
        [fill_a] = [f for f in exchange.truth("alice")["alice"].fills if f.ts_ms]

        # Fill B, in a later second (the pull's granularity), arrives on the new session.
        clock = exchange.markets.clock_ms
        later = threading.Event()
        while clock() // 1000 <= fill_a.ts_ms // 1000:
            assert not later.wait(0.05)  # the wall clock moving on, not a synchronisation
        bob.order(ticker, "ask", "1", q.inside)
        assert rec.wait(lambda r: len([f for f in r.fills if f.client_order_id == cid]) == 1)

        # The reads catch up; the next reconnect's pull must reach back to fill A.
        exchange.trading_settings.read_lag_ms = 0
        assert exchange.ws.drop_private_sessions("alice") >= 1
        assert rec.wait(lambda r: len([f for f in r.fills if f.client_order_id == cid]) == 2,
                        WAIT), [f.trade_id for f in rec.fills]
        assert rec.wait(lambda r: r.status_of(cid) is OrderStatus.PARTIALLY_FILLED)
        assert_matches_truth(supervisor, exchange, "alice")
    bob.close()
