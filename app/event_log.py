"""Where published events go: a bounded in-memory recorder (tests, console, metrics) and a
JSON-lines file.

The recorder is the synchronisation point for tests and for the CLI: waiting for a state is
waiting on a condition the publishing thread signals, never a sleep. It is also the source of
the console's event feed, so every event gets a monotonically increasing ``id`` here: a
browser that reconnects with the last id it saw gets exactly what it missed.

A process meant to run for weeks cannot keep every event, so the recorder is bounded:

- a ring of the last :data:`RECORDER_CAPACITY` events, each with its id;
- the latest transition into each state and the latest event of each other type (a
  handful of items), so the console can always draw one card per state and the account,
  however long ago those happened;
- counters (events by type, transitions by state, failures/restarts by stage, ...) that the
  ``/metrics`` endpoint reads.

Nothing else grows with time.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from app.trading_tally import TradingTally
from messages.events import (
    ExchangePaused,
    ExchangeResumed,
    FaultInjected,
    KalshiSyncComplete,
    RestartScheduled,
    StateTransition,
    SupervisorEvent,
)
from messages.exchange import PauseSummary
from messages.states import State

logger = logging.getLogger("kalshi_supervisor.app.event_log")

RECORDER_CAPACITY = 2048
"""Events kept in the ring. A cold start is ~10 events and a recovery ~10 more, so this
holds a day of ordinary operation and hundreds of recoveries; at ~1 KB per event (model plus
its JSON form) it is ~2 MB at most."""


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """One event as the feed sends it: its id, the model, and its JSON form (computed once)."""

    id: int
    event: SupervisorEvent
    json: str
    """``{"id": N, ...the event's fields...}``: the ``--events`` line plus the id."""
    recorded_at: float
    """``time.time()`` when the recorder got it (the event's own timestamp is its creation)."""


FeedSubscriber = Callable[[RecordedEvent], None]
"""Called on the publishing thread for each new event, in id order; must not block."""


def _apply_pause(pauses: dict[int | None, PauseSummary], event: SupervisorEvent) -> None:
    """Keep ``pauses`` (exchange index -> pause in force) up to date with a pause event."""
    if isinstance(event, ExchangePaused):
        since = pauses.get(event.exchange_index)
        pauses[event.exchange_index] = PauseSummary(
            exchange_index=event.exchange_index,
            scope=event.scope,
            resume_estimate=event.resume_estimate,
            since=since.since if since else event.timestamp,
        )
    elif isinstance(event, ExchangeResumed):
        pauses.pop(event.exchange_index, None)


def _sorted_pauses(pauses: Iterable[PauseSummary]) -> list[PauseSummary]:
    """Whole exchange (index None) first, then by shard."""
    return sorted(pauses, key=lambda p: -1 if p.exchange_index is None else p.exchange_index)


@dataclass(frozen=True, slots=True)
class StateSnapshot:
    """What the supervisor says is true now; replaced whole, never changed in place."""

    state: State
    last_transition: StateTransition | None
    entered_monotonic: float
    exchange_pauses: tuple[PauseSummary, ...]
    stream: dict[str, int]
    events: int
    """Events the supervisor has published (the bus may have dropped some of them)."""


class CurrentState:
    """The supervisor's published truth: state, pauses in force, stream counters.

    Why not the recorder: the recorder sits behind the event bus, whose queue is bounded and
    drops new events when its listeners fall behind, so a recorder can be stale (even stuck
    in a state the supervisor left) with nothing telling. This object is an *inline*
    listener instead: the supervisor calls it on its own thread, before queueing the event,
    and it replaces one immutable :class:`StateSnapshot` with a single reference assignment.
    ``/ready``, ``/status``'s state and ``/metrics``' state gauge read :attr:`snapshot`, so
    whatever the bus does, they show the state the supervisor is in.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # writers only (one supervisor thread, in practice)
        self._pauses: dict[int | None, PauseSummary] = {}
        self._snapshot = StateSnapshot(State.STARTUP, None, time.monotonic(), (), {}, 0)

    def __call__(self, event: SupervisorEvent) -> None:
        with self._lock:
            old = self._snapshot
            transition = old.last_transition
            entered = old.entered_monotonic
            if isinstance(event, StateTransition):
                transition, entered = event, time.monotonic()
            _apply_pause(self._pauses, event)
            counters = getattr(event, "counters", None)
            self._snapshot = StateSnapshot(
                state=transition.to_state if transition else State.STARTUP,
                last_transition=transition,
                entered_monotonic=entered,
                exchange_pauses=tuple(_sorted_pauses(self._pauses.values())),
                stream=dict(counters) if counters else old.stream,
                events=old.events + 1,
            )

    @property
    def snapshot(self) -> StateSnapshot:
        return self._snapshot

    @property
    def state(self) -> State:
        return self._snapshot.state

    def time_in_state(self) -> float:
        return time.monotonic() - self._snapshot.entered_monotonic

    def status_fields(self) -> dict[str, Any]:
        """The fields of ``/status`` this object is the truth for."""
        snap = self._snapshot
        last = snap.last_transition
        return {
            "state": snap.state.value,
            "since": last.timestamp.isoformat() if last else None,
            "last_transition": last.model_dump(mode="json") if last else None,
            "exchange_pauses": [p.model_dump(mode="json") for p in snap.exchange_pauses],
            "stream": dict(snap.stream),
            "events_published": snap.events,
        }


class EventRecorder:
    """Thread-safe bounded record of events, with ids, counters and blocking waits."""

    def __init__(self, capacity: int = RECORDER_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("recorder capacity must be at least 1")
        self.capacity = capacity
        self._ring: deque[RecordedEvent] = deque(maxlen=capacity)
        self._condition = threading.Condition()
        self._last_id = 0
        self._latest_transition: dict[State, RecordedEvent] = {}
        self._latest_by_type: dict[str, RecordedEvent] = {}
        self._current: StateTransition | None = None
        self._entered_monotonic = time.monotonic()
        self._subscribers: list[FeedSubscriber] = []
        self.events_by_type: Counter[str] = Counter()
        self.transitions_by_state: Counter[str] = Counter()
        self.failures_by_stage: Counter[str] = Counter()
        self.restarts_by_stage: Counter[str] = Counter()
        self.faults_by_target: Counter[str] = Counter()
        self.stream_heals_by_kind: Counter[str] = Counter()
        self.last_sync_duration_seconds: float | None = None
        self._pauses: dict[int | None, PauseSummary] = {}
        """Exchange pauses in force, kept from the pause events as they pass (``/status``)."""
        self.stream_counters: dict[str, int] = {}
        """The order book stream's latest counters (carried by its events), for ``/status``."""
        self.trading = TradingTally()
        """Orders, fills, positions and the trading state, counted from trading events."""

    # -- recording ---------------------------------------------------------------------------
    def __call__(self, event: SupervisorEvent) -> None:
        body = event.model_dump_json()
        with self._condition:
            self._last_id += 1
            record = RecordedEvent(
                self._last_id, event, f'{{"id":{self._last_id},{body[1:]}', time.time()
            )
            self._ring.append(record)
            self._count(record)
            self._condition.notify_all()
            subscribers = list(self._subscribers)
            # Subscribers are called under the lock so they see events in id order even if
            # two threads publish at once; each only hands the record to its own loop.
            for subscriber in subscribers:
                try:
                    subscriber(record)
                except Exception:
                    logger.exception("event feed subscriber %r failed", subscriber)

    def _count(self, record: RecordedEvent) -> None:
        event = record.event
        _apply_pause(self._pauses, event)
        self.events_by_type[event.type] += 1
        self.trading.record(event)
        if isinstance(event, StateTransition):
            self._latest_transition[event.to_state] = record
            self.transitions_by_state[event.to_state.value] += 1
            self._current = event
            self._entered_monotonic = time.monotonic()
            if event.from_state is State.KALSHI_DATA_SYNC:
                self.last_sync_duration_seconds = event.duration_ms / 1000.0
            return
        self._latest_by_type[event.type] = record
        counters = getattr(event, "counters", None)
        if counters:
            self.stream_counters = dict(counters)
        stage = getattr(event, "stage", None)
        if event.type == "stage_failure" and isinstance(stage, str):
            self.failures_by_stage[stage] += 1
        elif isinstance(event, RestartScheduled):
            for name in event.stages:
                self.restarts_by_stage[name] += 1
        elif isinstance(event, FaultInjected):
            self.faults_by_target[str(event.fault.target)] += 1
        elif event.type == "stream_healed":
            self.stream_heals_by_kind[str(getattr(event, "kind", "unknown"))] += 1
        elif isinstance(event, KalshiSyncComplete):
            pass  # kept as the latest of its type above; the account panel reads it

    # -- the feed ----------------------------------------------------------------------------
    def subscribe(self, subscriber: FeedSubscriber) -> None:
        with self._condition:
            self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: FeedSubscriber) -> None:
        with self._condition, contextlib.suppress(ValueError):
            self._subscribers.remove(subscriber)

    @property
    def last_id(self) -> int:
        """Id of the newest event (0 before the first): pass it as ``after=`` to wait for
        what happens next."""
        with self._condition:
            return self._last_id

    def records_since(self, after: int) -> tuple[list[RecordedEvent], bool]:
        """Retained events with id > ``after``, and whether some in between were dropped."""
        with self._condition:
            return self._since(after)

    def _since(self, after: int) -> tuple[list[RecordedEvent], bool]:
        if not self._ring:
            return [], False
        first = self._ring[0].id
        skip = max(0, after - first + 1)
        records = [self._ring[i] for i in range(skip, len(self._ring))]
        return records, after < first - 1

    def latest(self) -> list[RecordedEvent]:
        """The latest transition into each state and the latest event of each other type,
        in id order: what the console needs to draw its cards when the ring has moved on."""
        with self._condition:
            items = [*self._latest_transition.values(), *self._latest_by_type.values()]
        return sorted(items, key=lambda r: r.id)

    # -- reading -----------------------------------------------------------------------------
    def events(self) -> list[SupervisorEvent]:
        """The retained events (the last :attr:`capacity`), oldest first."""
        with self._condition:
            return [r.event for r in self._ring]

    def transitions(self) -> list[StateTransition]:
        return [e for e in self.events() if isinstance(e, StateTransition)]

    def states(self) -> list[State]:
        return [t.to_state for t in self.transitions()]

    @property
    def state(self) -> State:
        with self._condition:
            return self._current.to_state if self._current else State.STARTUP

    def time_in_state(self) -> float:
        with self._condition:
            return time.monotonic() - self._entered_monotonic

    def wait_for(
        self,
        predicate: Callable[[list[SupervisorEvent]], Any],
        timeout: float,
        *,
        after: int = 0,
    ) -> Any:
        """Block until ``predicate(events)`` is truthy; returns it, or None on timeout.

        ``events`` are the retained events with id > ``after``, oldest first.
        """

        def check() -> Any:
            return predicate([r.event for r in self._since(after)[0]])

        with self._condition:
            result = self._condition.wait_for(check, timeout=timeout)
            return result or None

    def wait_for_state(
        self, state: State, timeout: float, *, after: int = 0
    ) -> StateTransition | None:
        """The first transition into ``state`` with event id > ``after`` (see :attr:`last_id`)."""

        def find(events: list[SupervisorEvent]) -> StateTransition | None:
            for event in events:
                if isinstance(event, StateTransition) and event.to_state is state:
                    return event
            return None

        return self.wait_for(find, timeout, after=after)

    def exchange_pauses(self) -> list[PauseSummary]:
        """The exchange pauses in force: whole exchange (index None) first, then by shard."""
        with self._condition:
            pauses = list(self._pauses.values())
        return _sorted_pauses(pauses)

    def pauses_as_of(self) -> tuple[list[PauseSummary], int]:
        """The pauses in force and the id of the last event they include, read together:
        the console page starts from this and applies only pause events with a later id."""
        with self._condition:
            return self.exchange_pauses(), self._last_id

    def status(self) -> dict[str, Any]:
        pauses = [p.model_dump(mode="json") for p in self.exchange_pauses()]
        with self._condition:
            last = self._current
            return {
                "state": (last.to_state if last else State.STARTUP).value,
                "since": last.timestamp.isoformat() if last else None,
                "last_transition": last.model_dump(mode="json") if last else None,
                "transitions": sum(self.transitions_by_state.values()),
                "events": self._last_id,
                "last_event_id": self._last_id,
                "retained_events": len(self._ring),
                "exchange_pauses": pauses,
                "stream": dict(self.stream_counters),
            }


