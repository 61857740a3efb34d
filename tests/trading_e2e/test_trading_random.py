"""Random order intents and random trading faults against one running supervisor, over real
sockets: whatever hypothesis draws (places at any price, cancels, amends, fills by a
counterparty, dropped/failed/held writes, 2xx errors, lost private events, halts), once it
settles nothing at the exchange is unknown to the process, no ``client_order_id`` appears
twice, open orders and positions equal ``EmbeddedExchange.truth()``, and after a halt none
of ours rests.

One supervisor serves every example (starting one per example would cost seconds each);
the invariants are about the whole history, so carrying state across examples only makes
them harder to keep. Few examples (the suite stays fast), no deadline (sockets).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kalshi_api.errors import KalshiError
from kalshi_sim.exchange import EmbeddedExchange, ExchangeConfig
from messages.orders import OrderStatus, TradingState
from tests.actors.gateway_support import Counterparty, Recorder, quiet_market, trading_supervisor
from tests.trading_e2e.support import settle

pytestmark = pytest.mark.slow

D = Decimal
LIVENESS_TIMEOUT = 60.0
"""Not the 1 s default: on a loaded machine an actor of this busy process (exchange,
supervisor and hypothesis in one) can miss a ping by a second and be judged hung; READY
then ends and ``halt_on_not_ready`` halts trading for good (automatic halts are never
undone), so the final ACTIVE check fails, and every example after it. Liveness is not what
this tests (``tests/actors/test_account_view.py`` guards its burst the same way)."""
FAULTS = [
    ("drop_write", {}),
    ("fail_write", {"status": 500, "applied": True}),
    ("fail_write", {"status": 503, "applied": False}),
    ("hold_write", {"seconds": 1.5}),
    ("error_in_2xx", {}),
    ("wrong_order", {}),
    ("cancel_all_503", {"applied": False}),
]


class World:
    def __init__(self, exchange: EmbeddedExchange, supervisor: Any, rec: Recorder,
                 bob: Counterparty, tickers: list[str]) -> None:
        self.exchange, self.supervisor, self.rec, self.bob = exchange, supervisor, rec, bob
        self.tickers = tickers
        self.cids: list[str] = []


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    config = ExchangeConfig(markets=6, delta_rate=0, read_tokens_per_second=None,
                            cancel_all_tail_s=0)
    with EmbeddedExchange(config) as exchange:
        first = quiet_market(exchange)
        second = quiet_market(exchange, skip=(first.ticker,))
        bob = Counterparty(exchange)
        config = {"liveness_timeout": LIVENESS_TIMEOUT}
        with trading_supervisor(exchange, "random", config=config,
                                order_group_limit=None) as (supervisor, rec):
            yield World(exchange, supervisor, rec, bob, [first.ticker, second.ticker])
        bob.close()


price = st.integers(min_value=5, max_value=95).map(lambda c: D(c).scaleb(-2))
place = st.tuples(
    st.just("place"), st.sampled_from(["bid", "ask"]), st.integers(1, 4), price,
    st.sampled_from(["good_till_canceled", "immediate_or_cancel"]), st.integers(0, 1),
)
cancel = st.tuples(st.just("cancel"), st.integers(0, 50))
amend = st.tuples(st.just("amend"), st.integers(0, 50), price, st.integers(1, 5))
take = st.tuples(st.just("take"), st.sampled_from(["bid", "ask"]), st.integers(1, 3), price,
                 st.integers(0, 1))
fault = st.tuples(st.just("fault"), st.integers(0, len(FAULTS) - 1))
lose = st.tuples(st.just("lose"))
halt = st.tuples(st.just("halt"))
step = st.one_of(place, place, cancel, amend, take, fault, fault, lose, halt)


def _run(world: World, op: tuple[Any, ...]) -> None:
    rec, exchange = world.rec, world.exchange
    kind = op[0]
    if kind == "place":
        _, side, count, p, tif, market = op
        ticker = world.tickers[market]
        world.cids.append(rec.call(
            lambda s: s.trading.place(ticker, side, count, p, time_in_force=tif)))
    elif kind == "cancel" and world.cids:
        cid = world.cids[op[1] % len(world.cids)]
        rec.call(lambda s: s.trading.cancel(cid))
    elif kind == "amend" and world.cids:
        _, index, p, count = op
        cid = world.cids[index % len(world.cids)]
        rec.call(lambda s: s.trading.amend(cid, price=p, count=count))
    elif kind == "take":
        _, side, count, p, market = op
        # an armed fault may take the counterparty's write instead: its problem, not ours
        with contextlib.suppress(KalshiError):
            world.bob.order(world.tickers[market], side, str(count), str(p))
    elif kind == "fault":
        name, options = FAULTS[op[1]]
        exchange.trading_faults.arm(name, **options)  # type: ignore[arg-type]
    elif kind == "lose":
        exchange.arm_trading_fault("lose_private_events:member=alice")
    elif kind == "halt":
        report = world.supervisor.halt("random")
        assert report.remaining == 0, report
        settle(world.supervisor, exchange, rec, halted=True)
        world.supervisor.resume_trading()


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=st.lists(step, min_size=1, max_size=8))
def test_random_intents_and_faults_when_settled_match_the_exchanges_truth(
    world: World, steps: list[tuple[Any, ...]]
) -> None:
    for op in steps:
        _run(world, op)
    # every create we asked for got an answer (a refusal counts), then the invariants
    assert world.rec.wait(lambda r: all(
        r.status_of(c) not in (None, OrderStatus.PENDING, OrderStatus.OUTCOME_UNKNOWN)
        for c in world.cids
    )), [(c, world.rec.status_of(c)) for c in world.cids]
    settle(world.supervisor, world.exchange, world.rec)
    world.exchange.trading_faults.clear()  # an unmet fault must not leak into the next example
    status = world.supervisor.trading_status()
    assert status.state is TradingState.ACTIVE, (status.state, status.reason)
