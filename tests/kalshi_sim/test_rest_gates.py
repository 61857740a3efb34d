"""REST gates: a test parks requests under a path prefix, and nothing ever stays parked.

Gates exist so supervisor tests can hold the system in a chosen state; if a gate leaked a
blocked thread past ``release()``, ``clear()`` or the server's ``stop()``, those tests would
hang instead of failing, so every way out is checked here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kalshi_sim.exchange import EmbeddedExchange
from kalshi_sim.faults import ExchangeFaults

PREFIX = "/trade-api/v2"
WAIT = 5.0


class Call:
    """One GET on its own thread, so the test thread stays free while the server holds it."""

    def __init__(self, exchange: EmbeddedExchange, path: str) -> None:
        self.outcome: list[int | Exception] = []
        self._url = f"http://127.0.0.1:{exchange.port}{PREFIX}{path}"
        self._thread = threading.Thread(target=self._get, daemon=True)
        self._thread.start()

    def _get(self) -> None:
        with httpx.Client(trust_env=False, timeout=10.0) as http:
            try:
                self.outcome.append(http.get(self._url).status_code)
            except httpx.HTTPError as exc:
                self.outcome.append(exc)

    def result(self, timeout: float = WAIT) -> int | Exception:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "request still held"
        return self.outcome[0]

    def still_held(self) -> bool:
        """True while the call has not finished. Asked right after a later request was
        answered, it is an ordering fact (that one overtook this one), not a timing one."""
        return self._thread.is_alive()


@pytest.fixture
def exchange(rest_exchange: EmbeddedExchange) -> Iterator[EmbeddedExchange]:
    yield rest_exchange
    rest_exchange.faults.release_all()  # never leave a parked handler behind a failed test


def test_hold_when_path_matches_blocks_until_release_then_serves(
    exchange: EmbeddedExchange,
) -> None:
    gate = exchange.faults.hold(f"{PREFIX}/exchange/status")
    call = Call(exchange, "/exchange/status")
    assert gate.wait_entered(WAIT)
    assert Call(exchange, "/markets").result() == 200  # a later request overtakes it
    assert call.still_held()
    gate.release()
    assert call.result() == 200


def test_hold_when_path_does_not_match_serves_other_requests_meanwhile(
    exchange: EmbeddedExchange,
) -> None:
    gate = exchange.faults.hold(f"{PREFIX}/portfolio")
    held = Call(exchange, "/portfolio/balance")
    assert gate.wait_entered(WAIT)
    assert Call(exchange, "/exchange/status").result() == 200
    assert Call(exchange, "/markets").result() == 200
    assert held.still_held()
    gate.release()
    assert held.result() == 401  # released into normal handling: unsigned portfolio read


def test_hold_when_prefix_covers_sub_paths_holds_each_request_under_it(
    exchange: EmbeddedExchange,
) -> None:
    ticker = exchange.markets.tickers()[0]
    gate = exchange.faults.hold(f"{PREFIX}/markets")
    calls = [Call(exchange, "/markets"), Call(exchange, f"/markets/{ticker}/orderbook")]
    assert gate.wait_entered(WAIT)
    assert exchange.oplog.wait_for(lambda ops: sum(o.kind == "rest" for o in ops) >= 2, WAIT)
    assert Call(exchange, "/exchange/status").result() == 200  # a later request overtakes them
    assert all(call.still_held() for call in calls)
    gate.release()
    assert [call.result() for call in calls] == [200, 200]


def test_wait_entered_when_nothing_requested_returns_false_after_timeout() -> None:
    gate = ExchangeFaults().hold("/x")
    assert gate.wait_entered(0.05) is False
    assert not gate.released  # still holding: a later request would wait at it


def test_release_when_done_forgets_gate_and_later_requests_pass(
    exchange: EmbeddedExchange,
) -> None:
    gate = exchange.faults.hold(f"{PREFIX}/exchange/status")
    gate.release()
    gate.release()  # idempotent
    assert gate.released
    assert exchange.faults.gate_for(f"{PREFIX}/exchange/status") is None
    assert Call(exchange, "/exchange/status").result() == 200
    assert gate.wait_entered(0) is False  # released before any request reached it


@pytest.mark.parametrize("how", ["release_all", "clear"])
def test_release_all_and_clear_when_requests_held_under_two_gates_release_both(
    exchange: EmbeddedExchange, how: str
) -> None:
    status_gate = exchange.faults.hold(f"{PREFIX}/exchange")
    markets_gate = exchange.faults.hold(f"{PREFIX}/markets")
    calls = [Call(exchange, "/exchange/status"), Call(exchange, "/markets")]
    assert status_gate.wait_entered(WAIT)
    assert markets_gate.wait_entered(WAIT)
    getattr(exchange.faults, how)()
    assert [call.result() for call in calls] == [200, 200]
    assert status_gate.released and markets_gate.released


def test_gate_for_when_gates_overlap_returns_first_unreleased_match() -> None:
    faults = ExchangeFaults()
    broad = faults.hold("/a")
    narrow = faults.hold("/a/b")
    assert faults.gate_for("/a/b/c") is broad
    broad.release()
    assert faults.gate_for("/a/b/c") is narrow
    assert faults.gate_for("/z") is None
    assert "holding" in repr(narrow)


def test_hold_when_many_threads_add_and_release_gates_stays_consistent() -> None:
    faults = ExchangeFaults()

    def churn(index: int) -> None:
        for _ in range(200):
            faults.hold(f"/p{index}").release()
            faults.gate_for(f"/p{index}/x")

    threads = [threading.Thread(target=churn, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(faults.gate_for(f"/p{i}") is None for i in range(4))


def test_stop_when_request_held_releases_it_and_returns_promptly(make_exchange: Any) -> None:
    before = set(threading.enumerate())
    exchange = make_exchange(markets=2)
    gate = exchange.faults.hold(f"{PREFIX}/exchange/status")
    call = Call(exchange, "/exchange/status")
    assert gate.wait_entered(WAIT)
    exchange.stop()  # returns with the held request released (timing: bench_shutdown)
    assert gate.released
    outcome = call.result()
    assert outcome == 200 or isinstance(outcome, httpx.HTTPError)
    leaked = [
        t.name
        for t in set(threading.enumerate()) - before
        if t.is_alive() and t.name.startswith("kalshi-sim")
    ]
    assert leaked == []
