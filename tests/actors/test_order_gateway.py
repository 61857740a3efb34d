"""The order gateway over real sockets against the embedded exchange: services trade through
their handle, the hooks fire, unknown outcomes resolve under the same id, refusals never
reach the exchange, the kill switch leaves nothing of ours resting, and reconciliation
finds what the private channel missed. Each test ends by comparing with the exchange's
truth: nothing unknown, nothing duplicated, open orders and positions equal."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from app.handle import Supervisor
from kalshi_api.auth import load_signer
from kalshi_api.order_models import CreateOrder
from kalshi_api.orders import OrderApi
from kalshi_api.rest import KalshiRestClient
from messages.events import ExchangePaused, ExchangeResumed
from messages.fault_kinds import ActorFault, ExchangeFault
from messages.faults import InjectFault
from messages.orders import OrderStatus, OrderUpdate, RiskLimits, TradingState
from tests.actors.gateway_support import (
    Counterparty,
    assert_matches_truth,
    events_of,
    quiet_market,
    trading_supervisor,
)
from tests.conftest import ExchangeFactory
from tests.harness import make_config

D = Decimal


def _group_ready(supervisor) -> bool:  # type: ignore[no-untyped-def]
    return supervisor.trading_status().order_group_id is not None


def test_place_when_ready_hooks_report_rest_fill_amend_and_cancel(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=8)
    q = quiet_market(exchange)
    ticker = q.ticker
    bob = Counterparty(exchange)
    with trading_supervisor(exchange, "place") as (supervisor, rec):
        cid = rec.call(lambda s: s.trading.place(ticker, "bid", 5, q.inside))
        assert cid.startswith("ks-")
        assert rec.wait(lambda r: r.status_of(cid) is OrderStatus.RESTING)

        bob.order(ticker, "ask", "2", q.inside)
        assert rec.wait(lambda r: any(f.client_order_id == cid for f in r.fills))
        assert rec.wait(lambda r: r.positions and r.positions[-1].position == D(2))
        assert rec.wait(lambda r: r.status_of(cid) is OrderStatus.PARTIALLY_FILLED)
        fill = next(f for f in rec.fills if f.client_order_id == cid)
        assert (fill.count, fill.price, fill.side) == (D(2), D(q.inside), "bid")
        assert rec.call(lambda s: s.trading.positions) == {ticker: D(2)}

        rec.call(lambda s: s.trading.amend(cid, price=str(D(q.inside) + D("0.01")), count=8))
        amended = D(q.inside) + D("0.01")
        assert rec.wait(
            lambda r: (u := r.last(cid)) is not None and (u.count, u.price) == (D(8), amended)
        )
        true_order = next(
            o for o in exchange.truth("alice")["alice"].orders if o.client_order_id == cid
        )
        assert true_order.price_micros == int((D(q.inside) + D("0.01")) * 1_000_000)
        assert true_order.initial_centi == 800

        rec.call(lambda s: s.trading.cancel(cid))
        assert rec.wait(lambda r: r.status_of(cid) is OrderStatus.CANCELED)
        # the reason says what the status does not: our cancel, never "canceled" again
        assert rec.wait(lambda r: r.last(cid).reason == "cancel accepted")  # type: ignore[union-attr]
        shown = [(u.status.value, u.reason) for u in rec.orders if u.client_order_id == cid]
        assert not [s for s, reason in shown if reason and reason.lower() == s], shown
        assert rec.call(lambda s: s.trading.open_orders) == {}
        budget = supervisor.trading_status().write_budget
        assert budget is not None and budget.capacity > 0 and budget.rate_limited == 0
        kinds = {e.type for e in supervisor.recorder.events()}  # type: ignore[union-attr]
        assert {"order_update", "fill", "position_changed"} <= kinds
        assert_matches_truth(supervisor, exchange, "alice")
    bob.close()


def _resolve_with_fault(
    make_exchange: ExchangeFactory, key: str, fault: str, *, unknown: bool, **options: object
) -> None:
    """``unknown``: the hooks must show ``outcome_unknown`` (nothing but a lookup can tell
    the gateway); after a dropped reply the exchange publishes the order's events at once,
    and they may beat the client's error."""
    exchange = make_exchange(markets=8)
    q = quiet_market(exchange)
    ticker = q.ticker
    with trading_supervisor(exchange, key) as (supervisor, rec):
        # a first order engages the gateway (its order group, its first reconciliation)
        first = rec.call(lambda s: s.trading.place(ticker, "bid", 1, q.below(4)))
        assert rec.wait(lambda r: r.status_of(first) is OrderStatus.RESTING)
        assert _group_ready(supervisor)
        # the private events come late: only the lookup can settle the create in time
        exchange.trading_settings.private_event_delay_ms = 5_000
        exchange.trading_faults.arm(fault, **options)  # type: ignore[arg-type]
        cid = rec.call(lambda s: s.trading.place(ticker, "bid", 3, q.below(1)))
        assert rec.wait(lambda r: r.status_of(cid) is OrderStatus.RESTING)
        seen = [u.status for u in rec.orders if u.client_order_id == cid]
        assert (OrderStatus.OUTCOME_UNKNOWN in seen) or not unknown
        orders = [o for o in exchange.truth("alice")["alice"].orders if o.client_order_id == cid]
        assert len(orders) == 1 and orders[0].status == "resting"
        assert exchange.trading_faults.pending() == 0
        assert_matches_truth(supervisor, exchange, "alice")


