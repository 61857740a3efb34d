"""The subscription core, driven without sockets: inputs in, actions out.

Every decision of the repair escalation (get_snapshot -> resubscribe -> reconnect), every
deadline and every seq rule is checked here directly; ``test_ws_session.py`` checks the
same behaviour end to end over real sockets against the embedded exchange.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kalshi_api.market_facts import MarketFacts
from kalshi_api.orderbook import OrderBook
from kalshi_api.stream_events import (
    StreamGap,
    StreamMarketDropped,
    StreamResynced,
    StreamStale,
    StreamStats,
    StreamSynced,
    StreamTerminalError,
)
from kalshi_api.subscription_core import (
    CLOSE_RECHECK_MAX,
    CLOSE_RECHECKS,
    MAX_REPAIRS,
    REPLAYS_MAX,
    SETTLED_AFTER,
    Action,
    ArmDeadline,
    CancelDeadline,
    CheckMarkets,
    Deadline,
    DeadlineKind,
    Emit,
    MarketSync,
    Reconnect,
    ReleaseBarrier,
    SendCommand,
    SetSynced,
    SidState,
    SnapshotFrame,
    SubscriptionCore,
)

TICKERS = ("AAA", "BBB", "CCC")
LEVELS = ([(400_000, 1000)], [(550_000, 250)])


def _core(tickers: Sequence[str] = TICKERS, **kwargs: Any) -> SubscriptionCore:
    return SubscriptionCore({t: OrderBook(t) for t in tickers}, StreamStats(), **kwargs)


def _of(actions: list[Action], kind: type) -> list[Any]:
    return [a for a in actions if type(a) is kind]


def _sends(actions: list[Action]) -> list[SendCommand]:
    return _of(actions, SendCommand)


def _events(actions: list[Action]) -> list[Any]:
    return [a.event for a in _of(actions, Emit)]


def _synced(actions: list[Action]) -> bool | None:
    """The last SetSynced value in ``actions`` (None if none)."""
    flags = _of(actions, SetSynced)
    return flags[-1].synced if flags else None


def _subscribe(core: SubscriptionCore, sid: int = 1) -> int:
    """Open a session and acknowledge its subscribe with ``sid``; returns the command id."""
    command = _sends(core.start_session())[0]
    core.on_subscribed(command.command_id, sid, "orderbook_delta")
    return command.command_id


def _snap(sid: int, seq: int, ticker: str, levels: Any = LEVELS) -> SnapshotFrame:
    return SnapshotFrame(sid, seq, ticker, levels, market_id=f"id-{ticker}")


def _live(core: SubscriptionCore, sid: int = 1) -> list[Action]:
    """A subscribed session whose snapshots all arrived (seq 1..n)."""
    _subscribe(core, sid)
    actions: list[Action] = []
    for seq, ticker in enumerate(core.books, start=1):
        actions += core.on_snapshot(_snap(sid, seq, ticker))
    return actions


# -- session start and the first sync -------------------------------------------------------
def test_start_session_subscribes_every_market_and_arms_a_reply_deadline() -> None:
    core = _core(use_yes_price=True, snapshot_timeout=2.5)
    actions = core.start_session()
    (send,) = _sends(actions)
    assert send.payload == {
        "cmd": "subscribe",
        "params": {
            "channels": ["orderbook_delta"],
            "market_tickers": list(TICKERS),
            "use_yes_price": True,
        },
    }
    (arm,) = _of(actions, ArmDeadline)
    assert arm.deadline.kind is DeadlineKind.SUBSCRIBE_REPLY and arm.after == 2.5


def test_command_ids_increase_and_are_never_reused_across_sessions() -> None:
    core = _core()
    first = _sends(core.start_session())[0].command_id
    core.end_session()
    second = _sends(core.start_session())[0].command_id
    assert second > first


def test_subscribed_reply_creates_the_sid_with_every_book_awaiting_a_snapshot() -> None:
    core = _core()
    command = _sends(core.start_session())[0]
    actions = core.on_subscribed(command.command_id, 7, "orderbook_delta")
    assert set(core.subs) == {7}
    assert core.subs[7].awaiting == set(TICKERS)
    assert all(book.stale for book in core.books.values())
    (cancel,) = _of(actions, CancelDeadline)
    assert cancel.deadline.kind is DeadlineKind.SUBSCRIBE_REPLY
    (arm,) = _of(actions, ArmDeadline)
    assert arm.deadline == Deadline(DeadlineKind.FIRST_SNAPSHOTS, 7, arm.deadline.serial)
    assert core.market_states() == dict.fromkeys(TICKERS, MarketSync.AWAITING_SNAPSHOT)


@pytest.mark.parametrize("command_id", [None, "1", 999])
def test_subscribed_reply_to_no_pending_subscribe_is_ignored(command_id: object) -> None:
    core = _core()
    core.start_session()
    assert core.on_subscribed(command_id, 1, "orderbook_delta") == []
    assert core.stats.ignored_frames == 1 and not core.subs


@pytest.mark.parametrize(("sid", "channel"), [("1", "orderbook_delta"), (None, "x"), (1, "ticker")])
def test_malformed_subscribed_reply_raises_before_changing_state(sid: object, channel: str) -> None:
    core = _core()
    command = _sends(core.start_session())[0]
    with pytest.raises(TypeError):
        core.on_subscribed(command.command_id, sid, channel)
    assert not core.subs and command.command_id in core.replies


def test_all_first_snapshots_sync_the_stream_once() -> None:
    core = _core()
    actions = _live(core)
    assert _events(actions) == [StreamSynced(3)]
    assert _synced(actions) is True
    assert core.session_synced and core.all_live()
    assert _of(actions, CancelDeadline)[0].deadline.kind is DeadlineKind.FIRST_SNAPSHOTS
    assert core.books["AAA"].yes == {400_000: 1000} and core.books["AAA"].market_id == "id-AAA"
    assert core.stats.snapshots_received == 3
    assert core.market_states() == dict.fromkeys(TICKERS, MarketSync.LIVE)


def test_partial_snapshots_do_not_sync() -> None:
    core = _core()
    _subscribe(core)
    assert core.on_snapshot(_snap(1, 1, "AAA")) == []
    assert core.on_snapshot(_snap(1, 2, "BBB")) == []
    assert not core.all_live() and not core.session_synced


# -- deltas out of sequence -----------------------------------------------------------------
@pytest.mark.parametrize(("sid", "seq"), [("1", 5), (1, None), (1.0, 5), (True, 5)])
def test_out_of_sequence_with_bad_types_raises(sid: object, seq: object) -> None:
    core = _core()
    _live(core)
    with pytest.raises(TypeError):
        core.out_of_sequence(core.subs[1], sid, seq)


def test_delta_for_an_unknown_sid_is_an_orphan() -> None:
    core = _core()
    _live(core)
    assert core.out_of_sequence(None, 99, 1) == []
    assert core.stats.orphan_frames == 1


def test_duplicate_delta_is_dropped_without_repair() -> None:
    core = _core()
    _live(core)
    sub = core.subs[1]
    assert core.out_of_sequence(sub, 1, 2) == []
    assert core.stats.duplicates_dropped == 1 and sub.last_seq == 3 and core.all_live()


def test_gap_stales_the_sid_and_requests_snapshots_for_its_books() -> None:
    core = _core(snapshot_timeout=4.0)
    _live(core)
    sub = core.subs[1]
    actions = core.out_of_sequence(sub, 1, 9)
    assert _events(actions) == [StreamGap(1, 4, 9, "seq")]
    assert _synced(actions) is False
    (send,) = _sends(actions)
    assert send.payload == {
        "cmd": "update_subscription",
        "params": {"sids": [1], "market_tickers": list(TICKERS), "action": "get_snapshot"},
    }
    (arm,) = _of(actions, ArmDeadline)
    assert arm.deadline.kind is DeadlineKind.SNAPSHOTS and arm.after == 4.0
    assert sub.last_seq == 9 and sub.awaiting == set(TICKERS) and sub.repairs == 1
    assert all(book.stale for book in core.books.values())
    assert core.stats.gaps == 1


def test_repair_snapshots_resync_the_sid_without_a_second_synced_event() -> None:
    core = _core()
    _live(core)
    core.out_of_sequence(core.subs[1], 1, 9)
    actions: list[Action] = []
    for seq, ticker in enumerate(TICKERS, start=10):
        actions += core.on_snapshot(_snap(1, seq, ticker))
    assert _events(actions) == [StreamResynced(1)]
    assert _synced(actions) is True
    assert core.stats.resyncs == 1 and core.subs[1].live_at == 9 + len(TICKERS)


def test_a_repair_that_holds_is_forgiven_but_one_a_gap_follows_at_once_counts_on() -> None:
    core = _core()
    _live(core)
    sub = core.subs[1]

    def heal() -> None:
        for ticker in TICKERS:
            core.on_snapshot(_snap(1, sub.last_seq + 1, ticker))

    core.out_of_sequence(sub, 1, 9)
    heal()
    core.out_of_sequence(sub, 1, sub.last_seq + 2)  # at once: the heal did not hold
    assert sub.repairs == 2
    heal()
    sub.last_seq += SETTLED_AFTER  # live that long: the next gap is a new fault
    core.out_of_sequence(sub, 1, sub.last_seq + 2)
    assert sub.repairs == 1


def test_negative_level_gap_is_reported_with_its_reason() -> None:
    core = _core()
    _live(core)
    actions = core.gap(core.subs[1], 4, 4, "negative_level")
    assert _events(actions) == [StreamGap(1, 4, 4, "negative_level")]
    assert len(_sends(actions)) == 1


def test_gap_while_every_book_awaits_a_snapshot_requests_nothing_more() -> None:
    core = _core()
    _subscribe(core)
    actions = core.out_of_sequence(core.subs[1], 1, 5)
    assert _events(actions) == [StreamGap(1, 1, 5, "seq")]
    assert _sends(actions) == [] and core.subs[1].repairs == 0


def _reply(seq: int, ticker: str, command_id: int) -> SnapshotFrame:
    """A snapshot answering ``get_snapshot`` ``command_id`` on sid 1."""
    return SnapshotFrame(1, seq, ticker, LEVELS, market_id=f"id-{ticker}", command_id=command_id)


def _gap_request(core: SubscriptionCore, seq: int) -> int:
    """A gap at ``seq`` on sid 1; returns the get_snapshot's command id."""
    (send,) = _sends(core.out_of_sequence(core.subs[1], 1, seq))
    return send.command_id


