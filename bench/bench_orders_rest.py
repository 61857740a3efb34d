"""Order entry over loopback: create -> 201 through ``OrderApi`` beside a signed GET.

Usage::

    .venv/bin/python bench/bench_orders_rest.py [--orders N] [--warmup W]

An embedded exchange (write bucket off, so pacing is not measured) and one member with
ample cash are started outside the timing. Then:

* **create**, ``--orders`` times: ``OrderApi.create`` of a resting 1-contract bid (request
  validated, price checked on the market's grid, signed, sent once, 201 parsed into a
  frozen model), timed from the call to its return; each is cancelled right after
  (untimed), so the book stays one order deep;
* **signed GET**, as many times: ``GET /portfolio/orders/{order_id}`` of one resting order
  on the same client and server (same auth, same routing, a one-order body);
* **signed GET status**: ``GET /exchange/status`` (signed like every request of an
  authenticated client, but trivial to answer): the client-and-loopback floor.

The reads run as their own phase, first: the exchange publishes a write's private events
after its reply (a read right behind a write would wait for that work). How a read's cost
holds as the member's orders grow is ``bench_sim_reads.py``'s to show. The first
``--warmup`` of each are not counted. Printed: p50, p90, p99 and the max per kind.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.support import latency_summary as summary
from bench.support import leaks, machine_info
from kalshi_api.auth import load_signer
from kalshi_api.order_models import CreateOrder
from kalshi_api.orders import OrderApi
from kalshi_api.rest import KalshiRestClient
from kalshi_sim.exchange import EmbeddedExchange, ExchangeConfig

TARGET_RATIO = 3.0
"""A create (validation, grid check, body, engine, 201 parse) within 3x the client-and-
loopback floor of a signed GET: the write path adds no per-request cost of its own."""



def run(orders: int, warmup: int) -> tuple[list[float], list[float], list[float]]:
    config = ExchangeConfig(
        markets=6, delta_rate=0, read_tokens_per_second=None, write_limit=False,
        cancel_all_tail_s=0,
    )  # fmt: skip
    with EmbeddedExchange(config) as exchange:
        key = exchange.add_member("bench", dict.fromkeys(range(4), 10_000_000))
        signer = load_signer(key.key_id, key.private_key_path, env={})
        ticker = exchange.markets.tickers()[0]
        with KalshiRestClient(exchange.rest_url, signer) as client:
            api = OrderApi(client)
            creates: list[float] = []
            reads: list[float] = []
            floor: list[float] = []
            for i in range(warmup + orders):
                started = time.perf_counter()
                client.get_exchange_status()
                elapsed = time.perf_counter() - started
                if i >= warmup:
                    floor.append(elapsed)
            # Reads first, apart from the writes (see the module docstring).
            resting = api.create(CreateOrder(ticker, "bid", Decimal(1), Decimal("0.05"), "bench:r"))
            for i in range(warmup + orders):
                started = time.perf_counter()
                api.get_order(resting.order_id)
                elapsed = time.perf_counter() - started
                if i >= warmup:
                    reads.append(elapsed)
            api.cancel(resting.order_id)
            for i in range(warmup + orders):
                order = CreateOrder(ticker, "bid", Decimal(1), Decimal("0.05"), f"bench:{i}")
                started = time.perf_counter()
                created = api.create(order)
                elapsed = time.perf_counter() - started
                api.cancel(created.order_id)
                if i >= warmup:
                    creates.append(elapsed)
    return creates, reads, floor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args(argv)
    if args.orders < 100 or args.warmup < 0:
        print("bench_orders_rest: error: --orders must be at least 100", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.ERROR)
    baseline = set(threading.enumerate())
    print(machine_info())
    creates, reads, floor = run(args.orders, args.warmup)
    print(f"\n== order entry over loopback, {args.orders} orders ({args.warmup} warm-up) ==")
    print(f"  create -> 201     {summary(creates)}")
    print(f"  signed GET order  {summary(reads)}")
    print(f"  signed GET status {summary(floor)}")
    ratio = statistics.median(creates) / statistics.median(reads)
    print(f"  create / GET order (p50) {ratio:.2f}x")
    floor_ratio = statistics.median(creates) / statistics.median(floor)
    verdict = "ok" if floor_ratio <= TARGET_RATIO else "FAIL"
    print(
        f"  create / GET status (p50) {floor_ratio:.2f}x (target <= {TARGET_RATIO:g}x): {verdict}"
    )
    left = leaks(baseline)
    if left:
        print(f"left running: {left}")
    return 0 if verdict == "ok" and not left else 1


if __name__ == "__main__":
    raise SystemExit(main())