def test_create_when_reply_dropped_resolves_by_lookup_under_the_same_id(
    make_exchange: ExchangeFactory,
) -> None:
    _resolve_with_fault(make_exchange, "drop", "drop_write", unknown=False)


def test_create_when_reply_held_past_the_timeout_resolves_under_the_same_id(
    make_exchange: ExchangeFactory,
) -> None:
    _resolve_with_fault(make_exchange, "hold", "hold_write", unknown=True, seconds=2.0)


def test_create_when_503_not_applied_is_resent_under_the_same_id_once(
    make_exchange: ExchangeFactory,
) -> None:
    _resolve_with_fault(
        make_exchange, "fail", "fail_write", unknown=True, status=503, applied=False
    )


def test_place_when_halted_or_over_a_limit_is_refused_locally_and_never_sent(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=8, cancel_all_tail_s=0)
    q = quiet_market(exchange)
    ticker = q.ticker
    limits = RiskLimits(max_order_count=D(5), max_position=D(10))
    with trading_supervisor(exchange, "refuse", risk_limits=limits) as (supervisor, rec):
        too_big = rec.call(lambda s: s.trading.place(ticker, "bid", 6, q.below(1)))
        assert rec.wait(lambda r: r.status_of(too_big) is OrderStatus.REJECTED)
        assert "exceeds 5" in (rec.last(too_big).reason or "")  # type: ignore[union-attr]

        report = supervisor.halt("test")
        assert report.state is TradingState.HALTED
        halted = rec.call(lambda s: s.trading.place(ticker, "bid", 1, q.below(1)))
        assert rec.wait(lambda r: r.status_of(halted) is OrderStatus.REJECTED)
        assert "halted" in (rec.last(halted).reason or "")  # type: ignore[union-attr]

        sent = {o.client_order_id for o in exchange.truth("alice")["alice"].orders}
        assert too_big not in sent and halted not in sent
        assert_matches_truth(supervisor, exchange, "alice")


def test_halt_when_orders_rest_and_cancel_all_503s_leaves_none_of_ours_resting(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=8)
    q = quiet_market(exchange)
    ticker = q.ticker
    # no order group: triggering it would cancel them all, and the loop is what is tested here
    with trading_supervisor(exchange, "halt", order_group_limit=None) as (supervisor, rec):
        cids = [
            rec.call(lambda s, p=p: s.trading.place(ticker, "bid", 1, p))
            for p in (q.below(1), q.below(2), q.below(3))
        ]
        assert rec.wait(lambda r: all(r.status_of(c) is OrderStatus.RESTING for c in cids))
        exchange.trading_faults.arm("cancel_all_503", applied=False)

        report = supervisor.halt("kill switch test")

        assert report.remaining == 0
        assert report.cancel_all_calls >= 2  # the 503 was seen, cancel-all sent again
        assert report.verify_reads >= 2
        resting = [o for o in exchange.truth("alice")["alice"].orders if o.status == "resting"]
        assert resting == []
        assert rec.wait(lambda r: all(r.status_of(c) is OrderStatus.CANCELED for c in cids))
        assert rec.wait(lambda _: bool(events_of(supervisor, "halt_completed")))
        assert supervisor.trading_status().state is TradingState.HALTED
        assert_matches_truth(supervisor, exchange, "alice")