def test_late_repair_reply_heals_without_moving_the_tracker_back_or_a_new_gap() -> None:
    # The replies (seq 10-15) were overtaken by deltas 16-20 of other markets: the count
    # went on, so the tracker stays at 20 and delta 21 is in sequence.
    core = _core()
    _live(core)
    sub = core.subs[1]
    cid = _gap_request(core, 9)
    sub.last_seq = 20  # deltas 16..20 in sequence (the reader), none for these markets
    actions: list[Action] = []
    for seq, ticker in enumerate(TICKERS, start=10):
        actions += core.on_snapshot(_reply(seq, ticker, cid))
    assert _events(actions) == [StreamResynced(1)] and _synced(actions) is True
    assert sub.last_seq == 20 and core.stats.gaps == 1
    sub.last_seq = 21  # the next delta is in sequence: nothing to repair
    core.on_snapshot(_reply(10, "AAA", cid))  # a second copy changes nothing either
    assert core.snapshot_seq == "continue" and core.stats.gaps == 1
    assert core.stats.duplicates_dropped == 1


def test_late_reply_older_than_a_discarded_delta_is_refetched_once() -> None:
    core = _core()
    _live(core)
    sub = core.subs[1]
    first = _gap_request(core, 9)
    sub.discarded["AAA"] = 16  # a delta of AAA was thrown away after the reply's seq
    sub.last_seq = 20
    actions = core.on_snapshot(_reply(10, "AAA", first))
    (send,) = _sends(actions)
    assert send.payload["params"]["market_tickers"] == ["AAA"]
    assert core.books["AAA"].stale and core.stats.stale_snapshots == 1
    # another copy of the same old answer asks for nothing more: the new one is on its way
    assert _sends(core.on_snapshot(_reply(10, "AAA", first))) == []
    core.on_snapshot(_reply(25, "AAA", send.command_id))
    assert not core.books["AAA"].stale and sub.discarded == {}


def test_once_replies_are_known_to_continue_a_late_one_is_brought_up_to_date() -> None:
    core = _core()
    _live(core)
    sub = core.subs[1]
    core.snapshot_seq = "continue"  # learned earlier
    cid = _gap_request(core, 9)
    assert sub.held == [] and sub.held_from == 10
    # the reader keeps what it throws away: AAA +5 at 0.40 (seq 16), BBB at seq 17
    sub.held += [(16, "AAA", "yes", 400_000, 500), (17, "BBB", "no", 550_000, -250)]
    sub.discarded.update({"AAA": 16, "BBB": 17})
    sub.last_seq = 20
    actions: list[Action] = []
    for seq, ticker in enumerate(TICKERS, start=10):
        actions += core.on_snapshot(_reply(seq, ticker, cid))
    assert _sends(actions) == [] and _synced(actions) is True
    assert core.books["AAA"].yes == {400_000: 1500} and core.books["BBB"].no == {}
    assert core.stats.deltas_replayed == 2 and core.stats.stale_snapshots == 0
    assert sub.held is None and sub.last_seq == 20  # kept only while repairing


