"""Trading through the order gateway over loopback, beside the raw protocol on the same server.

Usage::

    .venv/bin/python bench/bench_trading.py [--orders N] [--big 1000]

An embedded exchange (write bucket off, prime usage tier: the gateway paces its writes to
the tier's budget, 10 creates/s at Basic, and pacing is not what is measured), a supervisor
trading as one member with one bench service, and a counterparty member are started outside
the timing. Then, each figure beside its floor measured in the same run:

* **place -> ack**: ``self.trading.place`` on the service's thread to the service's
  ``on_order`` hook saying ``resting`` (id, risk check, actor hop, I/O thread, signed create,
  201, tracker, hook); floor: a raw signed ``OrderApi.create`` -> 201 on its own client;
* **fill -> hook**: the counterparty's IOC sent to our service's ``on_fill`` (the match, the
  private ``fill`` event over the WS, the gateway, the hook); floor: that IOC's own create
  -> 201 round trip;
* **halt -> zero resting**: ``Supervisor.halt`` with 10 and ``--big`` of our orders resting,
  until the report says none rest (checked against the exchange's truth too);
* **reconciliation at ``--big`` open orders**: a cancel of ours whose private event is lost
  (``lose_private_events``: the session is cut) to the ``reconciled`` event of the
  reconnect; floor: the same REST reads (``actors.gateway_io.read_truth``) made directly.

Prints the machine, p50/p99 and ratios; exits 1 on FAIL (a ratio or a time over target).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actors.gateway_io import read_truth
from actors.service import ServiceActor, ServiceSpec
from app.handle import Supervisor
from bench.support import leaks, machine_info
from kalshi_api.auth import load_signer
from kalshi_api.order_models import CreateOrder
from kalshi_api.orders import OrderApi
from kalshi_api.rest import KalshiRestClient
from kalshi_sim.exchange import EmbeddedExchange, ExchangeConfig
from messages.orders import Fill, OrderStatus, OrderUpdate
from messages.states import State
from supervision.config import GatewaySettings, RestartSettings, SupervisorConfig

WAIT = 60.0
PLACE_TARGET = 4.0
"""Service place -> ack within 4x a raw signed create: the gateway adds an actor hop and an
I/O thread, not another round trip."""
FILL_TARGET = 4.0
HALT_TARGET_S = 5.0
"""Halt with 1,000 orders resting: zero resting within 5 s."""
RECONCILE_TARGET_S = 5.0

BATCH = 10
D = Decimal
PROBE: dict[str, Any] = {}


class Probe:
    """What the bench service saw, with times, under one condition."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.status: dict[str, OrderStatus] = {}
        self.acked: dict[str, float] = {}
        self.filled: dict[str, float] = {}
        self.events: list[Any] = []
        self.service: Any = None

    def wait(self, predicate: Any, timeout: float = WAIT) -> None:
        with self.cond:
            if not self.cond.wait_for(predicate, timeout):
                counts: dict[str, int] = {}
                for status in self.status.values():
                    counts[status.value] = counts.get(status.value, 0) + 1
                raise SystemExit(f"bench_trading: timed out waiting (orders by status: {counts})")


class BenchTrader(ServiceActor):
    service_name = "bench"

    def setup(self) -> None:
        probe: Probe = PROBE["probe"]
        with probe.cond:
            probe.service = self.actor_ref
            probe.cond.notify_all()

    def on_order(self, update: OrderUpdate) -> None:
        now = time.perf_counter()
        probe: Probe = PROBE["probe"]
        with probe.cond:
            probe.status[update.client_order_id] = update.status
            if update.status is OrderStatus.RESTING:
                probe.acked.setdefault(update.client_order_id, now)
            probe.cond.notify_all()

    def on_fill(self, fill: Fill) -> None:
        now = time.perf_counter()
        probe: Probe = PROBE["probe"]
        with probe.cond:
            probe.filled.setdefault(fill.client_order_id or fill.order_id, now)
            probe.cond.notify_all()

    def handle(self, message: Any) -> Any:
        return message(self)


def _call(probe: Probe, fn: Any) -> Any:
    probe.wait(lambda: probe.service is not None)
    return probe.service.ask(fn, timeout=WAIT)


def _gateway_failures(supervisor: Supervisor) -> int:
    return sum(
        1 for e in supervisor.recorder.events()
        if getattr(e, "service", None) == "order_gateway" and "fail" in str(getattr(e, "type", ""))
    )


