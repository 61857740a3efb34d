"""A halt whose cancel-all failed is not done until a cancel-all has answered, whatever the
reads show.

The verify loop (``trading.halt``) reads our resting orders after the cancel-all and cancels
by id what it sees. But the exchange's portfolio reads lag (about a second on demo, §8.10):
an order placed just before the halt may not be listed yet. If the cancel-all also failed
(503, not applied) and the read shows nothing of ours, nothing has proven the sweep: the
loop must send cancel-all again rather than report the halt complete with our order still
resting. Over real sockets against the embedded exchange.
"""

from __future__ import annotations

from messages.orders import OrderStatus, TradingState
from tests.actors.gateway_support import quiet_market, trading_supervisor
from tests.conftest import ExchangeFactory


def test_halt_when_cancel_all_fails_and_reads_lag_behind_an_order_still_cancels_it(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=8, cancel_all_tail_s=0)
    q = quiet_market(exchange)
    with trading_supervisor(exchange, "haltlag", order_group_limit=None) as (supervisor, rec):
        warm = rec.call(lambda s: s.trading.place(q.ticker, "bid", 1, q.below(3)))
        assert rec.wait(lambda r: r.status_of(warm) is OrderStatus.RESTING)
        assert rec.call(lambda s: s.trading.cancel(warm))
        assert rec.wait(lambda r: r.status_of(warm) is OrderStatus.CANCELED)

        exchange.trading_settings.read_lag_ms = 60_000  # reads show the book before `late`
        late = rec.call(lambda s: s.trading.place(q.ticker, "bid", 1, q.below(1)))
        assert rec.wait(lambda r: r.status_of(late) is OrderStatus.RESTING)
        exchange.trading_faults.arm("cancel_all_503", applied=False)

        report = supervisor.halt("cancel-all fails, reads lag")

        assert report.state is TradingState.HALTED
        assert report.cancel_all_calls >= 2, report  # the failed one was sent again
        at_exchange = [o.status for o in exchange.truth("alice")["alice"].orders
                       if o.client_order_id == late]
        assert at_exchange == ["canceled"], "an order of ours rests in a halted process"
        assert rec.wait(lambda r: r.status_of(late) is OrderStatus.CANCELED)
        exchange.trading_settings.read_lag_ms = 0