def test_held_delta_that_would_go_negative_refetches_that_market() -> None:
    core = _core()
    _live(core)
    sub = core.subs[1]
    core.snapshot_seq = "continue"
    cid = _gap_request(core, 9)
    assert sub.held is not None
    sub.held.append((16, "AAA", "yes", 400_000, -5000))
    sub.discarded["AAA"] = 16
    sub.last_seq = 20
    (send,) = _sends(core.on_snapshot(_reply(10, "AAA", cid)))
    assert send.payload["params"]["market_tickers"] == ["AAA"]
    assert core.books["AAA"].stale and "AAA" in sub.awaiting


def test_replayed_delta_for_a_waiting_market_keeps_its_late_reply_from_being_applied() -> None:
    # A delta numbered below the tracker while its book waits may be a restarted count
    # that overtook the reply: a reply numbered below what we reached cannot hold it.
    core = _core()
    _live(core)
    sub = core.subs[1]
    cid = _gap_request(core, 9)
    sub.last_seq = 20
    assert core.out_of_sequence(sub, 1, 12, {"market_ticker": "AAA"}) == []
    assert core.stats.duplicates_dropped == 1 and sub.replayed == 1
    (send,) = _sends(core.on_snapshot(_reply(10, "AAA", cid)))
    assert send.payload["params"]["market_tickers"] == ["AAA"]
    assert core.books["AAA"].stale
    sub.last_seq = 21  # the count went on, but after a replay that proves nothing
    core.on_snapshot(_reply(11, "BBB", cid))
    assert core.snapshot_seq is None


def test_a_run_of_deltas_below_the_tracker_rebuilds_the_sid_and_unlearns_continue() -> None:
    core = _core()
    _live(core)
    sub = core.subs[1]
    core.snapshot_seq = "continue"  # concluded once, yet the count now goes back under us
    sub.last_seq = 500
    for seq in range(2, 2 + REPLAYS_MAX):
        assert core.out_of_sequence(sub, 1, seq, {"market_ticker": "AAA"}) == []
    actions = core.out_of_sequence(sub, 1, 2 + REPLAYS_MAX, {"market_ticker": "AAA"})
    assert _events(actions)[0].reason == "seq" and _synced(actions) is False
    (send,) = _sends(actions)
    assert send.payload["params"]["market_tickers"] == list(TICKERS)
    assert core.snapshot_seq is None and sub.last_seq == 2 + REPLAYS_MAX


def test_reply_that_restarted_the_count_is_learned_and_the_sid_started_over_once() -> None:
    core = _core()
    _live(core)
    sub = core.subs[1]
    cid = _gap_request(core, 9)
    for seq, ticker in enumerate(TICKERS, start=1):  # the reply restarts at 1
        core.on_snapshot(_reply(seq, ticker, cid))
    assert sub.last_seq == 9 and core.snapshot_seq is None  # undecided until a delta
    n = len(TICKERS)
    actions = core.out_of_sequence(sub, 1, n + 1)  # the delta after the reply: restarted
    assert core.snapshot_seq == "restart" and sub.last_seq == n + 1
    (send,) = _sends(actions)
    assert send.payload["params"]["market_tickers"] == list(TICKERS)
    for seq, ticker in enumerate(TICKERS, start=1):  # now known: replies re-baseline
        actions = core.on_snapshot(_reply(seq, ticker, send.command_id))
    assert sub.last_seq == n and _synced(actions) is True
    assert _events(core.out_of_sequence(sub, 1, n + 2)) == [StreamGap(1, n + 1, n + 2, "seq")]


def test_repeated_gaps_escalate_to_resubscribe_then_reconnect() -> None:
    core = _core()
    _live(core)
    sub = core.subs[1]
    for _ in range(MAX_REPAIRS):
        # each repair's snapshot for one book arrives unusable: that book is refetched
        actions = core.on_snapshot(_snap(1, sub.last_seq + 1, "AAA", levels=None))
        assert [s.payload["params"]["action"] for s in _sends(actions)] == ["get_snapshot"]
    actions = core.on_snapshot(_snap(1, sub.last_seq + 1, "AAA", levels=None))
    commands = [s.payload["cmd"] for s in _sends(actions)]
    assert commands == ["unsubscribe", "subscribe"]
    assert _sends(actions)[0].payload["params"] == {"sids": [1]}
    assert 1 not in core.subs and core.stats.resubscribes == 1
    # replacements that never sync escalate to a reconnect
    for replacement in range(2, MAX_REPAIRS + 2):
        sid = 100 + replacement
        subscribe = _sends(actions)[-1]
        core.on_subscribed(subscribe.command_id, sid, "orderbook_delta")
        actions = core.on_error(None, sid, None, 10, "Channel error")
        if replacement <= MAX_REPAIRS:
            assert [s.payload["cmd"] for s in _sends(actions)] == ["subscribe"]
        else:
            (reconnect,) = _of(actions, Reconnect)
            assert reconnect.reason == (
                f"subscription replaced {MAX_REPAIRS} times without syncing; reconnecting"
            )
            assert _sends(actions) == []


def test_going_live_resets_the_replacement_count() -> None:
    core = _core()
    _live(core)
    core.on_error(None, 1, None, 25, "Subscription buffer overflow")
    assert core.replacements == 1
    subscribe_id = max(core.replies._pending)  # the resubscribe
    core.on_subscribed(subscribe_id, 2, "orderbook_delta")
    for seq, ticker in enumerate(TICKERS, start=1):
        core.on_snapshot(_snap(2, seq, ticker))
    assert core.replacements == 0 and core.all_live()


# -- snapshots ------------------------------------------------------------------------------
def test_snapshot_for_an_unknown_sid_is_an_orphan() -> None:
    core = _core()
    _subscribe(core)
    assert core.on_snapshot(_snap(5, 1, "AAA")) == []
    assert core.stats.orphan_frames == 1


@pytest.mark.parametrize("ticker", ["ZZZ", None])
def test_snapshot_for_a_market_not_in_the_sid_raises(ticker: object) -> None:
    core = _core()
    _subscribe(core)
    with pytest.raises(KeyError):
        core.on_snapshot(_snap(1, 1, ticker))  # type: ignore[arg-type]
    assert core.subs[1].last_seq == 0


