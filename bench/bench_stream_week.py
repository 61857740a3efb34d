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
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))  # after PYTHONPATH: see Usage

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


SCENARIOS: dict[str, Setup] = {
    "closed market, error 11 (unnamed)": _closed_error,
    "closed market, no snapshot": _closed_nothing,
    "market cap 5 per subscribe (error 26)": _cap,
    "every session dropped 0.3 s after sync": _flap,
    "permanent 429 on the upgrade": _refuse,
}


def run(name: str, setup: Setup, window: float) -> None:
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
        start = time.monotonic()
        stream.start()
        synced = stream.wait_synced(window)
        to_sync = time.monotonic() - start
        remaining = window - to_sync
        if remaining > 0:
            stream.wait_synced(0)
            time.sleep(remaining)  # a fixed measuring window, not synchronisation
        live = stream.synced_market_count()
        stream.stop()
        attempts = len(exchange.oplog.entries("ws_handshake")) + len(
            exchange.oplog.entries("ws_handshake_rejected")
        )
        sync = f"{to_sync:6.2f} s" if synced else "   never"
        print(
            f"{name:42s} attempts {attempts:4d} = {attempts / window:5.2f}/s   "
            f"synced after {sync}   live at end {live}/20"
        )
    finally:
        exchange.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=float, default=20.0)
    args = parser.parse_args()
    import kalshi_api

    print(f"client: {Path(kalshi_api.__file__).parent}; window {args.window:g} s")
    for name, setup in SCENARIOS.items():
        run(name, setup, args.window)


if __name__ == "__main__":
    main()