def test_resume_when_halted_trades_again(make_exchange: ExchangeFactory) -> None:
    exchange = make_exchange(markets=8, cancel_all_tail_s=0)
    q = quiet_market(exchange)
    ticker = q.ticker
    with trading_supervisor(exchange, "resume") as (supervisor, rec):
        supervisor.halt("pause for a moment")
        status = supervisor.resume_trading()
        assert status.state is TradingState.ACTIVE
        cid = rec.call(lambda s: s.trading.place(ticker, "ask", 2, q.above(1)))
        assert rec.wait(lambda r: r.status_of(cid) is OrderStatus.RESTING)
        assert_matches_truth(supervisor, exchange, "alice")


def test_private_drop_when_a_fill_is_lost_reconciliation_finds_it(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=8)
    q = quiet_market(exchange)
    ticker = q.ticker
    bob = Counterparty(exchange)
    with trading_supervisor(exchange, "reconcile") as (supervisor, rec):
        cid = rec.call(lambda s: s.trading.place(ticker, "bid", 4, q.inside))
        assert rec.wait(lambda r: r.status_of(cid) is OrderStatus.RESTING)
        before = len(events_of(supervisor, "reconciled"))
        exchange.ws.lose_private_events("alice")
        bob.order(ticker, "ask", "3", q.inside)

        assert rec.wait(lambda r: any(f.client_order_id == cid for f in r.fills))
        assert rec.wait(lambda r: r.status_of(cid) is OrderStatus.PARTIALLY_FILLED)
        assert rec.wait(lambda _: any(
            any(line.startswith("missed fill") for line in e.differences)  # type: ignore[union-attr]
            for e in events_of(supervisor, "reconciled")[before:]
        )), events_of(supervisor, "reconciled")
        assert_matches_truth(supervisor, exchange, "alice")
    bob.close()


def test_place_when_trading_is_paused_is_refused_locally_until_it_resumes(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=8)
    q = quiet_market(exchange)
    ticker = q.ticker
    with trading_supervisor(exchange, "paused") as (supervisor, rec):
        supervisor.inject(InjectFault(target="exchange", fault=ExchangeFault.PAUSE_TRADING))
        # the gateway heard the pause before the service did
        assert rec.wait(lambda r: any(isinstance(e, ExchangePaused) for e in r.events))
        paused = rec.call(lambda s: s.trading.place(ticker, "bid", 1, q.below(1)))
        assert rec.wait(lambda r: r.status_of(paused) is OrderStatus.REJECTED)
        assert "paused" in (rec.last(paused).reason or "")  # type: ignore[union-attr]

        supervisor.inject(InjectFault(target="exchange", fault=ExchangeFault.RESUME))
        assert rec.wait(lambda r: any(isinstance(e, ExchangeResumed) for e in r.events))
        placed = rec.call(lambda s: s.trading.place(ticker, "bid", 1, q.below(1)))
        assert rec.wait(lambda r: r.status_of(placed) is OrderStatus.RESTING)
        sent = {o.client_order_id for o in exchange.truth("alice")["alice"].orders}
        assert paused not in sent and placed in sent
        assert supervisor.trading_status().state is TradingState.ACTIVE  # a trading pause
        assert_matches_truth(supervisor, exchange, "alice")


def _creates(exchange) -> int:  # type: ignore[no-untyped-def]
    """Create requests the exchange has served (every one, refused or not)."""
    return sum(
        e.detail == "POST /trade-api/v2/portfolio/events/orders"
        for e in exchange.oplog.entries("rest")
    )


