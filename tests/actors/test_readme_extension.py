"""The README's "Adding a stage actor" example, as written there, with and without trading.

Also the per-stage deadline over real sockets: a stage sharing a state with an earlier
stage that never replies is failed by its own deadline.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest

from actors.base import StageActor
from actors.registry import DEFAULT_STAGES
from actors.stage_spec import StageSpec
from kalshi_sim.exchange import EmbeddedExchange
from messages.base import Message
from messages.faults import InjectFault
from messages.metadata import KalshiDataSyncMetadata
from messages.states import State
from tests.harness import READY_KEYS, WAIT, make_config, running_supervisor, start_exchange

README = Path(__file__).resolve().parents[2] / "README.md"


class FillsDone(Message):
    fills: int


class FillsActor(StageActor):
    """The README's example stage, filled in."""

    stage_name = "fills"
    stage_state = State.KALSHI_DATA_SYNC

    def describe(self) -> KalshiDataSyncMetadata:
        return KalshiDataSyncMetadata(mode=self.context.mode, sync_type="initial")

    def connect(self, generation: int) -> None:
        self.succeed(FillsDone(fills=0))


class NeverRepliesActor(StageActor):
    """Shares ORDERBOOK_CONNECT with the orderbook stage and never replies to Connect."""

    stage_name = "mute"
    stage_state = State.ORDERBOOK_CONNECT

    def describe(self) -> Message:
        raise NotImplementedError("never first in its state")

    def connect(self, generation: int) -> None:
        """Does nothing: no reply, ever."""


@pytest.fixture
def exchange() -> Iterator[EmbeddedExchange]:
    exchange = start_exchange(markets=3)
    yield exchange
    exchange.stop()


def test_readme_example_spec_is_the_one_this_test_runs() -> None:
    text = README.read_text()
    assert 'StageSpec("fills", State.KALSHI_DATA_SYNC, FillsActor)' in text
    assert re.search(r"stage_state = State\.KALSHI_DATA_SYNC", text)


@pytest.mark.parametrize("trading", [True, False], ids=["trading", "no-trading"])
def test_readme_example_stage_when_added_reaches_ready(
    exchange: EmbeddedExchange, trading: bool
) -> None:
    spec = StageSpec("fills", State.KALSHI_DATA_SYNC, FillsActor)
    config = make_config(exchange, trading_enabled=trading)
    with running_supervisor(exchange, config, stages=(*DEFAULT_STAGES, spec)) as sup:
        assert sup.wait_for_state(State.READY, WAIT)
        ready = sup.recorder.transitions()[-1].metadata.model_dump()
        expected = READY_KEYS | ({"trading_client"} if trading else set())
        assert set(ready) == expected
        running = len(pykka.ActorRegistry.get_by_class(FillsActor))
        assert running == (1 if trading else 0)
        states = sup.recorder.states()
        assert (State.KALSHI_DATA_SYNC in states) is trading


@pytest.mark.slow
def test_stage_in_a_shared_state_when_it_never_replies_is_failed_by_its_deadline(
    exchange: EmbeddedExchange, caplog: pytest.LogCaptureFixture
) -> None:
    mute = StageSpec("mute", State.ORDERBOOK_CONNECT, NeverRepliesActor, deadline=1.0)
    config = make_config(exchange, trading_enabled=False)
    stages: Any = (DEFAULT_STAGES[0], mute)
    with running_supervisor(exchange, config, stages=stages) as sup:
        error = sup.recorder.wait_for_state(State.ERROR, WAIT)
        assert error is not None
        assert (error.metadata.actor, error.metadata.error_type) == ("mute", "DeadlineExceeded")
        assert error.metadata.failed_state is State.ORDERBOOK_CONNECT


def test_stage_failure_when_handled_logs_one_line_and_no_pykka_traceback(
    exchange: EmbeddedExchange, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO), running_supervisor(exchange) as sup:
        assert sup.wait_for_state(State.READY, WAIT)
        seen = sup.recorder.last_id
        caplog.clear()
        assert sup.inject(InjectFault(target="trading", fault="crash"))["accepted"]
        assert sup.recorder.wait_for_state(State.READY, WAIT, after=seen)
        records = list(caplog.records)
    assert not [r for r in records if r.name.startswith("pykka") and r.levelno >= logging.INFO]
    failed = [r for r in records if "stage failed" in r.getMessage()]
    assert len(failed) == 1
    assert failed[0].name.startswith("kalshi_supervisor.")
    assert all(r.exc_info is None for r in records if r.levelno >= logging.INFO)
