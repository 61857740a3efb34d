"""The service policy on its own, on a manual clock: backoff, intensity, drops, hangs, order.

The host is a plain recorder (the core's other decisions are tested the same way); the
real actors are exercised in ``test_services.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from actors.base import StageControls
from actors.service import ServiceActor, ServiceContext, ServiceSpec
from core.services import ServiceRestartDue, ServiceSupervisor
from core.timers import LivenessCheck
from kalshi_api.book_changes import BookChangeFeed
from messages.events import Event
from messages.metadata import ReadyMetadata
from messages.results import ChildFailed
from messages.services import (
    ServiceDropped,
    ServiceFailureReported,
    ServiceRestarted,
    ServiceStarted,
    SystemNotReady,
    SystemReady,
)
from messages.states import State
from supervision.config import RestartSettings
from supervision.policy import RestartType
from supervision.scheduler import ManualScheduler

READY = ReadyMetadata(
    markets_connected=1,
    snapshots_received=1,
    deltas_received=0,
    connection_established=True,
    first_snapshot_received=True,
    environment="local",
)


class Noop(ServiceActor):
    """Never started for real here: the host only records."""


class Ping:
    """A ping in flight; whether it is answered is read when it is judged."""

    def __init__(self, host: Host) -> None:
        self._host = host

    def answered(self) -> bool:
        return self._host.answers

    def failure(self) -> tuple[str, str] | None:
        return None if self._host.answers else ("Unresponsive", "no answer")


class Host:
    """Records what the policy asks of the actors; ``answers`` says whether pings return."""

    def __init__(self) -> None:
        self.log: list[tuple[str, ...]] = []
        self.told: list[tuple[str, object]] = []
        self.alive: dict[str, bool] = {}
        self.answers = True

    def start(
        self, spec: ServiceSpec, context: ServiceContext, generation: int, controls: StageControls
    ) -> None:
        self.log.append(("start", spec.name, str(generation)))
        self.alive[spec.name] = True

    def tell(self, name: str, message: object) -> bool:
        if not self.alive.get(name):
            return False
        self.told.append((name, message))
        return True

    def is_alive(self, name: str) -> bool:
        return self.alive.get(name, False)

    def ask(self, name: str, message: object, timeout: float) -> object:
        raise AssertionError("the service policy never asks")

    def ping(self, name: str) -> Ping:
        self.log.append(("ping", name))
        return Ping(self)

    def lingering(self, name: str) -> bool:
        return False

    def stop(self, names: Sequence[str]) -> None:
        for name in names:
            self.log.append(("stop", name))
            self.alive[name] = False


class Rig:
    def __init__(self, *specs: ServiceSpec, **restart: Any) -> None:
        settings = {"min_backoff": 1.0, "max_backoff": 4.0, "random_factor": 0.0, **restart}
        self.scheduler = ManualScheduler()
        self.host = Host()
        self.events: list[Event] = []
        self.mail: list[object] = []
        self.services = ServiceSupervisor(
            specs or (ServiceSpec("alpha", Noop), ServiceSpec("beta", Noop)),
            restart=RestartSettings(**settings),
            scheduler=self.scheduler,
            mailbox=self.mail.append,
            publish=self.events.append,
            host=self.host,
            feed=BookChangeFeed(),
            liveness_timeout=0.5,
            reserved=["orderbook"],
        )

    def advance(self, seconds: float) -> None:
        """Move the clock and deliver what the timers mailed, as the supervisor's thread does."""
        self.scheduler.advance(seconds)
        while self.mail:
            assert self.services.handle(self.mail.pop(0))

    def crash(self, name: str, *, abnormal: bool = True) -> None:
        generation = self.services.generation(name)
        assert generation is not None
        self.services.handle(
            ChildFailed(
                child=name,
                generation=generation,
                error_type="Boom",
                reason="x",
                abnormal=abnormal,
            )
        )

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def test_ready_when_first_starts_every_service_in_order_and_tells_each() -> None:
    rig = Rig()
    rig.services.on_ready(READY)
    assert [e for e in rig.host.log if e[0] == "start"] == [
        ("start", "alpha", "1"),
        ("start", "beta", "1"),
    ]
    assert [e.service for e in rig.of(ServiceStarted)] == ["alpha", "beta"]
    assert [(n, type(m)) for n, m in rig.host.told] == [
        ("alpha", SystemReady),
        ("beta", SystemReady),
    ]
    rig.services.on_not_ready(State.ERROR, "orderbook failed")
    rig.services.on_ready(READY)
    assert [e for e in rig.host.log if e[0] == "start"] == [
        ("start", "alpha", "1"),
        ("start", "beta", "1"),
    ]  # told again, never restarted
    assert [type(m) for _, m in rig.host.told[2:]] == [
        SystemNotReady,
        SystemNotReady,
        SystemReady,
        SystemReady,
    ]


