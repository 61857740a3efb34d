"""Exchange pauses in the decision core: waited out, shown as events, never a failure."""

from __future__ import annotations

from datetime import timedelta

from core.ready import DEFAULT_WORK_DEADLINE
from messages.commands import Connect, RetryNow, RunSync
from messages.events import (
    Escalation,
    ExchangePaused,
    ExchangeResumed,
    RestartScheduled,
    StageFailureReported,
)
from messages.exchange import ExchangeObserved, PauseTiming
from messages.states import State
from supervision.config import RestartSettings
from tests.core.rig import CoreRig

STRICT = RestartSettings(
    min_backoff=0.1, max_backoff=0.1, random_factor=0.0, max_restarts=1, period=600
)


def paused_events(rig: CoreRig) -> list[ExchangePaused]:
    return [e for e in rig.events if isinstance(e, ExchangePaused)]


def resumed_events(rig: CoreRig) -> list[ExchangeResumed]:
    return [e for e in rig.events if isinstance(e, ExchangeResumed)]


def no_failure(rig: CoreRig) -> bool:
    kinds = (StageFailureReported, RestartScheduled, Escalation)
    return not any(isinstance(e, kinds) for e in rig.events) and State.ERROR not in [
        t.to_state for t in rig.transitions()
    ]


def test_exchange_pause_in_trading_connect_waits_past_its_deadline_then_reaches_ready() -> None:
    rig = CoreRig(restart=STRICT)
    rig.succeed("orderbook")
    rig.pause("exchange")
    rig.stage_paused("trading")
    assert [(e.exchange_index, e.scope) for e in paused_events(rig)] == [(None, "exchange")]
    rig.advance(600.0)  # far past the 10 s deadline of TRADING_CLIENT_CONNECT
    assert rig.state is State.TRADING_CLIENT_CONNECT
    assert len(rig.stages.commands_to("trading", Connect)) == 1
    assert rig.probes > 100  # bounded backoff: re-checked about every max_poll (1 s)
    assert no_failure(rig) and not rig.shut
    rig.resume()
    rig.advance(1.0)
    assert len(rig.stages.commands_to("trading", Connect)) == 2
    assert [(e.exchange_index, e.scope) for e in resumed_events(rig)] == [(None, "exchange")]
    assert resumed_events(rig)[0].paused_ms >= 600_000
    rig.succeed("trading")
    rig.succeed("sync")
    assert rig.state is State.READY
    assert no_failure(rig)
    assert rig.core.recovery.tracker.restart_count == 0


def test_resumed_stage_gets_a_fresh_deadline_and_fails_normally_if_it_then_hangs() -> None:
    rig = CoreRig(deadlines={State.TRADING_CLIENT_CONNECT: 5.0})
    rig.succeed("orderbook")
    rig.pause("exchange")
    rig.stage_paused("trading")
    rig.advance(30.0)
    rig.resume()
    rig.advance(1.0)
    assert rig.state is State.TRADING_CLIENT_CONNECT
    rig.advance(5.0)
    error = rig.last(State.ERROR).metadata
    assert (error.actor, error.error_type) == ("trading", "DeadlineExceeded")


def test_resume_estimate_is_honoured_no_check_before_it_and_ready_right_after() -> None:
    rig = CoreRig()
    rig.succeed("orderbook")
    rig.pause("exchange")
    rig.resume_in = 20.0
    rig.stage_paused("trading")
    estimate = paused_events(rig)[0].resume_estimate
    assert estimate == rig.wall() + timedelta(seconds=20)
    rig.advance(19.9)
    assert rig.probes == 0
    rig.resume()  # the exchange resumes on time
    rig.advance(0.1)
    assert rig.probes == 1
    assert len(rig.stages.commands_to("trading", Connect)) == 2
    assert len(resumed_events(rig)) == 1


