"""Issue 8's stream scenarios, measured: connections per second and time to sync.

Usage::

    .venv/bin/python bench/bench_stream_week.py [--window SECONDS]

Each scenario runs one ``OrderbookStream`` (the supervisor's settings: reconnect from
0.05 s, cap :data:`~kalshi_api.stream_events.DEFAULT_MAX_RECONNECT_DELAY`, healthy after
30 s, a REST market checker) against the embedded exchange taught to misbehave, for a
fixed window, and prints upgrade attempts per second and the time until the books synced
(or "never"). Figures, not assertions: the tests prove the behaviour, this shows its size.

To measure the client before a change, put the old ``kalshi_api`` first on ``PYTHONPATH``
(the exchange's hooks live in ``kalshi_sim``); options the old client lacks are skipped.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))  # after PYTHONPATH: see Usage

from bench.support import machine_info
from kalshi_api.auth import load_signer
from kalshi_api.protocol import WS_PATH
from kalshi_api.ws_session import OrderbookStream, ReconnectPolicy
from kalshi_sim.exchange import EmbeddedExchange, ExchangeConfig

Setup = Callable[[EmbeddedExchange], None]


def _closed_error(exchange: EmbeddedExchange) -> None:
    exchange.ws.set_market_status(exchange.markets.tickers()[0], "closed")
    exchange.ws.behaviour.closed_answer = "error_unnamed"


def _closed_nothing(exchange: EmbeddedExchange) -> None:
    exchange.ws.set_market_status(exchange.markets.tickers()[0], "closed")
    exchange.ws.behaviour.closed_answer = "nothing"


def _cap(exchange: EmbeddedExchange) -> None:
    exchange.ws.behaviour.market_limit = 5


def _flap(exchange: EmbeddedExchange) -> None:
    exchange.ws.behaviour.drop_after_sync = 0.3


def _refuse(exchange: EmbeddedExchange) -> None:
    exchange.ws.behaviour.upgrade_status = 429


def _well_behaved(exchange: EmbeddedExchange) -> None:
    """The floor: nothing misbehaves (one connection, synced at once)."""


STORM_RATE = 1.0
"""Upgrade attempts per second at or above which a scenario counts as a reconnect storm
(before issue 8: 1.4/s for a permanent 429, 2.9/s for sessions dropped after sync)."""

SCENARIOS: dict[str, Setup] = {
    "well-behaved exchange (floor)": _well_behaved,
    "closed market, error 11 (unnamed)": _closed_error,
    "closed market, no snapshot": _closed_nothing,
    "market cap 5 per subscribe (error 26)": _cap,
    "every session dropped 0.3 s after sync": _flap,
    "permanent 429 on the upgrade": _refuse,
}


def run(name: str, setup: Setup, window: float) -> float:
    """Run one scenario for ``window`` seconds; prints its line and returns the sustained
    attempt rate (the window's second half: a storm is what goes on, not the first retries)."""
    exchange = EmbeddedExchange(
        ExchangeConfig(markets=20, delta_rate=200, read_tokens_per_second=None)
    ).start()
    try:
        setup(exchange)
        signer = load_signer(exchange.key_id, exchange.private_key_path)
        options: dict[str, object] = {
            "reconnect": ReconnectPolicy(min_delay=0.05, max_delay=30.0),
            "snapshot_timeout": 5.0,
        }
        accepted = inspect.signature(OrderbookStream).parameters
        if "market_checker" in accepted:
            from kalshi_api.market_check import rest_market_checker

            options["market_checker"] = rest_market_checker(exchange.rest_url, signer)
        stream = OrderbookStream(
            exchange.ws_url,
            exchange.markets.tickers(),
            auth_headers=lambda: signer.headers("GET", WS_PATH),
            **options,  # type: ignore[arg-type]
        )
        start, wall_start = time.monotonic(), time.time()  # the oplog stamps wall time
        stream.start()
        synced = stream.wait_synced(window)
        to_sync = time.monotonic() - start
        remaining = window - to_sync
        if remaining > 0:
            stream.wait_synced(0)
            time.sleep(remaining)  # a fixed measuring window, not synchronisation
        live = stream.synced_market_count()
        stream.stop()
        upgrades = exchange.oplog.entries("ws_handshake") + exchange.oplog.entries(
            "ws_handshake_rejected"
        )
        attempts = len(upgrades)
        half = wall_start + window / 2
        sustained = sum(1 for op in upgrades if op.at >= half) / (window / 2)
        sync = f"{to_sync:6.2f} s" if synced else "   never"
        print(
            f"{name:42s} attempts {attempts:4d} = {attempts / window:5.2f}/s"
            f" ({sustained:5.2f}/s in the second half)   synced after {sync}"
            f"   live at end {live}/20"
        )
        return sustained
    finally:
        exchange.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=float, default=20.0)
    args = parser.parse_args()
    if not 1 <= args.window <= 600:
        print("bench_stream_week: error: --window must be in [1, 600] seconds", file=sys.stderr)
        return 2
    import kalshi_api

    logging.basicConfig(level=logging.ERROR)  # the stream's per-reconnect warnings
    print(machine_info())
    print(f"client: {Path(kalshi_api.__file__).parent}; window {args.window:g} s")
    rates = {name: run(name, setup, args.window) for name, setup in SCENARIOS.items()}
    floor = rates.pop("well-behaved exchange (floor)")
    storms = [name for name, rate in rates.items() if rate >= STORM_RATE]
    worst = max(rates, key=rates.__getitem__)
    print(
        f"worst sustained: {worst}, {rates[worst]:.2f} attempts/s"
        f" (floor {floor:.2f}/s, a difference of {rates[worst] - floor:+.2f}/s)"
    )
    verdict = "FAIL" if storms else "PASS"
    named = f" ({', '.join(storms)})" if storms else ""
    bound = f"every scenario < {STORM_RATE:g} attempts/s sustained"
    print(f"{verdict}: no reconnect storm ({bound}){named}")
    return 1 if storms else 0


if __name__ == "__main__":
    raise SystemExit(main())