def test_failure_when_restartable_waits_its_backoff_then_restarts_and_retells_ready() -> None:
    rig = Rig()
    rig.services.on_ready(READY)
    rig.crash("alpha")
    (failed,) = rig.of(ServiceFailureReported)
    assert failed.next_restart_in_ms == 1000
    rig.advance(0.99)
    assert rig.of(ServiceRestarted) == []
    rig.advance(0.01)
    assert [(e.service, e.attempt) for e in rig.of(ServiceRestarted)] == [("alpha", 1)]
    assert ("start", "alpha", "2") in rig.host.log
    assert rig.host.told[-1] == ("alpha", SystemReady(metadata=READY))
    rig.crash("alpha")
    assert rig.of(ServiceFailureReported)[-1].next_restart_in_ms == 2000  # backoff doubles


def test_intensity_when_exhausted_drops_only_that_service() -> None:
    rig = Rig(max_restarts=2, period=60.0)
    rig.services.on_ready(READY)
    for _ in range(2):
        rig.crash("alpha")
        rig.advance(5.0)
    rig.crash("alpha")
    (dropped,) = rig.of(ServiceDropped)
    assert dropped.service == "alpha"
    assert dropped.reason.startswith("restart intensity exhausted")
    rig.advance(60.0)
    assert rig.services.running() == ("beta",)
    assert rig.services.names == ("beta",)
    rig.crash("beta")  # beta has a budget of its own
    rig.advance(5.0)
    assert rig.services.running() == ("beta",)


def test_transient_service_when_it_stops_normally_is_dropped_not_restarted() -> None:
    rig = Rig(ServiceSpec("alpha", Noop, restart_type=RestartType.TRANSIENT))
    rig.services.on_ready(READY)
    rig.crash("alpha", abnormal=False)
    assert [e.service for e in rig.of(ServiceDropped)] == ["alpha"]
    rig.advance(10.0)
    assert rig.of(ServiceRestarted) == []


def test_ping_when_unanswered_while_ready_is_a_hang() -> None:
    rig = Rig()
    rig.services.on_ready(READY)
    rig.host.answers = False
    rig.services.probe_liveness()
    rig.advance(0.5)
    failures = rig.of(ServiceFailureReported)
    assert [(f.service, f.error_type) for f in failures] == [
        ("alpha", "Unresponsive"),
        ("beta", "Unresponsive"),
    ]


def test_stop_all_when_a_restart_is_pending_stops_in_reverse_and_cancels_it() -> None:
    rig = Rig(ServiceSpec("alpha", Noop), ServiceSpec("beta", Noop), ServiceSpec("gamma", Noop))
    rig.services.on_ready(READY)
    rig.crash("beta")
    rig.services.stop_all()
    stops = [e[1] for e in rig.host.log if e[0] == "stop"]
    assert stops == ["beta", "gamma", "alpha"]  # the crash's stop, then the rest in reverse
    rig.advance(10.0)
    assert rig.of(ServiceRestarted) == []
    stale = ServiceRestartDue("beta", 0)
    assert rig.services.handle(stale)  # handled, and ignored
    assert rig.services.handle(LivenessCheck("gamma", 1, Ping(rig.host)))


def test_failure_when_from_an_older_incarnation_is_ignored() -> None:
    rig = Rig()
    rig.services.on_ready(READY)
    rig.crash("alpha")
    rig.advance(1.0)
    rig.services.handle(
        ChildFailed(child="alpha", generation=1, error_type="Late", reason="old")
    )
    assert len(rig.of(ServiceFailureReported)) == 1
