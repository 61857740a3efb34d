"""Leaving the process never leaves an order of ours resting (issue 16): a real
``kalshi-supervisor run`` subprocess trading against an in-test exchange over real sockets,
stopped by SIGINT or SIGTERM with orders resting, must exit only after none rest.

The slow case is the one that matters: the exchange holds the halt's first write (the order
group's trigger or the cancel-all, every ``/portfolio/order...`` request) for longer than
the supervisor's generic wait for a child's stop (``JOIN_TIMEOUT``, 2 s). A process that
exited meanwhile would leave the orders resting, which the truth read *before* releasing the
gate shows; a correct one is still halting when the exchange finally answers, and exits
after with nothing of ours resting.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kalshi_sim.exchange import EmbeddedExchange, ExchangeConfig
from messages.orders import OrderStatus
from tests.actors.gateway_support import quiet_market, trading_supervisor
from tests.cli.test_cli_process import EXIT_WAIT, REST, Launcher, Proc, run_against

pytestmark = pytest.mark.slow

WAIT = 60.0
QUOTER = "tests/resting_quoter.py:RestingQuoter"
SLOW_EXCHANGE = 3.0
"""How long the exchange holds the halt's first write: past the 2 s a plain child's stop is
waited for, within the gateway's own halt budget (``TEARDOWN_HALT_TIMEOUT``, 5 s)."""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    scrubbed = {k: v for k, v in os.environ.items() if not k.startswith("KALSHI_")}
    scrubbed["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("xdg-state"))
    scrubbed["PYTHONUNBUFFERED"] = "1"
    return scrubbed


@pytest.fixture(scope="module")
def shared_exchange() -> Iterator[EmbeddedExchange]:
    config = ExchangeConfig(markets=6, delta_rate=0, read_tokens_per_second=None,
                            cancel_all_tail_s=0.0)
    with EmbeddedExchange(config) as exchange:
        yield exchange


@pytest.fixture
def exchange(shared_exchange: EmbeddedExchange) -> Iterator[EmbeddedExchange]:
    yield shared_exchange
    shared_exchange.faults.clear()


@pytest.fixture
def launch(env: dict[str, str]) -> Iterator[Launcher]:
    launcher = Launcher(env, [])
    try:
        yield launcher
    finally:
        launcher.close()


def _resting(exchange: EmbeddedExchange) -> set[str]:
    return {
        order.client_order_id
        for truth in exchange.truth().values()
        for order in truth.orders
        if order.status == "resting"
    }


def _start_with_orders_resting(
    exchange: EmbeddedExchange, launch: Launcher, tmp_path: Path
) -> tuple[Proc, set[str]]:
    before = _resting(exchange)
    args = run_against(
        exchange, tmp_path / "state" / "control.json", "--service", QUOTER,
        "--service-option", "resting_quoter.orders=2", "--events", "-",
        # the quoter's stop leaves its orders to the halt: the halt alone must cancel them
        "--no-cancel-orders-on-service-stop",
    )
    proc = launch(*args)
    proc.wait_for(lambda: len(_resting(exchange) - before) == 2, WAIT,
                  "two orders of ours resting at the exchange")
    return proc, _resting(exchange) - before


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_run_when_stopped_with_orders_resting_exits_with_none_of_ours_resting(
    exchange: EmbeddedExchange, launch: Launcher, tmp_path: Path, signum: int
) -> None:
    proc, ours = _start_with_orders_resting(exchange, launch, tmp_path)
    code, _elapsed = proc.interrupt(signum)
    assert code == 0, proc.describe()
    assert not ours & _resting(exchange), proc.describe()
    assert "Traceback" not in proc.output, proc.describe()


def test_run_when_the_exchange_holds_the_halt_past_the_join_timeout_still_exits_with_none_resting(
    exchange: EmbeddedExchange, launch: Launcher, tmp_path: Path
) -> None:
    proc, ours = _start_with_orders_resting(exchange, launch, tmp_path)
    gate = exchange.faults.hold(f"{REST}/portfolio/order")  # the group trigger, cancels, reads
    proc.popen.send_signal(signal.SIGINT)
    assert gate.wait_entered(WAIT), proc.describe()
    try:
        # the exchange answers only after SLOW_EXCHANGE seconds: a process gone before then
        # has left our orders resting (the truth is read before the gate opens)
        code = proc.popen.wait(SLOW_EXCHANGE)
    except subprocess.TimeoutExpired:
        code = None
    still = ours & _resting(exchange)
    assert code is None or not still, (
        f"the process exited ({code}) while the exchange still held the halt: "
        f"{len(still)} of our orders left resting\n{proc.describe()}"
    )
    gate.release()
    assert proc.popen.wait(EXIT_WAIT) == 0, proc.describe()
    proc.join_readers()
    assert not ours & _resting(exchange), proc.describe()
    assert "Traceback" not in proc.output, proc.describe()


def test_supervisor_shutdown_when_the_exchange_holds_the_halt_returns_with_none_resting(
    exchange: EmbeddedExchange,
) -> None:
    """The same through the library: ``Supervisor.shutdown()`` (its default wait) returns
    only once none of our orders rest, however long past 2 s the exchange takes."""
    quiet = quiet_market(exchange)
    with trading_supervisor(exchange, "shutdown_slow", member="carol",
                            cancel_orders_on_service_stop=False) as (supervisor, rec):
        cids = [rec.call(lambda s: s.trading.place(quiet.ticker, "bid", 1, quiet.bid))
                for _ in range(2)]
        assert rec.wait(lambda r: all(r.status_of(c) is OrderStatus.RESTING for c in cids))
        gate = exchange.faults.hold(f"{REST}/portfolio/order")
        left: list[set[str]] = []

        def slow_exchange() -> None:
            # answers after SLOW_EXCHANGE s; what rests if the supervisor stopped before then
            if supervisor.stopped.wait(SLOW_EXCHANGE):
                left.append(set(cids) & _resting(exchange))
            gate.release()

        releaser = threading.Thread(target=slow_exchange, daemon=True)
        releaser.start()
        assert supervisor.shutdown() is True
        releaser.join(WAIT)
        assert not any(left), f"stopped while the exchange held the halt, resting: {left}"
        assert not set(cids) & _resting(exchange)
