"""Supervised children, whatever their kind: one incarnation each, reached through one port.

Stages and services (and whatever is supervised next) are started, told, asked, pinged and
stopped by this one table over the ``ChildHost`` port. What differs between kinds is data on
their spec (``kind``, ``failure_leaves_ready``) and the policy that reads a failure: the stage
recovery (ERROR, restart) or a service's own tracker. The table itself decides nothing about
restarts; it keeps what every policy needs to be right:

* **generations**: each start is a new incarnation; a reply or a timer of an older one is stale;
* **controls**: the armed ``crash_on_start`` faults outlive a restart, a simulated hang is
  released before its stop;
* **liveness**: one ping in flight per child, judged ``liveness_timeout`` later through the
  mailbox (``LivenessCheck``), never by blocking;
* **silent deaths**: a tell that finds the child gone queues ``ConfirmDead`` behind the
  ``ChildFailed`` a dying child sends, so its own reason wins.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from actors.controls import StageControls, StartFaults
from core.ports import ChildGoneError, ChildHost, Mailbox
from core.timers import ConfirmDead, LivenessCheck
from messages.base import Message
from supervision.clock import Clock
from supervision.config import RestartSettings
from supervision.policy import RestartTracker, RestartType, Strategy
from supervision.scheduler import Scheduler


class ChildSpec(Protocol):
    """What the table needs of any spec (``StageSpec``, ``ServiceSpec``)."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str:
        """``stage`` or ``service``: how one-line messages name it."""
        ...

    @property
    def restart_type(self) -> RestartType: ...


def restart_tracker(
    specs: Sequence[ChildSpec],
    restart: RestartSettings,
    *,
    strategy: Strategy,
    clock: Clock,
    rng: random.Random,
) -> RestartTracker:
    """The restart policy for a group of children, whatever their kind: each one's restart
    type (the configured override, else its spec's), the configured backoff and intensity,
    and ``strategy`` over the group in start order. The stages are one group (the
    configured strategy); each service is a group of its own (one for one)."""
    return RestartTracker(
        strategy=strategy,
        start_order=[s.name for s in specs],
        restart_types={
            s.name: RestartType(restart.restart_types.get(s.name, s.restart_type)) for s in specs
        },
        backoff=restart.backoff(),
        intensity=restart.intensity(),
        clock=clock,
        rng=rng,
    )


LINGER_RECHECK = 0.1
"""Seconds between looks at a hung incarnation a restart waits for (a cheap check). A
restart that only caught a stop in progress goes on at ``ChildStopped``, not at this."""


@dataclass
class _Incarnation:
    generation: int
    controls: StageControls
    kind: str


