"""Trading-state policy and the kill switch's verification loop."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from messages.orders import HaltReason, TradingState
from trading.halt import (
    STRICTNESS,
    CancelAgain,
    HaltCheck,
    HaltDone,
    HaltPolicy,
    ReadAgain,
    on_trigger,
    ours,
    plan_halt_step,
    resume,
)


def test_on_trigger_when_defaults_halts_on_leaving_ready_pause_loss_and_group() -> None:
    for reason in (HaltReason.MANUAL, HaltReason.LEFT_READY, HaltReason.EXCHANGE_PAUSE,
                   HaltReason.DAILY_LOSS, HaltReason.ORDER_GROUP_TRIGGERED, HaltReason.SHUTDOWN):
        assert on_trigger(TradingState.ACTIVE, reason) is TradingState.HALTED, reason
    assert on_trigger(TradingState.ACTIVE, HaltReason.RISK_BREACH) is TradingState.REDUCING


def test_on_trigger_when_policy_says_ignore_leaves_state() -> None:
    policy = HaltPolicy(on={HaltReason.EXCHANGE_PAUSE: TradingState.ACTIVE})
    assert on_trigger(TradingState.ACTIVE, HaltReason.EXCHANGE_PAUSE, policy) is TradingState.ACTIVE
    assert on_trigger(TradingState.ACTIVE, HaltReason.LEFT_READY, policy) is TradingState.HALTED


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(list(HaltReason))), st.sampled_from(list(TradingState)),
       st.randoms(use_true_random=False))
def test_on_trigger_when_triggers_arrive_in_any_order_only_tightens_to_the_same_state(
    reasons: list[HaltReason], start: TradingState, rng
) -> None:
    state = start
    for reason in reasons:
        after = on_trigger(state, reason)
        assert STRICTNESS[after] >= STRICTNESS[state]
        state = after
    shuffled = list(reasons)
    rng.shuffle(shuffled)
    other = start
    for reason in shuffled:
        other = on_trigger(other, reason)
    assert other is state
    assert resume() is TradingState.ACTIVE


def check(resting=(), in_flight=0, reads=1, ok=True) -> HaltCheck:
    return HaltCheck(started_ms=1_000, now_ms=1_750, resting_ours=tuple(resting),
                     in_flight=in_flight, reads=reads, last_cancel_all_ok=ok)


def test_plan_halt_step_when_ours_rest_cancels_them_by_id() -> None:
    assert plan_halt_step(check(["o1", "o2", "o1"])) == CancelAgain(("o1", "o2"), False)
    assert plan_halt_step(check(["o1"], ok=False)) == CancelAgain(("o1",), True)


def test_plan_halt_step_when_creates_in_flight_keeps_reading_with_backoff() -> None:
    steps = [plan_halt_step(check(in_flight=1, reads=n)) for n in (1, 2, 3, 10)]
    assert all(isinstance(s, ReadAgain) for s in steps)
    assert [s.after_ms for s in steps] == [100, 200, 400, 2_000]


def test_plan_halt_step_when_nothing_rests_or_flies_is_done_with_elapsed_time() -> None:
    assert plan_halt_step(check()) == HaltDone(750)


def test_plan_halt_step_when_nothing_shows_but_cancel_all_failed_sends_it_again() -> None:
    """A lagging read may not list an order of ours yet: only a cancel-all that answered
    proves the sweep (before: ``HaltDone`` after one failed cancel-all and one read)."""
    assert plan_halt_step(check(ok=False)) == CancelAgain((), True)
    assert plan_halt_step(check(in_flight=1, ok=False)) == CancelAgain((), True)


def test_ours_when_listing_resting_picks_tracked_ids_and_our_prefix() -> None:
    resting = [("o1", "ks-abc-1"), ("o2", None), ("o3", "other-1"), ("o4", "ks-old-9"),
               ("o5", "ksx-1")]
    assert ours(resting, {"o2"}, "ks") == ("o1", "o2", "o4")
