"""The handles a supervisor keeps on each child incarnation (stage or service): pykka-free.

Why apart from the actor bases: the decision core creates these for every start, and the
core must not import pykka (an import-linter contract).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class StartFaults:
    """Armed ``crash_on_start`` faults; owned by the supervisor so they survive a restart."""

    _armed: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def arm(self, stage: str) -> None:
        with self._lock:
            self._armed.add(stage)

    def consume(self, stage: str) -> bool:
        with self._lock:
            if stage in self._armed:
                self._armed.discard(stage)
                return True
            return False


@dataclass(frozen=True)
class StageControls:
    """Handles the supervisor keeps on one incarnation of a stage actor.

    ``release`` frees an actor stuck in an injected ``hang`` so it can be stopped: a
    real hung thread cannot be interrupted in Python, so the simulated one must be.
    """

    start_faults: StartFaults
    release: threading.Event = field(default_factory=threading.Event)
