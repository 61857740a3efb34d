"""The decision core alone: plain ports, a manual clock, no pykka, no sockets."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.base import StageActor
from actors.registry import DEFAULT_STAGES, ORDERBOOK
from actors.stage_spec import StageSpec
from core.ready import ReadyPhase
from messages.base import Message
from messages.commands import Connect, RunSync
from messages.events import Escalation, KalshiSyncComplete, StageFailureReported, StreamHealed
from messages.metadata import OrderbookConnectMetadata, TradingReadyMetadata
from messages.states import State
from supervision.config import RestartSettings
from tests.core.rig import CoreRig, live_report, sync_result
from tests.harness import READY_KEYS, TRADING_CLIENT_KEYS

CORE = Path(__file__).resolve().parents[2] / "core"


class SilentActor(StageActor):
    """Never started by the rig: a stage that shares ORDERBOOK_CONNECT and never replies."""

    stage_name = "silent"
    stage_state = State.ORDERBOOK_CONNECT

    def describe(self) -> OrderbookConnectMetadata:
        raise NotImplementedError

    def connect(self, generation: int) -> None:
        """Never succeeds."""


SILENT = StageSpec("silent", State.ORDERBOOK_CONNECT, SilentActor, deadline=2.0)


def test_walk_when_every_stage_succeeds_reaches_ready_with_the_seed_keys() -> None:
    rig = CoreRig()
    rig.to_ready()
    assert [t.to_state for t in rig.transitions()] == [
        State.INITIALIZING,
        State.ORDERBOOK_CONNECT,
        State.TRADING_CLIENT_CONNECT,
        State.KALSHI_DATA_SYNC,
        State.READY,
    ]
    ready = rig.last(State.READY).metadata
    assert isinstance(ready, TradingReadyMetadata)
    assert set(ready.model_dump()) == READY_KEYS | {"trading_client"}
    assert set(ready.trading_client.model_dump()) == TRADING_CLIENT_KEYS
    assert [type(e) for e in rig.events].count(KalshiSyncComplete) == 1


def test_walk_without_trading_reaches_ready_with_orderbook_keys_only() -> None:
    rig = CoreRig(trading_enabled=False)
    rig.to_ready()
    assert rig.state is State.READY
    assert set(rig.last(State.READY).metadata.model_dump()) == READY_KEYS


def test_stage_sharing_a_state_when_it_never_replies_is_failed_by_its_own_deadline() -> None:
    rig = CoreRig(stages=(ORDERBOOK, SILENT), trading_enabled=False)
    rig.succeed("orderbook")
    assert rig.state is State.ORDERBOOK_CONNECT
    assert rig.stages.commands_to("silent", Connect)
    rig.advance(1.9)
    assert rig.state is State.ORDERBOOK_CONNECT
    rig.advance(0.2)
    error = rig.last(State.ERROR).metadata
    assert (error.actor, error.error_type) == ("silent", "DeadlineExceeded")
    assert error.failed_state is State.ORDERBOOK_CONNECT


def test_stage_deadline_when_it_succeeds_in_time_is_disarmed() -> None:
    rig = CoreRig(stages=(ORDERBOOK, SILENT), trading_enabled=False)
    rig.succeed("orderbook")
    rig.advance(1.0)
    rig.succeed("silent", live_report())
    assert rig.state is State.READY
    rig.advance(5.0)
    assert rig.state is State.READY


def test_ready_when_stream_is_not_live_waits_in_an_explicit_phase_until_it_heals() -> None:
    rig = CoreRig()
    rig.stages.report = live_report(connected=False)
    rig.to_ready()
    assert rig.state is State.KALSHI_DATA_SYNC
    assert rig.core.ready.phase is ReadyPhase.AWAITING_STREAM
    assert rig.core.ready.awaiting == "orderbook"
    rig.stages.report = live_report()
    rig.incident("orderbook", "reconnected")
    assert rig.state is State.READY
    assert rig.core.ready.phase is ReadyPhase.OPEN


def test_ready_when_stream_never_heals_fails_the_stream_stage_by_its_deadline() -> None:
    rig = CoreRig(deadlines={State.ORDERBOOK_CONNECT: 3.0})
    rig.stages.report = live_report(connected=False)
    rig.to_ready()
    rig.advance(3.1)
    error = rig.last(State.ERROR).metadata
    assert (error.actor, error.error_type) == ("orderbook", "DeadlineExceeded")
    assert rig.core.ready.phase is ReadyPhase.CLOSED


def test_ready_when_stream_drops_and_heals_in_place_stays_ready() -> None:
    rig = CoreRig(heal_timeout=2.0)
    rig.to_ready()
    rig.incident("orderbook", "disconnected")
    rig.incident("orderbook", "resynced")
    rig.advance(5.0)
    assert rig.state is State.READY
    assert [e.healed_total for e in rig.events if isinstance(e, StreamHealed)] == [1]


def test_ready_when_stream_does_not_heal_in_time_reconnects_from_its_stage() -> None:
    rig = CoreRig(heal_timeout=2.0)
    rig.to_ready()
    rig.incident("orderbook", "disconnected")
    rig.advance(2.1)
    assert rig.state is State.ORDERBOOK_CONNECT
    rig.to_ready()
    assert rig.state is State.READY


def test_periodic_work_when_due_is_sent_and_its_result_is_announced() -> None:
    rig = CoreRig(sync_interval=10.0, liveness_interval=100.0)
    rig.to_ready()
    rig.advance(10.0)
    assert len(rig.stages.commands_to("sync", RunSync)) == 1
    rig.advance(10.0)  # still busy: no second request queued behind the first
    assert len(rig.stages.commands_to("sync", RunSync)) == 1
    rig.succeed("sync", sync_result(balance=150))
    assert [type(e) for e in rig.events].count(KalshiSyncComplete) == 2
    assert rig.state is State.READY


def test_periodic_work_when_it_overruns_its_deadline_fails_the_stage() -> None:
    rig = CoreRig(sync_interval=10.0, liveness_interval=1.0)
    rig.to_ready()
    rig.advance(10.0 + 15.0 + 1.0)
    error = rig.last(State.ERROR).metadata
    assert (error.actor, error.error_type) == ("sync", "DeadlineExceeded")


def test_result_of_the_wrong_class_is_the_stages_bad_metadata() -> None:
    rig = CoreRig()
    rig.succeed("orderbook", sync_result())
    error = rig.last(State.ERROR).metadata
    assert (error.actor, error.error_type) == ("orderbook", "BadMetadata")


def test_failure_when_restart_is_due_walks_again_and_reaches_ready() -> None:
    rig = CoreRig()
    rig.to_ready()
    rig.send(_failed("trading", rig.stages.generations["trading"], "Boom", "it broke"))
    assert rig.state is State.ERROR
    assert rig.last(State.ERROR).metadata.next_restart_in_ms == 500
    assert "sync" in rig.stages.stopped and "trading" in rig.stages.stopped
    rig.advance(0.5)
    assert rig.last(State.STARTUP).metadata.restarting == ("trading", "sync")
    rig.to_ready()
    assert rig.state is State.READY
    assert [type(e) for e in rig.events].count(StageFailureReported) == 1


def test_failures_beyond_intensity_escalate_and_shut_down() -> None:
    rig = CoreRig(
        restart=RestartSettings(
            min_backoff=0.1, max_backoff=0.1, random_factor=0.0, max_restarts=1, period=60
        )
    )
    for _ in range(2):
        rig.send(_failed("orderbook", rig.stages.generations["orderbook"], "Boom", "x"))
        rig.advance(0.1)
    assert rig.state is State.SHUTDOWN
    assert rig.shut
    assert any(isinstance(e, Escalation) for e in rig.events)


def test_temporary_trading_stage_when_it_fails_falls_back_to_orderbook_only() -> None:
    rig = CoreRig(restart=RestartSettings(restart_types={"trading": "temporary"}))
    rig.succeed("orderbook")
    rig.send(_failed("trading", rig.stages.generations["trading"], "Boom", "x"))
    rig.advance(0.0)
    assert [s.name for s in rig.core.specs] == ["orderbook"]
    rig.to_ready()
    assert set(rig.last(State.READY).metadata.model_dump()) == READY_KEYS


def test_spec_when_actor_declares_another_name_is_refused_with_one_line() -> None:
    with pytest.raises(ValueError, match="declares stage_name 'silent'"):
        StageSpec("quiet", State.ORDERBOOK_CONNECT, SilentActor)
    with pytest.raises(ValueError, match="stage_state ORDERBOOK_CONNECT"):
        StageSpec("silent", State.KALSHI_DATA_SYNC, SilentActor)


def test_core_modules_import_no_pykka_and_name_no_stage() -> None:
    shell = {"children.py", "supervisor_actor.py"}
    names = [f'"{s.name}"' for s in DEFAULT_STAGES]
    for path in CORE.glob("*.py"):
        text = path.read_text()
        if path.name not in shell:
            assert "import pykka" not in text and "from pykka" not in text, path.name
        for word in ("ORDERBOOK_STAGE", "SYNC_STAGE", "EXPECTED_RESULT", *names):
            assert word not in text, (path.name, word)


def _failed(stage: str, generation: int, error_type: str, reason: str) -> Message:
    from messages.results import ChildFailed

    return ChildFailed(child=stage, generation=generation, error_type=error_type, reason=reason)