def test_unawaited_snapshot_at_or_below_the_seq_is_a_duplicate() -> None:
    core = _core()
    _live(core)
    assert core.on_snapshot(_snap(1, 2, "AAA", levels=([], []))) == []
    assert core.stats.duplicates_dropped == 1 and core.books["AAA"].yes


def test_unreadable_snapshot_consumes_its_seq_and_refetches_its_market() -> None:
    core = _core()
    _subscribe(core)
    core.on_snapshot(_snap(1, 1, "AAA"))
    actions = core.on_snapshot(_snap(1, 2, "BBB", levels=None))
    assert core.stats.malformed_frames == 1 and core.subs[1].last_seq == 2
    assert _events(actions) == [StreamGap(1, 2, 2, "bad_frame")]
    # AAA is live again and BBB is refetched; CCC's snapshot is still on its way
    (send,) = _sends(actions)
    assert send.payload["params"]["market_tickers"] == ["AAA", "BBB"]


def test_snapshot_seq_jump_covers_the_sids_other_live_books() -> None:
    core = _core()
    _live(core)
    core.out_of_sequence(core.subs[1], 1, 5)  # all three await snapshots now
    core.on_snapshot(_snap(1, 6, "AAA"))
    actions = core.on_snapshot(_snap(1, 9, "BBB"))  # 7, 8 lost while AAA was live
    assert _events(actions) == [StreamGap(1, 7, 9, "seq")]
    assert _sends(actions)[0].payload["params"]["market_tickers"] == ["AAA", "BBB"]


def test_snapshot_seq_restart_rebaselines_the_tracker() -> None:
    core = _core()
    _live(core)
    core.out_of_sequence(core.subs[1], 1, 50)
    actions: list[Action] = []
    for seq, ticker in enumerate(TICKERS, start=1):  # the exchange restarted the seq
        actions += core.on_snapshot(_snap(1, seq, ticker))
    assert _events(actions) == [StreamResynced(1)] and core.subs[1].last_seq == 3


# -- replies and errors ---------------------------------------------------------------------
def test_ok_and_unsubscribed_replies_take_a_seq_slot() -> None:
    core = _core()
    _live(core)
    assert core.on_ok(None, 1, 4) == [] and core.subs[1].last_seq == 4
    assert core.advance(1, 4) == [] and core.subs[1].last_seq == 4
    assert _events(core.advance(1, 7)) == [StreamGap(1, 5, 7, "seq")]
    assert core.advance("1", 9) == [] and core.advance(1, "9") == []


def test_barrier_is_sent_when_a_session_opens_and_released_by_its_reply() -> None:
    core = _core()
    token = object()
    assert core.add_barrier(token) == []  # no session yet
    actions = core.start_session()
    assert [s.payload["cmd"] for s in _sends(actions)] == ["subscribe", "list_subscriptions"]
    barrier_id = _sends(actions)[1].command_id
    assert core.on_ok(barrier_id, None, None) == [ReleaseBarrier(token)]
    assert core.on_ok(barrier_id, None, None) == []  # released once


def test_barrier_outstanding_at_session_end_is_resent_on_the_next() -> None:
    core = _core()
    token = object()
    core.start_session()
    first = _sends(core.add_barrier(token))[0].command_id
    core.end_session()
    actions = core.start_session()
    second = _sends(actions)[1]
    assert second.payload == {"cmd": "list_subscriptions"} and second.command_id > first
    assert core.on_ok(first, None, None) == []  # the old session's id means nothing now


def test_dropped_barrier_is_not_resent() -> None:
    core = _core()
    token = object()
    core.add_barrier(token)
    core.drop_barrier(token)
    assert len(_sends(core.start_session())) == 1


def test_error_reply_to_a_barrier_still_releases_it() -> None:
    core = _core()
    token = object()
    core.start_session()
    barrier_id = _sends(core.add_barrier(token))[0].command_id
    assert core.on_error(barrier_id, None, None, 5, "Unknown command") == [ReleaseBarrier(token)]


def test_rejected_subscribe_of_a_lone_market_already_checked_open_reconnects() -> None:
    """Before issue 8 every refused subscribe reconnected (a storm when the refusal was
    about one closed market). Now only a market checked open and refused again does."""
    core = _core(("AAA",), can_check=True)
    command = _sends(core.start_session())[0]
    (check,) = _of(core.on_error(command.command_id, None, None, 11, "bad"), CheckMarkets)
    assert check.tickers == ("AAA",)
    (again,) = _sends(core.on_market_checked({"AAA": "active"}))
    (reconnect,) = _of(core.on_error(again.command_id, None, None, 11, "bad"), Reconnect)
    assert reconnect == Reconnect("subscribe to open market AAA refused again: error 11")


def test_refused_get_snapshot_resubscribes() -> None:
    core = _core()
    _live(core)
    request = _sends(core.out_of_sequence(core.subs[1], 1, 9))[0]
    actions = core.on_error(request.command_id, None, None, 11, "Invalid parameter")
    assert [s.payload["cmd"] for s in _sends(actions)] == ["unsubscribe", "subscribe"]
    assert core.stats.resubscribes == 1


def test_refused_get_snapshot_after_the_sid_went_live_changes_nothing() -> None:
    core = _core()
    _live(core)
    request = _sends(core.out_of_sequence(core.subs[1], 1, 9))[0]
    for seq, ticker in enumerate(TICKERS, start=10):
        core.on_snapshot(_snap(1, seq, ticker))
    assert core.on_error(request.command_id, None, None, 11, "late") == []


def test_uncorrelated_error_only_advances_the_seq() -> None:
    core = _core()
    _live(core)
    assert core.on_error(None, 1, 4, 7, "Unknown subscription ID") == []
    assert core.subs[1].last_seq == 4


@pytest.mark.parametrize("code", [10, 25])
def test_terminal_error_on_a_sid_replaces_only_that_sid(code: int) -> None:
    core = _core()
    _live(core)
    actions = core.on_error(None, 1, None, code, "dead")
    assert _events(actions) == [StreamTerminalError(code, "dead")]
    assert [s.payload["cmd"] for s in _sends(actions)] == ["subscribe"]  # no unsubscribe
    assert not core.subs and _synced(actions) is False
    assert core.stats.terminal_errors == 1
    assert core.market_states() == dict.fromkeys(TICKERS, MarketSync.UNSUBSCRIBED)


