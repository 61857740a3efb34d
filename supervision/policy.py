"""Restart policy: what to restart, when, and when to give up.

pykka gives an actor system no supervision, so these are the decisions an OTP
supervisor or an Akka `BackoffSupervisor` would make, as pure functions and one
small state holder. They take time from a `Clock` and jitter from a
`random.Random`, so a test with a `ManualClock` and a seeded `Random` can
predict every decision exactly; the supervisor actor only carries them out.

Semantics, and where they come from:

* Restart types (OTP): permanent children are always restarted, transient ones
  only after an abnormal exit (crash, hang, missed deadline), temporary ones
  never.
* Strategies (OTP): `one_for_one` restarts the failed child; `rest_for_one`
  also restarts every child started after it, because they depend on it
  (orderbook -> trading -> sync).
* Intensity (OTP): more than `max_restarts` restarts within `period` seconds
  means the fault is not transient; the restart that would exceed the limit is
  refused and the supervisor gives up (the caller shuts down).
* Backoff (Akka): exponential delay with jitter, reset once a child has stayed
  healthy for `reset_after` seconds.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from supervision.clock import Clock

__all__ = [
    "BackoffPolicy",
    "IntensityPolicy",
    "RestartDecision",
    "RestartRecord",
    "RestartTracker",
    "RestartType",
    "Strategy",
    "children_to_restart",
    "should_restart",
]


class RestartType(StrEnum):
    """When a child that exited is started again (OTP child restart types)."""

    PERMANENT = "permanent"
    TRANSIENT = "transient"
    TEMPORARY = "temporary"


class Strategy(StrEnum):
    """Which children a failure takes down with it (OTP supervisor strategies)."""

    ONE_FOR_ONE = "one_for_one"
    REST_FOR_ONE = "rest_for_one"


def should_restart(restart_type: RestartType, *, abnormal: bool) -> bool:
    """Whether a child of `restart_type` is restarted after this exit.

    `abnormal` is keyword-only because a bare True/False at the call site would
    not say which kind of exit it means.
    """
    restart_type = RestartType(restart_type)
    if restart_type is RestartType.PERMANENT:
        return True
    if restart_type is RestartType.TRANSIENT:
        return abnormal
    if restart_type is RestartType.TEMPORARY:
        return False
    raise ValueError(f"unknown restart type {restart_type!r}")


def _check_start_order(start_order: Sequence[str]) -> None:
    if len(set(start_order)) != len(start_order):
        duplicates = sorted({c for c in start_order if start_order.count(c) > 1})
        raise ValueError(f"start order names a child more than once: {duplicates}")


def children_to_restart(
    strategy: Strategy, start_order: Sequence[str], failed: str
) -> tuple[str, ...]:
    """The children to restart when `failed` fails, in start order."""
    strategy = Strategy(strategy)
    _check_start_order(start_order)
    if failed not in start_order:
        raise ValueError(f"unknown child {failed!r}; known children: {list(start_order)}")
    if strategy is Strategy.ONE_FOR_ONE:
        return (failed,)
    if strategy is Strategy.REST_FOR_ONE:
        return tuple(start_order[start_order.index(failed) :])
    raise ValueError(f"unknown strategy {strategy!r}")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Akka-style exponential backoff with jitter.

    Jitter keeps children that failed together (e.g. on a network blip) from
    reconnecting in lockstep and failing together again.
    """

    min_backoff: float = 0.1
    max_backoff: float = 10.0
    random_factor: float = 0.2
    reset_after: float = 30.0

    def __post_init__(self) -> None:
        if not (
            _is_number(self.min_backoff)
            and _is_number(self.max_backoff)
            and math.isfinite(self.max_backoff)
            and 0 < self.min_backoff <= self.max_backoff
        ):
            raise ValueError(
                "backoff needs finite 0 < min_backoff <= max_backoff, got "
                f"min_backoff={self.min_backoff!r} max_backoff={self.max_backoff!r}"
            )
        if not (_is_number(self.random_factor) and 0 <= self.random_factor <= 1):
            raise ValueError(f"random_factor must be within [0, 1], got {self.random_factor!r}")
        if not (_is_number(self.reset_after) and self.reset_after > 0):
            raise ValueError(f"reset_after must be > 0 seconds, got {self.reset_after!r}")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before restart number `attempt` (0 is the first restart).

        `min(max_backoff, min_backoff * 2**attempt) * (1 + random_factor * r)`.
        Draws exactly one `rng.random()` even when `random_factor` is 0, so the
        random stream, and therefore every later delay, does not depend on it.
        """
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
            raise ValueError(f"attempt must be an int >= 0, got {attempt!r}")
        try:
            # ldexp is exactly min_backoff * 2**attempt, but raises instead of
            # building a huge int or overflowing to inf for absurd attempts.
            raw = math.ldexp(self.min_backoff, attempt)
        except OverflowError:
            raw = math.inf
        return min(self.max_backoff, raw) * (1 + self.random_factor * rng.random())


@dataclass(frozen=True, slots=True)
class IntensityPolicy:
    """OTP restart intensity: at most `max_restarts` restarts within `period` seconds.

    `max_restarts=0` means never restart: the first failure gives up.
    """

    max_restarts: int = 5
    period: float = 30.0

    def __post_init__(self) -> None:
        if (
            isinstance(self.max_restarts, bool)
            or not isinstance(self.max_restarts, int)
            or self.max_restarts < 0
        ):
            raise ValueError(f"max_restarts must be an int >= 0, got {self.max_restarts!r}")
        if not (_is_number(self.period) and self.period > 0):
            raise ValueError(f"period must be > 0 seconds, got {self.period!r}")


@dataclass(frozen=True, slots=True)
class RestartDecision:
    """What the supervisor must do about one failure; immutable so it can be logged as an event.

    * restart: start `children` again after `delay` seconds.
    * not restart and not give_up: drop the failed child (temporary, or
      transient that stopped normally); `children` is empty.
    * give_up: the restart intensity is exhausted; shut everything down.

    `attempt` is the failed child's consecutive restart number (1 for the first
    restart); 0 when no restart was considered.
    """

    restart: bool
    children: tuple[str, ...]
    attempt: int
    delay: float
    give_up: bool
    reason: str


class RestartRecord(NamedTuple):
    """One granted restart, for observability: (time, child, attempt, delay)."""

    time: float
    child: str
    attempt: int
    delay: float


class RestartTracker:
    """Turns child failures into `RestartDecision`s for one supervisor.

    Not thread-safe: it belongs to the supervisor actor, which handles one
    message at a time.

    Restarts are counted against the intensity window at decision time (the
    failure), not when the delayed restart happens, so the window counts
    failures the supervisor agreed to absorb. The window is half-open: a
    restart exactly `period` seconds ago no longer counts.

    Giving up is final: every later `on_failure` gives up again, as an OTP
    supervisor that exceeded its intensity is itself gone.
    """

    def __init__(
        self,
        strategy: Strategy,
        start_order: Sequence[str],
        restart_types: Mapping[str, RestartType],
        backoff: BackoffPolicy,
        intensity: IntensityPolicy,
        clock: Clock,
        rng: random.Random,
        *,
        history_limit: int = 1000,
    ) -> None:
        _check_start_order(start_order)
        unknown = sorted(set(restart_types) - set(start_order))
        if unknown:
            raise ValueError(f"restart types given for children not in start order: {unknown}")
        if history_limit < 1:
            raise ValueError(f"history_limit must be >= 1, got {history_limit!r}")
        self._strategy = Strategy(strategy)
        self._start_order: list[str] = list(start_order)
        # OTP's default restart type is permanent; naming every child is not required.
        self._restart_types = {
            child: RestartType(restart_types.get(child, RestartType.PERMANENT))
            for child in start_order
        }
        self._backoff = backoff
        self._intensity = intensity
        self._clock = clock
        self._rng = rng
        self._attempts: dict[str, int] = dict.fromkeys(start_order, 0)
        self._healthy_since: dict[str, float] = {}
        self._window: deque[float] = deque()
        self._restart_count = 0
        # Bounded so a supervisor that runs for weeks does not grow without limit.
        self._history: deque[RestartRecord] = deque(maxlen=history_limit)
        self._gave_up: str | None = None

    @property
    def start_order(self) -> tuple[str, ...]:
        """The supervised children, in start order, minus those dropped."""
        return tuple(self._start_order)

    @property
    def restart_count(self) -> int:
        """Total restarts granted since construction."""
        return self._restart_count

    @property
    def history(self) -> tuple[RestartRecord, ...]:
        """The most recent granted restarts (up to `history_limit`), oldest first."""
        return tuple(self._history)

    @property
    def gave_up(self) -> bool:
        """True once the intensity was exceeded."""
        return self._gave_up is not None

    def on_started(self, child: str) -> None:
        """Record that `child` became healthy now; starts its `reset_after` clock."""
        self._check_known(child)
        self._healthy_since[child] = self._clock.monotonic()

    def on_failure(self, child: str, *, abnormal: bool = True) -> RestartDecision:
        """Decide what to do about `child` exiting (abnormally unless told otherwise)."""
        self._check_known(child)
        now = self._clock.monotonic()
        if self._gave_up is not None:
            return RestartDecision(
                restart=False,
                children=(),
                attempt=0,
                delay=0.0,
                give_up=True,
                reason=f"already gave up: {self._gave_up}",
            )

        healthy_since = self._healthy_since.pop(child, None)
        if healthy_since is not None and now - healthy_since >= self._backoff.reset_after:
            self._attempts[child] = 0

        restart_type = self._restart_types[child]
        if not should_restart(restart_type, abnormal=abnormal):
            self._drop(child)
            exit_kind = "abnormally" if abnormal else "normally"
            return RestartDecision(
                restart=False,
                children=(),
                attempt=0,
                delay=0.0,
                give_up=False,
                reason=f"{restart_type} child {child!r} exited {exit_kind}: not restarted",
            )

        attempt = self._attempts[child] + 1
        period = self._intensity.period
        while self._window and now - self._window[0] >= period:
            self._window.popleft()
        if len(self._window) + 1 > self._intensity.max_restarts:
            self._gave_up = (
                f"restart of {child!r} would be {len(self._window) + 1} within {period}s, "
                f"exceeding max_restarts={self._intensity.max_restarts}"
            )
            return RestartDecision(
                restart=False,
                children=(),
                attempt=attempt,
                delay=0.0,
                give_up=True,
                reason=self._gave_up,
            )

        children = children_to_restart(self._strategy, self._start_order, child)
        delay = self._backoff.delay(attempt - 1, self._rng)
        self._attempts[child] = attempt
        self._window.append(now)
        self._restart_count += 1
        self._history.append(RestartRecord(now, child, attempt, delay))
        for restarted in children:
            # Everything restarted is down until it reports started again.
            self._healthy_since.pop(restarted, None)
        return RestartDecision(
            restart=True,
            children=children,
            attempt=attempt,
            delay=delay,
            give_up=False,
            reason=(
                f"{self._strategy} restart of {child!r} (attempt {attempt}) "
                f"in {delay:.3f}s: {', '.join(children)}"
            ),
        )

    def drop(self, child: str) -> None:
        """Forget a child the supervisor removed (e.g. sync, dropped along with trading).

        A dropped child must not be restarted later as a rest_for_one sibling. Idempotent.
        """
        if child in self._restart_types:
            self._drop(child)

    def _drop(self, child: str) -> None:
        self._start_order.remove(child)
        del self._restart_types[child]
        del self._attempts[child]

    def _check_known(self, child: str) -> None:
        if child not in self._restart_types:
            raise ValueError(f"unknown child {child!r}; known children: {self._start_order}")
