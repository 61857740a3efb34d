"""What the orderbook stream tells its owner, how it retries, and what it counts.

Kept apart from the session so that an owner (the orderbook actor, a benchmark) can depend
on the stream's vocabulary without reading its machinery.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


# -- events --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StreamConnected:
    """The upgrade succeeded; ``attempt`` counts tries since the last synced session (1 = first)."""

    attempt: int


@dataclass(frozen=True, slots=True)
class StreamSynced:
    """Every market has its first snapshot since this (re)connect: the books are live."""

    market_count: int


@dataclass(frozen=True, slots=True)
class StreamGap:
    """Data was lost on a sid; its books are stale until fresh snapshots arrive.

    ``reason`` is ``"seq"`` (``received != expected``), ``"negative_level"`` (a delta took
    a level below zero) or ``"bad_frame"`` (a frame that consumed a seq was unreadable).
    """

    sid: int
    expected: int
    received: int
    reason: str = "seq"


@dataclass(frozen=True, slots=True)
class StreamResynced:
    """Every book of ``sid`` was rebuilt from fresh snapshots after a gap or terminal error."""

    sid: int


@dataclass(frozen=True, slots=True)
class StreamDisconnected:
    """A connection attempt or an open session ended; ``reason`` is one line."""

    reason: str
    will_retry: bool


@dataclass(frozen=True, slots=True)
class StreamTerminalError:
    """Kalshi killed a subscription (code 10 channel error, 25 buffer overflow); resubscribing."""

    code: int
    message: str


@dataclass(frozen=True, slots=True)
class StreamFailed:
    """The stream gave up for good (auth rejected, bad URL, attempts exhausted)."""

    reason: str


StreamEvent = (
    StreamConnected
    | StreamSynced
    | StreamGap
    | StreamResynced
    | StreamDisconnected
    | StreamTerminalError
    | StreamFailed
)


# -- configuration and counters ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """Exponential backoff with full jitter between connection attempts.

    ``max_attempts`` bounds consecutive failed attempts (a connect that failed, or a session
    that ended before every book synced); None retries forever. A session that synced
    resets the count, so a long-lived stream survives any number of separate outages.
    """

    min_delay: float = 0.25
    max_delay: float = 30.0
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if self.min_delay < 0 or self.max_delay < self.min_delay:
            raise ValueError("need 0 <= min_delay <= max_delay")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1 or None")

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait before the attempt after ``failures`` consecutive failures."""
        ceiling = min(self.max_delay, self.min_delay * 2 ** max(0, min(failures - 1, 30)))
        return rng.uniform(0.0, ceiling)


class StreamStats:
    """Counters written only by the stream thread; any thread may read them (ints are atomic)."""

    __slots__ = (
        "deltas_discarded",
        "deltas_received",
        "duplicates_dropped",
        "gaps",
        "ignored_frames",
        "last_frame_monotonic",
        "malformed_frames",
        "orphan_frames",
        "reconnects",
        "resubscribes",
        "resyncs",
        "snapshots_received",
        "terminal_errors",
    )

    def __init__(self) -> None:
        self.snapshots_received = 0
        self.deltas_received = 0
        """Deltas in sequence on a live sid (applied, or discarded while their book was stale)."""
        self.deltas_discarded = 0
        self.gaps = 0
        self.resyncs = 0
        """Sids whose books were all rebuilt after a gap or terminal error."""
        self.resubscribes = 0
        self.reconnects = 0
        self.malformed_frames = 0
        self.duplicates_dropped = 0
        self.terminal_errors = 0
        self.orphan_frames = 0
        """Frames for sids we no longer (or never) had, e.g. in flight during an unsubscribe."""
        self.ignored_frames = 0
        """Well-formed frames of types this stream does not handle."""
        self.last_frame_monotonic = 0.0
        """``time.monotonic()`` of the last frame, for staleness checks (0.0 = none yet)."""

    def as_dict(self) -> dict[str, int | float]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __repr__(self) -> str:
        return f"StreamStats({self.as_dict()})"
