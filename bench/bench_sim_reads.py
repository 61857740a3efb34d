"""Order reads on the embedded exchange: does a read cost the same at 10 and 5,000 orders?

Usage::

    .venv/bin/python bench/bench_sim_reads.py [--reads N] [--orders 5000] [--warmup W]

An embedded exchange (buckets off, so pacing is not measured) and one member with ample cash
are started outside the timing, on one client. Three reads are timed, each ``--reads``
times after ``--warmup`` untimed ones, first while the member rests 10 orders, then again
once it rests ``--orders`` (all but a few on one market):

* **GET order**: ``GET /portfolio/orders/{order_id}`` of one resting order;
* **find by client_order_id**: ``OrderApi.find_order`` on the *other* market, the lookup that
  resolves an outcome-unknown write (a list narrowed by ticker, scanned for the id);
* **GET status**: the signed ``GET /exchange/status``, trivial to answer: the client-and-
  loopback floor, measured in the same phase so load on the machine shows in both.

The exchange indexes a member's orders (by id, by ticker, live ones apart), so the reads
should not grow with the member's other orders: the script fails when a read's p50 at
``--orders`` is over ``TARGET_RATIO`` times its p50 at 10, after each is corrected by its
phase's floor ratio (how much slower the machine was in that phase).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.support import latency_summary as summary
from bench.support import leaks, machine_info
from kalshi_api.auth import load_signer
from kalshi_api.order_models import CreateOrder
from kalshi_api.orders import OrderApi
from kalshi_api.rest import KalshiRestClient
from kalshi_sim.exchange import EmbeddedExchange, ExchangeConfig

TARGET_RATIO = 1.5
"""A read at 5,000 resting orders within 1.5x the same read at 10 (an unindexed read, a
copy of every order of the member, was ~18x at 1,000)."""
SMALL = 10
OTHER_MARKET_ORDERS = 3
"""Orders on the second market (the one ``find_order`` narrows to)."""

Phase = dict[str, list[float]]


def _timed(fn: Callable[[], object], reads: int, warmup: int) -> list[float]:
    times: list[float] = []
    for i in range(warmup + reads):
        started = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - started
        if i >= warmup:
            times.append(elapsed)
    return times


def run(reads: int, orders: int, warmup: int) -> tuple[Phase, Phase]:
    config = ExchangeConfig(
        markets=6, delta_rate=0, read_tokens_per_second=None, write_limit=False,
        cancel_all_tail_s=0,
    )  # fmt: skip
    with EmbeddedExchange(config) as exchange:
        key = exchange.add_member("bench", dict.fromkeys(range(4), 10_000_000))
        signer = load_signer(key.key_id, key.private_key_path, env={})
        big, other = exchange.markets.tickers()[:2]
        with KalshiRestClient(exchange.rest_url, signer) as client:
            api = OrderApi(client)

            def rest(ticker: str, n: int, start: int) -> list[str]:
                ids = []
                for i in range(start, start + n):
                    price = Decimal("0.02") + Decimal("0.01") * (i % 4)
                    created = api.create(CreateOrder(ticker, "bid", Decimal(1), price, f"r{i}"))
                    ids.append(created.order_id)
                return ids

            probe = rest(other, OTHER_MARKET_ORDERS, 0)[0]
            rest(big, SMALL - OTHER_MARKET_ORDERS, OTHER_MARKET_ORDERS)

            def phase() -> Phase:
                return {
                    "GET order": _timed(lambda: api.get_order(probe), reads, warmup),
                    "find by client_order_id": _timed(
                        lambda: api.find_order("r0", ticker=other), reads, warmup
                    ),
                    "GET status": _timed(client.get_exchange_status, reads, warmup),
                }

            small = phase()
            rest(big, orders - SMALL, SMALL)
            resting = len(exchange.trading.orders("bench", status="resting"))
            assert resting == orders, f"{resting} resting, wanted {orders}"
            large = phase()
    return small, large


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=500)
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args(argv)
    if args.reads < 50 or args.warmup < 0 or args.orders < 100:
        print("bench_sim_reads: error: --reads >= 50, --orders >= 100", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.ERROR)
    baseline = set(threading.enumerate())
    print(machine_info())
    small, large = run(args.reads, args.orders, args.warmup)
    ok = True
    for count, measured in ((SMALL, small), (args.orders, large)):
        print(f"\n== {count} resting orders, {args.reads} reads each ({args.warmup} warm-up) ==")
        for name, times in measured.items():
            print(f"  {name:24} {summary(times)}")
    drift = statistics.median(large["GET status"]) / statistics.median(small["GET status"])
    print(f"\n  floor (GET status) p50 at {args.orders} / at {SMALL}: {drift:.2f}x")
    for name in ("GET order", "find by client_order_id"):
        ratio = statistics.median(large[name]) / statistics.median(small[name])
        over_floor = ratio / drift
        verdict = "ok" if over_floor <= TARGET_RATIO else "FAIL"
        ok = ok and verdict == "ok"
        print(
            f"  {name} p50 at {args.orders} / at {SMALL}: {ratio:.2f}x "
            f"({over_floor:.2f}x after the floor's drift; target <= {TARGET_RATIO:g}x): {verdict}"
        )
    left = leaks(baseline)
    if left:
        print(f"left running: {left}")
    return 0 if ok and not left else 1


if __name__ == "__main__":
    raise SystemExit(main())
