"""``kalshi-supervisor exchange``: serve the embedded Kalshi exchange on its own.

Prints one JSON line (URLs, key id, key *path*; never the key; the truth URL; one key per
``--member``) and serves until SIGINT or SIGTERM. The exchange comes from
``app.bootstrap``, the one module that may load it.

Trading knobs (README "Trading on the embedded exchange"): the usage tier sizing the Write
bucket, batch size, cancel-all's cost and tail, REST read lag, private events before or
after the REST reply, and trading faults armed at start (``--trading-fault SPEC``, the
same specs ``POST /_sim/trading_faults`` takes).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Sequence

from cli.arguments import (
    OneLineParser,
    error_line,
    non_negative_float,
    non_negative_int,
    positive_int,
)
from cli.signals import SignalCounter

EXIT_OK, EXIT_BAD_CONFIG = 0, 2

SIGNAL_POLL = 0.2
"""Seconds between looks at the signal counts: SIGINT/SIGTERM stop the exchange within this."""


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
    trading = parser.add_argument_group("trading")
    trading.add_argument(
        "--take-rate",
        type=non_negative_float,
        default=0.0,
        help="of the --rate steps per second, how many take liquidity (and may fill your orders)",
    )
    trading.add_argument(
        "--member",
        action="append",
        default=[],
        metavar="NAME",
        help="add a trading member with its own key and $1,000 (repeatable)",
    )
    trading.add_argument(
        "--tier",
        default="basic",
        help="usage tier: basic, advanced, expert, premier, paragon, prime, prestige",
    )
    trading.add_argument(
        "--no-write-limit", action="store_true", help="never answer a write with 429"
    )
    trading.add_argument(
        "--max-batch-size",
        type=positive_int,
        default=20,
        help="most orders one batch create or cancel may carry",
    )
    trading.add_argument(
        "--cancel-all-cost", type=positive_int, default=2, help="Write tokens per cancel-all"
    )
    trading.add_argument(
        "--cancel-all-tail",
        type=non_negative_float,
        default=60.0,
        metavar="SECONDS",
        help="orders placed this long after a cancel-all are cancelled too (0: off)",
    )
    trading.add_argument(
        "--read-lag-ms", type=non_negative_int, default=0, help="REST portfolio reads lag writes"
    )
    trading.add_argument(
        "--private-events",
        choices=("before", "after"),
        default="after",
        help="send a write's private WS events before or after its REST reply",
    )
    trading.add_argument(
        "--trading-fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="arm a trading fault, e.g. drop_write, fail_write:status=503,applied=false, "
        "hold_write:seconds=5, wrong_order, error_in_2xx, cancel_all_503, "
        "lose_private_events:member=NAME (repeatable)",
    )
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
            take_rate=min(args.take_rate, args.rate),
            usage_tier=args.tier,
            write_limit=not args.no_write_limit,
            max_batch_size=args.max_batch_size,
            cancel_all_cost=args.cancel_all_cost,
            cancel_all_tail_s=args.cancel_all_tail,
            read_lag_ms=args.read_lag_ms,
            private_events=args.private_events,
            trading_faults=tuple(args.trading_fault),
        )
    except (ServerStartError, ValueError) as exc:
        print(error_line(f"exchange: {exc}"), file=sys.stderr)
        return EXIT_BAD_CONFIG
    try:
        members = [exchange.add_member(name) for name in dict.fromkeys(args.member)]
    except ValueError as exc:
        exchange.stop()
        print(error_line(f"exchange: {exc}"), file=sys.stderr)
        return EXIT_BAD_CONFIG
    # Counted, never acted on in the handler (a handler setting an Event can deadlock with a
    # loop waiting on it: see cli.signals); installed until the exchange has stopped, so a
    # second Ctrl-C cannot cut its stop short.
    with SignalCounter(signal.SIGINT, signal.SIGTERM) as signals:
        try:
            print(
                json.dumps(
                    {
                        "rest_url": exchange.rest_url,
                        "ws_url": exchange.ws_url,
                        "key_id": exchange.key_id,
                        "private_key": str(exchange.private_key_path),
                        "truth_url": f"{exchange.rest_url.split('/trade-api')[0]}/_sim/truth",
                        "members": [
                            {
                                "member": m.member,
                                "key_id": m.key_id,
                                "private_key": str(m.private_key_path),
                            }
                            for m in members
                        ],
                    }
                ),
                flush=True,
            )
            while not signals.any():
                time.sleep(SIGNAL_POLL)
        finally:
            exchange.stop()
    return EXIT_OK
