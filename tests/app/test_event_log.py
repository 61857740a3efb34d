"""The bounded recorder (ring, ids, latest per state, counters, waits) and the JSONL sink."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest

from app.event_log import EventRecorder, EventSinkError, JsonLinesSink
from messages.events import FaultInjected, RestartScheduled, StageFailureReported, StateTransition
from messages.faults import InjectFault
from messages.metadata import ShutdownMetadata, StartupMetadata
from messages.states import State

WAIT = 10.0


def to(state: State) -> StateTransition:
    metadata = (
        StartupMetadata(environment="local", host="h", log_level="INFO", mode="config")
        if state is State.INITIALIZING
        else ShutdownMetadata(reason="r")
    )
    return StateTransition(
        from_state=State.STARTUP, to_state=state, context="c", metadata=metadata, duration_ms=2.0
    )


def failure(n: int) -> StageFailureReported:
    return StageFailureReported(stage="orderbook", state=State.READY, error_type="E", reason=str(n))


def test_recorder_when_over_capacity_keeps_the_last_events_and_the_latest_per_state() -> None:
    recorder = EventRecorder(capacity=3)
    recorder(to(State.INITIALIZING))
    for n in range(10):
        recorder(failure(n))

    assert recorder.last_id == 11
    assert [e.reason for e in recorder.events()] == ["7", "8", "9"]  # type: ignore[union-attr]
    records, dropped = recorder.records_since(0)
    assert [r.id for r in records] == [9, 10, 11]
    assert dropped is True
    assert recorder.records_since(8) == (records, False)
    latest = recorder.latest()
    assert [(r.id, r.event.type) for r in latest] == [
        (1, "state_transition"),
        (11, "stage_failure"),
    ]
    assert recorder.state is State.INITIALIZING
    assert recorder.failures_by_stage == {"orderbook": 10}
    assert recorder.status()["events"] == 11
    assert recorder.status()["retained_events"] == 3


def test_recorder_json_is_the_events_line_plus_its_id() -> None:
    recorder = EventRecorder()
    event = to(State.INITIALIZING)
    recorder(event)

    record = recorder.records_since(0)[0][0]
    assert json.loads(record.json) == {"id": 1, **json.loads(event.model_dump_json())}


def test_recorder_counts_restarts_per_stage() -> None:
    recorder = EventRecorder()
    recorder(RestartScheduled(stages=("orderbook", "sync"), attempt=1, delay_ms=10))
    recorder(RestartScheduled(stages=("sync",), attempt=2, delay_ms=20))

    assert recorder.restarts_by_stage == {"orderbook": 1, "sync": 2}


def test_recorder_counts_injected_faults_per_target_and_wakes_the_feed() -> None:
    recorder = EventRecorder()
    woken: list[int] = []
    recorder.subscribe(lambda record: woken.append(record.id))
    fault = InjectFault.model_validate({"target": "exchange", "fault": "seq_gap"})

    recorder(FaultInjected(fault=fault))

    assert dict(recorder.faults_by_target) == {"exchange": 1}
    assert woken == [1]


def test_wait_for_state_after_an_id_ignores_earlier_transitions() -> None:
    recorder = EventRecorder()
    recorder(to(State.SHUTDOWN))
    seen = recorder.last_id
    assert recorder.wait_for_state(State.SHUTDOWN, 0.0, after=seen) is None

    later = to(State.SHUTDOWN)
    thread = threading.Thread(target=recorder, args=(later,))
    thread.start()
    found = recorder.wait_for_state(State.SHUTDOWN, WAIT, after=seen)
    thread.join()
    assert found is later


def test_recorder_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        EventRecorder(capacity=0)


def test_sink_when_path_cannot_be_opened_raises_one_line(tmp_path: Path) -> None:
    with pytest.raises(EventSinkError) as caught:
        JsonLinesSink(str(tmp_path / "no" / "such" / "dir" / "events.jsonl"))
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("cannot write events to ")


def test_sink_when_disk_is_full_warns_once_and_keeps_going(
    caplog: pytest.LogCaptureFixture,
) -> None:
    if not Path("/dev/full").exists():
        pytest.fail("/dev/full is needed to simulate a full disk")
    caplog.set_level(logging.WARNING, logger="kalshi_supervisor.app.event_log")
    sink = JsonLinesSink("/dev/full")
    for n in range(5):
        sink(failure(n))  # never raises
    sink.close()

    warnings = [r for r in caplog.records if "cannot write events" in r.getMessage()]
    assert len(warnings) == 1
    assert sink.dropped == 5


def test_sink_reopen_starts_a_new_file_after_rotation(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = JsonLinesSink(str(path))
    sink(failure(1))
    path.rename(tmp_path / "events.jsonl.1")
    sink.reopen()
    sink(failure(2))
    sink.close()

    assert [json.loads(x)["reason"] for x in path.read_text().splitlines()] == ["2"]
    rotated = (tmp_path / "events.jsonl.1").read_text().splitlines()
    assert [json.loads(x)["reason"] for x in rotated] == ["1"]


def test_recorder_status_lists_the_exchange_pauses_in_force() -> None:
    from datetime import UTC, datetime

    from messages.events import ExchangePaused, ExchangeResumed

    recorder = EventRecorder(capacity=2)  # pauses outlive the ring
    estimate = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    recorder(ExchangePaused(exchange_index=2, scope="trading", resume_estimate=None))
    recorder(ExchangePaused(exchange_index=None, scope="exchange", resume_estimate=None))
    first = recorder.exchange_pauses()[0].since
    recorder(ExchangePaused(exchange_index=None, scope="exchange", resume_estimate=estimate))
    for n in range(3):
        recorder(failure(n))
    pauses = recorder.status()["exchange_pauses"]
    assert [(p["exchange_index"], p["scope"]) for p in pauses] == [
        (None, "exchange"),
        (2, "trading"),
    ]
    assert pauses[0]["resume_estimate"] == "2026-12-03T10:00:00Z"
    assert recorder.exchange_pauses()[0].since == first  # a new estimate is not a new pause
    recorder(ExchangeResumed(exchange_index=None, scope="exchange", paused_ms=5))
    assert [p["exchange_index"] for p in recorder.status()["exchange_pauses"]] == [2]
