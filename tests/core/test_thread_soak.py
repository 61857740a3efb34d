"""Threads and lifetimes: restarts of every kind leave no thread behind, and shutdown ends all.

Why a soak: a thread leaked per restart (a hung child's stop abandoned, a background read
never joined) is invisible in one restart and fatal after a week of them. Every kind of
restart runs here in turn (crash and hang of each stage and of a service) on the embedded
exchange; the thread count while READY must come back, after each restart, to the count at
the first READY plus one (a restarted stream checks its markets over REST on its loop's one
worker thread, which the first stream, given fresh facts, never needed), and after shutdown
to the count before the supervisor started. Counts are awaited with a bounded condition
loop: threads end a moment after the work that owned them. A hang in a child's own code
(which no stop can interrupt) must cost one thread, not one per restart: the restart of a
stage or a service waits for the hung incarnation to end.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import pykka
import pytest

from actors.base import StageActor
from actors.registry import DEFAULT_STAGES
from actors.service import ServiceActor, ServiceSpec
from actors.stage_spec import StageSpec
from kalshi_sim.exchange import EmbeddedExchange
from messages.base import Message
from messages.events import (
    ServiceRestarted,
    ServiceStarted,
    StageFailureReported,
    StateTransition,
    SupervisorEvent,
)
from messages.faults import InjectFault
from messages.metadata import KalshiDataSyncMetadata
from messages.states import State
from supervision.config import RestartSettings
from tests.harness import WAIT, live_actor_count, make_config, running_supervisor, start_exchange

pytestmark = pytest.mark.slow  # a soak, and hung children waited out: seconds each

SETTLE = 15.0
"""Bound on waiting for threads to end (each ends within its own stop or read bound)."""

FAULTS: tuple[tuple[str, str], ...] = (
    ("orderbook", "crash"),
    ("trading", "crash"),
    ("sync", "crash"),
    ("watch", "crash"),
    ("orderbook", "hang"),
    ("trading", "hang"),
    ("sync", "hang"),
    ("watch", "hang"),
)
STAGES = {"orderbook", "trading", "sync"}


class Watch(ServiceActor):
    """A service that does nothing: only its supervision is under test."""


@pytest.fixture()
def exchange() -> Iterator[EmbeddedExchange]:
    exchange = start_exchange(markets=4, delta_rate=100.0)
    yield exchange
    exchange.stop()


def wait_count(predicate: Callable[[int], bool], timeout: float = SETTLE) -> int:
    """The live thread count once ``predicate`` holds, or the last count at the deadline."""
    deadline = time.monotonic() + timeout
    count = threading.active_count()
    while not predicate(count) and time.monotonic() < deadline:
        done = threading.Event()
        done.wait(0.05)  # a bounded poll: no thread-exit event exists to wait on
        count = threading.active_count()
    return count


def restarted(target: str) -> Callable[[list[SupervisorEvent]], bool]:
    """The target failed and came back: READY again for a stage, restarted for a service."""

    def check(events: list[SupervisorEvent]) -> bool:
        if target in STAGES:
            failed = [
                i
                for i, e in enumerate(events)
                if isinstance(e, StageFailureReported) and e.stage == target
            ]
            return bool(failed) and any(
                isinstance(e, StateTransition) and e.to_state is State.READY
                for e in events[failed[0] :]
            )
        return any(isinstance(e, ServiceRestarted) and e.service == target for e in events)

    return check


def test_soak_when_every_kind_of_child_restarts_thread_count_returns_to_start(
    exchange: EmbeddedExchange,
) -> None:
    config = make_config(
        exchange,
        liveness_interval=0.1,
        liveness_timeout=0.3,
        restart=RestartSettings(
            min_backoff=0.01, max_backoff=0.02, random_factor=0.0, max_restarts=50, period=60
        ),
    )
    actors_before = live_actor_count()
    before = wait_count(lambda count: True, timeout=0)
    with running_supervisor(exchange, config, services=[ServiceSpec("watch", Watch)]) as sup:
        assert sup.wait_for_state(State.READY, WAIT)
        assert sup.recorder.wait_for(  # ours, not the order gateway's (it starts first)
            lambda events: any(
                isinstance(e, ServiceStarted) and e.service == "watch" for e in events
            ),
            WAIT,
        )
        ready = wait_count(lambda count: True, timeout=0)
        steady = ready + 1  # the restarted stream's one REST-check worker (see the docstring)
        for target, fault in FAULTS:
            after = sup.recorder.last_id
            reply = sup.inject(InjectFault(target=target, fault=fault))
            assert reply["accepted"], reply
            assert sup.recorder.wait_for(restarted(target), WAIT, after=after), (target, fault)
            assert sup.state is State.READY or sup.wait_for_state(State.READY, WAIT, after=after)
            settled = wait_count(lambda count: count <= steady)
            assert settled <= steady, (target, fault, settled, steady)
    assert sup.state is State.SHUTDOWN
    assert live_actor_count() == actors_before
    after_shutdown = wait_count(lambda count: count <= before)
    assert after_shutdown <= before, (before, after_shutdown)


RELEASE = threading.Event()
"""Lets a ``Stuck`` service's hung callbacks return (the supervisor's own release cannot)."""


class Stuck(ServiceActor):
    """Hangs in its own code on a timer tick, deaf to the supervisor's stop, until released."""

    def setup(self) -> None:
        self.call_every(0.05, lambda: RELEASE.wait(SETTLE))


