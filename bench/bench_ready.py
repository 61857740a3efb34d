"""Cold start to READY: the supervisor against the same protocol work done without actors.

Usage::

    .venv/bin/python bench/bench_ready.py [--runs N] [--markets T1,T2,...] [--market-count M]

For each scenario an embedded exchange is started once, outside the timing (it writes a
fresh demo key). Then, ``--runs`` times, alternately:

* **supervisor** — ``Supervisor(config).start()`` -> ``wait_for_state(READY)`` ->
  ``shutdown()``; timed from just before ``start()`` to the READY transition's own
  timestamp, with each state's ``duration_ms`` taken from the transitions;
* **floor** — the very same protocol work done directly with ``kalshi_api`` and no
  actors, timed the same way: ``GET /markets`` (discovery), WS connect + subscribe +
  every market's first snapshot (``OrderbookStream.start`` + ``wait_synced``), exchange
  status + balance, status + every shard's balance + positions + resting orders. It
  builds one REST client per stage, as the stage actors do, so supervisor - floor is the
  actor system's overhead;
* **lean floor** — the floor with one REST client shared by every step, which shows what
  building a REST client per stage costs (not an actor cost; reported for information).

Scenarios: trading on and orderbook only (``trading_enabled=False``), each with market
discovery (``markets=None``, ``market_count``) and with explicit ``--markets``. The first
supervisor start of the process (lazy imports, cold caches) is a warm-up, printed but not
counted, as is one floor run per scenario. Target: READY within 150 ms of ``start()``
(median; interpreter start-up excluded).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from app.handle import Supervisor
from bench.support import leaks, machine_info, p90
from kalshi_api.auth import KalshiSigner, load_signer
from kalshi_api.rest import KalshiRestClient
from kalshi_api.shards import read_account_money
from kalshi_api.ws_session import WS_SIGNING_PATH, OrderbookStream, ReconnectPolicy
from kalshi_sim.exchange import EmbeddedExchange, ExchangeConfig
from messages.states import State
from supervision.config import SupervisorConfig

TARGET_MS = 150.0
WAIT = 10.0
FORWARD_STATES = (
    State.STARTUP,
    State.INITIALIZING,
    State.ORDERBOOK_CONNECT,
    State.TRADING_CLIENT_CONNECT,
    State.KALSHI_DATA_SYNC,
)
FLOOR_STEP_FOR_STATE = {
    State.INITIALIZING: "discovery",
    State.ORDERBOOK_CONNECT: "orderbook",
    State.TRADING_CLIENT_CONNECT: "trading",
    State.KALSHI_DATA_SYNC: "sync",
}
"""Which floor step does the work the supervisor does while in each state."""


class BenchError(RuntimeError):
    """A run did not reach READY (or its floor did not sync): the figures would be wrong."""


@dataclass(frozen=True)
class Scenario:
    key: str
    name: str
    trading: bool
    explicit_markets: bool


SCENARIOS = (
    Scenario("trading", "trading on, discovery", trading=True, explicit_markets=False),
    Scenario("orderbook", "orderbook only, discovery", trading=False, explicit_markets=False),
    Scenario(
        "trading-explicit", "trading on, explicit --markets", trading=True, explicit_markets=True
    ),
    Scenario(
        "orderbook-explicit",
        "orderbook only, explicit --markets",
        trading=False,
        explicit_markets=True,
    ),
)


@dataclass
class Run:
    """One timed run: total ms from start to READY, and ms per state (or per floor step)."""

    total_ms: float
    parts_ms: dict[str, float] = field(default_factory=dict)
    errors: int = 0
    """ERROR transitions on the way to READY (a cold start should have none)."""


# -- the two ways to get to READY --------------------------------------------------------------
def run_supervisor(
    config: SupervisorConfig, signer: KalshiSigner, exchange: EmbeddedExchange
) -> Run:
    """One supervisor from ``start()`` to READY, shut down afterwards (outside the timing)."""
    supervisor = Supervisor(config, signer, exchange=exchange)
    started = time.time()
    supervisor.start()
    try:
        ready = supervisor.recorder.wait_for_state(State.READY, WAIT)
        transitions = supervisor.recorder.transitions()
        if ready is None:
            path = " -> ".join(t.to_state.name for t in transitions)
            raise BenchError(f"no READY within {WAIT:g}s (states: {path or 'none'})")
    finally:
        supervisor.shutdown(timeout=3.0)
    upto = transitions[: transitions.index(ready) + 1]
    parts: dict[str, float] = {}
    for transition in upto:
        name = transition.from_state.name
        parts[name] = parts.get(name, 0.0) + transition.duration_ms
    total = (ready.timestamp.timestamp() - started) * 1000.0
    # What happens before the state machine's clock starts: console server, actor thread.
    parts["start() -> STARTUP"] = total - sum(parts.values())
    errors = sum(1 for t in upto if t.to_state is State.ERROR)
    return Run(total_ms=total, parts_ms=parts, errors=errors)


def run_floor(
    exchange: EmbeddedExchange,
    signer: KalshiSigner,
    *,
    trading: bool,
    tickers: Sequence[str] | None,
    market_count: int,
    shared_client: bool,
) -> Run:
    """The supervisor's protocol work in a straight line, with no actor in between.

    Clients are built as the product builds them (one per stage, inside the timing) unless
    ``shared_client``: then one client serves every REST step.
    """
    rest_url, timeout = exchange.rest_url, 5.0
    parts: dict[str, float] = {}
    clients: list[KalshiRestClient] = []
    stream: OrderbookStream | None = None

    def client() -> KalshiRestClient:
        if not (shared_client and clients):
            clients.append(KalshiRestClient(rest_url, signer, timeout=timeout))
        return clients[-1]

    started = time.time()
    mark = time.perf_counter()

    def step(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        parts[name] = (now - mark) * 1000.0
        mark = now

    try:
        if tickers is None:
            discovery = client()
            markets = discovery.get_markets(status="open", max_items=market_count)
            tickers = tuple(m.ticker for m in markets[:market_count])
            if not shared_client:
                discovery.close()  # the supervisor closes its discovery client too
            step("discovery")
        stream = OrderbookStream(
            exchange.ws_url,
            tickers,
            auth_headers=lambda: signer.headers("GET", WS_SIGNING_PATH),
            reconnect=ReconnectPolicy(min_delay=0.05, max_delay=2.0, max_attempts=None),
            open_timeout=timeout,
        )
        stream.start()
        if not stream.wait_synced(WAIT):
            raise BenchError(f"floor stream did not sync within {WAIT:g}s: {stream.stats}")
        step("orderbook")
        if trading:
            trading_client = client()
            trading_client.get_exchange_status()
            trading_client.get_balance()
            step("trading")
            sync_client = client()
            # The sync stage's work: the status (pauses, shards), then every shard's balance.
            read_account_money(sync_client, sync_client.get_exchange_status())
            _ = [p for p in sync_client.get_positions() if p.position_fp != 0]
            sync_client.get_orders(status="resting")
            step("sync")
        finished = time.time()
    finally:
        if stream is not None:
            stream.stop()
        for each in clients:
            each.close()
    return Run(total_ms=(finished - started) * 1000.0, parts_ms=parts)


# -- statistics and printing -----------------------------------------------------------------
def summary(values: Sequence[float]) -> str:
    median = statistics.median(values)
    spread = (max(values) - min(values)) / median * 100 if median else 0.0
    return (
        f"median {median:7.1f} ms  p90 {p90(values):7.1f}  min {min(values):7.1f}  "
        f"max {max(values):7.1f}  spread {spread:5.1f}%"
    )


def discover_once(exchange: EmbeddedExchange, signer: KalshiSigner, count: int) -> tuple[str, ...]:
    """The tickers discovery finds, fetched outside any timing for the explicit scenarios."""
    with KalshiRestClient(exchange.rest_url, signer) as client:
        return tuple(m.ticker for m in client.get_markets(status="open", max_items=count))


def bench_scenario(
    scenario: Scenario, args: argparse.Namespace, *, warm_up: Callable[[float], None]
) -> bool:
    """Run one scenario on its own exchange; print its figures; True if it meets the target."""
    exchange = EmbeddedExchange(
        ExchangeConfig(
            markets=args.exchange_markets,
            delta_rate=args.delta_rate,
            seed=args.seed,
            read_tokens_per_second=args.read_rate,
        )
    ).start()
    try:
        signer = load_signer(exchange.key_id, exchange.private_key_path)
        tickers: tuple[str, ...] | None = None
        if scenario.explicit_markets:
            tickers = args.markets or discover_once(exchange, signer, args.market_count)
        config = SupervisorConfig(
            rest_url=exchange.rest_url,
            ws_url=exchange.ws_url,
            markets=tickers,
            market_count=args.market_count,
            trading_enabled=scenario.trading,
            status_port=0,
        )

        def supervisor_run() -> Run:
            return run_supervisor(config, signer, exchange)

        def floor_run(shared: bool) -> Run:
            return run_floor(
                exchange,
                signer,
                trading=scenario.trading,
                tickers=tickers,
                market_count=args.market_count,
                shared_client=shared,
            )

        warm_up(supervisor_run().total_ms)
        floor_run(False)
        floor_run(True)
        kinds: dict[str, Callable[[], Run]] = {
            "supervisor": supervisor_run,
            "floor": lambda: floor_run(False),
            "lean floor": lambda: floor_run(True),
        }
        runs: dict[str, list[Run]] = {name: [] for name in kinds}
        order = list(kinds)
        for index in range(args.runs):
            # Rotate who goes first so the leftovers of one run (socket teardown on the
            # exchange, thread joins) do not always land on the same contender.
            rotation = order[index % len(order) :] + order[: index % len(order)]
            for name in rotation:
                runs[name].append(kinds[name]())
    finally:
        exchange.stop()

    markets = len(tickers) if tickers else args.market_count
    print(f"\n== {scenario.name} ({markets} markets, {args.runs} runs) ==")
    totals = {name: [r.total_ms for r in each] for name, each in runs.items()}
    for name, values in totals.items():
        print(f"  {name:<11} {summary(values)}")
    sup, floor = totals["supervisor"], totals["floor"]
    ratio = statistics.median(sup) / statistics.median(floor)
    paired = statistics.median(s / f for s, f in zip(sup, floor, strict=True))
    overhead = statistics.median(s - f for s, f in zip(sup, floor, strict=True))
    print(
        f"  ratio supervisor/floor {ratio:.2f} (medians), {paired:.2f} (median of pairs); "
        f"actor-system overhead {overhead:+.1f} ms"
    )
    clients = statistics.median(totals["floor"]) - statistics.median(totals["lean floor"])
    print(
        f"  a REST client per stage instead of one shared: {clients:+.1f} ms (floor - lean floor)"
    )
    errors = sum(r.errors for r in runs["supervisor"])
    if errors:
        print(f"  WARNING: {errors} ERROR transition(s) during cold starts; totals include them")
    print(f"  {'per state (median ms)':<34} {'supervisor':>10} {'floor':>8} {'diff':>8}")
    floor_parts = runs["floor"]
    for state in FORWARD_STATES:
        if state.name not in runs["supervisor"][0].parts_ms:
            continue
        value = statistics.median(r.parts_ms.get(state.name, 0.0) for r in runs["supervisor"])
        step = FLOOR_STEP_FOR_STATE.get(state)
        if step and step in floor_parts[0].parts_ms:
            floor_value = statistics.median(r.parts_ms[step] for r in floor_parts)
            label = f"{state.name} ({step})"
            print(f"    {label:<32} {value:10.1f} {floor_value:8.1f} {value - floor_value:+8.1f}")
        else:
            print(f"    {state.name:<32} {value:10.1f} {'-':>8}")
    pre = statistics.median(r.parts_ms["start() -> STARTUP"] for r in runs["supervisor"])
    print(f"    {'start() -> STARTUP (control, spawn)':<32} {pre:10.1f} {'-':>8}")
    median = statistics.median(sup)
    passed = median < TARGET_MS
    print(
        f"  target READY < {TARGET_MS:g} ms after start(): {'PASS' if passed else 'FAIL'} "
        f"(median {median:.1f} ms, p90 {p90(sup):.1f}, max {max(sup):.1f})"
    )
    return passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs per scenario")
    parser.add_argument(
        "--markets",
        type=lambda text: tuple(t.strip() for t in text.split(",") if t.strip()),
        help="tickers for the explicit-markets scenarios (default: what discovery finds)",
    )
    parser.add_argument("--market-count", type=int, default=20, help="markets to discover")
    parser.add_argument("--exchange-markets", type=int, default=20, help="markets the exchange has")
    parser.add_argument("--delta-rate", type=float, default=50.0, help="exchange deltas/second")
    parser.add_argument(
        "--read-rate",
        type=int,
        default=None,
        help="exchange read tokens/second (Kalshi Basic: 200); default: no rate limit, "
        "so back-to-back runs measure start-up rather than 429 backoff",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--scenario",
        action="append",
        choices=[s.key for s in SCENARIOS],
        help="run only this scenario (repeatable; default: all)",
    )
    parser.add_argument("--log-level", default="CRITICAL", help="supervisor log level")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")

    baseline = set(threading.enumerate())
    print(machine_info())
    print(
        f"{args.runs} runs per scenario; target READY < {TARGET_MS:g} ms after start() (median); "
        f"exchange: {args.exchange_markets} markets, {args.delta_rate:g} deltas/s, "
        f"read limit {args.read_rate or 'off'}"
    )
    first: list[float] = []

    def warm_up(total_ms: float) -> None:
        if not first:
            first.append(total_ms)
            print(
                f"first start in this process (imports, cold caches): {total_ms:.1f} ms, excluded"
            )

    chosen = [s for s in SCENARIOS if not args.scenario or s.key in args.scenario]
    try:
        results = [bench_scenario(scenario, args, warm_up=warm_up) for scenario in chosen]
    except BenchError as exc:
        print(f"bench_ready: error: {exc}", file=sys.stderr)
        return 2
    left = leaks(baseline)
    print(f"\ncleanup: {'nothing left running' if not left else 'LEAKED ' + ', '.join(left)}")
    print(
        f"overall: {'PASS' if all(results) else 'FAIL'} ({sum(results)}/{len(results)} scenarios)"
    )
    return 0 if all(results) and not left else 1


if __name__ == "__main__":
    sys.exit(main())