def test_unscoped_terminal_error_replaces_every_sid() -> None:
    core = _core()
    _live(core, sid=1)
    resubscribe = _sends(core.on_error(None, 1, None, 10, "x"))[0]
    core.on_subscribed(resubscribe.command_id, 2, "orderbook_delta")
    core.subs[3] = SidState(3, {"CCC": core.books["CCC"]})  # as chunked subscriptions will
    actions = core.on_error(None, None, None, 10, "x")
    assert len(_sends(actions)) == 2 and not core.subs


def test_terminal_error_for_an_unknown_sid_replaces_nothing() -> None:
    core = _core()
    _live(core)
    actions = core.on_error(None, 42, None, 10, "x")
    assert _sends(actions) == [] and 1 in core.subs


def test_unhashable_error_code_raises() -> None:
    core = _core()
    _live(core)
    with pytest.raises(TypeError):
        core.on_error(None, 1, None, [10], "x")


# -- deadlines ------------------------------------------------------------------------------
def test_unanswered_subscribe_reconnects() -> None:
    core = _core(snapshot_timeout=3.0)
    (arm,) = _of(core.start_session(), ArmDeadline)
    assert core.on_deadline(arm.deadline) == [
        Reconnect("no reply to subscribe within 3s; reconnecting")
    ]


def test_subscribe_deadline_after_the_reply_does_nothing() -> None:
    core = _core()
    actions = core.start_session()
    (arm,) = _of(actions, ArmDeadline)
    core.on_subscribed(_sends(actions)[0].command_id, 1, "orderbook_delta")
    assert core.on_deadline(arm.deadline) == []


def test_missing_first_snapshots_reconnect() -> None:
    core = _core(snapshot_timeout=5.0)
    command = _sends(core.start_session())[0]
    (arm,) = _of(core.on_subscribed(command.command_id, 1, "orderbook_delta"), ArmDeadline)
    core.on_snapshot(_snap(1, 1, "AAA"))
    assert core.on_deadline(arm.deadline) == [
        Reconnect("sid 1: no snapshot for 2 market(s) within 5s; reconnecting")
    ]


def test_unanswered_get_snapshot_resubscribes() -> None:
    core = _core()
    _live(core)
    (arm,) = _of(core.out_of_sequence(core.subs[1], 1, 9), ArmDeadline)
    actions = core.on_deadline(arm.deadline)
    assert [s.payload["cmd"] for s in _sends(actions)] == ["unsubscribe", "subscribe"]


def test_superseded_deadline_is_ignored() -> None:
    core = _core()
    _live(core)
    sub = core.subs[1]
    (first,) = _of(core.out_of_sequence(sub, 1, 9), ArmDeadline)
    actions = core.on_snapshot(_snap(1, 10, "AAA", levels=None))  # a second repair re-arms
    assert _of(actions, CancelDeadline) == [CancelDeadline(first.deadline)]
    assert core.on_deadline(first.deadline) == []


def test_deadline_of_a_live_sid_does_nothing() -> None:
    core = _core()
    command = _sends(core.start_session())[0]
    (arm,) = _of(core.on_subscribed(command.command_id, 1, "orderbook_delta"), ArmDeadline)
    for seq, ticker in enumerate(TICKERS, start=1):
        core.on_snapshot(_snap(1, seq, ticker))
    assert core.on_deadline(arm.deadline) == []


# -- session end ----------------------------------------------------------------------------
def test_end_session_cancels_deadlines_and_stales_every_book() -> None:
    core = _core()
    (subscribe_deadline,) = _of(core.start_session(), ArmDeadline)
    ended = core.end_session()
    assert _of(ended, CancelDeadline) == [CancelDeadline(subscribe_deadline.deadline)]
    assert core.on_deadline(subscribe_deadline.deadline) == []

    _subscribe(core)
    core.on_snapshot(_snap(1, 1, "AAA"))
    ended = core.end_session()
    assert {c.deadline.kind for c in _of(ended, CancelDeadline)} == {DeadlineKind.FIRST_SNAPSHOTS}
    assert _synced(ended) is False and not core.subs and len(core.replies) == 0
    assert all(book.stale for book in core.books.values())


def test_session_synced_survives_session_end_until_the_next_start() -> None:
    core = _core()
    _live(core)
    core.end_session()
    assert core.session_synced
    core.start_session()
    assert not core.session_synced


def test_core_needs_a_market() -> None:
    with pytest.raises(ValueError, match="at least one market"):
        SubscriptionCore({}, StreamStats())


# -- invariants under any input order -------------------------------------------------------
_STEP = st.one_of(
    st.tuples(st.just("delta"), st.integers(-2, 6)),
    st.tuples(st.just("snapshot"), st.sampled_from(TICKERS), st.integers(-2, 6), st.booleans()),
    st.tuples(st.just("terminal"), st.booleans()),
    st.tuples(st.just("deadline")),
    st.tuples(st.just("ack")),
    st.tuples(st.just("refuse")),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_STEP, max_size=40))
def test_invariants_hold_for_any_sequence_of_inputs(steps: list[tuple[Any, ...]]) -> None:
    """Whatever arrives: a book is live only in a sid that is not awaiting it, every armed
    deadline is one the core still knows, pending replies stay bounded by what was sent,
    and synced is only ever claimed with every book live."""
    core = _core()
    armed: dict[Deadline, None] = {}
    sent = 0
    next_sid = 1
    synced = False

    def run(actions: list[Action]) -> None:
        nonlocal sent, synced
        for action in actions:
            if isinstance(action, ArmDeadline):
                armed[action.deadline] = None
            elif isinstance(action, CancelDeadline):
                armed.pop(action.deadline, None)
            elif isinstance(action, SendCommand):
                sent += 1
            elif isinstance(action, SetSynced):
                synced = action.synced
                if synced:
                    assert core.all_live()

    run(core.start_session())
    for step in steps:
        sub = next(iter(core.subs.values()), None)
        if step[0] == "ack":
            subscribes = [
                i for i, p in core.replies._pending.items() if p.kind.value == "subscribe"
            ]
            if subscribes:
                run(core.on_subscribed(subscribes[0], next_sid, "orderbook_delta"))
                next_sid += 1
        elif sub is None:
            continue
        elif step[0] == "delta":
            seq = sub.last_seq + step[1]
            if seq == sub.last_seq + 1:
                sub.last_seq = seq  # what the hot path does for an in-sequence delta
            else:
                run(core.out_of_sequence(sub, sub.sid, seq))
        elif step[0] == "snapshot":
            _, ticker, offset, readable = step
            levels = LEVELS if readable else None
            run(core.on_snapshot(_snap(sub.sid, sub.last_seq + offset, ticker, levels)))
        elif step[0] == "terminal":
            run(core.on_error(None, sub.sid if step[1] else None, None, 10, "x"))
        elif step[0] == "deadline" and armed:
            deadline = next(iter(armed))
            del armed[deadline]
            run(core.on_deadline(deadline))
        elif step[0] == "refuse":
            snapshot_ids = [
                i for i, p in core.replies._pending.items() if p.kind.value == "get_snapshot"
            ]
            if snapshot_ids:
                run(core.on_error(snapshot_ids[0], None, None, 11, "x"))
        for s in core.subs.values():
            for ticker, book in s.books.items():
                assert book.stale == (ticker in s.awaiting)
            assert s.deadline is None or s.deadline in armed
        assert len(core.replies) <= sent
    run(core.end_session())
    assert not armed and not synced


