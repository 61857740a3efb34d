"""Exchange pause -> resume -> READY: how soon after the exchange resumes is READY back?

Usage::

    .venv/bin/python bench/bench_pauses.py [--runs N]

One embedded exchange (20 markets) serves every run. Each run starts a supervisor (trading
on, default ``pause_timing``: 0.25 s doubling to 1 s) whose exchange is paused (503 with
the status body, no resume estimate) the moment TRADING_CLIENT_CONNECT is entered, waits
until the supervisor has re-checked the status 4 times (its backoff has reached the 1 s
cap, the worst phase), then resumes the exchange and times resume -> READY.

The floor, measured in the same run: TRADING_CLIENT_CONNECT -> READY of an unpaused cold
start (the trading and sync stages' own work), plus the poll cap (1 s), which is the
longest the supervisor can take to see a resume without an estimate. A second case pauses
with an estimate 1.5 s ahead and resumes exactly at it: READY should follow by about the
floor alone, since the re-check is scheduled for the estimate. Every wait is on the
supervisor's events or the exchange's operation log, never a sleep.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.handle import Supervisor
from bench.support import leaks, machine_info, p90
from kalshi_api.auth import load_signer
from kalshi_sim.exchange import EmbeddedExchange, ExchangeConfig
from kalshi_sim.oplog import Operation
from messages.events import ExchangePaused, StageFailureReported, StateTransition, SupervisorEvent
from messages.states import State
from supervision.config import RestartSettings, SupervisorConfig

WAIT = 30.0
STATUS = "GET /trade-api/v2/exchange/status"


def config_for(exchange: EmbeddedExchange) -> SupervisorConfig:
    return SupervisorConfig(
        rest_url=exchange.rest_url,
        ws_url=exchange.ws_url,
        status_port=0,
        market_count=20,
        sync_interval=3600.0,
        restart=RestartSettings(min_backoff=0.01, max_backoff=0.05, random_factor=0.0),
    )


def status_reads(entries: Iterable[Operation]) -> int:
    return sum(1 for op in entries if op.kind == "rest" and op.detail == STATUS)


def unpaused(exchange: EmbeddedExchange) -> float:
    """TRADING_CLIENT_CONNECT -> READY of a plain cold start, in seconds."""
    signer = load_signer(exchange.key_id, exchange.private_key_path)
    supervisor = Supervisor(config_for(exchange), signer, exchange=exchange).start()
    try:
        ready = supervisor.recorder.wait_for_state(State.READY, WAIT)
        trading = supervisor.recorder.wait_for_state(State.TRADING_CLIENT_CONNECT, 0)
        assert ready is not None and trading is not None
        return (ready.timestamp - trading.timestamp).total_seconds()
    finally:
        supervisor.shutdown(timeout=3.0)


def paused(exchange: EmbeddedExchange, *, estimate_in: float | None) -> float:
    """Seconds from the resume (or the estimate) to READY."""
    signer = load_signer(exchange.key_id, exchange.private_key_path)
    estimate: list[datetime] = []

    def pause(event: SupervisorEvent) -> None:
        if isinstance(event, StateTransition) and event.to_state is State.TRADING_CLIENT_CONNECT:
            at = None
            if estimate_in is not None:
                at = datetime.now(UTC) + timedelta(seconds=estimate_in)
                estimate.append(at)
            exchange.status.pause_exchange(resume_at=at)

    supervisor = Supervisor(
        config_for(exchange), signer, exchange=exchange, inline_listeners=[pause]
    ).start()
    try:
        events = supervisor.recorder
        if events.wait_for(lambda es: any(isinstance(e, ExchangePaused) for e in es), WAIT) is None:
            raise RuntimeError("no exchange_paused event")
        if estimate_in is None:
            target = status_reads(exchange.oplog.entries()) + 4
            if not exchange.oplog.wait_for(lambda es: status_reads(es) >= target, WAIT):
                raise RuntimeError("the supervisor stopped re-checking the status")
            resumed = time.time()
        else:
            resumed = estimate[0].timestamp()
            gate = threading.Event()
            gate.wait(max(0.0, resumed - time.time()))  # the exchange resumes at its estimate
        exchange.status.resume()
        ready = events.wait_for_state(State.READY, WAIT)
        if ready is None:
            raise RuntimeError("READY not reached after the resume")
        if any(isinstance(e, StageFailureReported) for e in events.events()):
            raise RuntimeError("a pause was treated as a failure")
        return ready.timestamp.timestamp() - resumed
    finally:
        supervisor.shutdown(timeout=3.0)
        exchange.status.resume()


def summary(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"median {statistics.median(ms):7.1f} ms  p90 {p90(ms):7.1f} ms  max {max(ms):7.1f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    if args.runs < 1:
        print("bench_pauses: error: --runs must be at least 1", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.ERROR)
    baseline = set(threading.enumerate())
    print(machine_info())
    config = ExchangeConfig(markets=20, delta_rate=50.0, read_tokens_per_second=None)
    with EmbeddedExchange(config) as exchange:
        unpaused(exchange)  # warm-up
        floor = [unpaused(exchange) for _ in range(args.runs)]
        no_estimate = [paused(exchange, estimate_in=None) for _ in range(args.runs)]
        at_estimate = [paused(exchange, estimate_in=1.5) for _ in range(args.runs)]
    cap = SupervisorConfig.model_fields["pause_timing"].default_factory().max_poll  # type: ignore[misc]
    print(f"\n== exchange pause in TRADING_CLIENT_CONNECT, {args.runs} runs ==")
    print(f"  floor: trading+sync work   {summary(floor)}")
    bound = (statistics.median(floor) + cap) * 1000
    print(f"  floor + poll cap ({cap:g} s)   median {bound:7.1f} ms")
    print(f"  resume -> READY            {summary(no_estimate)}")
    print(f"  estimate -> READY          {summary(at_estimate)}")
    left = leaks(baseline)
    print(f"\ncleanup: {'nothing left running' if not left else 'LEAKED ' + ', '.join(left)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
