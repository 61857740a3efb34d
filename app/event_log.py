"""Where published events go: an in-memory recorder (tests, status page) and a JSONL file.

The recorder is also the synchronisation point for tests and for the CLI: waiting for a
state is waiting on a condition the supervisor thread signals, never a sleep.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from messages.events import StateTransition, SupervisorEvent
from messages.states import State


class EventRecorder:
    """Thread-safe record of every event, with blocking waits on what has been seen."""

    def __init__(self) -> None:
        self._events: list[SupervisorEvent] = []
        self._condition = threading.Condition()

    def __call__(self, event: SupervisorEvent) -> None:
        with self._condition:
            self._events.append(event)
            self._condition.notify_all()

    def events(self) -> list[SupervisorEvent]:
        with self._condition:
            return list(self._events)

    def transitions(self) -> list[StateTransition]:
        return [e for e in self.events() if isinstance(e, StateTransition)]

    def states(self) -> list[State]:
        return [t.to_state for t in self.transitions()]

    @property
    def state(self) -> State:
        transitions = self.transitions()
        return transitions[-1].to_state if transitions else State.STARTUP

    def wait_for(self, predicate: Callable[[list[SupervisorEvent]], Any], timeout: float) -> Any:
        """Block until ``predicate(events)`` is truthy; returns it, or None on timeout."""
        with self._condition:
            result = self._condition.wait_for(lambda: predicate(self._events), timeout=timeout)
            return result or None

    def wait_for_state(
        self, state: State, timeout: float, *, after: int = 0
    ) -> StateTransition | None:
        """The first transition into ``state`` at index >= ``after`` in the event list."""

        def find(events: list[SupervisorEvent]) -> StateTransition | None:
            for event in events[after:]:
                if isinstance(event, StateTransition) and event.to_state is state:
                    return event
            return None

        return self.wait_for(find, timeout)

    def status(self) -> dict[str, Any]:
        transitions = self.transitions()
        last = transitions[-1] if transitions else None
        return {
            "state": (last.to_state if last else State.STARTUP).value,
            "since": last.timestamp.isoformat() if last else None,
            "last_transition": last.model_dump(mode="json") if last else None,
            "transitions": len(transitions),
            "events": len(self.events()),
        }


class JsonLinesSink:
    """``--events PATH``: one JSON object per event, flushed as it happens (``-`` is stdout)."""

    def __init__(self, target: str) -> None:
        self._lock = threading.Lock()
        self._owned: IO[str] | None = None
        if target == "-":
            self._stream: IO[str] = sys.stdout
        else:
            self._owned = Path(target).expanduser().open("a", encoding="utf-8")
            self._stream = self._owned

    def __call__(self, event: SupervisorEvent) -> None:
        line = event.model_dump_json()
        with self._lock:
            if self._stream.closed:
                return  # a late event after shutdown closed the file: nothing left to record it in
            self._stream.write(line + "\n")
            self._stream.flush()

    def close(self) -> None:
        with self._lock:
            if self._owned is not None:
                self._owned.close()
                self._owned = None
