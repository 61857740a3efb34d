"""Clock and scheduler tests.

The behavioural tests run against both schedulers through a small driver, so
"identical ordering and cancellation" is checked, not assumed. Thread tests
synchronise on `threading.Event` only; where a test must be sure the scheduler
thread cannot run a timer yet, it parks that thread in a "gate" callback.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from supervision.clock import Clock, ManualClock, SystemClock
from supervision.scheduler import ManualScheduler, Scheduler, ThreadScheduler, TimerHandle

THREAD_NAME = "kalshi-supervisor-scheduler"
WAIT = 5.0  # upper bound for an Event wait; only reached when a test is failing


def scheduler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


@dataclass
class Driver:
    """One scheduler plus the way to let its time pass until an event is set."""

    kind: str
    scheduler: ManualScheduler | ThreadScheduler
    unit: float  # a small delay: exact seconds for manual time, 10 ms for real time

    def run_until(self, event: threading.Event) -> None:
        if isinstance(self.scheduler, ManualScheduler):
            self.scheduler.advance(1000 * self.unit)
            assert event.is_set(), "event not set after advancing the manual scheduler"
        else:
            assert event.wait(WAIT), "event not set by the scheduler thread"

    def hold(self) -> threading.Event:
        """Park the scheduler in a callback until the returned event is set.

        With real time this guarantees no timer scheduled meanwhile can run
        before the test has finished arranging it; with manual time nothing
        runs before `advance()` anyway, so the gate passes straight through.
        """
        release = threading.Event()
        self.scheduler.call_later(0, lambda: release.wait(WAIT), name="gate")
        return release


@pytest.fixture(params=["manual", "thread"])
def driver(request: pytest.FixtureRequest) -> Iterator[Driver]:
    if request.param == "manual":
        d = Driver("manual", ManualScheduler(), 1.0)
    else:
        d = Driver("thread", ThreadScheduler(), 0.01)
    yield d
    d.scheduler.stop()
    assert scheduler_threads() == []


def record(log: list[str], item: str) -> Callable[[], None]:
    return lambda: log.append(item)


# --- clocks -----------------------------------------------------------------------


def test_manual_clock_when_created_starts_at_given_time() -> None:
    assert ManualClock().monotonic() == 0.0
    assert ManualClock(start=12.5).monotonic() == 12.5


def test_manual_clock_advance_when_positive_moves_time_exactly() -> None:
    clock = ManualClock(1.0)
    assert clock.advance(0.25) == 1.25
    assert clock.advance(0) == 1.25
    assert clock.monotonic() == 1.25


@pytest.mark.parametrize("seconds", [-0.001, float("nan"), float("inf")])
def test_manual_clock_advance_when_negative_or_not_finite_raises(seconds: float) -> None:
    with pytest.raises(ValueError, match="advance"):
        ManualClock().advance(seconds)


def test_manual_clock_advance_to_when_in_past_raises_and_when_future_lands_exactly() -> None:
    clock = ManualClock(5.0)
    with pytest.raises(ValueError, match=r"already at 5\.0"):
        clock.advance_to(4.9)
    assert clock.advance_to(7.3) == 7.3


def test_system_clock_when_read_twice_never_goes_backwards() -> None:
    clock = SystemClock()
    first = clock.monotonic()
    assert clock.monotonic() >= first


def test_clocks_when_checked_satisfy_clock_protocol() -> None:
    assert isinstance(SystemClock(), Clock)
    assert isinstance(ManualClock(), Clock)


# --- behaviour shared by both schedulers ------------------------------------------


def test_schedulers_when_checked_satisfy_scheduler_protocol(driver: Driver) -> None:
    scheduler: Scheduler = driver.scheduler
    assert isinstance(scheduler.clock, Clock)


def test_call_later_when_due_fires_callback_once(driver: Driver) -> None:
    done = threading.Event()
    calls: list[str] = []

    def callback() -> None:
        calls.append("x")
        done.set()

    handle = driver.scheduler.call_later(driver.unit, callback, name="once")
    driver.run_until(done)
    assert calls == ["x"]
    assert handle.fired
    assert not handle.cancelled
    assert handle.name == "once"


def test_call_later_when_several_due_runs_in_due_time_then_scheduling_order(
    driver: Driver,
) -> None:
    log: list[str] = []
    done = threading.Event()
    u = driver.unit
    release = driver.hold()
    driver.scheduler.call_later(3 * u, record(log, "c"))
    driver.scheduler.call_later(1 * u, record(log, "a"))
    driver.scheduler.call_later(2 * u, record(log, "b1"))
    driver.scheduler.call_later(2 * u, record(log, "b2"))
    driver.scheduler.call_later(2 * u, record(log, "b3"))
    driver.scheduler.call_later(4 * u, done.set)
    release.set()
    driver.run_until(done)
    assert log == ["a", "b1", "b2", "b3", "c"]


def test_cancel_when_before_due_prevents_callback(driver: Driver) -> None:
    log: list[str] = []
    done = threading.Event()
    release = driver.hold()
    doomed = driver.scheduler.call_later(driver.unit, record(log, "doomed"))
    driver.scheduler.call_later(2 * driver.unit, done.set)
    doomed.cancel()
    release.set()
    driver.run_until(done)
    assert log == []
    assert doomed.cancelled
    assert not doomed.fired


def test_cancel_when_called_twice_is_idempotent(driver: Driver) -> None:
    handle = driver.scheduler.call_later(driver.unit, lambda: None)
    handle.cancel()
    handle.cancel()
    assert handle.cancelled
    assert not handle.fired


def test_cancel_when_one_shot_already_fired_is_noop(driver: Driver) -> None:
    done = threading.Event()
    handle = driver.scheduler.call_later(driver.unit, done.set)
    driver.run_until(done)
    handle.cancel()
    assert handle.fired
    assert not handle.cancelled


def test_call_every_when_not_cancelled_fires_repeatedly_until_cancelled(driver: Driver) -> None:
    count = 0
    done = threading.Event()
    handles: list[TimerHandle] = []
    u = driver.unit

    def tick() -> None:
        nonlocal count
        count += 1
        if count == 3:
            handles[0].cancel()
            # Due after two more would-be ticks: if cancel failed they run first.
            driver.scheduler.call_later(2.5 * u, done.set)

    release = driver.hold()
    handles.append(driver.scheduler.call_every(u, tick, name="tick"))
    release.set()
    driver.run_until(done)
    assert count == 3
    assert handles[0].fired
    assert handles[0].cancelled


def test_callback_when_raising_is_logged_and_later_callbacks_still_run(
    driver: Driver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="kalshi_supervisor.supervision.scheduler")
    done = threading.Event()

    def boom() -> None:
        raise RuntimeError("boom")

    driver.scheduler.call_later(driver.unit, boom, name="boom")
    driver.scheduler.call_later(2 * driver.unit, done.set)
    driver.run_until(done)
    failures = [r for r in caplog.records if r.name == "kalshi_supervisor.supervision.scheduler"]
    assert len(failures) == 1
    assert "'boom'" in failures[0].getMessage()
    assert failures[0].exc_info is not None


def test_call_every_when_callback_raises_keeps_repeating(
    driver: Driver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="kalshi_supervisor.supervision.scheduler")
    count = 0
    done = threading.Event()
    handles: list[TimerHandle] = []

    def flaky() -> None:
        nonlocal count
        count += 1
        if count == 3:
            handles[0].cancel()
            # Set from a later timer: this callback's failure is logged first.
            driver.scheduler.call_later(0, done.set)
        raise ValueError("every time")

    release = driver.hold()
    handles.append(driver.scheduler.call_every(driver.unit, flaky))
    release.set()
    driver.run_until(done)
    assert count == 3
    assert (
        len([r for r in caplog.records if r.name == "kalshi_supervisor.supervision.scheduler"]) == 3
    )


def test_callback_when_scheduling_another_timer_runs_it_in_order(driver: Driver) -> None:
    log: list[str] = []
    done = threading.Event()
    u = driver.unit

    def first() -> None:
        log.append("first")
        driver.scheduler.call_later(u, record(log, "child"))

    driver.scheduler.call_later(u, first)
    driver.scheduler.call_later(3 * u, done.set)
    driver.run_until(done)
    assert log == ["first", "child"]


def test_callback_when_cancelling_a_later_timer_prevents_it(driver: Driver) -> None:
    log: list[str] = []
    done = threading.Event()
    u = driver.unit
    release = driver.hold()
    later = driver.scheduler.call_later(2 * u, record(log, "later"))
    driver.scheduler.call_later(u, later.cancel)
    driver.scheduler.call_later(3 * u, done.set)
    release.set()
    driver.run_until(done)
    assert log == []
    assert later.cancelled


def test_stop_when_timers_pending_cancels_them_and_is_safe_twice(driver: Driver) -> None:
    once = driver.scheduler.call_later(60.0, lambda: None)
    every = driver.scheduler.call_every(60.0, lambda: None)
    driver.scheduler.stop()
    driver.scheduler.stop()
    assert once.cancelled
    assert every.cancelled
    assert driver.scheduler.pending() == []


def test_call_later_when_stopped_raises_runtime_error(driver: Driver) -> None:
    driver.scheduler.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        driver.scheduler.call_later(1.0, lambda: None, name="late")
    with pytest.raises(RuntimeError, match="stopped"):
        driver.scheduler.call_every(1.0, lambda: None)


def test_stop_when_called_from_a_callback_cancels_remaining_timers(driver: Driver) -> None:
    log: list[str] = []
    stopped = threading.Event()
    u = driver.unit
    release = driver.hold()

    def stopper() -> None:
        driver.scheduler.stop()
        stopped.set()

    driver.scheduler.call_later(u, stopper)
    after = driver.scheduler.call_later(2 * u, record(log, "after"))
    release.set()
    driver.run_until(stopped)
    driver.scheduler.stop()  # from outside: joins the thread, if any
    assert after.cancelled
    assert log == []
    assert scheduler_threads() == []


@pytest.mark.parametrize("delay", [-1.0, float("nan"), float("inf")])
def test_call_later_when_delay_invalid_raises_value_error(driver: Driver, delay: float) -> None:
    with pytest.raises(ValueError, match="delay"):
        driver.scheduler.call_later(delay, lambda: None)


@pytest.mark.parametrize("interval", [0.0, -1.0, float("nan"), float("inf")])
def test_call_every_when_interval_invalid_raises_value_error(
    driver: Driver, interval: float
) -> None:
    with pytest.raises(ValueError, match="interval"):
        driver.scheduler.call_every(interval, lambda: None)


def test_call_later_when_callback_not_callable_raises_type_error(driver: Driver) -> None:
    with pytest.raises(TypeError, match="callable"):
        driver.scheduler.call_later(1.0, "not a function")  # type: ignore[arg-type]


def test_pending_when_timers_scheduled_lists_live_ones_in_run_order(driver: Driver) -> None:
    now = driver.scheduler.clock.monotonic()
    driver.scheduler.call_later(300.0, lambda: None, name="b")
    driver.scheduler.call_later(100.0, lambda: None, name="a").cancel()
    driver.scheduler.call_every(200.0, lambda: None, name="ping")
    names = [name for _, name in driver.scheduler.pending()]
    assert names == ["ping", "b"]
    assert all(when >= now + 200.0 for when, _ in driver.scheduler.pending())


# --- ManualScheduler specifics -----------------------------------------------------


def test_manual_advance_when_callbacks_due_sets_clock_to_each_due_time() -> None:
    scheduler = ManualScheduler(ManualClock(100.0))
    seen: list[float] = []
    scheduler.call_later(2.5, lambda: seen.append(scheduler.clock.monotonic()))
    scheduler.call_later(1.0, lambda: seen.append(scheduler.clock.monotonic()))
    assert scheduler.advance(5.0) == 2
    assert seen == [101.0, 102.5]
    assert scheduler.clock.monotonic() == 105.0


def test_manual_call_every_when_advanced_past_several_intervals_fires_at_each() -> None:
    scheduler = ManualScheduler()
    seen: list[float] = []
    scheduler.call_every(3.0, lambda: seen.append(scheduler.clock.monotonic()), name="sync")
    assert scheduler.advance(10.0) == 3
    assert seen == [3.0, 6.0, 9.0]
    assert scheduler.pending() == [(12.0, "sync")]


def test_manual_advance_when_timer_due_exactly_at_window_end_runs_it() -> None:
    scheduler = ManualScheduler()
    log: list[str] = []
    scheduler.call_later(2.0, record(log, "edge"))
    scheduler.advance(1.999)
    assert log == []
    scheduler.advance(0.001)
    assert log == ["edge"]


def test_manual_advance_when_callback_schedules_beyond_window_leaves_it_pending() -> None:
    scheduler = ManualScheduler()
    log: list[str] = []

    def first() -> None:
        log.append("first")
        scheduler.call_later(1.0, record(log, "inside"), name="inside")
        scheduler.call_later(10.0, record(log, "beyond"), name="beyond")

    scheduler.call_later(1.0, first)
    assert scheduler.advance(5.0) == 2
    assert log == ["first", "inside"]
    assert scheduler.pending() == [(11.0, "beyond")]


def test_manual_advance_when_nothing_due_only_moves_clock() -> None:
    scheduler = ManualScheduler()
    scheduler.call_later(10.0, lambda: None, name="later")
    assert scheduler.advance(9.0) == 0
    assert scheduler.clock.monotonic() == 9.0
    assert scheduler.pending() == [(10.0, "later")]


def test_manual_call_every_when_clock_jumped_externally_coalesces_missed_ticks() -> None:
    clock = ManualClock()
    scheduler = ManualScheduler(clock)
    seen: list[float] = []
    scheduler.call_every(3.0, lambda: seen.append(clock.monotonic()), name="ping")
    clock.advance(10.0)  # someone else moved shared time past three ticks
    assert scheduler.advance(0) == 1
    assert seen == [10.0]
    assert scheduler.pending() == [(12.0, "ping")]


def test_manual_advance_when_called_from_a_callback_raises_runtime_error() -> None:
    scheduler = ManualScheduler()
    errors: list[Exception] = []

    def nested() -> None:
        try:
            scheduler.advance(1.0)
        except RuntimeError as exc:
            errors.append(exc)

    scheduler.call_later(1.0, nested)
    scheduler.advance(1.0)
    assert len(errors) == 1
    assert "already running" in str(errors[0])


@pytest.mark.parametrize("seconds", [-1.0, float("nan")])
def test_manual_advance_when_negative_or_nan_raises_value_error(seconds: float) -> None:
    with pytest.raises(ValueError, match="advance"):
        ManualScheduler().advance(seconds)


def test_manual_cancel_when_most_timers_cancelled_compacts_the_heap() -> None:
    scheduler = ManualScheduler()
    handles = [scheduler.call_later(100.0 + i, lambda: None) for i in range(200)]
    for handle in handles[:150]:
        handle.cancel()
    assert len(scheduler.pending()) == 50
    assert len(scheduler._queue._heap) < 200  # cancelled deadlines do not pile up


def test_manual_scheduler_when_given_no_clock_creates_one_at_zero() -> None:
    assert ManualScheduler().clock.monotonic() == 0.0


# --- ThreadScheduler specifics -----------------------------------------------------


def test_thread_scheduler_when_created_starts_no_thread_until_first_timer() -> None:
    scheduler = ThreadScheduler()
    try:
        assert scheduler_threads() == []
        handle = scheduler.call_later(60.0, lambda: None)
        (thread,) = scheduler_threads()
        assert thread.daemon
        handle.cancel()
    finally:
        scheduler.stop()
    assert scheduler_threads() == []


def test_thread_scheduler_stop_when_thread_running_joins_it() -> None:
    scheduler = ThreadScheduler()
    fired = threading.Event()
    scheduler.call_later(0, fired.set)
    assert fired.wait(WAIT)
    assert len(scheduler_threads()) == 1
    scheduler.stop()
    assert scheduler_threads() == []


def test_thread_scheduler_stop_when_never_used_returns_immediately() -> None:
    scheduler = ThreadScheduler()
    scheduler.stop()
    scheduler.stop()
    assert scheduler_threads() == []


def test_thread_scheduler_callback_when_run_is_on_the_scheduler_thread() -> None:
    scheduler = ThreadScheduler()
    done = threading.Event()
    names: list[str] = []

    def where() -> None:
        names.append(threading.current_thread().name)
        done.set()

    try:
        scheduler.call_later(0, where)
        assert done.wait(WAIT)
    finally:
        scheduler.stop()
    assert names == [THREAD_NAME]


def test_thread_scheduler_when_timer_added_earlier_than_pending_one_wakes_for_it() -> None:
    scheduler = ThreadScheduler()
    done = threading.Event()
    try:
        scheduler.call_later(60.0, lambda: None, name="far")
        # Without a wake-up the thread would sleep towards "far" and miss WAIT.
        scheduler.call_later(0.01, done.set, name="near")
        assert done.wait(WAIT)
    finally:
        scheduler.stop()


def test_thread_scheduler_stop_when_callback_is_running_waits_for_it() -> None:
    scheduler = ThreadScheduler()
    entered = threading.Event()
    release = threading.Event()
    finished = threading.Event()

    def slow() -> None:
        entered.set()
        release.wait(WAIT)
        finished.set()

    scheduler.call_later(0, slow)
    assert entered.wait(WAIT)
    release.set()  # the callback may still be running: stop() must wait for it
    scheduler.stop(timeout=WAIT)
    assert finished.is_set()
    assert scheduler_threads() == []