# -- issue 8: chunks, error 26, per-market sync, lifecycle, staleness -----------------------
SIX = ("A1", "A2", "A3", "A4", "A5", "A6")


def _subscribes(actions: list[Action]) -> list[SendCommand]:
    return [a for a in _sends(actions) if a.payload["cmd"] == "subscribe"]


def _tickers(send: SendCommand) -> list[str]:
    return list(send.payload["params"]["market_tickers"])


def _chunked_live(core: SubscriptionCore) -> dict[int, SendCommand]:
    """Open a session, ack each chunk with sid 1, 2, ... and deliver every snapshot."""
    commands = _subscribes(core.start_session())
    by_sid: dict[int, SendCommand] = {}
    for sid, command in enumerate(commands, start=1):
        core.on_subscribed(command.command_id, sid, "orderbook_delta")
        by_sid[sid] = command
    for sid, command in by_sid.items():
        for seq, ticker in enumerate(_tickers(command), start=1):
            core.on_snapshot(_snap(sid, seq, ticker))
    return by_sid


def test_markets_are_subscribed_in_chunks_of_the_configured_size() -> None:
    core = _core((*SIX, "A7"), chunk_size=3)
    commands = _subscribes(core.start_session())
    assert [_tickers(c) for c in commands] == [["A1", "A2", "A3"], ["A4", "A5", "A6"], ["A7"]]


def test_sync_waits_for_every_chunk() -> None:
    core = _core(SIX, chunk_size=3)
    commands = _subscribes(core.start_session())
    core.on_subscribed(commands[0].command_id, 1, "orderbook_delta")
    actions: list[Action] = []
    for seq, ticker in enumerate(SIX[:3], start=1):
        actions += core.on_snapshot(_snap(1, seq, ticker))
    assert _synced(actions) is None and not core.session_synced  # chunk 2 not even acked
    core.on_subscribed(commands[1].command_id, 2, "orderbook_delta")
    for seq, ticker in enumerate(SIX[3:], start=1):
        actions += core.on_snapshot(_snap(2, seq, ticker))
    assert StreamSynced(6) in _events(actions) and _synced(actions) is True


def test_error_26_splits_the_chunk_and_remembers_the_smaller_size() -> None:
    core = _core(SIX, chunk_size=6)
    (command,) = _subscribes(core.start_session())
    actions = core.on_error(command.command_id, None, None, 26, "limit")
    assert [_tickers(c) for c in _subscribes(actions)] == [["A1", "A2", "A3"], ["A4", "A5", "A6"]]
    assert _of(actions, CancelDeadline)[0].deadline.kind is DeadlineKind.SUBSCRIBE_REPLY
    assert not _of(actions, Reconnect) and core.stats.subscribe_splits == 1
    assert core.chunk_size == 3
    core.end_session()
    assert [len(_tickers(c)) for c in _subscribes(core.start_session())] == [3, 3]


def test_a_gap_on_one_chunk_repairs_only_that_sid() -> None:
    core = _core(SIX, chunk_size=3)
    _chunked_live(core)
    actions = core.out_of_sequence(core.subs[2], 2, 9)
    (send,) = _sends(actions)
    assert send.payload["params"] == {
        "sids": [2],
        "market_tickers": ["A4", "A5", "A6"],
        "action": "get_snapshot",
    }
    assert [t for t, b in core.books.items() if b.stale] == ["A4", "A5", "A6"]
    assert core.subs[1].awaiting == set()


def test_market_without_snapshot_is_checked_and_the_rest_sync_without_it() -> None:
    core = _core(can_check=True, snapshot_timeout=5.0)
    command = _sends(core.start_session())[0]
    (arm,) = _of(core.on_subscribed(command.command_id, 1, "orderbook_delta"), ArmDeadline)
    core.on_snapshot(_snap(1, 1, "AAA"))
    core.on_snapshot(_snap(1, 2, "BBB"))
    actions = core.on_deadline(arm.deadline)
    assert _of(actions, CheckMarkets) == [CheckMarkets(("CCC",))]
    assert StreamSynced(2) in _events(actions) and _synced(actions) is True
    assert core.market_states()["CCC"] is MarketSync.CHECKING
    assert not _of(actions, Reconnect)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("closed", "closed"),
        ("settled", "settled"),
        ("determined", "determined"),
        ("finalized", "finalized"),
        (None, "unknown market"),
    ],
)
def test_checked_market_that_is_over_is_dropped_with_an_event(
    status: str | None, reason: str
) -> None:
    core = _core(can_check=True)
    command = _sends(core.start_session())[0]
    (arm,) = _of(core.on_subscribed(command.command_id, 1, "orderbook_delta"), ArmDeadline)
    core.on_snapshot(_snap(1, 1, "AAA"))
    core.on_snapshot(_snap(1, 2, "BBB"))
    core.on_deadline(arm.deadline)
    actions = core.on_market_checked({"CCC": status})
    assert _events(actions) == [StreamMarketDropped("CCC", reason)]
    (delete,) = _sends(actions)
    assert delete.payload["params"] == {
        "sids": [1],
        "market_tickers": ["CCC"],
        "action": "delete_markets",
    }
    assert core.market_states()["CCC"] is MarketSync.DROPPED
    assert core.stats.markets_dropped == 1 and core.live_count() == 2
    core.end_session()  # a dropped market is never subscribed again
    assert _tickers(_subscribes(core.start_session())[0]) == ["AAA", "BBB"]


def test_checked_market_that_is_open_is_asked_for_again_then_escalates() -> None:
    core = _core(can_check=True)
    command = _sends(core.start_session())[0]
    (arm,) = _of(core.on_subscribed(command.command_id, 1, "orderbook_delta"), ArmDeadline)
    core.on_snapshot(_snap(1, 1, "AAA"))
    core.on_snapshot(_snap(1, 2, "BBB"))
    core.on_deadline(arm.deadline)
    actions = core.on_market_checked({"CCC": "active"})
    (send,) = _sends(actions)
    assert send.payload["params"]["market_tickers"] == ["CCC"]
    assert _synced(actions) is False
    (arm2,) = _of(actions, ArmDeadline)
    again = core.on_deadline(arm2.deadline)  # cleared once: no second check, escalate
    assert not _of(again, CheckMarkets) and _subscribes(again)


