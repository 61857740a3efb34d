"""Injectable monotonic time for deadlines, backoff and restart-intensity windows.

Everything in supervision that measures time asks a `Clock` instead of calling
`time.monotonic()` directly, so tests can drive time exactly with `ManualClock`
and never sleep: a 30 s restart window is checked in microseconds, and a
boundary such as "exactly `period` seconds later" is hit exactly, not roughly.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """A source of monotonic seconds; only differences between readings mean anything."""

    def monotonic(self) -> float:
        """Return the current monotonic time in seconds."""
        ...


class SystemClock:
    """The real monotonic clock.

    Monotonic rather than wall time because deadlines and restart windows must
    not jump when NTP or a person changes the system time.
    """

    __slots__ = ()

    def monotonic(self) -> float:
        """Return `time.monotonic()`."""
        return time.monotonic()

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that only moves when told to, for exact and instant tests.

    It is locked because in actor tests the test thread advances it while an
    actor thread reads it; a torn read-modify-write would make time go backwards.
    """

    __slots__ = ("_lock", "_now")

    def __init__(self, start: float = 0.0) -> None:
        if not math.isfinite(start):
            raise ValueError(f"ManualClock start must be finite, got {start!r}")
        self._lock = threading.Lock()
        self._now = float(start)

    def monotonic(self) -> float:
        """Return the current manual time."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by `seconds` and return the new time.

        Negative steps are refused: a monotonic clock that goes backwards would
        silently break every deadline and window computed from it.
        """
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(
                f"ManualClock can only advance by a finite amount >= 0, got {seconds!r}"
            )
        with self._lock:
            self._now += seconds
            return self._now

    def advance_to(self, when: float) -> float:
        """Move time forward to exactly `when` and return it.

        Exists so a scheduler can land on a timer's due time without the float
        rounding of `now + (when - now)`, keeping timer tests exact.
        """
        with self._lock:
            if not (math.isfinite(when) and when >= self._now):
                raise ValueError(
                    f"ManualClock cannot move to {when!r}: it is already at {self._now!r}"
                )
            self._now = float(when)
            return self._now

    def __repr__(self) -> str:
        return f"ManualClock(now={self.monotonic()!r})"
