"""A new stage actor is one module and one StageSpec: the supervisor runs and supervises it."""

from __future__ import annotations

from collections.abc import Iterator

import pykka
import pytest

from actors.base import StageActor
from actors.registry import DEFAULT_STAGES
from actors.stage_spec import StageSpec, validate_pipeline
from kalshi_sim.exchange import EmbeddedExchange
from messages.base import Message
from messages.faults import InjectFault
from messages.metadata import KalshiDataSyncMetadata
from messages.states import State
from tests.harness import WAIT, running_supervisor, start_exchange


class AuditDone(Message):
    """The added stage's own result model."""

    markets_checked: int


class AuditActor(StageActor):
    """An example extension: runs inside KALSHI_DATA_SYNC, after the sync stage."""

    stage_name = "audit"
    stage_state = State.KALSHI_DATA_SYNC

    def describe(self) -> KalshiDataSyncMetadata:
        return KalshiDataSyncMetadata(mode=self.context.mode, sync_type="initial")

    def connect(self, generation: int) -> None:
        self.succeed(AuditDone(markets_checked=len(self.context.markets)))


AUDIT = StageSpec("audit", State.KALSHI_DATA_SYNC, AuditActor, requires_trading=True)


@pytest.fixture
def exchange() -> Iterator[EmbeddedExchange]:
    exchange = start_exchange(markets=3)
    yield exchange
    exchange.stop()


def test_added_stage_when_registered_runs_in_its_state_and_reaches_ready(
    exchange: EmbeddedExchange,
) -> None:
    with running_supervisor(exchange, stages=(*DEFAULT_STAGES, AUDIT)) as sup:
        assert sup.wait_for_state(State.READY, WAIT)
        states = [t.to_state for t in sup.recorder.transitions()]
        assert states.count(State.KALSHI_DATA_SYNC) == 1
        assert len(pykka.ActorRegistry.get_by_class(AuditActor)) == 1


def test_added_stage_when_crashed_is_restarted_by_the_same_policy(
    exchange: EmbeddedExchange,
) -> None:
    with running_supervisor(exchange, stages=(*DEFAULT_STAGES, AUDIT)) as sup:
        assert sup.wait_for_state(State.READY, WAIT)
        seen = sup.recorder.last_id
        assert sup.inject(InjectFault(target="audit", fault="crash"))["accepted"]
        error = sup.recorder.wait_for_state(State.ERROR, WAIT, after=seen)
        assert error is not None
        assert error.metadata.actor == "audit"
        recovery = sup.recorder.wait_for_state(State.STARTUP, WAIT, after=seen)
        assert recovery is not None
        assert recovery.metadata.restarting == ("audit",)
        assert sup.recorder.wait_for_state(State.READY, WAIT, after=seen)


def test_stage_list_when_states_skip_the_table_is_rejected_at_start() -> None:
    orderbook, _, sync = DEFAULT_STAGES
    with pytest.raises(ValueError, match="ORDERBOOK_CONNECT -> KALSHI_DATA_SYNC is not allowed"):
        validate_pipeline([orderbook, sync])
    with pytest.raises(ValueError, match="unique"):
        validate_pipeline([orderbook, orderbook])
