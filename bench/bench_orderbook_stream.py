"""End-to-end throughput of the orderbook hot path, against a floor on the same transport.

Usage::

    .venv/bin/python bench/bench_orderbook_stream.py [--deltas N] [--markets M] [--repeats R]

A sender in **another process** generates a truth with the exchange's own generator
(``MarketSet.next_delta``: sub-penny ticks, fractional sizes, one-sided and empty books),
pre-encodes the snapshots and N delta frames as raw WebSocket wire bytes, and on each
subscription writes them all at once, so it is never the bottleneck. It also answers
``list_subscriptions``, which is how the pipeline run knows it has applied everything.

Two clients read the very same frames over the very same ``connect()`` settings:

* **floor** — receive + ``orjson.loads`` and nothing else: the most any client on this
  transport could do;
* **pipeline** — ``OrderbookStream``: receive -> parse -> per-sid seq check -> fixed-point
  -> book update.

Each run is timed from "connected, subscribe about to be sent" to "last delta handled",
repeated R times alternately; we print median and spread for both and the ratio of the
medians (target >= 0.70). The same ratio is also printed per CPU-second of each reader
thread, which stays meaningful when other processes load the machine. Afterwards every
pipeline book must equal the sender's final truth digest, so a fast but wrong client fails
the benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.support import ws_text_frame
from kalshi_api.fixed_point import format_count, format_dollars
from kalshi_api.protocol import WS_PATH
from kalshi_api.ws_session import (
    OrderbookStream,
    ReconnectPolicy,
    StreamConnected,
    StreamEvent,
    connect_options,
)

SID = 1


# -- the sender (runs in its own process) ------------------------------------------------


@dataclass(frozen=True)
class _Script:
    tickers: list[str]
    snapshots: list[bytes]
    deltas: bytes
    digests: dict[str, str]


def _build_script(deltas: int, markets: int, seed: int) -> _Script:
    """Snapshots of the initial truth, then ``deltas`` changes, then the final digests."""
    from kalshi_sim.markets import MarketSet

    truth = MarketSet.generate(count=markets, seed=seed)
    tickers = truth.tickers()
    snapshots = []
    for seq, ticker in enumerate(tickers, start=1):
        levels = truth.levels(ticker)
        msg: dict[str, object] = {
            "market_ticker": ticker,
            "market_id": truth.market(ticker).market_id,
        }
        if levels.yes:
            msg["yes_dollars_fp"] = [[format_dollars(p), format_count(s)] for p, s in levels.yes]
        if levels.no:
            msg["no_dollars_fp"] = [[format_dollars(p), format_count(s)] for p, s in levels.no]
        envelope = {"type": "orderbook_snapshot", "sid": SID, "seq": seq, "msg": msg}
        snapshots.append(orjson.dumps(envelope))
    frames = []
    ids = {ticker: truth.market(ticker).market_id for ticker in tickers}
    ts_ms = int(time.time() * 1000)
    for seq in range(len(tickers) + 1, len(tickers) + 1 + deltas):
        delta = truth.next_delta()
        assert delta is not None
        msg = {
            "market_ticker": delta.ticker,
            "market_id": ids[delta.ticker],
            "price_dollars": format_dollars(delta.price_micros),
            "delta_fp": format_count(delta.delta_centi),
            "side": delta.side,
            "ts_ms": ts_ms + seq // 50,
        }
        frame = {"type": "orderbook_delta", "sid": SID, "seq": seq, "msg": msg}
        frames.append(ws_text_frame(orjson.dumps(frame)))
    digests = {ticker: truth.digest(ticker) for ticker in tickers}
    return _Script(tickers, snapshots, b"".join(frames), digests)


def _sender_main(pipe: Connection, deltas: int, markets: int, seed: int) -> None:
    from websockets.asyncio.server import ServerConnection, serve

    script = _build_script(deltas, markets, seed)

    async def handle(ws: ServerConnection) -> None:
        subscribe = orjson.loads(await ws.recv())
        assert subscribe["cmd"] == "subscribe", subscribe
        assert subscribe["params"]["market_tickers"] == script.tickers
        reply = {
            "id": subscribe["id"],
            "type": "subscribed",
            "msg": {"channel": "orderbook_delta", "sid": SID},
        }
        await ws.send(orjson.dumps(reply), text=True)
        for snapshot in script.snapshots:
            await ws.send(snapshot, text=True)
        assert ws.transport is not None
        ws.transport.write(script.deltas)  # pre-encoded frames, queued in one call
        async for raw in ws:
            command = orjson.loads(raw)
            if command.get("cmd") == "list_subscriptions":
                listing = [{"channel": "orderbook_delta", "sid": SID}]
                await ws.send(
                    orjson.dumps({"id": command["id"], "type": "ok", "msg": listing}), text=True
                )

    async def main() -> None:
        async with serve(handle, "127.0.0.1", 0, compression=None, max_queue=None) as server:
            port = server.sockets[0].getsockname()[1]
            pipe.send((port, script.tickers, script.digests))
            await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # until told to stop

    asyncio.run(main())


# -- the two clients ------------------------------------------------------------------------
def _run_floor(url: str, tickers: list[str], deltas: int) -> tuple[float, float]:
    """Receive + ``orjson.loads`` every frame in a thread of its own; returns deltas per
    wall-clock second and per CPU-second of that thread."""
    result: list[tuple[float, float]] = []

    async def main() -> None:
        from websockets.asyncio.client import connect

        options = connect_options(url)
        async with connect(url, **options) as ws:
            started = time.perf_counter()
            cpu_started = time.thread_time()
            subscribe = {
                "channels": ["orderbook_delta"],
                "market_tickers": tickers,
                "use_yes_price": False,
            }
            await ws.send(
                orjson.dumps({"id": 1, "cmd": "subscribe", "params": subscribe}), text=True
            )
            recv, loads = ws.recv, orjson.loads
            seen = 0
            expected = 1 + len(tickers) + deltas
            while seen < expected:
                loads(await recv(decode=False))
                seen += 1
            wall = time.perf_counter() - started
            result.append((deltas / wall, deltas / (time.thread_time() - cpu_started)))

    thread = threading.Thread(target=lambda: asyncio.run(main()), name="bench-floor")
    thread.start()
    thread.join()
    return result[0]


def _run_pipeline(
    url: str, tickers: list[str], deltas: int, truth: dict[str, str]
) -> tuple[float, float]:
    """The real ``OrderbookStream``; returns deltas per wall-clock second and per CPU-second
    of the stream thread, and checks every book against truth."""
    connected_at: list[float] = []
    cpu_clock: list[int] = []
    cpu_at: list[float] = []

    def listener(event: StreamEvent) -> None:
        if isinstance(event, StreamConnected):  # runs on the stream thread
            connected_at.append(time.perf_counter())
            cpu_clock.append(time.pthread_getcpuclockid(threading.get_ident()))
            cpu_at.append(time.clock_gettime(cpu_clock[0]))

    stream = OrderbookStream(
        url,
        tickers,
        auth_headers=None,
        listener=listener,
        reconnect=ReconnectPolicy(max_attempts=1),
    )
    stream.start()
    try:
        if not stream.barrier(120.0):
            raise SystemExit(f"pipeline never finished: {stream.stats}")
        finished = time.perf_counter()
        cpu = time.clock_gettime(cpu_clock[0]) - cpu_at[0]
        stats = stream.stats
        if stats.deltas_received != deltas or stats.gaps or stats.malformed_frames:
            raise SystemExit(f"pipeline lost data: {stats}")
        wrong = [t for t, d in stream.digests().items() if d != truth[t]]
        if wrong:
            raise SystemExit(f"books differ from the sender's truth: {wrong}")
    finally:
        stream.stop()
    return deltas / (finished - connected_at[0]), deltas / cpu


def _summary(rates: list[float]) -> str:
    median = statistics.median(rates)
    spread = (max(rates) - min(rates)) / median * 100
    return (
        f"median {median:>9,.0f}/s  min {min(rates):>9,.0f}  max {max(rates):>9,.0f}  "
        f"spread {spread:4.1f}%"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deltas", type=int, default=200_000)
    parser.add_argument("--markets", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    context = mp.get_context("spawn")
    parent, child = context.Pipe()
    sender = context.Process(
        target=_sender_main, args=(child, args.deltas, args.markets, args.seed), daemon=True
    )
    sender.start()
    try:
        port, tickers, truth = parent.recv()
        url = f"ws://127.0.0.1:{port}{WS_PATH}"
        print(f"{args.deltas:,} deltas, {len(tickers)} markets, {args.repeats} repeats")
        _run_floor(url, tickers, args.deltas)  # warm-up: imports, allocator, TCP buffers
        floor: list[float] = []
        pipeline: list[float] = []
        floor_cpu: list[float] = []
        pipeline_cpu: list[float] = []
        for repeat in range(args.repeats):
            wall, cpu = _run_floor(url, tickers, args.deltas)
            floor.append(wall)
            floor_cpu.append(cpu)
            wall, cpu = _run_pipeline(url, tickers, args.deltas, truth)
            pipeline.append(wall)
            pipeline_cpu.append(cpu)
            print(
                f"  run {repeat + 1}: floor {floor[-1]:>9,.0f}/s  "
                f"pipeline {pipeline[-1]:>9,.0f}/s  ratio {pipeline[-1] / floor[-1]:.3f}  "
                f"(per CPU-s: {floor_cpu[-1]:,.0f} / {pipeline_cpu[-1]:,.0f})"
            )
        ratio = statistics.median(pipeline) / statistics.median(floor)
        paired = statistics.median(p / f for p, f in zip(pipeline, floor, strict=True))
        cpu_ratio = statistics.median(pipeline_cpu) / statistics.median(floor_cpu)
        print(f"floor     {_summary(floor)}")
        print(f"pipeline  {_summary(pipeline)}")
        print(f"floor     per CPU-second {_summary(floor_cpu)}")
        print(f"pipeline  per CPU-second {_summary(pipeline_cpu)}")
        print(
            f"ratio pipeline/floor = {ratio:.3f} of medians, {paired:.3f} median of pairs "
            "(target >= 0.70); every book equals the sender's truth"
        )
        print(
            f"ratio per CPU-second = {cpu_ratio:.3f} of medians (the reader thread's own CPU "
            "time: far less sensitive to other load on the machine than wall-clock rates)"
        )
        return 0 if ratio >= 0.70 else 1
    finally:
        parent.send("stop")
        sender.join(timeout=5)
        if sender.is_alive():
            sender.terminate()
            sender.join()


if __name__ == "__main__":
    sys.exit(main())
