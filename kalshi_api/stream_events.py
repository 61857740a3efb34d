"""What the orderbook stream tells its owner, how a WebSocket transport retries, and what
the stream counts (``StreamConnected``, ``StreamDisconnected`` and ``StreamFailed`` come
from :mod:`kalshi_api.ws_transport` and reach every client on it, the private channels too).

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
    """A connection attempt or an open session ended; ``reason`` is one line.

    ``retry_in`` is the paced delay before the next attempt (0.0 when not retrying), so an
    owner (and a test) can see the backoff grow instead of inferring it from timing.
    ``refused_status`` is the HTTP status when the server refused the upgrade (a 503 during
    an exchange pause, say), None for every other ending.
    """

    reason: str
    will_retry: bool
    retry_in: float = 0.0
    refused_status: int | None = None


@dataclass(frozen=True, slots=True)
class StreamMarketDropped:
    """A market left the subscription for good: it is closed, settled, determined or unknown
    (``reason`` says which and how we learned it); the other markets go on."""

    ticker: str
    reason: str


@dataclass(frozen=True, slots=True)
class StreamStale:
    """A sid went silent for longer than the staleness bound and did not answer a probe;
    its books are stale and it is being replaced (a reconnect follows if that fails too)."""

    sid: int
    silent_for: float


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
    | StreamMarketDropped
    | StreamStale
)


# -- configuration and counters ------------------------------------------------------------
DEFAULT_MAX_RECONNECT_DELAY = 30.0
"""Cap of the reconnect backoff (seconds): tens of seconds, so a flapping or refusing exchange
sees at most a couple of attempts a minute once the backoff has grown."""


DEFAULT_HEALTHY_AFTER = 5.0
"""Seconds a session that delivered data must stay up to reset the backoff (see
:class:`ReconnectPolicy`)."""


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """Exponential backoff with jitter between connection attempts, paced across sessions.

    Why it is shaped like this: an exchange that drops every session shortly after it syncs,
    or refuses the upgrade with 429, must not get a reconnect storm. So:

    * a session counts as **healthy** (and resets the backoff) when it delivered what it
      was for (the orderbook: every snapshot, then data) and stayed up ``healthy_after``
      seconds; a shorter one is a failure like any other, so the backoff keeps growing
      across sessions that die as soon as they sync. The bound is short (default
      :data:`DEFAULT_HEALTHY_AFTER`) because data, not age, is what proves a session: at
      30 s, ordinary 17 s sessions after a storm (a compressed week) all counted as
      failures, and the storm's grown backoff outlasted the next ordinary drop's heal
      timeout. A storm of sessions that each live just over the bound still meets at most
      one attempt per ``healthy_after`` seconds;
    * the delay doubles per consecutive failure from ``min_delay`` up to ``max_delay``
      (default :data:`DEFAULT_MAX_RECONNECT_DELAY`), with "equal" jitter (half fixed, half
      random) so clients spread out but never retry at once;
    * a 429 on the upgrade (connection limit reached) waits at least ``throttled_delay``
      (jittered, still capped by ``max_delay``) and counts as two failures.

    ``max_attempts`` bounds consecutive failures; None retries forever.
    """

    min_delay: float = 0.25
    max_delay: float = DEFAULT_MAX_RECONNECT_DELAY
    max_attempts: int | None = None
    healthy_after: float = DEFAULT_HEALTHY_AFTER
    throttled_delay: float = 5.0

    def __post_init__(self) -> None:
        if self.min_delay < 0 or self.max_delay < self.min_delay:
            raise ValueError("need 0 <= min_delay <= max_delay")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1 or None")
        if self.healthy_after < 0 or self.throttled_delay < 0:
            raise ValueError("healthy_after and throttled_delay must be >= 0")

    def delay(self, failures: int, rng: random.Random, *, throttled: bool = False) -> float:
        """Seconds to wait before the attempt after ``failures`` consecutive failures."""
        ceiling = min(self.max_delay, self.min_delay * 2 ** max(0, min(failures - 1, 30)))
        if throttled:
            ceiling = min(self.max_delay, max(ceiling, 2 * self.throttled_delay))
        return rng.uniform(ceiling / 2, ceiling)


class StreamStats:
    """Counters written only by the stream thread; any thread may read them (ints are atomic)."""

    __slots__ = (
        "deltas_discarded",
        "deltas_received",
        "deltas_replayed",
        "duplicates_dropped",
        "error_frames",
        "gaps",
        "ignored_frames",
        "last_frame_monotonic",
        "malformed_frames",
        "markets_dropped",
        "orphan_frames",
        "reconnects",
        "resubscribes",
        "resyncs",
        "snapshots_received",
        "stale",
        "stale_snapshots",
        "subscribe_splits",
        "terminal_errors",
    )

    def __init__(self) -> None:
        self.snapshots_received = 0
        self.deltas_received = 0
        """Deltas in sequence on a live sid (applied, or discarded while their book was stale)."""
        self.deltas_discarded = 0
        self.deltas_replayed = 0
        """Thrown-away deltas applied after a late repair reply (see the core's ``held``)."""
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
        self.error_frames = 0
        """``error`` frames from the exchange (each code is logged once; see the core)."""
        self.markets_dropped = 0
        """Markets removed for good (closed, settled, determined or unknown)."""
        self.stale = 0
        """Sids found silent beyond the staleness bound that then failed a probe."""
        self.stale_snapshots = 0
        """``get_snapshot`` replies older than deltas already thrown away (not applied)."""
        self.subscribe_splits = 0
        """Subscribe chunks split in two after an error 26 (or a refusal to isolate)."""
        self.last_frame_monotonic = 0.0
        """``time.monotonic()`` of the last frame, for staleness checks (0.0 = none yet)."""

    def as_dict(self) -> dict[str, int | float]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __repr__(self) -> str:
        return f"StreamStats({self.as_dict()})"
