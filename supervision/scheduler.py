"""Timers for per-state deadlines, restart backoff, periodic syncs and liveness pings.

pykka has no timers, and a `threading.Timer` per deadline would mean one thread
per pending timer and no way to test them without sleeping. Instead one
scheduler owns all timers of a supervisor:

* `ThreadScheduler` runs them on a single daemon thread. Callbacks are meant to
  be quick (typically an actor `tell`), so one thread is enough and the
  ordering of timers is the ordering of their callbacks.
* `ManualScheduler` has no thread: a test calls `advance()` and every due
  callback runs synchronously, with the clock set to that callback's due time.

Both share one timer queue (`_TimerQueue`), so ordering, ties, cancellation and
repetition behave identically; only who moves time differs.

Semantics common to both:

* Callbacks run in due-time order; equal due times run in scheduling order.
* `call_every` first fires one interval after scheduling, then at a fixed rate
  (due + interval, so it does not drift). If the scheduler fell behind by more
  than an interval, the missed ticks are coalesced into one run instead of
  firing a burst: a late liveness ping should not become five pings.
* A callback that raises is logged and never stops the scheduler.
* Scheduling after `stop()` raises `RuntimeError`: a timer that silently never
  fires would turn a shutdown race into a hang that nobody sees.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import threading
from collections.abc import Callable
from typing import Protocol

from supervision.clock import Clock, ManualClock, SystemClock

__all__ = ["ManualScheduler", "Scheduler", "ThreadScheduler", "TimerHandle"]

logger = logging.getLogger("kalshi_supervisor.supervision.scheduler")

Callback = Callable[[], None]

THREAD_NAME = "kalshi-supervisor-scheduler"

# Cancelled timers stay in the heap until they reach its top (cancel is O(1)).
# A supervisor cancels most of its deadlines before they fall due, so compact
# the heap once cancelled entries dominate it, as asyncio does.
_COMPACT_MIN_CANCELLED = 64


class TimerHandle:
    """A scheduled callback that the scheduler's owner can cancel.

    `cancelled` means `cancel()` took effect while the timer could still run:
    a one-shot timer is either `fired` or `cancelled`, never both; a repeating
    timer can be both (it ran, then was cancelled).
    """

    __slots__ = (
        "_callback",
        "_cancel_hook",
        "_cancelled",
        "_fired",
        "_in_queue",
        "_interval",
        "_name",
        "_when",
    )

    def __init__(
        self,
        when: float,
        callback: Callback,
        name: str,
        interval: float | None,
        cancel_hook: Callable[[TimerHandle], None],
    ) -> None:
        self._when = when
        self._callback = callback
        self._name = name
        self._interval = interval
        self._cancel_hook = cancel_hook
        self._cancelled = False
        self._fired = False
        self._in_queue = False

    @property
    def name(self) -> str:
        """The label given at scheduling time, for logs and `pending()`."""
        return self._name

    @property
    def when(self) -> float:
        """The (next) due time on the scheduler's clock."""
        return self._when

    @property
    def interval(self) -> float | None:
        """The repeat interval, or None for a one-shot timer."""
        return self._interval

    @property
    def cancelled(self) -> bool:
        """True once `cancel()` stopped the timer from running (again)."""
        return self._cancelled

    @property
    def fired(self) -> bool:
        """True once the callback has been started at least once."""
        return self._fired

    def cancel(self) -> None:
        """Prevent any future run; idempotent, callable from any thread or callback.

        Cancelling a one-shot timer that already fired does nothing, so a
        deadline handler can cancel its own handle without special cases.
        """
        self._cancel_hook(self)

    def __repr__(self) -> str:
        if self._cancelled:
            state = "cancelled"
        elif self._fired and self._interval is None:
            state = "fired"
        else:
            state = "pending"
        every = "" if self._interval is None else f" every={self._interval!r}"
        return f"<TimerHandle name={self._name!r} when={self._when!r}{every} {state}>"


