"""``kalshi-supervisor exchange``: serve the embedded Kalshi exchange on its own.

Prints one JSON line (URLs, key id, key *path*; never the key) and serves until SIGINT or
SIGTERM. The exchange comes from ``app.bootstrap``, the one module that may load it.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence

from cli.arguments import OneLineParser, error_line, non_negative_float, positive_int

EXIT_OK, EXIT_BAD_CONFIG = 0, 2


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="kalshi-supervisor exchange",
        description="Serve the embedded Kalshi exchange standalone: prints one JSON line "
        "(rest_url, ws_url, key_id and the demo key's path) and serves until SIGINT/SIGTERM.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port", type=int, default=0, help="REST and WebSocket port (one port); 0 = any free"
    )
    parser.add_argument(
        "--markets", type=positive_int, default=20, help="how many markets the exchange lists"
    )
    parser.add_argument(
        "--rate", type=non_negative_float, default=50.0, help="orderbook deltas per second"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated markets")
    return parser


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    from app.bootstrap import start_embedded_exchange
    from webstack.server_thread import ServerStartError

    try:
        exchange = start_embedded_exchange(
            host=args.host,
            port=args.port,
            markets=args.markets,
            delta_rate=args.rate,
            seed=args.seed,
        )
    except ServerStartError as exc:
        print(error_line(f"exchange: {exc}"), file=sys.stderr)
        return EXIT_BAD_CONFIG
    done = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: done.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        print(
            json.dumps(
                {
                    "rest_url": exchange.rest_url,
                    "ws_url": exchange.ws_url,
                    "key_id": exchange.key_id,
                    "private_key": str(exchange.private_key_path),
                }
            ),
            flush=True,
        )
        while not done.is_set():
            done.wait(0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        exchange.stop()
    return EXIT_OK
