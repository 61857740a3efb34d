"""The service base on its own: hooks, coalesced book notifications, timers, failure reports.

A real pykka parent stands in for the supervisor and records what services tell it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from actors.base import StageControls, StartFaults
from actors.service import ServiceActor, ServiceContext, ServiceOptions, ServiceSpec
from kalshi_api.book_changes import BookChangeFeed, BookView
from kalshi_api.orderbook import OrderBook
from messages.faults import InjectFault
from messages.metadata import ReadyMetadata
from messages.results import ChildFailed
from messages.services import ServiceHealth, SystemNotReady, SystemReady
from messages.states import State
from supervision.scheduler import ThreadScheduler

WAIT = 5.0


class Parent(pykka.ThreadingActor):
    """Records every message a service tells its supervisor."""

    use_daemon_thread = True

    def __init__(self, inbox: queue.Queue[Any]) -> None:
        super().__init__()
        self.inbox = inbox

    def on_receive(self, message: Any) -> Any:
        self.inbox.put(message)
        return None


class Options(ServiceOptions):
    label: str = "x"


class Recorder(ServiceActor):
    """Hands every hook call to the test through ``calls``."""

    options_model = Options
    calls: queue.Queue[Any]
    gate: threading.Event | None = None
    entered: threading.Event | None = None

    def on_ready(self, metadata: ReadyMetadata) -> None:
        self.calls.put(("ready", metadata.markets_connected))

    def on_not_ready(self, state: State, reason: str) -> None:
        self.calls.put(("not_ready", state, reason))

    def on_book_changed(self, ticker: str, book: BookView) -> None:
        if self.gate is not None and self.entered is not None:
            self.entered.set()
            self.gate.wait(WAIT)
        self.calls.put(("book", ticker, book.best_yes_bid()))

    def handle(self, message: Any) -> Any:
        if message == "later":
            self.call_later(0.01, lambda: self.calls.put(("timer", "once")))
            return None
        if message == "every":
            self.call_every(0.01, lambda: self.calls.put(("timer", "tick")))
            return None
        return super().handle(message)


@pytest.fixture
def world() -> Iterator[dict[str, Any]]:
    inbox: queue.Queue[Any] = queue.Queue()
    parent = Parent.start(inbox)
    scheduler = ThreadScheduler()
    books = {t: OrderBook(t) for t in ("A", "B")}
    for book in books.values():
        book.apply_snapshot([(400_000, 100)], [(500_000, 100)])
    feed = BookChangeFeed()
    feed.attach(books)
    started: list[pykka.ActorRef[Any]] = []

    def start(cls: type[ServiceActor] = Recorder, **context: Any) -> pykka.ActorRef[Any]:
        ctx = ServiceContext(
            name=context.pop("name", "rec"),
            options=Options(),
            feed=feed,
            scheduler=scheduler,
            **context,
        )
        ref = cls.start(parent, ctx, 1, StageControls(start_faults=StartFaults()))
        started.append(ref)
        return ref

    yield {"inbox": inbox, "feed": feed, "books": books, "start": start, "scheduler": scheduler}
    for ref in started:
        if ref.is_alive():
            ref.stop(block=True, timeout=WAIT)
    parent.stop(block=True, timeout=WAIT)
    scheduler.stop()


def _calls() -> queue.Queue[Any]:
    Recorder.calls = queue.Queue()
    Recorder.gate = None
    Recorder.entered = None
    return Recorder.calls


def test_book_change_when_marked_is_delivered_with_the_latest_book(world: dict[str, Any]) -> None:
    calls = _calls()
    world["start"]()
    books, feed = world["books"], world["feed"]
    books["A"].apply_delta("yes", 450_000, 300)
    feed.mark("A")
    assert calls.get(timeout=WAIT) == ("book", "A", (450_000, 300))


def test_book_changes_when_service_is_busy_are_coalesced_to_the_latest(
    world: dict[str, Any],
) -> None:
    calls = _calls()
    gate = threading.Event()
    Recorder.gate = gate
    Recorder.entered = entered = threading.Event()
    ref = world["start"]()
    books, feed = world["books"], world["feed"]
    books["A"].apply_delta("yes", 410_000, 1)
    feed.mark("A")  # the service takes this one and blocks on the gate
    assert entered.wait(WAIT)
    (sub,) = feed.subscriptions
    for _ in range(2, 502):
        books["A"].apply_delta("yes", 410_000, 1)
        feed.mark("A")
    gate.set()
    first = calls.get(timeout=WAIT)
    assert first[:2] == ("book", "A")
    latest = calls.get(timeout=WAIT)
    assert latest == ("book", "A", (410_000, 501))
    health = ref.ask(pykka_report(), timeout=WAIT)
    assert isinstance(health, ServiceHealth)
    assert health.notifications == 2
    assert health.coalesced == sub.coalesced >= 498
    assert calls.empty()


def pykka_report() -> Any:
    from messages.commands import Report

    return Report()


def test_subscription_when_limited_to_tickers_ignores_others(world: dict[str, Any]) -> None:
    calls = _calls()
    world["start"](tickers=("B",))
    world["feed"].mark("A")
    world["feed"].mark("B")
    assert calls.get(timeout=WAIT)[:2] == ("book", "B")
    assert calls.empty()


def test_ready_and_not_ready_when_told_reach_the_hooks(world: dict[str, Any]) -> None:
    calls = _calls()
    ref = world["start"]()
    metadata = ReadyMetadata(
        markets_connected=2,
        snapshots_received=2,
        deltas_received=0,
        connection_established=True,
        first_snapshot_received=True,
        environment="local",
    )
    ref.tell(SystemReady(metadata=metadata))
    ref.tell(SystemNotReady(state=State.ERROR, reason="orderbook failed"))
    assert calls.get(timeout=WAIT) == ("ready", 2)
    assert calls.get(timeout=WAIT) == ("not_ready", State.ERROR, "orderbook failed")


def test_timers_when_set_run_on_the_actor_and_stop_with_it(world: dict[str, Any]) -> None:
    calls = _calls()
    ref = world["start"]()
    ref.tell("later")
    assert calls.get(timeout=WAIT) == ("timer", "once")
    ref.tell("every")
    assert calls.get(timeout=WAIT) == ("timer", "tick")
    assert calls.get(timeout=WAIT) == ("timer", "tick")
    ref.stop(block=True, timeout=WAIT)
    assert [name for _, name in world["scheduler"].pending() if name == "rec-timer"] == []


def test_crash_when_injected_is_reported_to_the_parent(world: dict[str, Any]) -> None:
    _calls()
    ref = world["start"]()
    ref.tell(InjectFault(target="rec", fault="crash"))
    failed = world["inbox"].get(timeout=WAIT)
    assert isinstance(failed, ChildFailed)
    assert (failed.child, failed.error_type) == ("rec", "InjectedFaultError")
    assert "injected crash in rec service" in failed.reason


def test_crash_on_start_when_armed_fails_the_next_start_and_reports(
    world: dict[str, Any],
) -> None:
    _calls()
    controls = StageControls(start_faults=StartFaults())
    controls.start_faults.arm("rec")
    ctx = ServiceContext(
        name="rec", options=Options(), feed=world["feed"], scheduler=ThreadScheduler()
    )
    parent = Parent.start(world["inbox"])
    try:
        Recorder.start(parent, ctx, 2, controls)
        failed = world["inbox"].get(timeout=WAIT)
        assert isinstance(failed, ChildFailed) and failed.generation == 2
        assert "crash_on_start" in failed.reason
        assert not controls.start_faults.consume("rec")  # armed once, consumed once
        assert world["feed"].subscriptions == ()
    finally:
        parent.stop(block=True, timeout=WAIT)
        ctx.scheduler.stop()


def test_spec_when_options_are_wrong_raises_one_line() -> None:
    with pytest.raises(ValueError, match=r"^service rec: option label: ") as info:
        ServiceSpec("rec", Recorder, {"label": 5})
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="option nope: Extra inputs"):
        ServiceSpec("rec", Recorder, {"nope": 1})
    with pytest.raises(ValueError, match="must be lower-case"):
        ServiceSpec("Bad Name", Recorder)
    spec = ServiceSpec("rec", Recorder, {"label": "y"}, tickers=["A"])
    assert spec.options == Options(label="y") and spec.tickers == ("A",)