def test_a_late_snapshot_during_the_check_makes_the_market_live() -> None:
    core = _core(can_check=True)
    command = _sends(core.start_session())[0]
    (arm,) = _of(core.on_subscribed(command.command_id, 1, "orderbook_delta"), ArmDeadline)
    core.on_snapshot(_snap(1, 1, "AAA"))
    core.on_snapshot(_snap(1, 2, "BBB"))
    core.on_deadline(arm.deadline)
    core.on_snapshot(_snap(1, 3, "CCC"))
    assert core.on_market_checked({"CCC": "active"}) == [SetSynced(True)]
    assert core.live_count() == 3


def test_refused_chunk_is_bisected_until_the_refused_market_is_checked() -> None:
    core = _core(("AAA", "BBB"), can_check=True)
    (command,) = _subscribes(core.start_session())
    halves = _subscribes(core.on_error(command.command_id, None, None, 11, "Invalid parameter"))
    assert [_tickers(h) for h in halves] == [["AAA"], ["BBB"]]
    core.on_subscribed(halves[0].command_id, 1, "orderbook_delta")
    core.on_snapshot(_snap(1, 1, "AAA"))
    actions = core.on_error(halves[1].command_id, None, None, 11, "Invalid parameter")
    assert _of(actions, CheckMarkets) == [CheckMarkets(("BBB",))]
    assert StreamSynced(1) in _events(actions)
    dropped = core.on_market_checked({"BBB": "closed"})
    assert _events(dropped) == [StreamMarketDropped("BBB", "closed")]


def test_error_naming_its_markets_resubscribes_the_rest_at_once() -> None:
    core = _core(can_check=True)
    (command,) = _subscribes(core.start_session())
    actions = core.on_error(command.command_id, None, None, 11, "bad", ["BBB"])
    assert [_tickers(c) for c in _subscribes(actions)] == [["AAA", "CCC"]]
    assert _of(actions, CheckMarkets) == [CheckMarkets(("BBB",))]


def test_without_a_checker_a_refused_lone_market_is_dropped_not_retried() -> None:
    core = _core(("AAA",))
    (command,) = _subscribes(core.start_session())
    actions = core.on_error(command.command_id, None, None, 11, "bad")
    assert _events(actions)[0] == StreamMarketDropped("AAA", "subscribe refused (error 11)")
    assert not _of(actions, Reconnect) and core.live_count() == 0


def test_lifecycle_is_subscribed_and_its_end_events_drop_markets() -> None:
    core = _core(lifecycle=True)
    actions = core.start_session()
    lifecycle = [
        s for s in _sends(actions) if s.payload["params"]["channels"] == ["market_lifecycle_v2"]
    ]
    assert len(lifecycle) == 1
    core.on_subscribed(lifecycle[0].command_id, 50, "market_lifecycle_v2")
    assert core.lifecycle_sid == 50
    (command,) = [s for s in _subscribes(actions) if s is not lifecycle[0]]
    core.on_subscribed(command.command_id, 1, "orderbook_delta")
    for seq, ticker in enumerate(TICKERS, start=1):
        core.on_snapshot(_snap(1, seq, ticker))
    assert core.on_lifecycle({"market_ticker": "ZZZ", "event_type": "settled"}) == []
    assert core.on_lifecycle({"market_ticker": "AAA", "event_type": "activated"}) == []
    late = {"market_ticker": "AAA", "event_type": "close_date_updated", "close_ts": 2000}
    assert core.on_lifecycle(late, now_ts=1000.0) == []
    early = {"market_ticker": "AAA", "event_type": "close_date_updated", "close_ts": 900}
    assert _events(core.on_lifecycle(early, now_ts=1000.0)) == [
        StreamMarketDropped("AAA", "closed early (market_lifecycle_v2)")
    ]
    settled = core.on_lifecycle({"market_ticker": "BBB", "event_type": "determined"})
    assert _events(settled) == [StreamMarketDropped("BBB", "determined (market_lifecycle_v2)")]
    assert core.live_count() == 1
    with pytest.raises(TypeError):
        core.on_lifecycle(["not", "a", "dict"])


def test_quiet_sid_is_probed_once_and_nothing_else_happens_when_it_answers() -> None:
    core = _core(stale_after=10.0, snapshot_timeout=2.0)
    _live(core)
    assert core.on_tick(0.0) == []
    assert core.on_tick(9.0) == []
    (probe,) = _sends(core.on_tick(10.5))
    assert probe.payload["params"] == {
        "sids": [1],
        "market_tickers": ["AAA"],
        "action": "get_snapshot",
    }
    assert core.all_live()  # a probe does not stale the books
    core.on_snapshot(_snap(1, 4, "AAA"))  # the answer
    assert core.on_tick(13.0) == [] and core.stats.stale == 0
    assert core.on_tick(20.0) == []  # the answer reset the silence clock


def test_probe_answered_by_a_restarted_seq_still_counts() -> None:
    core = _core(stale_after=10.0, snapshot_timeout=2.0)
    _live(core)
    core.on_tick(0.0)
    _sends(core.on_tick(10.0))
    core.on_snapshot(_snap(1, 1, "AAA"))  # restart variant: a duplicate by seq
    assert core.on_tick(12.5) == [] and core.stats.stale == 0


def test_silent_sid_whose_probe_goes_unanswered_is_stale_and_replaced() -> None:
    core = _core(stale_after=10.0, snapshot_timeout=2.0)
    _live(core)
    core.on_tick(0.0)
    core.on_tick(10.0)
    actions = core.on_tick(12.0)
    assert _events(actions) == [StreamStale(1, 12.0)]
    assert core.stats.stale == 1 and _synced(actions) is False
    assert [s.payload["cmd"] for s in _sends(actions)] == ["unsubscribe", "subscribe"]
    assert not core.all_live()


def test_deltas_keep_a_sid_fresh_and_a_repairing_sid_is_left_to_its_deadlines() -> None:
    core = _core(stale_after=10.0, snapshot_timeout=2.0)
    _live(core)
    sub = core.subs[1]
    core.on_tick(0.0)
    for now in (8.0, 16.0, 24.0):
        sub.last_seq += 1  # what the hot path does for an in-sequence delta
        assert core.on_tick(now) == []
    core.out_of_sequence(sub, 1, sub.last_seq + 5)  # a repair is now in flight
    assert core.on_tick(40.0) == []
    assert core.on_tick(100.0) == []


