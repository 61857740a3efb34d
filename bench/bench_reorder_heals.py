"""Repair cost when ``get_snapshot`` replies are overtaken by newer deltas (issue 17).

Usage::

    .venv/bin/python bench/bench_reorder_heals.py [--faults 20] [--window 3]

For each way the exchange may number a reply (``continue``: the sid's next seq;
``restart``: the count starts again; protocol §3.7 leaves it open), one embedded exchange
(6 markets, 500 deltas/s) and an orderbook stream connected through the reorder proxy of
``tests/cli/reorder_proxy.py`` (every repair reply held back, released newest first a few
frames later). ``--faults`` seq gaps are forced back to back (each once the previous one
was seen), then the stream is watched: **settle** is the time from the last fault to the
start of the first 0.5 s stretch with no gap, heal, resubscribe or snapshot (0.5 s
resolution); the **window** after it counts
heals and snapshot replies per second (the looping client of issue 17 ran about 37 heals
and 225 snapshots a second, for ever). The cost of the burst is given per fault.
Wanted: it settles, and the window is zero.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.support import machine_info
from kalshi_api.protocol import WS_PATH
from kalshi_api.ws_session import OrderbookStream, ReconnectPolicy
from kalshi_sim.exchange import EmbeddedExchange, ExchangeConfig
from tests.cli.reorder_proxy import ReorderProxy
from tests.harness import signer_for

SETTLE_LIMIT = 15.0
QUIET = 0.5


def _counts(stream: OrderbookStream, exchange: EmbeddedExchange) -> tuple[int, ...]:
    stats = stream.stats
    snapshots = len(exchange.oplog.entries("ws_snapshot"))
    return (stats.gaps, stats.resyncs, stats.resubscribes, stats.reconnects, snapshots)


def _force_gaps(stream: OrderbookStream, exchange: EmbeddedExchange, faults: int) -> None:
    for _ in range(faults):
        gaps = stream.stats.gaps
        deadline = time.monotonic() + 10
        while stream.stats.gaps == gaps:
            if time.monotonic() > deadline:
                raise SystemExit("a forced gap was never seen")
            exchange.ws.skip_seq()  # a skip armed on a replaced sid is lost: arm again
            stream.barrier(5)


def one(numbering: str, faults: int, window: float) -> dict[str, Any]:
    config = ExchangeConfig(markets=6, delta_rate=500.0, read_tokens_per_second=None, seed=7)
    with EmbeddedExchange(config) as exchange, ReorderProxy(exchange.ws_url) as proxy:
        exchange.ws.behaviour.snapshot_seq = numbering  # type: ignore[assignment]
        signer = signer_for(exchange)
        stream = OrderbookStream(
            proxy.ws_url,
            exchange.markets.tickers(),
            auth_headers=lambda: signer.headers("GET", WS_PATH),
            reconnect=ReconnectPolicy(min_delay=0.01, max_delay=0.05, healthy_after=0.0),
            snapshot_timeout=2.0,
        )
        stream.start()
        try:
            if not stream.wait_synced(10):
                raise SystemExit("the stream never synced")
            start = _counts(stream, exchange)
            _force_gaps(stream, exchange, faults)
            last_fault = time.perf_counter()
            burst_end = _counts(stream, exchange)
            settled_at = None
            previous = burst_end
            while time.perf_counter() - last_fault < SETTLE_LIMIT:
                time.sleep(QUIET)
                now = _counts(stream, exchange)
                if now == previous and stream.wait_synced(0):
                    settled_at = time.perf_counter() - QUIET
                    break
                previous = now
            settled = _counts(stream, exchange)
            time.sleep(window)
            after = _counts(stream, exchange)
        finally:
            stream.stop()
    return {
        "numbering": numbering,
        "settle_s": None if settled_at is None else max(0.0, settled_at - last_fault),
        "per_fault": [(b - a) / faults for a, b in zip(start, settled, strict=True)],
        "burst": [b - a for a, b in zip(start, burst_end, strict=True)],
        "heals_per_s": (after[1] - settled[1]) / window,
        "snapshots_per_s": (after[4] - settled[4]) / window,
        "held": proxy.held,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", type=int, default=20)
    parser.add_argument("--window", type=float, default=3.0)
    args = parser.parse_args()
    print(machine_info())
    print(f"{args.faults} forced gaps behind the reorder proxy, then a {args.window:g} s window")
    print("numbering  settle    per fault: gaps heals resubs reconnects snapshots   window")
    for numbering in ("continue", "restart"):
        row = one(numbering, args.faults, args.window)
        settle = "never" if row["settle_s"] is None else f"{row['settle_s']:.2f} s"
        gaps, heals, resubs, reconnects, snapshots = row["per_fault"]
        print(
            f"{numbering:<10} {settle:<9} {gaps:10.1f} {heals:5.1f} {resubs:6.1f} "
            f"{reconnects:10.1f} {snapshots:9.1f}   {row['heals_per_s']:.1f} heals/s, "
            f"{row['snapshots_per_s']:.1f} snapshots/s (replies reordered: {row['held']})"
        )


if __name__ == "__main__":
    main()
