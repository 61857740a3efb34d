"""Service notification latency and the stream's throughput with a subscribed service.

Usage::

    .venv/bin/python bench/bench_service_notify.py [--seconds S] [--rates 2000,20000]
                                                    [--deltas N] [--repeats R]

A sender in **another process** serves one orderbook subscription over a real WebSocket.

**Latency.** It paces *probe* deltas at each rate: every delta adds one centi-contract at
a fixed YES price of market ``k mod M``, so the size at that level tells a reader which
delta it is looking at (``k = (size - 1) * M + m``). The sender records the
``CLOCK_MONOTONIC`` instant it writes each frame (the same clock in every process on
Linux). On our side, in the same run:

* **book applied** (the floor): the stream thread's ``mark`` call, right after the delta
  changed the book, reads the probe size and stamps the instant;
* **service notified**: a real :class:`~actors.service.ServiceActor` subscribed to every
  market stamps the instant its ``on_book_changed`` sees the book, and decodes ``k`` from
  the copy it was given.

Both are reported as send -> event latency (p50/p99/p99.9), with the notify-minus-applied
difference of the p99s (target <= 1 ms at 2k/s). Coalescing means a busy service skips
intermediate states; those deltas have no notify sample and are counted.

**Throughput.** As ``bench_orderbook_stream``: N pre-encoded deltas written at once, the
stream's rate from subscribe to the last delta applied, alternately with no subscriber and
with one subscribed service, R times (target: with a service >= 0.90 of none). "None"
is the stream exactly as before services existed (no feed at all), so the ratio includes
the feed's own cost on the hot path.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson
import pykka

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actors.base import StageControls, StartFaults
from actors.service import ServiceActor, ServiceContext, ServiceOptions
from bench.support import leaks, machine_info, ws_text_frame
from kalshi_api.book_changes import BookChangeFeed, BookView
from kalshi_api.fixed_point import format_count, format_dollars
from kalshi_api.protocol import WS_PATH
from kalshi_api.ws_session import OrderbookStream, ReconnectPolicy, StreamConnected, StreamEvent
from messages.commands import Ping
from supervision.scheduler import ThreadScheduler

SID = 1
PROBE_PRICE = 1
"""$0.000001: no generated book has a level there, so the size at it counts probes exactly
(and it is never the best bid)."""
PROBE_DOLLARS = format_dollars(PROBE_PRICE)


# -- the sender (its own process) ---------------------------------------------------------------


def _snapshots(truth: Any, tickers: list[str]) -> list[bytes]:
    """Snapshot frames of the truth as it stands now (blasts move it on)."""
    frames = []
    for seq, ticker in enumerate(tickers, start=1):
        levels = truth.levels(ticker)
        msg = {
            "market_ticker": ticker,
            "yes_dollars_fp": [[format_dollars(p), format_count(s)] for p, s in levels.yes],
            "no_dollars_fp": [[format_dollars(p), format_count(s)] for p, s in levels.no],
        }
        frames.append(
            orjson.dumps({"type": "orderbook_snapshot", "sid": SID, "seq": seq, "msg": msg})
        )
    return frames


def _sender_main(pipe: Connection, markets: int, seed: int) -> None:
    """Serves until told to stop. Each connection's URL query says what to send: paced
    probes (``?kind=probe&rate=R&count=N``) or a blast (``?kind=blast&deltas=N``)."""
    from websockets.asyncio.server import ServerConnection, serve

    from kalshi_sim.markets import MarketSet

    truth = MarketSet.generate(count=markets, seed=seed)
    tickers = truth.tickers()

    def delta(seq: int, ticker: str, price: str, size: str, side: str) -> bytes:
        msg = {"market_ticker": ticker, "price_dollars": price, "delta_fp": size, "side": side}
        frame = {"type": "orderbook_delta", "sid": SID, "seq": seq, "msg": msg}
        return ws_text_frame(orjson.dumps(frame))

    async def handle(ws: ServerConnection) -> None:
        from urllib.parse import parse_qs, urlsplit

        assert ws.request is not None
        query = parse_qs(urlsplit(ws.request.path).query)
        mode = {key: values[0] for key, values in query.items()}
        subscribe = orjson.loads(await ws.recv())
        reply = {"id": subscribe["id"], "type": "subscribed", "msg": {"sid": SID}}
        await ws.send(orjson.dumps(reply), text=True)
        for snapshot in _snapshots(truth, tickers):
            await ws.send(snapshot, text=True)
        seq = len(tickers)
        transport = ws.transport
        assert transport is not None
        listener = asyncio.create_task(_answer_barriers(ws))
        if mode["kind"] == "blast":
            frames = []
            for _ in range(int(mode["deltas"])):
                d = truth.next_delta()
                seq += 1
                frames.append(
                    delta(
                        seq,
                        d.ticker,
                        format_dollars(d.price_micros),
                        format_count(d.delta_centi),
                        d.side,
                    )
                )
            transport.write(b"".join(frames))
        else:
            rate, count = int(mode["rate"]), int(mode["count"])
            one = format_count(1)
            encoded = [
                (k, delta(seq + 1 + k, tickers[k % len(tickers)], PROBE_DOLLARS, one, "yes"))
                for k in range(count)
            ]
            sent = [0] * count
            now = time.monotonic_ns
            start = now()
            interval = 1e9 / rate
            k = 0
            while k < count:
                due = min(count, int((now() - start) / interval) + 1)
                while k < due:
                    sent[k] = now()
                    transport.write(encoded[k][1])
                    k += 1
                await asyncio.sleep(0.0002)
            pipe.send(("sent", sent))
        await listener

    async def main() -> None:
        async with serve(handle, "127.0.0.1", 0, compression=None, max_queue=None) as server:
            port = server.sockets[0].getsockname()[1]
            pipe.send((port, tickers))
            await asyncio.get_running_loop().run_in_executor(None, _wait_stop, pipe)

    asyncio.run(main())


def _wait_stop(pipe: Connection) -> None:
    while pipe.recv() != "stop":
        pass


async def _answer_barriers(ws: Any) -> None:
    try:
        async for raw in ws:
            command = orjson.loads(raw)
            if command.get("cmd") == "list_subscriptions":
                await ws.send(orjson.dumps({"id": command["id"], "type": "ok", "msg": []}))
    except Exception:
        return


# -- our side -------------------------------------------------------------------------------------
class _Probe(ServiceActor):
    """Stamps each notification and decodes which probe delta the book it got reflects."""

    stamps: list[tuple[int, int]]
    index: dict[str, int]
    count: int

    def on_book_changed(self, ticker: str, book: BookView) -> None:
        size = book.yes.get(PROBE_PRICE)
        if size:
            m = self.index[ticker]
            self.stamps.append(((size - 1) * self.count + m, time.monotonic_ns()))


class _Reader(ServiceActor):
    """The throughput run's service: reads every changed book, as a real one would."""

    def on_book_changed(self, ticker: str, book: BookView) -> None:
        book.best_yes_bid()


