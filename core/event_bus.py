"""Events fan out on their own thread, so a slow listener never blocks the supervisor.

Mopidy's way: the supervisor only enqueues; one dispatcher thread calls each listener in
publish order, each guarded (a listener that raises logs one line and is called again for
the next event). Memory is bounded: at most ``DEFAULT_CAPACITY`` events wait; beyond that
new events are dropped and counted in :attr:`EventBus.dropped` (exported as ``/status``'s
``events_dropped``, ``/metrics``' ``kalshi_supervisor_events_dropped_total`` and the
console's hello), with a warning when a burst of drops begins and one when it ends.

So nothing that must be exact reads through the bus: the supervisor's current state is
published inline, on its own thread, to ``app.event_log.CurrentState``, which ``/ready`` and
``/status`` read. The bus feeds the record (feed, counters, files), which may have gaps.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable

from messages.events import SupervisorEvent

logger = logging.getLogger("kalshi_supervisor.core.event_bus")

EventListener = Callable[[SupervisorEvent], None]

DEFAULT_CAPACITY = 10_000
"""Events waiting for listeners; a healthy dispatcher keeps this near zero."""

THREAD_NAME = "kalshi-supervisor-events"

_STOP = object()


class EventBus:
    """A bounded queue and one dispatcher thread; ``flush`` gives tests a deterministic wait."""

    def __init__(
        self, listeners: Iterable[EventListener] = (), *, capacity: int = DEFAULT_CAPACITY
    ) -> None:
        if capacity < 1:
            raise ValueError("event bus capacity must be at least 1")
        self._listeners = list(listeners)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=capacity)
        self._capacity = capacity
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._published = 0
        self._delivered = 0
        self.dropped = 0
        """Events never delivered because the queue was full, since start."""
        self._dropping = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self._thread.start()

    def publish(self, event: SupervisorEvent) -> None:
        """Enqueue without blocking; a full queue drops the event (counted, warned once)."""
        with self._lock:
            if self._closed:
                return
            try:
                self._queue.put_nowait(event)
            except queue.Full:
                self.dropped += 1
                if not self._dropping:
                    self._dropping = True
                    logger.warning(
                        "event listeners are %d events behind; dropping new events "
                        "(%d dropped since start; the state shown stays exact)",
                        self._capacity,
                        self.dropped,
                    )
                return
            if self._dropping:
                self._dropping = False
                logger.warning(
                    "event listeners caught up: %d events dropped since start", self.dropped
                )
            self._published += 1

    def flush(self, timeout: float) -> bool:
        """Wait until every event published so far reached every listener; False on timeout."""
        if threading.current_thread() is self._thread:
            return True  # a listener flushing would wait for itself
        with self._done:
            target = self._published
            return self._done.wait_for(lambda: self._delivered >= target, timeout=timeout)

    def close(self, timeout: float = 2.0) -> None:
        """Deliver what is queued (bounded by ``timeout``), then stop the dispatcher thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if threading.current_thread() is self._thread:
            self._queue.put(_STOP)
            return
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            logger.warning("event bus could not stop: listeners are stuck")
            return
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("event listener still running %.1fs after close", timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            for listener in self._listeners:
                try:
                    listener(item)  # type: ignore[arg-type]
                except Exception as exc:
                    logger.warning(
                        "event listener %r failed: %s: %s", listener, type(exc).__name__, exc
                    )
                    logger.debug("event listener failure", exc_info=True)
            with self._done:
                self._delivered += 1
                self._done.notify_all()