def test_far_resume_estimate_is_still_rechecked_every_far_poll() -> None:
    rig = CoreRig(pause_timing=PauseTiming(far_poll=30.0))
    rig.succeed("orderbook")
    rig.pause("exchange")
    rig.resume_in = 7200.0
    rig.stage_paused("trading")
    rig.advance(29.9)
    assert rig.probes == 0
    rig.advance(0.1)
    assert rig.probes == 1
    rig.resume()  # resumed early, long before the estimate
    rig.advance(30.0)
    assert len(rig.stages.commands_to("trading", Connect)) == 2


def test_new_pause_seen_while_a_far_recheck_is_pending_is_rechecked_at_pause_cadence() -> None:
    """Before: the pending 30 s re-check (set for a far trading-pause estimate) stood, so
    an exchange pause seen meanwhile was not re-read for up to ``far_poll``."""
    rig = CoreRig(pause_timing=PauseTiming(min_poll=0.25, max_poll=1.0, far_poll=30.0))
    rig.succeed("orderbook")
    rig.pause("trading")
    rig.resume_in = 7200.0
    rig.stage_paused("trading")
    rig.advance(1.0)
    assert rig.probes == 0
    rig.resume()
    rig.pause("exchange")  # a new pause, no estimate: re-read within min_poll
    rig.stage_paused("trading")
    rig.advance(0.25)
    assert rig.probes == 1
    connects = len(rig.stages.commands_to("trading", Connect))
    rig.resume()
    rig.advance(0.5)
    assert rig.probes == 2  # one re-check at a time: the earlier timer was replaced
    assert len(rig.stages.commands_to("trading", Connect)) == connects + 1
    assert [e.scope for e in resumed_events(rig)][-1] == "exchange"


def test_poll_delay_backs_off_to_its_bound_and_waits_for_a_far_estimate() -> None:
    timing = PauseTiming(min_poll=0.25, max_poll=1.0, far_poll=30.0)
    assert [timing.delay(n, None) for n in range(5)] == [0.25, 0.5, 1.0, 1.0, 1.0]
    assert timing.delay(0, 12.0) == 12.0
    assert timing.delay(0, 7200.0) == 30.0
    assert timing.delay(3, -5.0) == 1.0  # the estimate passed: plain backoff


def test_many_pauses_never_spend_restart_intensity() -> None:
    rig = CoreRig(restart=STRICT)
    rig.succeed("orderbook")
    rig.pause("exchange")
    for _ in range(20):
        rig.stage_paused("trading")
        rig.advance(2.0)
    assert rig.state is State.TRADING_CLIENT_CONNECT
    assert no_failure(rig) and not rig.shut
    assert len(paused_events(rig)) == 1  # one pause, reported once


def test_trading_pause_seen_while_connecting_is_shown_before_ready_and_ready_follows() -> None:
    rig = CoreRig()
    rig.succeed("orderbook")
    rig.pause("trading")
    generation = rig.stages.generations["trading"]
    rig.send(ExchangeObserved(stage="trading", generation=generation, condition=rig.condition()))
    rig.succeed("trading")
    rig.succeed("sync")
    assert rig.state is State.READY
    kinds = [type(e).__name__ for e in rig.events]
    assert kinds.index("ExchangePaused") < len(kinds) - 1 - kinds[::-1].index("StateTransition")
    assert [(e.exchange_index, e.scope) for e in paused_events(rig)] == [(None, "trading")]
    rig.resume()
    rig.advance(1.0)
    assert len(resumed_events(rig)) == 1
    assert rig.state is State.READY


def test_trading_pause_starting_while_ready_is_noticed_by_the_routine_check() -> None:
    rig = CoreRig(exchange_check_interval=10.0)
    rig.to_ready()
    rig.pause("trading", exchange_index=2)
    rig.advance(10.0)
    assert [(e.exchange_index, e.scope) for e in paused_events(rig)] == [(2, "trading")]
    rig.resume()
    rig.advance(1.0)  # while paused, re-checked at pause cadence, not every 10 s
    assert [(e.exchange_index, e.scope) for e in resumed_events(rig)] == [(2, "trading")]
    assert rig.transitions()[-1].to_state is State.READY
    assert no_failure(rig)


