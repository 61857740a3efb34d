"""Signals a command waits for, noted by handlers that take no lock.

Why no lock: CPython runs a Python-level signal handler on the main thread, between two
bytecodes of whatever that thread is doing at the time. A handler that calls
``threading.Event.set()`` takes the event's internal lock; when the signal lands while the
main thread itself holds that lock (inside ``Event.wait``, where a command's main loop spends
its life, or ``Event.clear``), the handler waits for a lock its own thread holds: the main
thread never runs again, SIGINT never ends the process and ``control.json`` stays behind
(issue 17). So a handler here only adds one to a counter; the main loop reads the counters
and waits on something no handler touches.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any, Self

__all__ = ["SignalCounter"]

_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class SignalCounter:
    """``with SignalCounter(SIGINT, SIGTERM) as signals:`` counts each signal from entry to
    exit (``signals.count(SIGINT)``), and puts the previous handlers back on exit.

    Only the handler writes a count and only the main thread reads them, so no update is
    lost to a race, and nothing is locked in between.
    """

    def __init__(self, *signums: int) -> None:
        self._counts: dict[int, int] = dict.fromkeys(signums, 0)
        self._previous: dict[int, _Handler] = {}

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self._counts[signum] += 1

    def count(self, signum: int) -> int:
        """How many times ``signum`` arrived since entry."""
        return self._counts[signum]

    def any(self, *signums: int) -> bool:
        """Whether any of ``signums`` (default: every counted one) arrived since entry."""
        return any(self._counts[s] for s in signums or self._counts)

    def __enter__(self) -> Self:
        for signum in self._counts:
            self._previous[signum] = signal.signal(signum, self._note)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            # None: the previous handler was not installed from Python; the default stands in.
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        self._previous.clear()