def test_place_when_one_shard_is_paused_is_refused_on_that_shard_only(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=8)
    q = quiet_market(exchange)
    ticker = q.ticker
    shard_of = {t: exchange.markets.market(t).exchange_index for t in exchange.markets.tickers()}
    with trading_supervisor(exchange, "shard") as (supervisor, rec):
        # a market of shard 2 that the run follows (the gateway reads its listing)
        crypto = next(t for t in rec.call(lambda s: s.markets) if shard_of[t] == 2)
        assert shard_of[ticker] == 0
        first = rec.call(lambda s: s.trading.place(ticker, "bid", 1, q.below(1)))
        assert rec.wait(lambda r: r.status_of(first) is OrderStatus.RESTING)

        supervisor.inject(
            InjectFault(target="exchange", fault=ExchangeFault.PAUSE_TRADING, shard=2)
        )
        assert rec.wait(lambda r: any(
            isinstance(e, ExchangePaused) and e.exchange_index == 2 for e in r.events
        ))
        sent = _creates(exchange)
        refused = rec.call(lambda s: s.trading.place(crypto, "bid", 1, "0.05"))
        assert rec.wait(lambda r: r.status_of(refused) is OrderStatus.REJECTED)
        reason = rec.last(refused).reason or ""  # type: ignore[union-attr]
        assert reason.startswith("refused locally") and "shard 2" in reason, reason
        assert _creates(exchange) == sent, "the refused order reached the exchange"

        accepted = rec.call(lambda s: s.trading.place(ticker, "bid", 1, q.below(2)))
        assert rec.wait(lambda r: r.status_of(accepted) is OrderStatus.RESTING)
        assert _creates(exchange) == sent + 1
        true = {o.client_order_id for o in exchange.truth("alice")["alice"].orders}
        assert refused not in true and {first, accepted} <= true
        # a pause of a shard none of our orders is on halts nothing
        assert supervisor.trading_status().state is TradingState.ACTIVE
        assert_matches_truth(supervisor, exchange, "alice")


def test_adopted_order_is_tracked_filled_into_positions_kept_from_services_and_halted(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=8, cancel_all_tail_s=0)
    q = quiet_market(exchange)
    ticker = q.ticker
    price = q.inside  # the best bid: a counterparty's sell meets it first
    bob = Counterparty(exchange)

    def by_hand(member_key) -> None:  # type: ignore[no-untyped-def]
        signer = load_signer(member_key.key_id, member_key.private_key_path, env={})
        with KalshiRestClient(exchange.rest_url, signer, timeout=5.0) as client:
            OrderApi(client, grid_for=lambda _: None).create(CreateOrder(
                ticker=ticker, side="bid", count=D(4), price=D(price),
                client_order_id="by-hand-1", time_in_force="good_till_canceled",
            ))

    config = {"startup_orders": "adopt"}
    with trading_supervisor(exchange, "adopt", config=config, before_start=by_hand) as (
        supervisor, rec
    ):
        def adopted() -> OrderUpdate | None:
            orders = supervisor.trading_status().open_orders
            return next((o for o in orders if o.client_order_id == "by-hand-1"), None)

        assert rec.wait(lambda _: adopted() is not None)
        order = adopted()
        assert order is not None and order.service == "adopted"
        assert (order.status, order.remaining) == (OrderStatus.RESTING, D(4))

        bob.order(ticker, "ask", "3", price)
        assert rec.wait(lambda _: (o := adopted()) is not None and o.filled == D(3))
        positions = {p.ticker: p.position for p in supervisor.trading_status().positions}
        assert positions == {ticker: D(3)}
        # no service acts for "adopted": a service's cancel of it is refused, it rests on
        rec.call(lambda s: s.trading.cancel("by-hand-1"))
        mine = rec.call(lambda s: s.trading.place(ticker, "bid", 1, q.below(2)))
        assert rec.wait(lambda r: r.status_of(mine) is OrderStatus.RESTING)
        true = {o.client_order_id: o.status for o in exchange.truth("alice")["alice"].orders}
        assert true["by-hand-1"] == "resting"
        assert_matches_truth(supervisor, exchange, "alice")
        lines = [line for e in events_of(supervisor, "reconciled")
                 for line in e.differences]  # type: ignore[union-attr]
        assert not [line for line in lines if "untracked" in line], lines

        report = supervisor.halt("drill")
        assert report.remaining == 0
        true = {o.client_order_id: o.status for o in exchange.truth("alice")["alice"].orders}
        assert true["by-hand-1"] != "resting" and true[mine] != "resting"
        assert rec.wait(lambda _: adopted() is None)
        assert_matches_truth(supervisor, exchange, "alice")
    bob.close()