class _AppliedFeed(BookChangeFeed):
    """The feed, plus a stamp of the book-applied instant for probe deltas (the floor)."""

    def __init__(self, index: dict[str, int], count: int) -> None:
        super().__init__()
        self.index = index
        self.count = count
        self.applied: list[tuple[int, int]] = []

    def mark(self, ticker: str) -> None:
        book = self._books[ticker]
        size = book.yes.get(PROBE_PRICE)
        if size:
            self.applied.append(((size - 1) * self.count + self.index[ticker], time.monotonic_ns()))
        super().mark(ticker)


def _stream(url: str, tickers: list[str], feed: BookChangeFeed | None, query: str) -> Any:
    connected: list[float] = []

    def listener(event: StreamEvent) -> None:
        if isinstance(event, StreamConnected):
            connected.append(time.perf_counter())

    stream = OrderbookStream(
        f"{url}?{query}",
        tickers,
        auth_headers=None,
        listener=listener,
        reconnect=ReconnectPolicy(max_attempts=1),
        book_changes=feed,
    )
    return stream, connected


def _start_service(
    cls: type[ServiceActor], feed: BookChangeFeed, scheduler: ThreadScheduler, **attrs: Any
) -> tuple[pykka.ActorRef[Any], pykka.ActorRef[Any]]:
    for key, value in attrs.items():
        setattr(cls, key, value)
    context = ServiceContext(name="bench", options=ServiceOptions(), feed=feed, scheduler=scheduler)
    parent = _Parent.start()
    return cls.start(parent, context, 1, StageControls(start_faults=StartFaults())), parent


class _Parent(pykka.ThreadingActor):
    """Stands in for the supervisor: a service failure is printed, not hidden."""

    use_daemon_thread = True

    def on_receive(self, message: Any) -> Any:
        print(f"  service reported: {message!r}", file=sys.stderr)
        return None


def _stop(*refs: pykka.ActorRef[Any]) -> None:
    for ref in refs:
        ref.stop(block=True, timeout=2.0)


