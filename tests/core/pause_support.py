"""What the over-sockets pause tests share: a no-restart policy, event pickers, status reads.

A pause must never reach the restart policy, so these tests run with ``max_restarts=0``:
one failure anywhere would shut the supervisor down and fail the test loudly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from kalshi_sim.exchange import EmbeddedExchange
from kalshi_sim.oplog import Operation
from messages.events import (
    ExchangeResumed,
    RestartScheduled,
    StageFailureReported,
    SupervisorEvent,
)
from messages.states import State
from supervision.config import RestartSettings
from supervisor import Supervisor
from tests.harness import WAIT

STATUS_PATH = "GET /trade-api/v2/exchange/status"
NO_RESTARTS = RestartSettings(min_backoff=0.01, max_backoff=0.01, random_factor=0.0, max_restarts=0)
"""Any failure at all escalates and shuts down: a pause must never get there."""


def of(kind: type) -> Callable[[list[SupervisorEvent]], list[SupervisorEvent]]:
    """An event picker for ``Supervisor.wait_for_events``-style waits."""
    return lambda events: [e for e in events if isinstance(e, kind)]


def failures(supervisor: Supervisor) -> list[SupervisorEvent]:
    """Every stage failure and restart the supervisor recorded (a pause must add none)."""
    kinds = (StageFailureReported, RestartScheduled)
    return [e for e in supervisor.recorder.events() if isinstance(e, kinds)]


def status_reads(exchange: EmbeddedExchange) -> int:
    return sum(1 for op in exchange.oplog.entries("rest") if op.detail == STATUS_PATH)


def wait_status_reads(exchange: EmbeddedExchange, count: int) -> None:
    """Wait for ``count`` more reads of ``/exchange/status`` (the supervisor re-checking)."""
    target = status_reads(exchange) + count

    def enough(entries: Iterable[Operation]) -> bool:
        return sum(1 for op in entries if op.kind == "rest" and op.detail == STATUS_PATH) >= target

    assert exchange.oplog.wait_for(enough, WAIT)


def resume_to_ready(exchange: EmbeddedExchange, supervisor: Supervisor) -> None:
    """End the pause; READY follows, the resume is announced, and nothing failed on the way."""
    exchange.status.resume()
    assert supervisor.wait_for_state(State.READY, WAIT)
    assert supervisor.recorder.wait_for(of(ExchangeResumed), WAIT)
    assert failures(supervisor) == []
    assert State.ERROR not in supervisor.recorder.states()