def test_leaving_ready_when_orders_rest_halts_and_stays_halted_until_resumed(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=8, cancel_all_tail_s=0)
    q = quiet_market(exchange)
    ticker = q.ticker
    with trading_supervisor(exchange, "left") as (supervisor, rec):
        cid = rec.call(lambda s: s.trading.place(ticker, "bid", 2, q.below(1)))
        assert rec.wait(lambda r: r.status_of(cid) is OrderStatus.RESTING)

        supervisor.inject(InjectFault(target="orderbook", fault=ActorFault.CRASH))
        assert rec.wait(lambda r: r.not_ready >= 1)
        refused = rec.call(lambda s: s.trading.place(ticker, "bid", 1, q.below(1)))
        assert rec.wait(lambda r: r.status_of(refused) is OrderStatus.REJECTED)
        assert rec.wait(lambda r: r.status_of(cid) is OrderStatus.CANCELED)
        assert rec.wait(lambda _: bool(events_of(supervisor, "halt_completed")))
        assert [o for o in exchange.truth("alice")["alice"].orders if o.status == "resting"] == []

        assert rec.wait(lambda r: r.ready)  # READY again, trading still HALTED
        status = supervisor.trading_status()
        assert status.state is TradingState.HALTED and status.reason == "left_ready"
        halted = rec.call(lambda s: s.trading.place(ticker, "bid", 1, q.below(1)))
        assert rec.wait(lambda r: r.status_of(halted) is OrderStatus.REJECTED)

        supervisor.resume_trading()
        again = rec.call(lambda s: s.trading.place(ticker, "bid", 1, q.below(1)))
        assert rec.wait(lambda r: r.status_of(again) is OrderStatus.RESTING)
        sent = {o.client_order_id for o in exchange.truth("alice")["alice"].orders}
        assert refused not in sent and halted not in sent
        assert_matches_truth(supervisor, exchange, "alice")


def test_shutdown_when_orders_rest_leaves_none_of_ours_resting(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=8)
    q = quiet_market(exchange)
    ticker = q.ticker
    with trading_supervisor(exchange, "shutdown", order_group_limit=None) as (_, rec):
        cids = [
            rec.call(lambda s, p=p: s.trading.place(ticker, "ask", 1, p))
            for p in (q.above(1), q.above(2))
        ]
        assert rec.wait(lambda r: all(r.status_of(c) is OrderStatus.RESTING for c in cids))
    truth = exchange.truth("alice")["alice"]
    assert {o.client_order_id for o in truth.orders} == set(cids)
    assert [o for o in truth.orders if o.status == "resting"] == []


def test_order_group_when_it_triggers_halts_trading(make_exchange: ExchangeFactory) -> None:
    exchange = make_exchange(markets=8, cancel_all_tail_s=0)
    q = quiet_market(exchange)
    ticker = q.ticker
    bob = Counterparty(exchange)
    with trading_supervisor(exchange, "group", order_group_limit=D(2)) as (supervisor, rec):
        first = rec.call(lambda s: s.trading.place(ticker, "bid", 5, q.inside))
        second = rec.call(lambda s: s.trading.place(ticker, "bid", 1, q.below(3)))
        assert rec.wait(lambda r: r.status_of(second) is OrderStatus.RESTING)
        assert rec.wait(lambda r: r.status_of(first) is OrderStatus.RESTING)
        bob.order(ticker, "ask", "3", q.inside)

        assert rec.wait(lambda _: supervisor.trading_status().state is TradingState.HALTED)
        assert supervisor.trading_status().reason == "order_group_triggered"
        assert rec.wait(lambda r: r.status_of(second) is OrderStatus.CANCELED)
        assert rec.wait(lambda r: r.status_of(first) is OrderStatus.CANCELED)
        assert [o for o in exchange.truth("alice")["alice"].orders if o.status == "resting"] == []
        assert_matches_truth(supervisor, exchange, "alice")
    bob.close()


