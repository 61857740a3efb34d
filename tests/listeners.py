"""A listener a test hands to code that reports events from its own threads.

One class for every such test (the private channels', the trading connection's): it records
each event under a lock and lets the test *wait* for what it expects, by type and count or
by any condition over everything heard so far, instead of sleeping and hoping.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from tests.harness import WAIT

E = TypeVar("E")


class Events:
    """A thread-safe recorder of events of any kind."""

    def __init__(self) -> None:
        self.events: list[object] = []
        self._changed = threading.Condition()

    def __call__(self, event: object) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def of(self, kind: type[E]) -> list[E]:
        with self._changed:
            return [e for e in self.events if isinstance(e, kind)]

    def wait_for(self, kind: type[Any], count: int = 1, timeout: float = WAIT) -> bool:
        """Until ``count`` events of ``kind`` have arrived (False after ``timeout``)."""
        return self.wait_until(lambda events: sum(isinstance(e, kind) for e in events) >= count,
                               timeout)

    def wait_until(self, test: Callable[[list[object]], bool], timeout: float = WAIT) -> bool:
        """Until ``test(events so far)`` holds (False after ``timeout``)."""
        with self._changed:
            return self._changed.wait_for(lambda: test(self.events), timeout)