def test_shards_pause_and_resume_one_by_one() -> None:
    rig = CoreRig(exchange_check_interval=5.0)
    rig.to_ready()
    rig.pause("trading", exchange_index=1)
    rig.pause("trading", exchange_index=3)
    rig.advance(5.0)
    rig.exchange_pauses = rig.exchange_pauses[1:]
    rig.advance(1.0)
    assert [e.exchange_index for e in paused_events(rig)] == [1, 3]
    assert [e.exchange_index for e in resumed_events(rig)] == [1]
    rig.resume()
    rig.advance(1.0)
    assert [e.exchange_index for e in resumed_events(rig)] == [1, 3]


def test_exchange_pause_met_by_update_sync_keeps_ready_and_never_overruns() -> None:
    rig = CoreRig(sync_interval=10.0, liveness_interval=1.0, exchange_check_interval=1000.0)
    rig.to_ready()
    rig.advance(10.0)
    assert len(rig.stages.commands_to("sync", RunSync)) == 1
    rig.pause("exchange")
    rig.stage_paused("sync")
    rig.advance(DEFAULT_WORK_DEADLINE + 5.0)
    assert rig.transitions()[-1].to_state is State.READY
    assert [(e.exchange_index, e.scope) for e in paused_events(rig)] == [(None, "exchange")]
    rig.resume()
    rig.advance(1.0)
    assert len(resumed_events(rig)) == 1
    assert no_failure(rig)


def test_unreadable_status_while_waiting_lets_the_stage_retry_its_own_work() -> None:
    rig = CoreRig()
    rig.succeed("orderbook")
    rig.pause("exchange")
    rig.stage_paused("trading")
    rig.probe_error = "connection refused"
    rig.advance(0.25)
    assert len(rig.stages.commands_to("trading", Connect)) == 2
    assert rig.state is State.TRADING_CLIENT_CONNECT


def test_older_reading_never_overrides_a_newer_one() -> None:
    rig = CoreRig()
    rig.succeed("orderbook")
    old = rig.condition()
    rig.advance(1.0)
    rig.pause("trading")
    generation = rig.stages.generations["trading"]
    rig.send(ExchangeObserved(stage="trading", generation=generation, condition=rig.condition()))
    rig.send(ExchangeObserved(stage="trading", generation=generation, condition=old))
    assert len(paused_events(rig)) == 1 and not resumed_events(rig)


def test_shutdown_while_waiting_stops_rechecking() -> None:
    rig = CoreRig()
    rig.succeed("orderbook")
    rig.pause("exchange")
    rig.stage_paused("trading")
    from messages.commands import Shutdown

    rig.send(Shutdown(reason="test"))
    probes = rig.probes
    rig.advance(60.0)
    assert rig.probes == probes
    assert rig.state is State.SHUTDOWN


def test_exchange_pause_at_startup_waits_in_initializing_then_discovers_and_connects() -> None:
    rig = CoreRig(paused_at_start=True, restart=STRICT)
    assert rig.state is State.INITIALIZING
    assert [(e.exchange_index, e.scope) for e in paused_events(rig)] == [(None, "exchange")]
    rig.advance(300.0)  # far past the INITIALIZING deadline
    assert rig.state is State.INITIALIZING
    assert rig.discoveries == 1
    rig.resume()
    rig.advance(1.0)
    assert rig.discoveries == 2
    assert rig.state is State.ORDERBOOK_CONNECT
    rig.to_ready()
    assert rig.state is State.READY
    assert no_failure(rig) and not rig.shut


def test_ready_routine_check_notices_an_early_resume_before_a_far_estimate() -> None:
    rig = CoreRig(exchange_check_interval=10.0)
    rig.to_ready()
    rig.pause("trading")
    rig.resume_in = 7200.0
    rig.advance(10.0)
    assert len(paused_events(rig)) == 1
    rig.resume()
    rig.advance(10.0)  # the routine check, not the 30 s far poll
    assert len(resumed_events(rig)) == 1


