"""The event bus: listeners off the publisher's thread, in order, guarded, bounded, stoppable."""

from __future__ import annotations

import logging
import threading

import pytest

from core.event_bus import THREAD_NAME, EventBus
from messages.events import Escalation, SupervisorEvent

WAIT = 5.0


def event(n: int) -> Escalation:
    return Escalation(reason=f"event {n}")


def test_publish_when_listeners_run_delivers_in_order_on_the_bus_thread() -> None:
    seen: list[tuple[str, str]] = []
    bus = EventBus([lambda e: seen.append((e.reason, threading.current_thread().name))])
    try:
        for n in range(50):
            bus.publish(event(n))
        assert bus.flush(WAIT)
        assert [r for r, _ in seen] == [f"event {n}" for n in range(50)]
        assert {name for _, name in seen} == {THREAD_NAME}
    finally:
        bus.close()


def test_listener_when_it_raises_logs_one_line_and_others_still_get_every_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[SupervisorEvent] = []

    def broken(_: SupervisorEvent) -> None:
        raise RuntimeError("listener bug")

    bus = EventBus([broken, seen.append])
    try:
        with caplog.at_level(logging.WARNING, logger="kalshi_supervisor"):
            bus.publish(event(1))
            bus.publish(event(2))
            assert bus.flush(WAIT)
        assert len(seen) == 2
        failures = [r for r in caplog.records if "listener bug" in r.getMessage()]
        assert len(failures) == 2
        assert all(r.exc_info is None for r in failures)
    finally:
        bus.close()


def test_publish_when_listener_is_stuck_never_blocks_and_drops_beyond_capacity(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = threading.Event()
    entered = threading.Event()

    def stuck(_: SupervisorEvent) -> None:
        entered.set()
        release.wait(WAIT)

    bus = EventBus([stuck], capacity=3)
    try:
        with caplog.at_level(logging.WARNING, logger="kalshi_supervisor"):
            bus.publish(event(0))
            assert entered.wait(WAIT)
            for n in range(1, 10):
                bus.publish(event(n))  # returns at once although nothing is consumed
        assert bus.dropped == 6
        assert sum("dropping new events" in r.getMessage() for r in caplog.records) == 1
        release.set()
        assert bus.flush(WAIT)
        with caplog.at_level(logging.WARNING, logger="kalshi_supervisor"):
            bus.publish(event(10))  # the burst is over: said once, with the total
        assert bus.flush(WAIT)
        ended = [r.getMessage() for r in caplog.records if "caught up" in r.getMessage()]
        assert ended == ["event listeners caught up: 6 events dropped since start"]
    finally:
        release.set()
        bus.close()


def test_close_when_events_are_queued_delivers_them_and_stops_the_thread() -> None:
    seen: list[SupervisorEvent] = []
    bus = EventBus([seen.append])
    for n in range(20):
        bus.publish(event(n))
    bus.close()
    assert len(seen) == 20
    assert THREAD_NAME not in {t.name for t in threading.enumerate()}
    bus.publish(event(99))  # after close: ignored, no error
    assert len(seen) == 20


def test_capacity_when_not_positive_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        EventBus(capacity=0)
