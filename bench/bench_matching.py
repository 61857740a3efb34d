"""The matching engine's throughput: orders per second, beside a floor measured in the same run.

Usage::

    .venv/bin/python bench/bench_matching.py [--orders 20000] [--repeat 5]

Two workloads, each run ``--repeat`` times (the best run counts, as the least disturbed by
the other processes on the machine):

* **place+cancel** - ``--orders`` non-crossing GTC orders (bids below 40c, asks above 60c,
  spread over 40 levels a side) placed, then each cancelled by id: the path of a quoting
  market maker. One "order" is one place plus its cancel.
* **crossing** - ``--orders`` resting asks from one member, then as many bids from another,
  each taking one ask completely (fees, positions, cash, fills, a trade): the taker path.

The floor for each is the same count of inserts and deletes in a plain ``dict`` (the least
any order book must do to remember and forget an order), timed in this process right
beside the engine (a floor run after each engine run), so the machine's load affects both
alike. The verdict is on the ratio
engine time / floor time: what the engine costs per order in units of the cheapest
possible bookkeeping, which holds across machines far better than an absolute rate.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.support import machine_info
from kalshi_sim.engine_types import MarketRules, OrderRequest
from kalshi_sim.matching import MatchingEngine

TICKER = "KXBENCH-26DEC01-T1"
CENT = 10_000
RATIO_TARGETS = {"place+cancel": 400.0, "crossing": 800.0}
"""The most dict insert+delete pairs one order may cost (issue 15). A place+cancel validates,
holds cash, keeps a price-time queue and the public level, mints a uuid and snapshots the
order into frozen views twice; a crossing order also makes two fills, a trade, two position
updates and fees, and ends two orders. Measured here: ~230 and ~450."""


def _engine() -> MatchingEngine:
    engine = MatchingEngine()
    engine.add_market(MarketRules(TICKER, "KXBENCH-26DEC01", "KXBENCH"))
    for member in ("maker", "taker"):
        engine.open_account(member, {0: 10**15})
    return engine


def _place_cancel(count: int) -> float:
    engine = _engine()
    requests = [
        OrderRequest(
            "maker",
            TICKER,
            "bid" if i % 2 else "ask",
            100,
            (1 + i % 40) * CENT if i % 2 else (60 + i % 40) * CENT,
        )
        for i in range(count)
    ]
    begun = time.perf_counter()
    ids = [engine.place(req, i).order.order_id for i, req in enumerate(requests)]  # type: ignore[union-attr]
    for i, order_id in enumerate(ids):
        engine.cancel("maker", order_id, count + i)
    return time.perf_counter() - begun


def _crossing(count: int) -> float:
    engine = _engine()
    for i in range(count):
        engine.place(OrderRequest("maker", TICKER, "ask", 100, (40 + i % 20) * CENT), i)
    takers = [OrderRequest("taker", TICKER, "bid", 100, 60 * CENT) for _ in range(count)]
    begun = time.perf_counter()
    for i, req in enumerate(takers):
        outcome = engine.place(req, count + i)
        assert outcome.fill_centi == 100
    return time.perf_counter() - begun


def _floor(count: int) -> float:
    """``count`` dict inserts then ``count`` deletes of distinct string keys."""
    keys = [f"{i:036d}" for i in range(count)]
    value = object()
    begun = time.perf_counter()
    book: dict[str, object] = {}
    for key in keys:
        book[key] = value
    for key in keys:
        del book[key]
    return time.perf_counter() - begun


def _best_pair(run: Callable[[int], float], count: int, repeat: int) -> tuple[float, float]:
    """Best engine and best floor time, each floor run right after an engine run so both see
    the same machine load (and a collected heap)."""
    engine_s, floor_s = [], []
    for _ in range(repeat):
        gc.collect()
        engine_s.append(run(count))
        gc.collect()
        floor_s.append(_floor(count))
    return min(engine_s), min(floor_s)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(machine_info())
    count = args.orders
    verdicts = []
    for name, run in (("place+cancel", _place_cancel), ("crossing", _crossing)):
        engine_s, floor_s = _best_pair(run, count, args.repeat)
        ratio = engine_s / floor_s
        print(
            f"{name:<13} engine {count / engine_s:>10,.0f} orders/s"
            f" ({1e6 * engine_s / count:.1f} us/order);"
            f" floor {count / floor_s:>12,.0f} dict insert+delete/s;"
            f" ratio {ratio:.0f}"
        )
        target = RATIO_TARGETS[name]
        verdicts.append(
            f"{'PASS' if ratio <= target else 'FAIL'}: {name} costs {ratio:.0f} dict"
            f" insert+delete pairs per order (target <= {target:g})"
        )
    for line in verdicts:
        print(line)
    return 1 if any(line.startswith("FAIL") for line in verdicts) else 0


if __name__ == "__main__":
    raise SystemExit(main())
