"""An exchange fill -> the maker's typed ``fill`` event over the private channel, over loopback.

Usage::

    .venv/bin/python bench/bench_private_fill.py [--fills N] [--warmup W]

An embedded exchange (write bucket off, the house's liquidity taken off the books, so the
two members trade only with each other) and two members are started outside the timing.
The maker follows its private channels with ``kalshi_api.private_channels.PrivateChannels``.
Each round, untimed, the maker rests a 1-contract bid; then, timed from one instant:

* **fill event**: the taker's immediate-or-cancel ask crosses it, and the clock stops when
  the maker's listener receives the typed ``FillEvent`` of that order (parsed, exact,
  deduplicated, on the transport thread);
* **taker's 201** (the floor): the same request's own REST reply to the taker, i.e. the
  write round trip that produced the fill, measured in the same round.

The exchange sends a write's private events after its REST reply (its default,
``private_events="after"``), so the fill event can only follow the 201; the ratio says
what the private path adds on top of the write that caused it.
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
from kalshi_api.private_channels import PrivateChannels
from kalshi_api.private_events import FillEvent, PrivateConnected
from kalshi_api.protocol import WS_PATH
from kalshi_api.rest import KalshiRestClient
from kalshi_sim.exchange import EmbeddedExchange, ExchangeConfig
from kalshi_sim.participant import HOUSE

TARGET_RATIO = 3.0
"""The maker's typed fill event within 3x the taker's own write round trip (p50)."""
WAIT = 10.0


class FillClock:
    """The listener: stamps the arrival of each order's first fill event."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.connected = threading.Event()
        self._changed = threading.Condition()

    def __call__(self, event: object) -> None:
        now = time.perf_counter()
        if isinstance(event, PrivateConnected):
            self.connected.set()
        elif isinstance(event, FillEvent):
            with self._changed:
                self.arrived.setdefault(event.order_id, now)
                self._changed.notify_all()

    def wait(self, order_id: str) -> float:
        with self._changed:
            if not self._changed.wait_for(lambda: order_id in self.arrived, WAIT):
                raise RuntimeError(f"no fill event for order {order_id} within {WAIT:g} s")
            return self.arrived[order_id]


def _quiet(exchange: EmbeddedExchange) -> None:
    """Take the house's liquidity and the demo's resting orders off every book."""

    def clear(engine, now):  # type: ignore[no-untyped-def]
        for ticker in exchange.markets.tickers():
            engine.level_orders(ticker, "bid", 0)  # grows the book as real orders
        engine.cancel_all(exchange.account.member, now)
        return engine.cancel_all(HOUSE, now)

    exchange.trading.call(clear)



def run(fills: int, warmup: int) -> tuple[list[float], list[float]]:
    config = ExchangeConfig(
        markets=6, delta_rate=0, read_tokens_per_second=None, write_limit=False,
        cancel_all_tail_s=0,
    )  # fmt: skip
    events: list[float] = []
    replies: list[float] = []
    with EmbeddedExchange(config) as exchange:
        _quiet(exchange)
        cash = dict.fromkeys(range(4), 100_000_000)
        maker_key = exchange.add_member("maker", cash)
        taker_key = exchange.add_member("taker", cash)
        maker_signer = load_signer(maker_key.key_id, maker_key.private_key_path, env={})
        taker_signer = load_signer(taker_key.key_id, taker_key.private_key_path, env={})
        ticker = exchange.markets.tickers()[0]
        clock = FillClock()
        channels = PrivateChannels.connect(
            exchange.ws_url,
            auth_headers=lambda: maker_signer.headers("GET", WS_PATH),
            listener=clock,
        )
        channels.start()
        try:
            if not clock.connected.wait(WAIT):
                raise RuntimeError("the private channels never subscribed")
            with (
                KalshiRestClient(exchange.rest_url, maker_signer) as maker_client,
                KalshiRestClient(exchange.rest_url, taker_signer) as taker_client,
            ):
                maker, taker = OrderApi(maker_client), OrderApi(taker_client)
                price = Decimal("0.45")
                for i in range(warmup + fills):
                    rest = maker.create(CreateOrder(ticker, "bid", Decimal(1), price, f"m:{i}"))
                    take = CreateOrder(
                        ticker, "ask", Decimal(1), price, f"t:{i}",
                        time_in_force="immediate_or_cancel",
                    )  # fmt: skip
                    started = time.perf_counter()
                    reply = taker.create(take)
                    replied = time.perf_counter()
                    if reply.filled != 1:
                        raise RuntimeError(f"round {i}: the take filled {reply.filled}, not 1")
                    arrived = clock.wait(rest.order_id)
                    if i >= warmup:
                        replies.append(replied - started)
                        events.append(arrived - started)
        finally:
            channels.stop()
    return events, replies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fills", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args(argv)
    if args.fills < 100 or args.warmup < 0:
        print("bench_private_fill: error: --fills must be at least 100", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.ERROR)
    baseline = set(threading.enumerate())
    print(machine_info())
    events, replies = run(args.fills, args.warmup)
    print(f"\n== exchange fill -> typed fill event, {args.fills} fills ({args.warmup} warm-up) ==")
    print(f"  maker's FillEvent  {summary(events)}")
    print(f"  taker's 201        {summary(replies)}")
    ratio = statistics.median(events) / statistics.median(replies)
    verdict = "ok" if ratio <= TARGET_RATIO else "FAIL"
    print(f"  FillEvent / 201 (p50) {ratio:.2f}x (target <= {TARGET_RATIO:g}x): {verdict}")
    left = leaks(baseline)
    if left:
        print(f"left running: {left}")
    return 0 if verdict == "ok" and not left else 1


if __name__ == "__main__":
    raise SystemExit(main())
