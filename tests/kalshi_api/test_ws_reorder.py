"""Repair replies overtaken by newer deltas (issue 17, "Recovery that costs more than it
should"): behind a proxy that holds every ``get_snapshot`` reply back and releases them
newest first, a burst of seq gaps must heal and then stay quiet, with books equal to the
exchange's truth, whichever way the exchange numbers a reply (protocol §3.7 leaves open
whether it continues or restarts the sid's seq; the embedded exchange does either).

Before the fix every late reply moved the seq tracker back, so the next delta looked like
a new gap whose repair reply was late again: about 37 heals a second, for ever.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from kalshi_api.ws_session import OrderbookStream
from kalshi_sim.exchange import EmbeddedExchange
from tests.cli.reorder_proxy import ReorderProxy
from tests.conftest import ExchangeFactory
from tests.kalshi_api.conftest import WAIT, StreamFactory

pytestmark = pytest.mark.slow  # thousands of deltas through a proxy, seconds per case

FAULTS = 20
QUIET_DELTAS = 1500
"""Deltas a settled stream must carry with no gap, repair or resubscribe (3 s at 500/s;
the looping client healed about every 14 deltas)."""


def _until(done: Callable[[], bool], stream: OrderbookStream, what: str) -> None:
    """Round-trip barriers until ``done()``; fails after :data:`WAIT` seconds."""
    deadline = time.monotonic() + WAIT
    while not done():
        assert time.monotonic() < deadline, what
        assert stream.barrier(WAIT)


def _until_deltas(stream: OrderbookStream, count: int) -> None:
    target = stream.stats.deltas_received + count
    _until(lambda: stream.stats.deltas_received >= target, stream, "deltas stopped flowing")


def _force_gap(stream: OrderbookStream, exchange: EmbeddedExchange) -> None:
    """Skip a seq until the stream sees a gap (a skip armed on a sid that is replaced
    before its next delta is lost with it, so it is armed again)."""
    gaps = stream.stats.gaps
    for _ in range(50):
        exchange.ws.skip_seq()
        target = stream.stats.deltas_received + 50
        _until(
            lambda target=target: (  # type: ignore[misc]
                stream.stats.gaps > gaps or stream.stats.deltas_received >= target
            ),
            stream,
            "deltas stopped flowing",
        )
        if stream.stats.gaps > gaps:
            return
    pytest.fail("no skipped seq was ever seen as a gap")


def _repairs(stream: OrderbookStream, exchange: EmbeddedExchange) -> tuple[int, ...]:
    stats = stream.stats
    snapshots = len(exchange.oplog.entries("ws_snapshot"))
    return (stats.gaps, stats.resyncs, stats.resubscribes, stats.reconnects, snapshots)


@pytest.mark.parametrize("numbering", ["continue", "restart"])
def test_late_get_snapshot_replies_after_a_burst_of_gaps_heal_then_stay_quiet(
    make_exchange: ExchangeFactory, open_stream: StreamFactory, numbering: str
) -> None:
    exchange = make_exchange(markets=6, delta_rate=500)
    exchange.ws.behaviour.snapshot_seq = numbering  # type: ignore[assignment]
    with ReorderProxy(exchange.ws_url) as proxy:
        stream, _ = open_stream(exchange, ws_url=proxy.ws_url)
        try:
            assert stream.wait_synced(WAIT)
            for fault in range(FAULTS):
                assert stream.wait_synced(WAIT), f"not healed before fault {fault}"
                _force_gap(stream, exchange)
            assert proxy.wait_held(FAULTS, WAIT), "replies were not reordered"
            # Settled: synced, then a window of deltas with no repair at all (bounded tries).
            for _ in range(20):
                assert stream.wait_synced(WAIT), "books never healed"
                before = _repairs(stream, exchange)
                _until_deltas(stream, 200)
                if _repairs(stream, exchange) == before and stream.wait_synced(0):
                    break
            else:
                pytest.fail(f"still repairing after the faults stopped: {before}")
            settled = _repairs(stream, exchange)
            _until_deltas(stream, QUIET_DELTAS)
            assert _repairs(stream, exchange) == settled
            _assert_books_equal_truth(stream, exchange)
        finally:
            stream.stop()


def _assert_books_equal_truth(stream: OrderbookStream, exchange: EmbeddedExchange) -> None:
    exchange.pause_stream()
    assert stream.barrier(WAIT), "barrier reply never arrived"
    assert stream.wait_synced(WAIT), "books still stale after the barrier"
    wrong = {
        ticker: (stream.levels(ticker), exchange.markets.levels(ticker))
        for ticker, digest in stream.digests().items()
        if digest != exchange.markets.digest(ticker)
    }
    assert not wrong, f"books differ from the exchange truth: {wrong}"
