"""A burst the event bus cannot hold: drops are counted and shown, the state shown stays true.

The bus drops new events when its listeners fall behind (its memory is bounded). The
recorder, the feed and the files sit behind it and can miss events; ``/ready``, ``/status``'s
state and the state gauge must not, so they read the supervisor's own published snapshot
(:class:`app.event_log.CurrentState`). Here a listener is held (the dispatcher is stuck on
the very first event) while a real supervisor runs to READY against the embedded exchange,
through a bus that holds 2 events.
"""

from __future__ import annotations

import json
import threading

import httpx
from websockets.sync.client import connect

from app.event_log import CurrentState
from app.handle import Supervisor
from kalshi_api.auth import load_signer
from kalshi_sim.exchange import EmbeddedExchange
from messages.events import ExchangePaused, StateTransition, SupervisorEvent
from messages.metadata import StartupMetadata
from messages.states import State
from tests.harness import WAIT, make_config


class HeldListener:
    """Blocks the bus's dispatcher on the first event until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.seen: list[SupervisorEvent] = []

    def __call__(self, event: SupervisorEvent) -> None:
        self.entered.set()
        self.release.wait(WAIT * 3)
        self.seen.append(event)


class ReadySeen:
    """An inline listener: set on the supervisor's own thread when READY is entered."""

    def __init__(self) -> None:
        self.ready = threading.Event()

    def __call__(self, event: SupervisorEvent) -> None:
        if isinstance(event, StateTransition) and event.to_state is State.READY:
            self.ready.set()


def test_status_when_bus_drops_a_burst_shows_the_true_state_and_counts_the_drops(
    exchange: EmbeddedExchange,
) -> None:
    held, seen = HeldListener(), ReadySeen()
    supervisor = Supervisor(
        make_config(exchange),
        load_signer(exchange.key_id, exchange.private_key_path),
        exchange=exchange,
        listeners=[held],
        inline_listeners=[seen],
        event_capacity=2,
    )
    supervisor.start()
    try:
        assert held.entered.wait(WAIT)
        assert seen.ready.wait(WAIT)  # the supervisor is READY; the recorder cannot know yet
        assert supervisor.console is not None
        url, auth = supervisor.console.url, {"Authorization": f"Bearer {supervisor.control_token}"}
        stale = supervisor.recorder.state
        ready = httpx.get(f"{url}/ready")
        status = httpx.get(f"{url}/status", headers=auth).json()
        metrics = httpx.get(f"{url}/metrics", headers=auth).text
        with connect(url.replace("http://", "ws://") + "/ws") as feed:
            hello = json.loads(feed.recv(timeout=WAIT))
        dropped = supervisor.events_dropped()
        held.release.set()
        assert supervisor.events is not None and supervisor.events.flush(WAIT)
        recorded_states = supervisor.recorder.states()
    finally:
        held.release.set()
        supervisor.shutdown(timeout=3.0)

    assert stale is not State.READY  # the record is behind (and will stay gappy) ...
    assert dropped > 0
    assert State.READY not in recorded_states  # ... READY itself was among the dropped
    # ... yet everything that shows the state shows the truth, and says events were lost.
    assert ready.status_code == 200 and ready.json()["state"] == "ready"
    assert status["state"] == "ready" and status["last_transition"]["to_state"] == "ready"
    assert status["events_dropped"] == dropped
    assert hello["counters"]["events_dropped"] == dropped  # the console page is told too
    assert f"kalshi_supervisor_events_dropped_total {float(dropped)}" in metrics
    assert 'kalshi_supervisor_state{state="ready"} 1.0' in metrics
    assert supervisor.state is State.SHUTDOWN


def test_current_state_when_events_arrive_replaces_its_snapshot_whole() -> None:
    current = CurrentState()
    before = current.snapshot
    metadata = StartupMetadata(environment="local", host="h", log_level="INFO", mode="config")
    current(
        StateTransition(
            from_state=State.STARTUP,
            to_state=State.INITIALIZING,
            context="c",
            metadata=metadata,
            duration_ms=2.0,
        )
    )
    current(ExchangePaused(exchange_index=2, scope="trading", resume_estimate=None))
    after = current.snapshot

    assert before.state is State.STARTUP and before.events == 0  # the old one is untouched
    assert after.state is State.INITIALIZING and after.events == 2
    assert [p.exchange_index for p in after.exchange_pauses] == [2]
    fields = current.status_fields()
    assert fields["state"] == "initializing" and fields["events_published"] == 2
    assert fields["exchange_pauses"][0]["scope"] == "trading"