def test_service_when_it_crashes_its_orders_are_cancelled(make_exchange: ExchangeFactory) -> None:
    exchange = make_exchange(markets=8)
    q = quiet_market(exchange)
    ticker = q.ticker
    with trading_supervisor(exchange, "crash") as (supervisor, rec):
        cid = rec.call(lambda s: s.trading.place(ticker, "bid", 2, q.below(1)))
        assert rec.wait(lambda r: r.status_of(cid) is OrderStatus.RESTING)
        first = rec.ref
        supervisor.inject(InjectFault(target="trader", fault=ActorFault.CRASH))

        def cancelled(_: object) -> bool:
            orders = exchange.truth("alice")["alice"].orders
            return [o.status for o in orders if o.client_order_id == cid] == ["canceled"]

        assert rec.wait(cancelled)
        assert rec.wait(lambda r: r.ref is not first)  # restarted, and trades again
        again = rec.call(lambda s: s.trading.place(ticker, "bid", 1, q.below(1)))
        assert rec.wait(lambda r: r.status_of(again) is OrderStatus.RESTING)
        assert_matches_truth(supervisor, exchange, "alice")


def _error_of(call: Callable[[], object]) -> str:
    try:
        call()
    except ValueError as exc:
        return str(exc)
    return "no error"


def test_place_when_given_a_float_or_a_bad_price_raises_one_line_and_sends_nothing(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=8)
    q = quiet_market(exchange)
    ticker = q.ticker
    with trading_supervisor(exchange, "floats") as (supervisor, rec):
        floats = rec.call(lambda s: _error_of(lambda: s.trading.place(ticker, "bid", 1, 0.5)))
        outside = rec.call(lambda s: _error_of(lambda: s.trading.place(ticker, "bid", 1, "1.5")))
        assert "float" in floats and "\n" not in floats
        assert "price 1.5 is outside [0, 1]" in outside and "\n" not in outside
        assert exchange.truth("alice")["alice"].orders == ()
        assert supervisor.trading_status().open_orders == []


def test_halt_when_trading_is_off_says_so_in_one_line(make_exchange: ExchangeFactory) -> None:
    exchange = make_exchange(markets=8)
    signer = load_signer(exchange.key_id, exchange.private_key_path)
    supervisor = Supervisor(make_config(exchange, trading_enabled=False), signer)
    with pytest.raises(LookupError, match="not enabled"):
        supervisor.halt("no trading here")
    with pytest.raises(LookupError, match="not enabled"):
        supervisor.trading_status()


def test_daily_loss_when_a_fill_breaches_it_halts_and_cancels_the_rest(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=8, cancel_all_tail_s=0)
    q = quiet_market(exchange)
    ticker = q.ticker
    bob = Counterparty(exchange)
    limits = RiskLimits(max_daily_loss=D("0.01"))
    with trading_supervisor(exchange, "loss", risk_limits=limits) as (supervisor, rec):
        other = quiet_market(exchange, skip=(ticker,))
        resting = rec.call(lambda s: s.trading.place(other.ticker, "ask", 1, other.above(1)))
        bought = rec.call(lambda s: s.trading.place(ticker, "bid", 2, q.inside))
        assert rec.wait(lambda r: r.status_of(bought) is OrderStatus.RESTING)
        assert rec.wait(lambda r: r.status_of(resting) is OrderStatus.RESTING)
        bob.order(ticker, "ask", "2", q.inside)  # long 2 a tick above the bid: a loss

        assert rec.wait(lambda _: supervisor.trading_status().state is TradingState.HALTED)
        assert supervisor.trading_status().reason == "daily_loss"
        assert rec.wait(lambda r: r.status_of(resting) is OrderStatus.CANCELED)
        refused = rec.call(lambda s: s.trading.place(ticker, "ask", 1, q.above(1)))
        assert rec.wait(lambda r: r.status_of(refused) is OrderStatus.REJECTED)
        assert refused not in {o.client_order_id for o in exchange.truth("alice")["alice"].orders}
        assert_matches_truth(supervisor, exchange, "alice")
    bob.close()


