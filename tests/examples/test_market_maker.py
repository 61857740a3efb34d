"""The market maker example, run as a user runs it (``kalshi-supervisor run --service
examples/market_maker.py:MarketMaker``) in a subprocess over sockets against an in-test
embedded exchange whose participant takes liquidity: it quotes, gets filled, and what its
events say (orders, fills, positions) equals the exchange's truth.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kalshi_sim.exchange import EmbeddedExchange, ExchangeConfig
from tests.cli.test_cli_process import Launcher, Proc, run_against

pytestmark = pytest.mark.slow  # subprocesses: every test starts kalshi-supervisor

WAIT = 60.0
MAKER = "examples/market_maker.py:MarketMaker"
SERVICE = "market_maker"
MAX_POSITION = Decimal(3)
OPEN = {"pending", "resting", "partially_filled", "outcome_unknown"}


@pytest.fixture
def exchange() -> Iterator[EmbeddedExchange]:
    config = ExchangeConfig(
        markets=3, delta_rate=120, take_rate=40, read_tokens_per_second=None, seed=11
    )
    with EmbeddedExchange(config) as exchange:
        yield exchange


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launcher]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KALSHI_")}
    env["XDG_STATE_HOME"] = str(tmp_path / "xdg")
    env["PYTHONUNBUFFERED"] = "1"
    launcher = Launcher(env, [])
    try:
        yield launcher
    finally:
        launcher.close()


def _ours(proc: Proc) -> dict[str, dict[str, Any]]:
    """The last ``order_update`` of each of the maker's orders, by client_order_id."""
    last: dict[str, dict[str, Any]] = {}
    for event in proc.events:
        if event.get("type") == "order_update" and event.get("service") == SERVICE:
            last[event["client_order_id"]] = event
    return last


def _fills(proc: Proc) -> dict[str, dict[str, Any]]:
    return {
        e["trade_id"]: e
        for e in proc.events
        if e.get("type") == "fill" and e.get("service") == SERVICE
    }


def _signed(side: str, count: Decimal) -> Decimal:
    return count if side == "bid" else -count


def _differences(proc: Proc, exchange: EmbeddedExchange) -> list[str]:
    """Where the maker's events depart from the exchange's truth (empty: they agree)."""
    member = exchange.account.member
    truth = exchange.truth(member)[member]
    ours = _ours(proc)
    problems: list[str] = []
    at_exchange = [o for o in truth.orders if o.client_order_id in ours]
    cids = [o.client_order_id for o in at_exchange]
    if len(cids) != len(set(cids)):
        problems.append(f"duplicate client_order_ids at the exchange: {sorted(cids)}")
    prefixed = {o.client_order_id for o in truth.orders if (o.client_order_id or "").startswith(
        "ks-")}
    if prefixed - set(ours):
        problems.append(f"orders at the exchange the process does not know: {prefixed - set(ours)}")
    resting = {o.client_order_id for o in at_exchange if o.status == "resting"}
    believed = {cid for cid, e in ours.items() if e["status"] in OPEN}
    if resting != believed:
        problems.append(f"open orders: events {sorted(believed)}, exchange {sorted(resting)}")
    for order in at_exchange:
        event = ours[order.client_order_id or ""]
        if Decimal(event["filled"]) != Decimal(order.fill_centi).scaleb(-2):
            problems.append(f"{order.client_order_id}: filled {event['filled']} "
                            f"vs {order.fill_centi / 100}")
    mine = {o.order_id for o in at_exchange}
    true_fills = {f.fill_id: f for f in truth.fills if f.order_id in mine}
    fills = _fills(proc)
    if set(true_fills) != set(fills):
        problems.append(f"fills: events {sorted(fills)}, exchange {sorted(true_fills)}")
    position: dict[str, Decimal] = defaultdict(Decimal)
    for fill in true_fills.values():
        position[fill.ticker] += _signed(fill.side, Decimal(fill.count_centi).scaleb(-2))
    event_position: dict[str, Decimal] = defaultdict(Decimal)
    for fill in fills.values():
        event_position[fill["ticker"]] += _signed(fill["side"], Decimal(fill["count"]))
    if {t: p for t, p in position.items() if p} != {t: p for t, p in event_position.items() if p}:
        problems.append(f"positions: events {dict(event_position)}, exchange {dict(position)}")
    account = {p.ticker: Decimal(p.position_centi).scaleb(-2) for p in truth.positions}
    last_position: dict[str, Decimal] = {}
    for event in proc.events:
        if event.get("type") == "position_changed" and event.get("service") is None:
            last_position[event["ticker"]] = Decimal(event["position"])
    for ticker, value in last_position.items():
        if account.get(ticker, Decimal(0)) != value:
            problems.append(f"account position {ticker}: events {value}, exchange "
                            f"{account.get(ticker)}")
    return problems