def test_error_frames_are_counted_per_code_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    core = _core()
    _live(core)
    huge = "x" * 100_000
    for _ in range(50):
        core.on_error(None, None, None, 5, huge)
    core.on_error(None, None, None, 8, "Unknown channel name")
    assert core.error_codes == {5: 50, 8: 1} and core.stats.error_frames == 51
    lines = [r.getMessage() for r in caplog.records if "exchange error" in r.getMessage()]
    assert len(lines) == 2 and all(len(line) < 400 for line in lines)


def test_core_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        _core(chunk_size=0)
    with pytest.raises(ValueError, match="stale_after"):
        _core(stale_after=0)


def test_empty_first_snapshot_is_checked_unless_listed_open_before_its_close() -> None:
    open_until = {t: MarketFacts("active", 2_000.0) for t in TICKERS}
    core = _core(can_check=True, facts=open_until)
    _subscribe(core)
    # Listed active, close time ahead, this session: an empty book is legal, no REST call.
    assert not _of(core.on_snapshot(_snap(1, 1, "AAA", levels=([], [])), 1_000.0), CheckMarkets)
    # Past its close time: checked (and live meanwhile).
    actions = core.on_snapshot(_snap(1, 2, "BBB", levels=([], [])), 2_500.0)
    assert _of(actions, CheckMarkets) == [CheckMarkets(("BBB",))]
    assert not core.books["BBB"].stale
    # No facts at all: checked, the default (no opt-in).
    plain = _core(can_check=True)
    _subscribe(plain)
    assert _of(plain.on_snapshot(_snap(1, 1, "AAA", levels=([], [])), 1_000.0), CheckMarkets)


def test_empty_snapshot_in_a_later_session_or_a_restarted_stream_is_checked() -> None:
    facts = {t: MarketFacts("active", 2_000.0) for t in TICKERS}
    core = _core(can_check=True, facts=facts)
    _live(core)
    core.end_session()
    core.start_session()
    _subscribe(core, sid=2)
    actions = core.on_snapshot(_snap(2, 1, "AAA", levels=([], [])), 1_000.0)
    assert _of(actions, CheckMarkets) == [CheckMarkets(("AAA",))]
    restarted = _core(can_check=True, facts=facts, facts_fresh=False)
    _subscribe(restarted)
    assert _of(restarted.on_snapshot(_snap(1, 1, "AAA", levels=([], [])), 1_000.0), CheckMarkets)


def test_markets_listed_closed_are_dropped_before_any_subscribe() -> None:
    core = _core(can_check=True, facts={"BBB": MarketFacts("settled", 10.0)})
    assert _events(core.opening()) == [
        StreamMarketDropped("BBB", "settled (listed so at startup)")
    ]
    assert core.opening() == []
    (send,) = _subscribes(core.start_session())
    assert _tickers(send) == ["AAA", "CCC"]


def test_close_time_passing_checks_markets_in_one_batch_and_drops_the_closed() -> None:
    facts = {
        "AAA": MarketFacts("active", 100.0),
        "BBB": MarketFacts("active", 100.0),
        "CCC": MarketFacts("active", 900.0),
    }
    core = _core(can_check=True, facts=facts)
    _live(core)
    assert _of(core.on_tick(1.0, 99.0), CheckMarkets) == []
    assert _of(core.on_tick(2.0, 100.5), CheckMarkets) == [CheckMarkets(("AAA", "BBB"))]
    assert _of(core.on_tick(3.0, 101.0), CheckMarkets) == []  # asked once, not per tick
    assert core.live_count() == 3  # live while being checked
    actions = core.on_market_checked(
        {"AAA": MarketFacts("closed", 100.0), "BBB": MarketFacts("active", 100.0)}
    )
    assert _events(actions) == [StreamMarketDropped("AAA", "closed (close time passed)")]
    assert core.active() == ("BBB", "CCC")
    # BBB is still active with the same close time: re-checked later, with backoff.
    assert _of(core.on_tick(4.0, 101.5), CheckMarkets) == []
    assert _of(core.on_tick(5.0, 102.0), CheckMarkets) == [CheckMarkets(("BBB",))]
    # Its close time was extended: watched again at the new one, not before.
    assert _events(core.on_market_checked({"BBB": MarketFacts("active", 500.0)})) == []
    assert _of(core.on_tick(6.0, 499.0), CheckMarkets) == []
    assert _of(core.on_tick(7.0, 500.0), CheckMarkets) == [CheckMarkets(("BBB",))]


def test_a_market_still_active_after_its_close_is_rechecked_a_bounded_number_of_times() -> None:
    core = _core(can_check=True, facts={"AAA": MarketFacts("active", 100.0)})
    _live(core)
    wall, checks = 100.0, 0
    for _ in range(200):
        wall += CLOSE_RECHECK_MAX
        if _of(core.on_tick(wall, wall), CheckMarkets):
            checks += 1
            core.on_market_checked({"AAA": "active"})
    assert checks == CLOSE_RECHECKS + 1 and core.active() == TICKERS


def test_a_dropped_market_is_followed_again_only_when_listed_active() -> None:
    core = _core()
    _live(core)
    core.remove_markets(["AAA"], "closed")
    assert core.add_markets(["AAA"]) == []  # no facts: the drop stands
    assert core.add_markets(["AAA"], {"AAA": MarketFacts("closed")}) == []
    actions = core.add_markets(["AAA"], {"AAA": MarketFacts("active", None)})
    assert _tickers(_subscribes(actions)[0]) == ["AAA"] and "AAA" not in core.dropped


def test_added_markets_are_subscribed_in_their_own_chunk_and_must_sync() -> None:
    core = _core()
    _live(core)
    actions = core.add_markets(["DDD", "AAA"])  # AAA is known: ignored
    assert _synced(actions) is False
    (send,) = _subscribes(actions)
    assert _tickers(send) == ["DDD"]
    core.on_subscribed(send.command_id, 2, "orderbook_delta")
    assert StreamSynced(4) not in _events(core.on_snapshot(_snap(2, 1, "DDD")))
    assert core.all_live() and core.live_count() == 4


def test_removed_markets_are_dropped_with_the_reason() -> None:
    core = _core()
    _live(core)
    actions = core.remove_markets(["BBB", "ZZZ"], "no longer open")
    assert _events(actions) == [StreamMarketDropped("BBB", "no longer open")]
    assert core.active() == ("AAA", "CCC") and core.all_live()