def test_cancel_when_the_reply_names_another_order_is_sent_again_until_answered(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=8)
    q = quiet_market(exchange)
    with trading_supervisor(exchange, "wrong") as (supervisor, rec):
        keep = rec.call(lambda s: s.trading.place(q.ticker, "bid", 1, q.below(2)))
        cid = rec.call(lambda s: s.trading.place(q.ticker, "bid", 1, q.below(1)))
        assert rec.wait(lambda r: r.status_of(cid) is OrderStatus.RESTING)
        assert rec.wait(lambda r: r.status_of(keep) is OrderStatus.RESTING)
        exchange.trading_faults.arm("wrong_order")  # the cancel's reply names `keep`

        rec.call(lambda s: s.trading.cancel(cid))

        assert rec.wait(lambda r: r.status_of(cid) is OrderStatus.CANCELED)
        assert exchange.trading_faults.pending() == 0
        states = {o.client_order_id: o.status for o in exchange.truth("alice")["alice"].orders}
        assert states == {keep: "resting", cid: "canceled"}
        assert rec.status_of(keep) is OrderStatus.RESTING
        assert_matches_truth(supervisor, exchange, "alice")


def test_gateway_when_it_crashes_with_orders_resting_tells_their_service_they_ended(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=8, cancel_all_tail_s=0)
    q = quiet_market(exchange)
    with trading_supervisor(exchange, "gwcrash") as (supervisor, rec):
        cids = [
            rec.call(lambda s, p=p: s.trading.place(q.ticker, "bid", 1, p))
            for p in (q.below(1), q.below(2))
        ]
        assert rec.wait(lambda r: all(r.status_of(c) is OrderStatus.RESTING for c in cids))

        supervisor.inject(InjectFault(target="order_gateway", fault=ActorFault.CRASH))

        # its stop halted (nothing of ours rests); the next incarnation reconciled and told
        assert rec.wait(lambda r: all(r.status_of(c) is OrderStatus.CANCELED for c in cids))
        assert rec.call(lambda s: s.trading.open_orders) == {}
        assert [o for o in exchange.truth("alice")["alice"].orders if o.status == "resting"] == []
        status = supervisor.trading_status()
        assert status.state is TradingState.HALTED and status.reason == "gateway stopped"
        supervisor.resume_trading()
        again = rec.call(lambda s: s.trading.place(q.ticker, "bid", 1, q.below(1)))
        assert rec.wait(lambda r: r.status_of(again) is OrderStatus.RESTING)
        assert_matches_truth(supervisor, exchange, "alice")


def test_halt_when_a_create_is_in_flight_waits_for_it_and_leaves_nothing_resting(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=8)  # cancel-all's one-minute tail on, as on Kalshi
    q = quiet_market(exchange)
    with trading_supervisor(exchange, "inflight", order_group_limit=None) as (supervisor, rec):
        warm = rec.call(lambda s: s.trading.place(q.ticker, "bid", 1, q.below(3)))
        assert rec.wait(lambda r: r.status_of(warm) is OrderStatus.RESTING)
        exchange.trading_faults.arm("hold_write", seconds=2.0)  # lands, its reply is held
        held = rec.call(lambda s: s.trading.place(q.ticker, "bid", 1, q.below(1)))
        assert rec.wait(lambda _: any(
            o.client_order_id == held for o in exchange.truth("alice")["alice"].orders
        ))

        report = supervisor.halt("with a create in flight")

        assert report.remaining == 0  # and none landed after it: the create was waited for
        assert [o for o in exchange.truth("alice")["alice"].orders if o.status == "resting"] == []
        assert rec.wait(lambda r: r.status_of(held) is OrderStatus.CANCELED)
        assert_matches_truth(supervisor, exchange, "alice")