class _TimerQueue:
    """The heap of timers shared by both schedulers; not thread-safe, callers lock.

    Keeping every ordering and cancellation rule here is what makes the
    threaded and the manual scheduler behave identically.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._seq = itertools.count()
        self._cancelled_in_heap = 0
        self._running: TimerHandle | None = None

    def push(self, handle: TimerHandle) -> None:
        # The sequence number breaks ties in scheduling order and keeps the
        # heap from ever comparing two handles.
        heapq.heappush(self._heap, (handle._when, next(self._seq), handle))
        handle._in_queue = True

    def cancel(self, handle: TimerHandle) -> None:
        if handle._cancelled or (handle._fired and handle._interval is None):
            return
        handle._cancelled = True
        if handle._in_queue:
            self._cancelled_in_heap += 1
            if (
                self._cancelled_in_heap >= _COMPACT_MIN_CANCELLED
                and self._cancelled_in_heap * 2 > len(self._heap)
            ):
                self._compact()

    def _compact(self) -> None:
        live = []
        for entry in self._heap:
            if entry[2]._cancelled:
                entry[2]._in_queue = False
            else:
                live.append(entry)
        heapq.heapify(live)
        self._heap = live
        self._cancelled_in_heap = 0

    def _drop_cancelled_top(self) -> None:
        while self._heap and self._heap[0][2]._cancelled:
            heapq.heappop(self._heap)[2]._in_queue = False
            self._cancelled_in_heap -= 1

    def next_due(self) -> float | None:
        self._drop_cancelled_top()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> TimerHandle | None:
        """Take the earliest live timer due at or before `now` and mark it fired."""
        self._drop_cancelled_top()
        if not self._heap or self._heap[0][0] > now:
            return None
        handle = heapq.heappop(self._heap)[2]
        handle._in_queue = False
        handle._fired = True
        self._running = handle
        return handle

    def finish(self, handle: TimerHandle, now: float) -> None:
        """Re-queue a repeating timer after its callback returned, unless cancelled meanwhile."""
        self._running = None
        interval = handle._interval
        if interval is None or handle._cancelled:
            return
        when = handle._when + interval
        if when <= now:
            # Fell behind by at least one whole interval: skip the missed ticks.
            when = handle._when + (math.floor((now - handle._when) / interval) + 1) * interval
            if when <= now:  # float rounding at the boundary
                when = math.nextafter(now, math.inf)
        handle._when = when
        self.push(handle)

    def cancel_all(self) -> None:
        for _, _, handle in self._heap:
            handle._cancelled = True
            handle._in_queue = False
        self._heap.clear()
        self._cancelled_in_heap = 0
        if self._running is not None:
            self.cancel(self._running)

    def pending(self) -> list[tuple[float, str]]:
        live = sorted(entry for entry in self._heap if not entry[2]._cancelled)
        return [(when, handle._name) for when, _, handle in live]


def _check_delay(delay: float) -> None:
    if not (isinstance(delay, int | float) and math.isfinite(delay) and delay >= 0):
        raise ValueError(f"delay must be a finite number of seconds >= 0, got {delay!r}")


def _check_interval(interval: float) -> None:
    if not (isinstance(interval, int | float) and math.isfinite(interval) and interval > 0):
        raise ValueError(f"interval must be a finite number of seconds > 0, got {interval!r}")


def _check_callback(callback: object) -> None:
    # Fail at the call site, not later on the scheduler thread where the
    # traceback no longer points at the caller.
    if not callable(callback):
        raise TypeError(f"callback must be callable, got {callback!r}")


def _invoke(handle: TimerHandle) -> None:
    try:
        handle._callback()
    except Exception:
        logger.exception("scheduler callback %r failed", handle._name or handle._callback)


class Scheduler(Protocol):
    """What the supervisor needs from a timer service; real or manual time."""

    @property
    def clock(self) -> Clock:
        """The clock that due times are measured on."""
        ...

    def call_later(self, delay: float, callback: Callback, *, name: str = "") -> TimerHandle:
        """Run `callback` once, `delay` seconds from now."""
        ...

    def call_every(self, interval: float, callback: Callback, *, name: str = "") -> TimerHandle:
        """Run `callback` every `interval` seconds, starting one interval from now."""
        ...

    def stop(self, timeout: float = 1.0) -> None:
        """Cancel every timer and release any thread; idempotent."""
        ...


class _SchedulerBase:
    """The front-end both schedulers share: validated scheduling into one timer queue."""

    _clock: Clock
    _guard: threading.Lock | threading.Condition
    _queue: _TimerQueue
    _stopped: bool

    @property
    def clock(self) -> Clock:
        """The clock due times are measured on."""
        return self._clock

    def call_later(self, delay: float, callback: Callback, *, name: str = "") -> TimerHandle:
        """Run `callback` once, `delay` seconds from now."""
        _check_delay(delay)
        return self._schedule(delay, callback, name, None)

    def call_every(self, interval: float, callback: Callback, *, name: str = "") -> TimerHandle:
        """Run `callback` every `interval` seconds until cancelled."""
        _check_interval(interval)
        return self._schedule(interval, callback, name, interval)

    def _schedule(
        self, delay: float, callback: Callback, name: str, interval: float | None
    ) -> TimerHandle:
        _check_callback(callback)
        with self._guard:
            if self._stopped:
                raise RuntimeError(f"cannot schedule {name or callback!r}: scheduler is stopped")
            handle = TimerHandle(
                self._clock.monotonic() + delay, callback, name, interval, self._cancel
            )
            self._queue.push(handle)
            self._pushed()
        return handle

    def _pushed(self) -> None:
        """Runs under the lock after a timer was queued."""

    def _cancel(self, handle: TimerHandle) -> None:
        # No wake-up: a thread finds the cancelled entry when it wakes and skips it, which
        # costs less than a wake-up per cancellation.
        with self._guard:
            self._queue.cancel(handle)


class ThreadScheduler(_SchedulerBase):
    """Runs timers on one lazily started daemon thread named `kalshi-supervisor-scheduler`.

    The thread waits on a `Condition` with a timeout, so it needs a clock that
    moves in real time; use `ManualScheduler` for manual time.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._guard: threading.Condition = threading.Condition(threading.Lock())
        self._queue = _TimerQueue()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def _pushed(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
            self._thread.start()
        self._guard.notify()

    def pending(self) -> list[tuple[float, str]]:
        """(due time, name) of every live timer, in the order they will run."""
        with self._guard:
            return self._queue.pending()

    def stop(self, timeout: float = 1.0) -> None:
        """Cancel every timer and join the thread.

        After it returns (when called from outside a callback) no callback is
        running and none will run. From inside a callback it cannot join its
        own thread, so the thread exits as soon as that callback returns.
        """
        with self._guard:
            self._stopped = True
            self._queue.cancel_all()
            thread = self._thread
            self._guard.notify_all()
        if thread is None or thread is threading.current_thread():
            return
        thread.join(timeout)
        if thread.is_alive():
            logger.warning(
                "scheduler thread still running %.3fs after stop(): a callback is blocking it",
                timeout,
            )

    def _run(self) -> None:
        cond = self._guard
        queue = self._queue
        with cond:
            while not self._stopped:
                now = self._clock.monotonic()
                handle = queue.pop_due(now)
                if handle is None:
                    due = queue.next_due()
                    cond.wait(None if due is None else due - now)
                    continue
                cond.release()
                try:
                    _invoke(handle)
                finally:
                    cond.acquire()
                queue.finish(handle, self._clock.monotonic())


class ManualScheduler(_SchedulerBase):
    """Timers driven by `advance()` instead of a thread, for exact, instant tests.

    Thread-safe for scheduling and cancelling (an actor thread may schedule
    while the test thread advances); callbacks run on the thread that calls
    `advance()`, each with the clock set to exactly its due time.
    """

    def __init__(self, clock: ManualClock | None = None) -> None:
        self._clock: ManualClock = clock if clock is not None else ManualClock()
        self._guard = threading.Lock()
        self._queue = _TimerQueue()
        self._stopped = False
        self._advancing = False

    @property
    def clock(self) -> ManualClock:
        """The manual clock that `advance()` moves."""
        return self._clock

    def pending(self) -> list[tuple[float, str]]:
        """(due time, name) of every live timer, in the order they will run."""
        with self._guard:
            return self._queue.pending()

    def advance(self, seconds: float) -> int:
        """Move the clock `seconds` forward, running every callback that falls due.

        Callbacks run in due-time order (ties in scheduling order), including
        timers scheduled by callbacks if they fall due within the window.
        Returns how many callbacks ran, which makes "nothing fired" assertable.
        """
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"can only advance by a finite amount >= 0, got {seconds!r}")
        with self._guard:
            if self._advancing:
                # A nested advance would run later timers before the current
                # window's earlier ones and break the ordering guarantee.
                raise RuntimeError("advance() is already running (called from a callback?)")
            self._advancing = True
            target = self._clock.monotonic() + seconds
        ran = 0
        try:
            while True:
                with self._guard:
                    handle = self._queue.pop_due(target)
                if handle is None:
                    break
                if handle.when > self._clock.monotonic():
                    self._clock.advance_to(handle.when)
                _invoke(handle)
                ran += 1
                with self._guard:
                    self._queue.finish(handle, self._clock.monotonic())
            if target > self._clock.monotonic():
                self._clock.advance_to(target)
        finally:
            with self._guard:
                self._advancing = False
        return ran

    def stop(self, timeout: float = 1.0) -> None:
        """Cancel every timer; later scheduling raises. `timeout` is unused (no thread)."""
        del timeout
        with self._guard:
            self._stopped = True
            self._queue.cancel_all()