def test_market_maker_when_the_participant_takes_quotes_gets_filled_and_matches_truth(
    launch: Launcher, exchange: EmbeddedExchange, tmp_path: Path
) -> None:
    proc = launch(
        *run_against(
            exchange,
            tmp_path / "state" / "control.json",
            "--service",
            MAKER,
            "--service-option",
            f"{SERVICE}.max_position={MAX_POSITION}",
            "--events",
            "-",
        )
    )
    proc.wait_transition("ready")
    # it quotes both sides of a market, post-only, each side once at a time
    proc.wait_for(
        lambda: {e["side"] for e in _ours(proc).values() if e["status"] == "resting"}
        >= {"bid", "ask"},
        WAIT,
        "a resting bid and ask of the maker",
    )
    # the participant's takes fill it, more than once
    proc.wait_for(lambda: len(_fills(proc)) >= 3, WAIT, "three fills of the maker's quotes")
    exchange.pause_stream()  # no more takes: from here the truth only moves by the maker
    proc.wait_for(lambda: not _differences(proc, exchange), WAIT,
                  f"the maker's view equal to the truth: {_differences(proc, exchange)}")

    # the inventory limit held whatever the takes did
    member = exchange.account.member
    truth = exchange.truth(member)[member]
    ours = _ours(proc)
    mine = {o.order_id for o in truth.orders if o.client_order_id in ours}
    position: dict[str, Decimal] = defaultdict(Decimal)
    for fill in sorted((f for f in truth.fills if f.order_id in mine), key=lambda f: f.ts_ms):
        position[fill.ticker] += _signed(fill.side, Decimal(fill.count_centi).scaleb(-2))
        assert abs(position[fill.ticker]) <= MAX_POSITION, (fill.ticker, position)
    # at most one order a side per market rests
    resting = [o for o in truth.orders if o.client_order_id in ours and o.status == "resting"]
    sides = [(o.ticker, o.side) for o in resting]
    assert len(sides) == len(set(sides)), sides

    code, _ = proc.interrupt()
    assert code == 0, proc.describe()
    truth = exchange.truth(member)[member]
    assert [o for o in truth.orders if o.client_order_id in ours and o.status == "resting"] == []


def _maker_updates(supervisor: Any) -> list[Any]:
    return [e for e in supervisor.recorder.events()
            if getattr(e, "type", None) == "order_update" and e.service == SERVICE]


def test_market_maker_when_trading_pauses_cancels_stops_quoting_and_quotes_again_after(
    make_exchange: Any,
) -> None:
    """In-process, against a still exchange: the maker quotes both sides; a trading pause
    leaves none of its orders resting, each of them ended (an order it sent before it heard
    of the pause is refused, and it backs off); after the resume it quotes again. Every wait
    is on the supervisor's event listener."""
    import threading

    from actors.service import ServiceSpec
    from app.handle import Supervisor
    from examples.market_maker import MarketMaker
    from kalshi_api.auth import load_signer
    from messages.fault_kinds import ExchangeFault
    from messages.faults import InjectFault
    from messages.states import State
    from tests.harness import make_config

    exchange = make_exchange(markets=4)
    changed = threading.Condition()

    def notify(_: object) -> None:
        with changed:
            changed.notify_all()

    def wait(predicate: Any, what: str) -> None:
        with changed:
            assert changed.wait_for(predicate, WAIT), what

    def resting() -> set[str]:
        return {o.client_order_id or "" for o in exchange.truth(member)[member].orders
                if o.status == "resting"}

    member = exchange.account.member
    config = make_config(exchange, market_count=4, request_timeout=2.0)
    signer = load_signer(exchange.key_id, exchange.private_key_path)
    spec = ServiceSpec(SERVICE, MarketMaker, {"markets": 2, "max_position": 2})
    supervisor = Supervisor(config, signer, services=[spec], listeners=[notify],
                            exchange=exchange)
    supervisor.start()
    try:
        assert supervisor.wait_for_state(State.READY, WAIT)
        wait(lambda: {e.side for e in _maker_updates(supervisor) if e.status == "resting"}
             >= {"bid", "ask"}, "the maker quoting both sides")
        supervisor.inject(InjectFault(target="exchange", fault=ExchangeFault.PAUSE_TRADING))
        wait(lambda: any(getattr(e, "type", None) == "exchange_paused"
                         for e in supervisor.recorder.events()), "the pause seen")
        ours = {e.client_order_id for e in _maker_updates(supervisor)}
        wait(lambda: not (resting() & ours), "none of the maker's orders resting")

        def all_final() -> bool:
            last = {e.client_order_id: e.status for e in _maker_updates(supervisor)}
            return all(status in ("canceled", "executed", "rejected") for status in last.values())

        wait(all_final, "the maker told that each of its orders ended")
        supervisor.inject(InjectFault(target="exchange", fault=ExchangeFault.RESUME))
        wait(lambda: any(getattr(e, "type", None) == "exchange_resumed"
                         for e in supervisor.recorder.events()), "the resume seen")
        # ... and it quotes again once trading is back
        wait(lambda: bool(resting() - ours), "the maker quoting again after the resume")
    finally:
        supervisor.shutdown(timeout=5.0)
    assert not (resting() & {e.client_order_id for e in _maker_updates(supervisor)})
