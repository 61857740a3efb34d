"""Restart policy tests: exact, with a ManualClock and a seeded Random.

Expected delays are computed from Akka's formula with an identically seeded
Random, so every assertion is an equality, not a range.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervision.clock import ManualClock
from supervision.policy import (
    BackoffPolicy,
    IntensityPolicy,
    RestartDecision,
    RestartRecord,
    RestartTracker,
    RestartType,
    Strategy,
    children_to_restart,
    should_restart,
)

ORDER = ("orderbook", "trading", "sync")
SEED = 20240601


def expected_delays(seed: int, policy: BackoffPolicy, attempts: Sequence[int]) -> list[float]:
    """Akka's formula, drawing one random per delay from a Random seeded like the tracker's."""
    rng = random.Random(seed)
    return [
        min(policy.max_backoff, policy.min_backoff * 2**attempt)
        * (1 + policy.random_factor * rng.random())
        for attempt in attempts
    ]


def make_tracker(
    *,
    strategy: Strategy = Strategy.REST_FOR_ONE,
    order: Sequence[str] = ORDER,
    types: Mapping[str, RestartType] | None = None,
    backoff: BackoffPolicy | None = None,
    intensity: IntensityPolicy | None = None,
    clock: ManualClock | None = None,
    seed: int = SEED,
    history_limit: int = 1000,
) -> tuple[RestartTracker, ManualClock]:
    clock = clock if clock is not None else ManualClock()
    tracker = RestartTracker(
        strategy,
        order,
        types if types is not None else {},
        backoff if backoff is not None else BackoffPolicy(),
        intensity if intensity is not None else IntensityPolicy(),
        clock,
        random.Random(seed),
        history_limit=history_limit,
    )
    return tracker, clock


# --- restart types and strategies ---------------------------------------------------


@pytest.mark.parametrize(
    ("restart_type", "abnormal", "expected"),
    [
        (RestartType.PERMANENT, True, True),
        (RestartType.PERMANENT, False, True),
        (RestartType.TRANSIENT, True, True),
        (RestartType.TRANSIENT, False, False),
        (RestartType.TEMPORARY, True, False),
        (RestartType.TEMPORARY, False, False),
    ],
)
def test_should_restart_when_type_and_exit_kind_given_follows_otp(
    restart_type: RestartType, abnormal: bool, expected: bool
) -> None:
    assert should_restart(restart_type, abnormal=abnormal) is expected


def test_restart_type_and_strategy_when_compared_to_strings_use_otp_names() -> None:
    assert [t.value for t in RestartType] == ["permanent", "transient", "temporary"]
    assert [s.value for s in Strategy] == ["one_for_one", "rest_for_one"]


@pytest.mark.parametrize(
    ("strategy", "failed", "expected"),
    [
        (Strategy.ONE_FOR_ONE, "orderbook", ("orderbook",)),
        (Strategy.ONE_FOR_ONE, "trading", ("trading",)),
        (Strategy.ONE_FOR_ONE, "sync", ("sync",)),
        (Strategy.REST_FOR_ONE, "orderbook", ("orderbook", "trading", "sync")),
        (Strategy.REST_FOR_ONE, "trading", ("trading", "sync")),
        (Strategy.REST_FOR_ONE, "sync", ("sync",)),
    ],
)
def test_children_to_restart_when_child_fails_returns_strategy_set_in_start_order(
    strategy: Strategy, failed: str, expected: tuple[str, ...]
) -> None:
    assert children_to_restart(strategy, ORDER, failed) == expected


def test_children_to_restart_when_child_unknown_raises_one_line_value_error() -> None:
    with pytest.raises(ValueError, match="unknown child 'books'") as info:
        children_to_restart(Strategy.ONE_FOR_ONE, ORDER, "books")
    assert "\n" not in str(info.value)


def test_children_to_restart_when_start_order_has_duplicates_raises_value_error() -> None:
    with pytest.raises(ValueError, match="more than once"):
        children_to_restart(Strategy.REST_FOR_ONE, ("a", "b", "a"), "a")


def test_children_to_restart_when_strategy_given_as_string_accepts_it() -> None:
    assert children_to_restart("rest_for_one", ORDER, "trading") == ("trading", "sync")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        children_to_restart("one_for_all", ORDER, "trading")  # type: ignore[arg-type]


# --- backoff ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_backoff": 0.0},
        {"min_backoff": -1.0},
        {"min_backoff": 2.0, "max_backoff": 1.0},
        {"max_backoff": float("inf")},
        {"min_backoff": float("nan")},
        {"random_factor": -0.1},
        {"random_factor": 1.1},
        {"random_factor": float("nan")},
        {"reset_after": 0.0},
        {"reset_after": -5.0},
        {"reset_after": float("nan")},
    ],
)
def test_backoff_policy_when_invalid_raises_one_line_value_error(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError) as info:
        BackoffPolicy(**kwargs)
    assert "\n" not in str(info.value)


def test_backoff_policy_when_min_equals_max_is_valid() -> None:
    policy = BackoffPolicy(min_backoff=1.0, max_backoff=1.0, random_factor=0.0)
    assert policy.delay(5, random.Random(0)) == 1.0


def test_backoff_delay_when_seeded_matches_akka_formula_exactly() -> None:
    policy = BackoffPolicy(min_backoff=0.1, max_backoff=10.0, random_factor=0.2)
    rng = random.Random(SEED)
    attempts = list(range(10))
    assert [policy.delay(a, rng) for a in attempts] == expected_delays(SEED, policy, attempts)


def test_backoff_delay_when_no_jitter_doubles_until_capped() -> None:
    policy = BackoffPolicy(min_backoff=0.5, max_backoff=3.0, random_factor=0.0)
    rng = random.Random(1)
    assert [policy.delay(a, rng) for a in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


@pytest.mark.parametrize("attempt", [1023, 1024, 10**6, 10**100])
def test_backoff_delay_when_attempt_huge_caps_at_max_without_overflow(attempt: int) -> None:
    policy = BackoffPolicy(min_backoff=0.1, max_backoff=10.0, random_factor=0.2)
    rng = random.Random(SEED)
    (expected,) = expected_delays(SEED, dataclasses.replace(policy, min_backoff=10.0), [0])
    assert policy.delay(attempt, rng) == expected


@pytest.mark.parametrize("attempt", [-1, True, 1.0])
def test_backoff_delay_when_attempt_not_a_non_negative_int_raises_value_error(
    attempt: object,
) -> None:
    with pytest.raises(ValueError, match="attempt"):
        BackoffPolicy().delay(attempt, random.Random(0))  # type: ignore[arg-type]


def test_backoff_delay_when_no_jitter_still_draws_one_random() -> None:
    rng = random.Random(SEED)
    BackoffPolicy(random_factor=0.0).delay(0, rng)
    reference = random.Random(SEED)
    reference.random()
    assert rng.getstate() == reference.getstate()


# --- intensity ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_restarts": -1},
        {"max_restarts": 1.5},
        {"max_restarts": True},
        {"period": 0.0},
        {"period": -1.0},
        {"period": float("nan")},
    ],
)
def test_intensity_policy_when_invalid_raises_one_line_value_error(
    kwargs: dict[str, float],
) -> None:
    with pytest.raises(ValueError) as info:
        IntensityPolicy(**kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_policies_when_defaults_used_match_documented_values() -> None:
    assert BackoffPolicy() == BackoffPolicy(0.1, 10.0, 0.2, 30.0)
    assert IntensityPolicy() == IntensityPolicy(5, 30.0)


# --- tracker: decisions -------------------------------------------------------------


def test_on_failure_when_first_failure_restarts_with_attempt_one_and_first_delay() -> None:
    tracker, _ = make_tracker()
    decision = tracker.on_failure("trading")
    (delay,) = expected_delays(SEED, BackoffPolicy(), [0])
    assert decision == RestartDecision(
        restart=True,
        children=("trading", "sync"),
        attempt=1,
        delay=delay,
        give_up=False,
        reason=decision.reason,
    )
    assert "\n" not in decision.reason
    assert "trading" in decision.reason


def test_on_failure_when_trading_fails_under_rest_for_one_restarts_sync_too() -> None:
    tracker, _ = make_tracker(strategy=Strategy.REST_FOR_ONE)
    assert tracker.on_failure("trading").children == ("trading", "sync")


def test_on_failure_when_orderbook_fails_under_rest_for_one_restarts_all_three() -> None:
    tracker, _ = make_tracker(strategy=Strategy.REST_FOR_ONE)
    assert tracker.on_failure("orderbook").children == ("orderbook", "trading", "sync")


def test_on_failure_when_orderbook_fails_under_one_for_one_restarts_only_it() -> None:
    tracker, _ = make_tracker(strategy=Strategy.ONE_FOR_ONE)
    assert tracker.on_failure("orderbook").children == ("orderbook",)


def test_on_failure_when_child_keeps_failing_attempts_and_delays_follow_formula() -> None:
    backoff = BackoffPolicy(min_backoff=0.1, max_backoff=1.0, random_factor=0.5)
    tracker, clock = make_tracker(
        backoff=backoff, intensity=IntensityPolicy(max_restarts=100, period=1.0)
    )
    decisions = []
    for _ in range(6):
        decisions.append(tracker.on_failure("orderbook"))
        clock.advance(2.0)
    assert [d.attempt for d in decisions] == [1, 2, 3, 4, 5, 6]
    assert [d.delay for d in decisions] == expected_delays(SEED, backoff, range(6))


@pytest.mark.parametrize(
    ("restart_type", "abnormal", "restarted"),
    [
        (RestartType.PERMANENT, True, True),
        (RestartType.PERMANENT, False, True),
        (RestartType.TRANSIENT, True, True),
        (RestartType.TRANSIENT, False, False),
        (RestartType.TEMPORARY, True, False),
        (RestartType.TEMPORARY, False, False),
    ],
)
def test_on_failure_when_restart_type_and_exit_kind_given_restarts_or_drops(
    restart_type: RestartType, abnormal: bool, restarted: bool
) -> None:
    tracker, _ = make_tracker(types={"trading": restart_type})
    decision = tracker.on_failure("trading", abnormal=abnormal)
    assert decision.restart is restarted
    assert decision.give_up is False
    if restarted:
        assert decision.children == ("trading", "sync")
        assert decision.attempt == 1
        assert tracker.restart_count == 1
    else:
        assert decision.children == ()
        assert decision.attempt == 0
        assert decision.delay == 0.0
        assert tracker.restart_count == 0
        assert tracker.start_order == ("orderbook", "sync")
        assert str(restart_type) in decision.reason


def test_on_failure_when_abnormal_not_given_treats_exit_as_abnormal() -> None:
    tracker, _ = make_tracker(types={"sync": RestartType.TRANSIENT})
    assert tracker.on_failure("sync").restart is True


def test_on_failure_when_earlier_child_fails_after_a_drop_skips_dropped_child() -> None:
    tracker, _ = make_tracker(types={"sync": RestartType.TEMPORARY})
    assert tracker.on_failure("sync").children == ()
    assert tracker.on_failure("orderbook").children == ("orderbook", "trading")
    with pytest.raises(ValueError, match="unknown child 'sync'"):
        tracker.on_failure("sync")


def test_on_failure_when_child_dropped_does_not_count_toward_intensity() -> None:
    tracker, _ = make_tracker(
        types={"sync": RestartType.TEMPORARY}, intensity=IntensityPolicy(max_restarts=1)
    )
    tracker.on_failure("sync")
    assert tracker.on_failure("trading").restart is True


def test_on_failure_when_child_unknown_raises_value_error() -> None:
    tracker, _ = make_tracker()
    with pytest.raises(ValueError, match="unknown child 'ghost'"):
        tracker.on_failure("ghost")
    with pytest.raises(ValueError, match="unknown child 'ghost'"):
        tracker.on_started("ghost")


def test_tracker_when_restart_types_name_unknown_child_raises_value_error() -> None:
    with pytest.raises(ValueError, match="not in start order: \\['ghost'\\]"):
        make_tracker(types={"ghost": RestartType.PERMANENT})


def test_tracker_when_start_order_has_duplicates_raises_value_error() -> None:
    with pytest.raises(ValueError, match="more than once"):
        make_tracker(order=("a", "a"))


def test_tracker_when_restart_type_omitted_defaults_to_permanent() -> None:
    tracker, _ = make_tracker(types={})
    assert tracker.on_failure("sync", abnormal=False).restart is True


def test_restart_decision_when_assigned_raises_frozen_error() -> None:
    tracker, _ = make_tracker()
    decision = tracker.on_failure("sync")
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.restart = False  # type: ignore[misc]


# --- tracker: intensity -------------------------------------------------------------


def test_on_failure_when_max_restarts_reached_within_period_refuses_the_next() -> None:
    tracker, clock = make_tracker(intensity=IntensityPolicy(max_restarts=3, period=10.0))
    for child in ("orderbook", "trading", "sync"):
        assert tracker.on_failure(child).restart is True
        clock.advance(1.0)
    clock.advance_to(9.999)
    decision = tracker.on_failure("trading")
    assert decision.restart is False
    assert decision.give_up is True
    assert decision.children == ()
    assert decision.reason == (
        "restart of 'trading' would be 4 within 10.0s, exceeding max_restarts=3"
    )
    assert tracker.gave_up
    assert tracker.restart_count == 3


def test_on_failure_when_oldest_restart_exactly_period_ago_grants_restart() -> None:
    tracker, clock = make_tracker(intensity=IntensityPolicy(max_restarts=3, period=10.0))
    for child in ("orderbook", "trading", "sync"):
        tracker.on_failure(child)
        clock.advance(1.0)
    clock.advance_to(10.0)  # the restart at t=0 leaves the half-open window (0, 10]
    decision = tracker.on_failure("trading")
    assert decision.restart is True
    assert decision.give_up is False
    assert tracker.restart_count == 4


def test_on_failure_when_max_restarts_zero_gives_up_on_first_failure() -> None:
    tracker, _ = make_tracker(intensity=IntensityPolicy(max_restarts=0))
    decision = tracker.on_failure("orderbook")
    assert decision.give_up is True
    assert decision.restart is False
    assert decision.attempt == 1
    assert tracker.restart_count == 0


def test_on_failure_when_already_gave_up_keeps_giving_up() -> None:
    tracker, clock = make_tracker(intensity=IntensityPolicy(max_restarts=1, period=5.0))
    tracker.on_failure("sync")
    first = tracker.on_failure("sync")
    assert first.give_up is True
    clock.advance(1000.0)
    again = tracker.on_failure("orderbook")
    assert again.give_up is True
    assert again.restart is False
    assert again.reason == f"already gave up: {first.reason}"


def test_on_failure_when_simultaneous_failures_exceed_limit_refuses_at_same_instant() -> None:
    tracker, _ = make_tracker(intensity=IntensityPolicy(max_restarts=2, period=1.0))
    assert [tracker.on_failure(c).give_up for c in ORDER] == [False, False, True]


# --- tracker: reset_after -----------------------------------------------------------


def test_on_failure_when_healthy_for_reset_after_resets_attempt_to_one() -> None:
    backoff = BackoffPolicy(reset_after=30.0)
    tracker, clock = make_tracker(backoff=backoff, intensity=IntensityPolicy(max_restarts=10))
    tracker.on_failure("trading")
    tracker.on_failure("trading")
    clock.advance(1.0)
    tracker.on_started("trading")
    clock.advance(30.0)  # healthy for exactly reset_after
    decision = tracker.on_failure("trading")
    assert decision.attempt == 1
    assert decision.delay == expected_delays(SEED, backoff, [0, 1, 0])[2]


def test_on_failure_when_healthy_just_under_reset_after_keeps_counting() -> None:
    tracker, clock = make_tracker(backoff=BackoffPolicy(reset_after=30.0))
    tracker.on_failure("trading")
    tracker.on_started("trading")
    clock.advance(29.999)
    assert tracker.on_failure("trading").attempt == 2


def test_on_failure_when_never_started_since_last_failure_does_not_reset() -> None:
    tracker, clock = make_tracker(backoff=BackoffPolicy(reset_after=30.0))
    tracker.on_failure("trading")
    clock.advance(1000.0)
    assert tracker.on_failure("trading").attempt == 2


def test_on_failure_when_restarted_as_sibling_clears_its_healthy_clock() -> None:
    tracker, clock = make_tracker(
        backoff=BackoffPolicy(reset_after=30.0), intensity=IntensityPolicy(max_restarts=10)
    )
    tracker.on_failure("sync")
    clock.advance(1.0)
    tracker.on_started("sync")
    clock.advance(50.0)
    tracker.on_failure("trading")  # rest_for_one takes sync down too
    clock.advance(10.0)
    # sync never reported started again, so its earlier healthy spell does not count.
    assert tracker.on_failure("sync").attempt == 2


def test_on_failure_when_sibling_restarted_keeps_each_childs_own_attempt_counter() -> None:
    tracker, _ = make_tracker(intensity=IntensityPolicy(max_restarts=10))
    assert tracker.on_failure("trading").attempt == 1
    assert tracker.on_failure("trading").attempt == 2
    assert tracker.on_failure("sync").attempt == 1
    assert tracker.on_failure("trading").attempt == 3


# --- tracker: observability ---------------------------------------------------------


def test_history_when_restarts_granted_records_time_child_attempt_delay() -> None:
    backoff = BackoffPolicy()
    tracker, clock = make_tracker(backoff=backoff, intensity=IntensityPolicy(max_restarts=10))
    tracker.on_failure("orderbook")
    clock.advance(2.5)
    tracker.on_failure("sync")
    clock.advance(0.5)
    tracker.on_failure("orderbook")
    delays = expected_delays(SEED, backoff, [0, 0, 1])
    assert tracker.history == (
        RestartRecord(0.0, "orderbook", 1, delays[0]),
        RestartRecord(2.5, "sync", 1, delays[1]),
        RestartRecord(3.0, "orderbook", 2, delays[2]),
    )
    assert tracker.history[0] == (0.0, "orderbook", 1, delays[0])
    assert tracker.restart_count == 3


def test_history_when_over_limit_keeps_most_recent_but_counts_all() -> None:
    tracker, clock = make_tracker(intensity=IntensityPolicy(max_restarts=100), history_limit=2)
    for _ in range(5):
        tracker.on_failure("sync")
        clock.advance(1.0)
    assert [record.attempt for record in tracker.history] == [4, 5]
    assert tracker.restart_count == 5


def test_history_when_restart_refused_or_dropped_is_not_recorded() -> None:
    tracker, _ = make_tracker(
        types={"sync": RestartType.TEMPORARY}, intensity=IntensityPolicy(max_restarts=1)
    )
    tracker.on_failure("sync")
    tracker.on_failure("trading")
    tracker.on_failure("trading")
    assert [record.child for record in tracker.history] == ["trading"]


# --- properties ---------------------------------------------------------------------

backoff_policies = st.builds(
    lambda lo, spread, rf, reset: BackoffPolicy(lo, lo * spread, rf, reset),
    st.floats(1e-3, 100.0),
    st.floats(1.0, 1e4),
    st.floats(0.0, 1.0),
    st.floats(1e-3, 1e3),
)


@settings(max_examples=200, deadline=None)
@given(policy=backoff_policies, attempt=st.integers(0, 10**6), seed=st.integers(0, 2**32))
def test_backoff_delay_when_any_valid_policy_stays_within_min_and_jittered_max(
    policy: BackoffPolicy, attempt: int, seed: int
) -> None:
    delay = policy.delay(attempt, random.Random(seed))
    assert policy.min_backoff <= delay <= policy.max_backoff * (1 + policy.random_factor)


@settings(max_examples=200, deadline=None)
@given(policy=backoff_policies, attempt=st.integers(0, 2000), seed=st.integers(0, 2**32))
def test_backoff_delay_when_no_jitter_is_non_decreasing_in_attempt(
    policy: BackoffPolicy, attempt: int, seed: int
) -> None:
    policy = dataclasses.replace(policy, random_factor=0.0)
    rng = random.Random(seed)
    assert policy.delay(attempt, rng) <= policy.delay(attempt + 1, rng)


failures = st.lists(
    st.tuples(st.one_of(st.just(0.0), st.floats(0.0, 20.0)), st.sampled_from(ORDER)),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(
    max_restarts=st.integers(0, 6),
    period=st.floats(0.5, 15.0),
    events=failures,
    strategy=st.sampled_from(list(Strategy)),
)
def test_on_failure_when_any_failure_sequence_never_grants_more_than_max_in_a_period(
    max_restarts: int, period: float, events: list[tuple[float, str]], strategy: Strategy
) -> None:
    tracker, clock = make_tracker(
        strategy=strategy, intensity=IntensityPolicy(max_restarts=max_restarts, period=period)
    )
    granted: list[float] = []
    gave_up = False
    for gap, child in events:
        clock.advance(gap)
        now = clock.monotonic()
        in_window = sum(1 for t in granted if now - t < period)
        decision = tracker.on_failure(child)
        # Model: granted exactly while the window has room, and never after giving up.
        assert decision.restart == (not gave_up and in_window < max_restarts)
        assert decision.give_up is not decision.restart  # all children are permanent
        if decision.restart:
            granted.append(now)
        gave_up = decision.give_up
    for start in granted:
        assert sum(1 for t in granted if 0 <= t - start < period) <= max_restarts
    assert tracker.restart_count == len(granted)