class Seen(logging.Handler):
    """Sets ``event`` when a record containing ``text`` is logged."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


def stuck_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("Stuck-") and t.is_alive())


def test_restart_when_a_service_hangs_in_its_own_code_waits_for_it_and_leaks_no_thread(
    exchange: EmbeddedExchange,
) -> None:
    """A hang the supervisor cannot release (the service's own code) must not cost a thread
    per restart: the restart waits until the hung incarnation ends, then happens."""
    RELEASE.clear()
    config = make_config(
        exchange,
        liveness_interval=0.1,
        liveness_timeout=0.3,
        restart=RestartSettings(
            min_backoff=0.01, max_backoff=0.02, random_factor=0.0, max_restarts=50, period=60
        ),
    )
    seen = Seen("its restart waits for its hung incarnation")
    services_log = logging.getLogger("kalshi_supervisor.core.services")
    services_log.addHandler(seen)
    before = threading.active_count()
    try:
        with running_supervisor(exchange, config, services=[ServiceSpec("stuck", Stuck)]) as sup:
            assert sup.wait_for_state(State.READY, WAIT)
            assert seen.event.wait(WAIT), "the restart did not wait for the hung incarnation"
            assert stuck_threads() == 1
            assert not [e for e in sup.recorder.events() if isinstance(e, ServiceRestarted)]
            RELEASE.set()
            assert sup.recorder.wait_for(restarted("stuck"), WAIT)
            assert wait_count(lambda count: stuck_threads() == 1) and stuck_threads() == 1
    finally:
        RELEASE.set()
        services_log.removeHandler(seen)
    after_shutdown = wait_count(lambda count: count <= before)
    assert after_shutdown <= before, (before, after_shutdown)


class Block(Message):
    """Told to ``StuckStage`` by the test: hang in the stage's own code."""


class Counted(Message):
    count: int


class StuckStage(StageActor):
    """A stage that, told ``Block``, hangs in its own code (deaf to its stop) until released."""

    stage_name = "stuck"
    stage_state = State.KALSHI_DATA_SYNC

    def describe(self) -> KalshiDataSyncMetadata:
        return KalshiDataSyncMetadata(mode=self.context.mode, sync_type="initial")

    def connect(self, generation: int) -> None:
        self.succeed(Counted(count=generation))

    def handle(self, message: object) -> object:
        if isinstance(message, Block):
            RELEASE.wait(SETTLE)
            return None
        return super().handle(message)


def stage_threads() -> int:
    return sum(
        1 for t in threading.enumerate() if t.name.startswith("StuckStage-") and t.is_alive()
    )


def test_restart_when_a_stage_hangs_in_its_own_code_waits_for_it_and_leaks_no_thread(
    exchange: EmbeddedExchange,
) -> None:
    """As for a service: ERROR holds while the hung incarnation runs, the restart follows."""
    RELEASE.clear()
    config = make_config(
        exchange,
        liveness_interval=0.1,
        liveness_timeout=0.3,
        restart=RestartSettings(
            min_backoff=0.01, max_backoff=0.02, random_factor=0.0, max_restarts=50, period=60
        ),
    )
    seen = Seen("restart of stuck waits for its hung incarnation")
    recovery_log = logging.getLogger("kalshi_supervisor.core.recovery")
    recovery_log.addHandler(seen)
    stages = (*DEFAULT_STAGES, StageSpec("stuck", State.KALSHI_DATA_SYNC, StuckStage))
    before = threading.active_count()
    try:
        with running_supervisor(exchange, config, stages=stages) as sup:
            assert sup.wait_for_state(State.READY, WAIT)
            after = sup.recorder.last_id
            (stage,) = pykka.ActorRegistry.get_by_class(StuckStage)
            stage.tell(Block())
            assert seen.event.wait(WAIT), "the restart did not wait for the hung incarnation"
            assert stage_threads() == 1
            assert sup.state is State.ERROR
            RELEASE.set()
            assert sup.wait_for_state(State.READY, WAIT, after=after)
            assert wait_count(lambda count: stage_threads() == 1) and stage_threads() == 1
    finally:
        RELEASE.set()
        recovery_log.removeHandler(seen)
    after_shutdown = wait_count(lambda count: count <= before)
    assert after_shutdown <= before, (before, after_shutdown)