def _resume(supervisor: Supervisor, probe: Probe) -> None:
    """Resume trading, waiting for a restarted gateway to be there to resume."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            supervisor.resume_trading()
            return
        except (LookupError, RuntimeError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            with probe.cond:
                probe.cond.wait(0.05)


def _quantile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def summary(values_s: list[float]) -> str:
    ms = [v * 1000 for v in values_s]
    return f"p50 {statistics.median(ms):7.2f} ms  p99 {_quantile(ms, 99):7.2f} ms  (n={len(ms)})"


def _place_many(probe: Probe, ticker: str, count: int, start: int) -> list[str]:
    """``count`` resting bids, asked for in batches of ``BATCH`` (each waited for): the
    gateway's per-order work grows with its open orders, and 1,000 at once starve its
    liveness ping (it is then restarted: see the report)."""
    cids: list[str] = []
    for first in range(0, count, BATCH):
        size = min(BATCH, count - first)

        def place(service: Any, first: int = first, size: int = size) -> list[str]:
            return [
                service.trading.place(ticker, "bid", 1, str(D(1 + (start + i) % 8).scaleb(-2)))
                for i in range(first, first + size)
            ]

        batch: list[str] = _call(probe, place)
        probe.wait(lambda b=batch: all(probe.status.get(c) is OrderStatus.RESTING for c in b))
        cids += batch
    return cids


def run(orders: int, big: int) -> tuple[list[str], bool]:
    lines: list[str] = []
    ok = True
    # the prime tier (4,000 write tokens/s): the gateway paces its writes to the budget the
    # exchange reports (Basic: 10 creates/s), and this measures latency, not that pacing
    config = ExchangeConfig(markets=8, delta_rate=0, read_tokens_per_second=None,
                            write_limit=False, cancel_all_tail_s=0, usage_tier="prime")
    probe = Probe()
    PROBE["probe"] = probe
    with EmbeddedExchange(config) as exchange:
        member = exchange.add_member("bench", dict.fromkeys(range(4), 100_000_000))
        signer = load_signer(member.key_id, member.private_key_path, env={})
        raw_key = exchange.add_member("raw", dict.fromkeys(range(4), 100_000_000))
        raw_client = KalshiRestClient(exchange.rest_url,
                                      load_signer(raw_key.key_id, raw_key.private_key_path, env={}))
        raw = OrderApi(raw_client)
        bench_api = OrderApi(KalshiRestClient(exchange.rest_url, signer))
        tickers = exchange.markets.tickers()
        ticker = tickers[0]
        levels = exchange.markets.levels(ticker)
        bid, ask = max(levels.yes)[0], 1_000_000 - max(levels.no)[0]
        inside = D((bid + ask) // 2 // 10_000 * 10_000).scaleb(-6)
        supervisor_config = SupervisorConfig(
            rest_url=exchange.rest_url, ws_url=exchange.ws_url, status_port=0,
            sync_interval=3600.0, market_count=3,
            restart=RestartSettings(min_backoff=0.01, max_backoff=0.05, random_factor=0.0),
            gateway=GatewaySettings(order_group_limit=None, halt_timeout=60.0),
        )
        supervisor = Supervisor(supervisor_config, signer,
                                services=[ServiceSpec("bench", BenchTrader, {}, tickers=())],
                                exchange=exchange)
        supervisor.start()
        try:
            if not supervisor.wait_for_state(State.READY, WAIT):
                raise SystemExit("bench_trading: the supervisor did not become READY")
            _place_many(probe, ticker, 1, 0)  # engages the gateway (first reconciliation)

            # -- place -> ack, beside a raw create ------------------------------------------
            place_s: list[float] = []
            raw_s: list[float] = []
            for i in range(orders):
                started = time.perf_counter()
                created = raw.create(CreateOrder(ticker, "bid", D(1), D("0.02"), f"raw-{i}"))
                raw_s.append(time.perf_counter() - started)
                raw.cancel(created.order_id)

                def one(service: Any) -> tuple[str, float]:
                    t0 = time.perf_counter()
                    return service.trading.place(ticker, "bid", 1, "0.02"), t0

                cid, t0 = _call(probe, one)
                probe.wait(lambda c=cid: c in probe.acked)
                place_s.append(probe.acked[cid] - t0)
                _call(probe, lambda s, c=cid: s.trading.cancel(c))
                probe.wait(lambda c=cid: probe.status.get(c) is OrderStatus.CANCELED)
            ratio = statistics.median(place_s) / statistics.median(raw_s)
            verdict = "ok" if ratio <= PLACE_TARGET else "FAIL"
            ok &= verdict == "ok"
            lines += [
                f"  service place -> ack   {summary(place_s)}",
                f"  raw signed create      {summary(raw_s)}",
                f"  ratio (p50) {ratio:.2f}x (target <= {PLACE_TARGET:g}x): {verdict}",
            ]

            # -- exchange fill -> service hook ----------------------------------------------
            fill_s: list[float] = []
            ioc_s: list[float] = []
            for i in range(max(orders // 4, 20)):
                (cid,) = _call(probe, lambda s: [s.trading.place(ticker, "bid", 1, str(inside))])
                probe.wait(lambda c=cid: probe.status.get(c) is OrderStatus.RESTING)
                t0 = time.perf_counter()
                raw.create(CreateOrder(ticker, "ask", D(1), inside, f"take-{i}",
                                       time_in_force="immediate_or_cancel"))
                ioc_s.append(time.perf_counter() - t0)
                probe.wait(lambda c=cid: c in probe.filled)
                fill_s.append(probe.filled[cid] - t0)
                probe.wait(lambda c=cid: probe.status.get(c) is OrderStatus.EXECUTED)
            ratio = statistics.median(fill_s) / statistics.median(ioc_s)
            verdict = "ok" if ratio <= FILL_TARGET else "FAIL"
            ok &= verdict == "ok"
            lines += [
                f"  fill -> on_fill hook   {summary(fill_s)}",
                f"  the taker's create     {summary(ioc_s)}",
                f"  ratio (p50) {ratio:.2f}x (target <= {FILL_TARGET:g}x): {verdict}",
            ]

            # -- halt -> zero resting, at 10 and `big` ----------------------------------------
            for size in (10, big):
                _place_many(probe, tickers[1], size, 0)
                failures_before = _gateway_failures(supervisor)
                started = time.perf_counter()
                try:
                    report = supervisor.halt("bench")
                except TimeoutError as exc:
                    ok = False
                    lines.append(f"  FAIL: halt with {size:5d} resting: {exc}")
                    _resume(supervisor, probe)
                    continue
                took = time.perf_counter() - started
                resting = [o for o in exchange.truth("bench")["bench"].orders
                           if o.status == "resting"]
                verdict = "ok" if report.remaining == 0 and not resting and (
                    size < big or took <= HALT_TARGET_S) else "FAIL"
                ok &= verdict == "ok"
                lines.append(
                    f"  halt with {size:5d} resting -> zero: {took * 1000:8.1f} ms "
                    f"(cancel-alls {report.cancel_all_calls}, reads {report.verify_reads}, "
                    f"exchange shows {len(resting)} resting"
                    f"{f'; target <= {HALT_TARGET_S:g} s' if size == big else ''}): {verdict}"
                )
                failed = _gateway_failures(supervisor) - failures_before
                if failed:
                    ok = False
                    lines.append(f"  FAIL: the order gateway failed {failed}x around the halt "
                                 "(missed its liveness ping) and was restarted")
                _resume(supervisor, probe)

            # -- reconciliation at `big` open orders -------------------------------------------
            cids = _place_many(probe, tickers[1], big, 0)
            floor_started = time.perf_counter()
            truth = read_truth(bench_api, None)
            floor = time.perf_counter() - floor_started
            before = len([e for e in supervisor.recorder.events()
                          if getattr(e, "type", None) == "reconciled"])
            exchange.ws.lose_private_events("bench")
            started = time.perf_counter()  # our cancel's user_order event is the one lost
            _call(probe, lambda s, c=cids[0]: s.trading.cancel(c))
            deadline = time.monotonic() + WAIT
            while True:
                found = [e for e in supervisor.recorder.events()
                         if getattr(e, "type", None) == "reconciled"][before:]
                if any(getattr(e, "trigger", "") == "private_reconnect" for e in found):
                    break
                if time.monotonic() > deadline:
                    raise SystemExit("bench_trading: no reconciliation after the cut")
                with probe.cond:
                    probe.cond.wait(0.005)  # the recorder has no condition of its own
            took = time.perf_counter() - started
            verdict = "ok" if took <= RECONCILE_TARGET_S else "FAIL"
            ok &= verdict == "ok"
            lines += [
                f"  reconciliation at {len(cids)} open orders (cut -> reconciled): "
                f"{took * 1000:8.1f} ms (target <= {RECONCILE_TARGET_S:g} s): {verdict}",
                f"  the same REST reads alone ({len(truth.resting)} resting): "
                f"{floor * 1000:8.1f} ms; ratio {took / floor:.2f}x",
            ]
            try:
                supervisor.halt("bench done")
            except TimeoutError as exc:
                ok = False
                lines.append(f"  FAIL: the halt with {len(cids)} resting after the "
                             f"reconciliation: {exc}")
        finally:
            supervisor.shutdown(timeout=10.0)
            raw_client.close()
            bench_api.client.close()
    return lines, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--big", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.orders < 20 or args.big < 10:
        print("bench_trading: error: --orders must be at least 20, --big at least 10",
              file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.ERROR)
    baseline = set(threading.enumerate())
    print(machine_info())
    lines, ok = run(args.orders, args.big)
    print(f"\n== trading through the gateway over loopback ({args.orders} orders) ==")
    print("\n".join(lines))
    left = leaks(baseline)
    if left:
        print(f"left running: {left}")
    return 0 if ok and not left else 1


if __name__ == "__main__":
    raise SystemExit(main())
