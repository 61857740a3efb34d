"""Pauses injected through the supervisor (``inject exchange pause_...``) into its embedded
exchange, over real sockets: the pause is shown, waited out and ended, never a failure.

``exchange_check_interval`` is an hour in these tests: the supervisor notices an injected
pause because it re-reads the status right after injecting it, not by its routine check.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from kalshi_sim.exchange import EmbeddedExchange
from messages.events import (
    ExchangePaused,
    ExchangeResumed,
    FaultInjected,
    StateTransition,
    SupervisorEvent,
)
from messages.faults import ExchangeFault, FaultTarget, InjectFault
from messages.states import State
from supervisor import Supervisor
from tests.core.pause_support import NO_RESTARTS, failures, of
from tests.harness import WAIT, make_config, running_supervisor, start_exchange


@pytest.fixture
def exchange() -> Iterator[EmbeddedExchange]:
    started = start_exchange(markets=4)
    try:
        yield started
    finally:
        started.stop()


def pause(fault: ExchangeFault, **parameters: object) -> InjectFault:
    return InjectFault(target=FaultTarget.EXCHANGE, fault=fault, **parameters)


def resumed_and_ready(events: list[SupervisorEvent]) -> bool:
    """The pause ended and the supervisor is READY (it never left, or is back)."""
    transitions = [e.to_state for e in events if isinstance(e, StateTransition)]
    ended = any(isinstance(e, ExchangeResumed) for e in events)
    return ended and (not transitions or transitions[-1] is State.READY)


def ready_supervisor(exchange: EmbeddedExchange) -> Iterator[Supervisor]:
    config = make_config(exchange, exchange_check_interval=3600.0, restart=NO_RESTARTS)
    with running_supervisor(exchange, config) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        yield supervisor


@pytest.fixture
def supervisor(exchange: EmbeddedExchange) -> Iterator[Supervisor]:
    yield from ready_supervisor(exchange)


def test_pause_exchange_with_resume_in_is_shown_with_its_estimate_then_ends_on_its_own(
    supervisor: Supervisor, exchange: EmbeddedExchange
) -> None:
    before = datetime.now(UTC)
    after_id = supervisor.recorder.last_id

    reply = supervisor.inject(pause(ExchangeFault.PAUSE_EXCHANGE, resume_in=0.5))
    paused = supervisor.recorder.wait_for(of(ExchangePaused), WAIT, after=after_id)
    shown = supervisor.recorder.status()["exchange_pauses"]
    back = supervisor.recorder.wait_for(resumed_and_ready, WAIT, after=after_id)
    resumed = of(ExchangeResumed)(supervisor.recorder.events())

    assert reply == {"accepted": True, "target": "exchange", "fault": "pause_exchange"}
    assert paused is not None
    assert [(e.exchange_index, e.scope) for e in paused] == [(None, "exchange")]
    estimate = paused[0].resume_estimate
    assert estimate is not None
    assert before + timedelta(seconds=0.5) <= estimate <= datetime.now(UTC)
    assert [(p["exchange_index"], p["scope"]) for p in shown] == [(None, "exchange")]
    assert back
    assert [(e.exchange_index, e.scope) for e in resumed] == [(None, "exchange")]
    assert supervisor.recorder.status()["exchange_pauses"] == []
    assert failures(supervisor) == []
    assert not supervisor.stopped.is_set()


def test_pause_trading_on_one_shard_is_shown_for_that_shard_and_ready_holds(
    supervisor: Supervisor,
) -> None:
    after_id = supervisor.recorder.last_id

    reply = supervisor.inject(pause(ExchangeFault.PAUSE_TRADING, shard=2, resume_in=0.3))
    paused = supervisor.recorder.wait_for(of(ExchangePaused), WAIT, after=after_id)
    resumed = supervisor.recorder.wait_for(of(ExchangeResumed), WAIT, after=after_id)

    assert reply["accepted"] is True
    assert paused is not None and [(e.exchange_index, e.scope) for e in paused] == [(2, "trading")]
    assert resumed is not None and resumed[0].exchange_index == 2
    assert supervisor.recorder.states().count(State.READY) == 1  # READY never left
    assert supervisor.recorder.states()[-1] is State.READY
    assert failures(supervisor) == []


def test_pause_without_resume_in_lasts_until_inject_resume(
    supervisor: Supervisor, exchange: EmbeddedExchange
) -> None:
    after_id = supervisor.recorder.last_id

    supervisor.inject(pause(ExchangeFault.PAUSE_TRADING))  # the weekly pause: every shard
    paused = supervisor.recorder.wait_for(of(ExchangePaused), WAIT, after=after_id)
    assert paused is not None and paused[0].resume_estimate is None
    assert exchange.pauses.scheduled == 0  # nothing will end it but `resume`
    reply = supervisor.inject(pause(ExchangeFault.RESUME))
    resumed = supervisor.recorder.wait_for(of(ExchangeResumed), WAIT, after=after_id)

    assert [(e.exchange_index, e.scope) for e in paused] == [(None, "trading")]
    assert reply == {"accepted": True, "target": "exchange", "fault": "resume"}
    assert resumed is not None and resumed[0].scope == "trading"
    assert supervisor.recorder.states()[-1] is State.READY
    assert failures(supervisor) == []


def test_pause_on_a_shard_the_exchange_lacks_is_refused_as_invalid_and_changes_nothing(
    supervisor: Supervisor, exchange: EmbeddedExchange
) -> None:
    after_id = supervisor.recorder.last_id

    reply = supervisor.inject(pause(ExchangeFault.PAUSE_TRADING, shard=9, resume_in=5))

    assert reply == {
        "accepted": False,
        "error": "no exchange shard 9 (this exchange has shards 0, 1, 2, 3)",
        "invalid": True,
    }
    assert exchange.pauses.scheduled == 0
    assert exchange.status.response()[1]["trading_active"] is True
    injected = [e for e in supervisor.recorder.events() if isinstance(e, FaultInjected)]
    assert [e.fault.shard for e in injected if e.fault.shard == 9] == []  # refused: not shown
    assert supervisor.recorder.wait_for(of(ExchangePaused), 0.0, after=after_id) is None