class EventSinkError(RuntimeError):
    """The events file cannot be opened; the message is one line."""


class JsonLinesSink:
    """``--events PATH``: one JSON object per event, flushed as it happens (``-`` is stdout).

    A sink must never take the supervisor down: a full disk or a reader that went away
    warns once and the supervisor keeps running (events are dropped until writing works
    again, which is logged too). :meth:`reopen` (on SIGHUP) reopens the path, so a log
    rotator can move the file away and the next event starts a new one.
    """

    def __init__(self, target: str) -> None:
        self._lock = threading.Lock()
        self._target = target
        self._owned: IO[str] | None = None
        self._failing = False
        self.dropped = 0
        if target == "-":
            self._stream: IO[str] | None = sys.stdout
        else:
            self._stream = self._owned = self._open()

    def _open(self) -> IO[str]:
        path = Path(self._target).expanduser()
        try:
            return path.open("a", encoding="utf-8")
        except OSError as exc:
            raise EventSinkError(f"cannot write events to {path}: {exc.strerror or exc}") from None

    def __call__(self, event: SupervisorEvent) -> None:
        line = event.model_dump_json()
        with self._lock:
            stream = self._stream
            if stream is None or stream.closed:
                return  # closed at shutdown or after a broken pipe: nothing left to write to
            try:
                stream.write(line + "\n")
                stream.flush()
            except (OSError, ValueError) as exc:
                self._failed(exc)
                return
            if self._failing:
                self._failing = False
                logger.warning(
                    "events sink %s works again (%d event(s) were dropped)",
                    self._target,
                    self.dropped,
                )

    def _failed(self, exc: BaseException) -> None:
        self.dropped += 1
        if isinstance(exc, BrokenPipeError) or getattr(exc, "errno", None) == errno.EPIPE:
            # The reader is gone for good: stop writing, and point stdout at /dev/null so the
            # interpreter's own flush at exit does not print a traceback either.
            if self._stream is sys.stdout:
                with contextlib.suppress(OSError, ValueError):
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(devnull, sys.stdout.fileno())
                    os.close(devnull)
            self._stream = None
            logger.warning(
                "events sink %s closed by its reader; no more events written", self._target
            )
            return
        if not self._failing:
            self._failing = True
            reason = getattr(exc, "strerror", None) or str(exc)
            logger.warning(
                "cannot write events to %s: %s (dropping events until it works again)",
                self._target,
                reason,
            )

    def reopen(self) -> None:
        """Reopen the file (log rotation); a failure warns and keeps the old stream."""
        if self._target == "-":
            return
        with self._lock:
            try:
                fresh = self._open()
            except EventSinkError as exc:
                logger.warning("%s; keeping the previous file", exc)
                return
            old, self._stream = self._owned, fresh
            self._owned = fresh
            self._failing = False
        if old is not None:
            with contextlib.suppress(OSError):
                old.close()
        logger.info("events file %s reopened", self._target)

    def close(self) -> None:
        with self._lock:
            if self._owned is not None:
                with contextlib.suppress(OSError):
                    self._owned.close()
                self._owned = None
            self._stream = None