class ChildTable:
    """The running incarnation of each child, and the one ping in flight for each."""

    def __init__(
        self,
        host: ChildHost,
        *,
        mailbox: Mailbox,
        scheduler: Scheduler,
        liveness_timeout: float,
        start_faults: StartFaults | None = None,
    ) -> None:
        self._host = host
        self._mailbox = mailbox
        self._scheduler = scheduler
        self.liveness_timeout = liveness_timeout
        self._start_faults = start_faults or StartFaults()
        """Owned here so an armed ``crash_on_start`` survives the restart it causes."""
        self._running: dict[str, _Incarnation] = {}
        self._generations: dict[str, int] = {}
        self._pings: dict[str, LivenessCheck] = {}

    # -- starting ---------------------------------------------------------------------------
    def start(self, spec: ChildSpec, context: object) -> int:
        """A new incarnation of ``spec``; raises what its constructor raised (a failed start:
        the incarnation stays current so the failure is judged as its own)."""
        generation = self._generations.get(spec.name, 0) + 1
        self._generations[spec.name] = generation
        self._running.pop(spec.name, None)  # a restart goes to the end of the start order
        incarnation = _Incarnation(generation, StageControls(self._start_faults), spec.kind)
        self._running[spec.name] = incarnation
        self._pings.pop(spec.name, None)
        self._host.start(spec, context, generation, incarnation.controls)
        return generation

    def ensure(self, spec: ChildSpec, context: object) -> int:
        """The running incarnation's generation, or a new one if none runs."""
        running = self._running.get(spec.name)
        if running is not None and self._host.is_alive(spec.name):
            return running.generation
        return self.start(spec, context)

    # -- what runs --------------------------------------------------------------------------
    def generation(self, name: str) -> int | None:
        running = self._running.get(name)
        return None if running is None else running.generation

    def is_current(self, name: str, generation: int) -> bool:
        """Replies and timers of an earlier (or stopped) incarnation are stale."""
        return self.generation(name) == generation

    def names(self) -> list[str]:
        """Running children, in start order."""
        return list(self._running)

    def is_alive(self, name: str) -> bool:
        return name in self._running and self._host.is_alive(name)

    def lingering(self, name: str) -> bool:
        """An earlier incarnation still runs after its stop (hung in its own code): a new
        one started now would leave that thread behind for good, one per restart."""
        return self._host.lingering(name)

    # -- reaching them ----------------------------------------------------------------------
    def tell(self, name: str, message: object) -> bool:
        """Tell without waiting; a child found gone becomes a ``ConfirmDead`` for it."""
        running = self._running.get(name)
        if running is None:
            return False
        if self._host.tell(name, message):
            return True
        self._mailbox(ConfirmDead(name, running.generation))
        return False

    def ask(self, name: str, message: Message, timeout: float) -> Any:
        """Ask and wait (bounded); raises ``ChildGoneError`` / ``ChildUnresponsiveError``."""
        if name not in self._running:
            raise ChildGoneError(name)
        return self._host.ask(name, message, timeout=timeout)

    # -- liveness ---------------------------------------------------------------------------
    def ping(self, name: str) -> None:
        """Ping ``name`` unless its last ping is still being judged; the verdict comes back
        ``liveness_timeout`` later as a ``LivenessCheck`` through the mailbox."""
        running = self._running.get(name)
        if running is None or name in self._pings:
            return
        check = LivenessCheck(name, running.generation, self._host.ping(name))
        self._pings[name] = check
        mailbox = self._mailbox
        self._scheduler.call_later(
            self.liveness_timeout, lambda: mailbox(check), name=f"{running.kind}-liveness-check"
        )

    def judge(self, check: LivenessCheck) -> tuple[str, str] | None:
        """The failure a ping's time up shows (``Unresponsive``, ``ActorDied``), or None
        when it answered well or the check is stale."""
        if self._pings.get(check.child) is not check:
            return None
        del self._pings[check.child]
        running = self._running.get(check.child)
        if running is None or running.generation != check.generation:
            return None
        failure = check.probe.failure()
        if failure is not None and failure[0] == "Unresponsive":
            return (
                "Unresponsive",
                f"{check.child} {running.kind} did not answer a ping within "
                f"{self.liveness_timeout:g}s",
            )
        return failure

    def forget_pings(self) -> None:
        """Pings in flight are judged no more (READY left: liveness is READY's)."""
        self._pings.clear()

    # -- stopping ---------------------------------------------------------------------------
    def stop(self, names: Iterable[str]) -> None:
        """Stop these children in the given order: release any simulated hang first, then
        hand the host the ordered list (it never blocks the caller on a stuck child)."""
        stopping: list[str] = []
        for name in names:
            running = self._running.pop(name, None)
            self._pings.pop(name, None)
            if running is None:
                continue
            running.controls.release.set()
            stopping.append(name)
        if stopping:
            self._host.stop(stopping)

    def ordered(self, names: Iterable[str], order: Sequence[str]) -> list[str]:
        """``names`` in reverse ``order`` (later children depend on earlier ones)."""
        return sorted(
            set(names), key=lambda n: order.index(n) if n in order else -1, reverse=True
        )