def _percentiles(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return at(0.50), at(0.99), at(0.999)


def _latency_run(url: str, tickers: list[str], rate: int, seconds: float, pipe: Connection) -> bool:
    count = int(rate * seconds)
    index = {t: i for i, t in enumerate(tickers)}
    feed = _AppliedFeed(index, len(tickers))
    scheduler = ThreadScheduler()
    stamps: list[tuple[int, int]] = []
    ref, parent = _start_service(
        _Probe, feed, scheduler, stamps=stamps, index=index, count=len(tickers)
    )
    stream, _ = _stream(url, tickers, feed, f"kind=probe&rate={rate}&count={count}")
    stream.start()
    try:
        tag, sent = pipe.recv()
        assert tag == "sent"
        if not stream.barrier(30.0):
            raise SystemExit("stream never caught up")
        ref.ask(Ping(), timeout=10.0)  # the service has handled everything queued before
    finally:
        stream.stop()
        _stop(ref, parent)
        scheduler.stop()
    applied_at = {k: at for k, at in feed.applied if k < count}
    applied = [(at - sent[k]) / 1e6 for k, at in applied_at.items()]
    notified = [(at - sent[k]) / 1e6 for k, at in stamps if k < count]
    paired = [(at - applied_at[k]) / 1e6 for k, at in stamps if k in applied_at]
    skipped = count - len(notified)
    a50, a99, a999 = _percentiles(applied)
    n50, n99, n999 = _percentiles(notified)
    d50, d99, d999 = _percentiles(paired)
    print(
        f"{rate:>6,}/s  {count:>7,} deltas | book applied     p50 {a50:7.3f}  p99 {a99:7.3f}  "
        f"p99.9 {a999:7.3f} ms  (n={len(applied):,})"
    )
    print(
        f"{'':>24} | service notified p50 {n50:7.3f}  p99 {n99:7.3f}  p99.9 {n999:7.3f} ms  "
        f"(n={len(notified):,}; {skipped:,} states coalesced away)"
    )
    verdict = "ok" if n99 - a99 <= 1.0 else "MISSED"
    print(
        f"{'':>24} | notified - applied, same delta: p50 {d50:+.3f}  p99 {d99:+.3f}  "
        f"p99.9 {d999:+.3f} ms; p99s differ by {n99 - a99:+.3f} ms"
        + (f" (target <= +1 ms at 2k/s: {verdict})" if rate <= 2000 else "")
    )
    return n99 - a99 <= 1.0 if rate <= 2000 else True


def _throughput_run(url: str, tickers: list[str], deltas: int, mode: str) -> float:
    """``mode``: ``none`` (no feed: the stream as before services), ``feed`` (a feed nobody
    subscribes to: what a supervisor without services runs) or ``service`` (one service)."""
    feed = BookChangeFeed() if mode != "none" else None
    scheduler = ThreadScheduler()
    refs = (
        _start_service(_Reader, feed, scheduler) if feed is not None and mode == "service" else ()
    )
    stream, connected = _stream(url, tickers, feed, f"kind=blast&deltas={deltas}")
    stream.start()
    try:
        if not stream.barrier(120.0):
            raise SystemExit(f"stream never finished: {stream.stats}")
        finished = time.perf_counter()
        if stream.stats.deltas_received != deltas or stream.stats.gaps:
            raise SystemExit(f"stream lost data: {stream.stats}")
    finally:
        stream.stop()
        _stop(*refs)
        scheduler.stop()
    return deltas / (finished - connected[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per latency rate")
    parser.add_argument("--rates", default="2000,20000")
    parser.add_argument("--deltas", type=int, default=100_000, help="per throughput run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--markets", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    print(machine_info())
    baseline = set(threading.enumerate())
    context = mp.get_context("spawn")
    parent, child = context.Pipe()
    sender = context.Process(
        target=_sender_main, args=(child, args.markets, args.seed), daemon=True
    )
    sender.start()
    ok = True
    try:
        port, tickers = parent.recv()
        url = f"ws://127.0.0.1:{port}{WS_PATH}"
        print(
            f"latency: exchange send -> event, {len(tickers)} markets, {args.seconds:g} s per rate"
        )
        latency_ok = True
        for rate in (int(r) for r in args.rates.split(",")):
            latency_ok &= _latency_run(url, tickers, rate, args.seconds, parent)
        print(f"throughput: {args.deltas:,} deltas written at once, {args.repeats} repeats")
        _throughput_run(url, tickers, args.deltas, "none")  # warm-up
        none: list[float] = []
        idle: list[float] = []
        one: list[float] = []
        for repeat in range(args.repeats):
            none.append(_throughput_run(url, tickers, args.deltas, "none"))
            idle.append(_throughput_run(url, tickers, args.deltas, "feed"))
            one.append(_throughput_run(url, tickers, args.deltas, "service"))
            print(
                f"  run {repeat + 1}: no feed {none[-1]:>9,.0f}/s  "
                f"feed, no subscriber {idle[-1]:>9,.0f}/s  one service {one[-1]:>9,.0f}/s"
            )
        median_none = statistics.median(none)
        ratio = statistics.median(one) / median_none
        ok = ratio >= 0.90 and latency_ok
        print(
            f"throughput / no feed, medians: feed with no subscriber "
            f"{statistics.median(idle) / median_none:.3f}, one subscribed service {ratio:.3f} "
            f"({statistics.median(one):,.0f} vs {median_none:,.0f} deltas/s; target >= 0.90)"
        )
    finally:
        parent.send("stop")
        sender.join(timeout=5)
        if sender.is_alive():
            sender.terminate()
            sender.join()
    left = leaks(baseline)
    if left:
        print(f"left behind: {left}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