# -- bounds held during a whole-exchange pause (a dropped or refused stream) ------------------
def test_heal_timeout_during_an_exchange_pause_is_held_then_rearmed_in_full_on_resume() -> None:
    rig = CoreRig(restart=STRICT, sync_interval=3600.0, discovery_refresh=3600.0)
    rig.to_ready()
    rig.pause("exchange")  # not yet seen by the core: the heal expiry reads the status first
    rig.incident("orderbook", "disconnected")
    probes = rig.probes
    rig.advance(5.0)  # heal_timeout
    assert rig.probes == probes + 1
    assert [(e.exchange_index, e.scope) for e in paused_events(rig)] == [(None, "exchange")]
    rig.advance(600.0)
    assert rig.state is State.READY and no_failure(rig)
    assert rig.stages.commands_to("orderbook", RetryNow) == []
    rig.resume()
    while not resumed_events(rig):  # up to max_poll (1 s) until the core sees the resume
        rig.advance(0.05)
    assert len(rig.stages.commands_to("orderbook", RetryNow)) == 1  # backoff reset: retry now
    assert len(rig.stages.commands_to("sync", RetryNow)) == 1  # every running stage is told
    rig.advance(4.9)  # a fresh heal_timeout from the resume, not what was left of the old one
    assert rig.state is State.READY
    rig.advance(0.2)
    assert rig.state is State.ORDERBOOK_CONNECT  # not healed after the resume: left as usual


def test_stream_healing_after_the_resume_keeps_ready_and_cancels_the_rearmed_heal() -> None:
    rig = CoreRig(restart=STRICT, sync_interval=3600.0, discovery_refresh=3600.0)
    rig.to_ready()
    rig.pause("exchange")
    rig.incident("orderbook", "disconnected")
    rig.advance(30.0)
    rig.resume()
    rig.advance(1.0)
    rig.incident("orderbook", "reconnected")
    rig.advance(60.0)
    assert [t.to_state for t in rig.transitions()].count(State.READY) == 1
    assert rig.state is State.READY and no_failure(rig)


def test_orderbook_deadline_during_an_exchange_pause_is_held_then_rearmed() -> None:
    rig = CoreRig(restart=STRICT)
    assert rig.state is State.ORDERBOOK_CONNECT
    rig.pause("exchange")  # upgrades refused: the stage never reports
    rig.advance(600.0)  # far past the 10 s deadline
    assert rig.state is State.ORDERBOOK_CONNECT and no_failure(rig)
    assert len(paused_events(rig)) == 1
    rig.resume()
    rig.advance(1.0)
    assert len(rig.stages.commands_to("orderbook", RetryNow)) == 1
    rig.succeed("orderbook")
    assert rig.state is State.TRADING_CLIENT_CONNECT and no_failure(rig)


def test_held_deadline_still_fails_the_stage_if_it_cannot_connect_after_the_resume() -> None:
    rig = CoreRig(restart=STRICT)
    rig.pause("exchange")
    rig.advance(60.0)
    rig.resume()
    rig.advance(1.0)
    assert no_failure(rig)
    rig.advance(10.0)  # the re-armed deadline, with the exchange up
    failed = [e for e in rig.events if isinstance(e, StageFailureReported)]
    assert [(e.stage, e.error_type) for e in failed] == [("orderbook", "DeadlineExceeded")]


def test_held_heal_is_not_held_again_once_the_status_cannot_be_read() -> None:
    rig = CoreRig(restart=STRICT, sync_interval=3600.0, discovery_refresh=3600.0)
    rig.to_ready()
    rig.pause("exchange")
    rig.incident("orderbook", "disconnected")
    rig.advance(5.0)
    assert rig.state is State.READY and len(paused_events(rig)) == 1
    rig.probe_error = "connection refused"  # the exchange is gone, not paused
    rig.advance(10.0)  # a failed re-check re-arms the heal; its expiry is not held again
    assert rig.state is State.ORDERBOOK_CONNECT
