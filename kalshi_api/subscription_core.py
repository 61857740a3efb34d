"""The orderbook subscription's decisions, sans I/O: seq tracking, gaps and their repair.

Why it is separate from the socket: the repair logic is the most intricate part of the
stream (and the part the next changes rework: per-market sync, chunked subscriptions,
per-sid repair, staleness), and logic that can only be driven through a socket can only
be tested slowly and partially. Here every decision is a plain method that takes what
happened (a reply, a snapshot already parsed, a seq that did not follow, a deadline that
expired) and returns what to do as data (:class:`SendCommand`, :class:`ArmDeadline`,
:class:`Reconnect`, :class:`Emit` ...). The session executes those actions in order; the
tests feed inputs and assert on the actions, with no loop, no socket and no clock.

What it tracks:

* **Per sid** (:class:`SidState`): its books, the last seq seen, the markets still
  awaiting a snapshot, how many repairs were tried, and which deadline is armed.
  Kalshi numbers every message of a subscription (all its markets) with one counter,
  so a gap stales every book of that sid and nothing else.
* **Per market**: live or awaiting a snapshot (``OrderBook.stale``) and which sid
  carries it; :meth:`SubscriptionCore.market_states` reports it.
* **Per session**: pending command replies (:mod:`kalshi_api.replies`), whether this
  connection has synced, and how many subscriptions were replaced since all was live.

Repair escalation, so an exchange that keeps sending bad data cannot trap us in a loop:
``get_snapshot`` for the stale markets (up to :data:`MAX_REPAIRS` times per sid), then
replace the subscription (unsubscribe + subscribe, up to :data:`MAX_REPAIRS` times since
everything was last live), then drop the connection (:class:`Reconnect`). Every step is
bounded by ``snapshot_timeout`` through a deadline the session arms and reports back.

The one shortcut: the session's hot-path reader advances ``SidState.last_seq`` itself for
an in-sequence delta (a dict lookup and an int store per frame), and calls in here for
everything else. Nothing else in this module is touched from outside.

Where the next changes fit: chunked subscriptions are several ``_subscribe(chunk)`` calls
(each ``Pending`` already carries its tickers, each sid its own books, and a gap already
repairs only its sid); an error 26 on a subscribe arrives in :meth:`on_error` with that
chunk's tickers in hand, ready to be split; per-market sync can read
:meth:`market_states` and drop a market from a sid's ``books``/``awaiting``; staleness needs
the clock's ``now`` as one more input (an ``on_tick(now)`` beside :meth:`on_deadline`).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from kalshi_api.orderbook import Level, OrderBook
from kalshi_api.protocol import ORDERBOOK_CHANNEL, TERMINAL_CODES
from kalshi_api.replies import CommandKind, Pending, PendingReplies
from kalshi_api.stream_events import (
    StreamEvent,
    StreamGap,
    StreamResynced,
    StreamStats,
    StreamSynced,
    StreamTerminalError,
)

__all__ = [
    "MAX_REPAIRS",
    "Action",
    "ArmDeadline",
    "CancelDeadline",
    "Deadline",
    "DeadlineKind",
    "Emit",
    "MarketSync",
    "Reconnect",
    "ReleaseBarrier",
    "SendCommand",
    "SetSynced",
    "SidState",
    "SnapshotFrame",
    "SubscriptionCore",
]

log = logging.getLogger(__name__)

MAX_REPAIRS = 3
"""Repair attempts at one level before escalating to the next (snapshot -> resubscribe ->
reconnect), so an exchange that keeps sending bad data cannot trap us in a request loop."""


# -- inputs --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SnapshotFrame:
    """An ``orderbook_snapshot`` already parsed by the session.

    ``levels`` is ``(yes, no)`` with NO prices in no-leg terms, or None when the frame's
    ladders were unreadable (it still consumed its seq, so the core must know it came).
    ``ticker`` is None when the frame named no market.
    """

    sid: int
    seq: int
    ticker: Any
    levels: tuple[list[Level], list[Level]] | None
    market_id: object = None


class DeadlineKind(Enum):
    """What an armed deadline guards, which decides what its expiry does."""

    SUBSCRIBE_REPLY = "subscribe_reply"
    """No ``subscribed`` for a subscribe: reconnect."""
    FIRST_SNAPSHOTS = "first_snapshots"
    """A new subscription's snapshots did not all arrive: reconnect."""
    SNAPSHOTS = "snapshots"
    """A ``get_snapshot`` repair went unanswered: replace the subscription."""


@dataclass(frozen=True, slots=True)
class Deadline:
    """One armed deadline; ``key`` is the sid (or, for a subscribe reply, the command id)
    and ``serial`` makes every arming distinct, so a stale expiry is recognised and ignored."""

    kind: DeadlineKind
    key: int
    serial: int


# -- actions -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SendCommand:
    """Send ``{"id": command_id, **payload}`` on the current socket (dropped if none)."""

    command_id: int
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ArmDeadline:
    """Call :meth:`SubscriptionCore.on_deadline` with ``deadline`` after ``after`` seconds."""

    deadline: Deadline
    after: float


@dataclass(frozen=True, slots=True)
class CancelDeadline:
    """Forget an armed deadline (its expiry would be ignored anyway; this frees the timer)."""

    deadline: Deadline


@dataclass(frozen=True, slots=True)
class Emit:
    """Tell the stream's owner ``event``."""

    event: StreamEvent


@dataclass(frozen=True, slots=True)
class SetSynced:
    """Every book is live (True), or at least one is not (False): what ``wait_synced`` sees."""

    synced: bool


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Drop the connection with this one-line reason; the reconnect loop takes over."""

    reason: str


@dataclass(frozen=True, slots=True)
class ReleaseBarrier:
    """The reply to a barrier's ``list_subscriptions`` arrived: wake its waiter."""

    token: Hashable


Action = SendCommand | ArmDeadline | CancelDeadline | Emit | SetSynced | Reconnect | ReleaseBarrier


class MarketSync(Enum):
    """Where one market stands right now."""

    LIVE = "live"
    """Its book is built from a snapshot plus every delta since."""
    AWAITING_SNAPSHOT = "awaiting_snapshot"
    """Subscribed, but its book is stale until a (fresh) snapshot arrives."""
    UNSUBSCRIBED = "unsubscribed"
    """No subscription carries it (between sessions, or while being resubscribed)."""


# -- per-sid state -------------------------------------------------------------------------
@dataclass(eq=False, slots=True)
class SidState:
    """One live subscription: its books, seq tracker and what it is still waiting for."""

    sid: int
    books: dict[str, OrderBook]
    last_seq: int = 0
    awaiting: set[str] = field(default_factory=set)
    """Markets whose book is stale until a snapshot arrives."""
    initial: bool = True
    """True until every book of this sid has had its first snapshot."""
    repairs: int = 0
    """``get_snapshot`` requests since this sid was last fully live."""
    deadline: Deadline | None = None
    """The deadline armed for this sid, if any (at most one at a time)."""


# -- the core ------------------------------------------------------------------------------
class SubscriptionCore:
    """Decisions for one orderbook subscription set across connections; no I/O, no clock.

    Every ``on_*``/command method returns the actions to execute, in order. Methods that
    receive malformed input raise ``TypeError``/``KeyError`` *before* changing any state,
    so the session can count the frame as malformed and carry on.
    """

    def __init__(
        self,
        books: dict[str, OrderBook],
        stats: StreamStats,
        *,
        use_yes_price: bool = False,
        snapshot_timeout: float = 5.0,
    ) -> None:
        if not books:
            raise ValueError("a subscription core needs at least one market")
        self.books = books
        """Every market's book, shared with the session (the same objects for ever)."""
        self.stats = stats
        self.use_yes_price = bool(use_yes_price)
        self.snapshot_timeout = snapshot_timeout
        self.subs: dict[int, SidState] = {}
        """Live sids of the current session. Mutated in place, never rebound: the hot-path
        reader binds it once per session."""
        self.replies = PendingReplies()
        self.session_open = False
        self.session_synced = False
        """Whether the current (or last) connection reached every book live."""
        self.replacements = 0
        """Subscriptions replaced since every book was last live (escalation counter)."""
        self._barriers: dict[Hashable, int] = {}
        """Barrier token -> command id sent on this session (0 = not sent yet)."""
        self._subscribe_deadlines: dict[int, Deadline] = {}
        self._serial = 0

    # -- queries ---------------------------------------------------------------------------
    def market_states(self) -> dict[str, MarketSync]:
        """Each market's sync status right now (for status reports and per-market sync)."""
        states = dict.fromkeys(self.books, MarketSync.UNSUBSCRIBED)
        for sub in self.subs.values():
            for ticker, book in sub.books.items():
                states[ticker] = MarketSync.AWAITING_SNAPSHOT if book.stale else MarketSync.LIVE
        return states

    def all_live(self) -> bool:
        """True when no book is stale."""
        return all(not book.stale for book in self.books.values())

    # -- session lifecycle -----------------------------------------------------------------
    def start_session(self) -> list[Action]:
        """A socket opened: subscribe to every market and resend outstanding barriers."""
        self.session_open = True
        self.session_synced = False
        self.replacements = 0
        actions = self._subscribe(tuple(self.books))
        for token in self._barriers:
            actions += self._send_barrier(token)
        return actions

    def end_session(self) -> list[Action]:
        """The socket closed: every sid and pending reply died with it; books go stale.

        Barriers survive (they are resent on the next session) so a waiter is not failed
        by a reconnect it did not cause.
        """
        self.session_open = False
        actions: list[Action] = [SetSynced(False)]
        for sub in self.subs.values():
            actions += self._cancel_deadline(sub)
        actions += [CancelDeadline(d) for d in self._subscribe_deadlines.values()]
        self._subscribe_deadlines.clear()
        self.subs.clear()
        self.replies.clear()
        for book in self.books.values():
            book.stale = True
        for token in self._barriers:
            self._barriers[token] = 0
        return actions

    # -- barriers --------------------------------------------------------------------------
    def add_barrier(self, token: Hashable) -> list[Action]:
        """Round-trip a ``list_subscriptions`` for ``token`` (now, or once a session opens)."""
        self._barriers[token] = 0
        return self._send_barrier(token) if self.session_open else []

    def drop_barrier(self, token: Hashable) -> None:
        """The waiter gave up; a late reply for it is then harmless."""
        self._barriers.pop(token, None)

    # -- frames ----------------------------------------------------------------------------
    def out_of_sequence(self, sub: SidState | None, sid: object, seq: object) -> list[Action]:
        """A delta that is not the sid's next: unknown sid, bad types, duplicate or gap."""
        if type(sid) is not int or type(seq) is not int:
            raise TypeError("delta envelope needs integer sid and seq")
        if sub is None:
            self.stats.orphan_frames += 1
            return []
        last = sub.last_seq
        if seq <= last:
            self.stats.duplicates_dropped += 1
            return []
        sub.last_seq = seq
        return self.gap(sub, last + 1, seq, "seq")

    def on_snapshot(self, frame: SnapshotFrame) -> list[Action]:
        """A snapshot: re-baseline its book and the sid's seq; the sid may go live."""
        sub = self.subs.get(frame.sid)
        if sub is None:
            self.stats.orphan_frames += 1
            return []
        ticker = frame.ticker
        book = sub.books.get(ticker)
        if book is None:
            raise KeyError(f"snapshot for a market not in sid {frame.sid}")
        seq = frame.seq
        awaited = ticker in sub.awaiting
        last = sub.last_seq
        if not awaited and seq <= last:
            self.stats.duplicates_dropped += 1
            return []
        # Whether a get_snapshot reply continues or restarts the sid's seq is unconfirmed,
        # so a snapshot always re-baselines the tracker: both variants then work.
        sub.last_seq = seq
        if frame.levels is None:
            self.stats.malformed_frames += 1
            book.stale = True
            return self.gap(sub, seq, seq, "bad_frame", refetch=(ticker,))
        book.apply_snapshot(*frame.levels)
        if type(frame.market_id) is str:
            book.market_id = frame.market_id
        self.stats.snapshots_received += 1
        sub.awaiting.discard(ticker)
        # A jump in seq also covers deltas the sid's *other* live books may have missed.
        if seq > last + 1 and last and len(sub.awaiting) < len(sub.books) - 1:
            return self.gap(sub, last + 1, seq, "seq")
        if awaited and not sub.awaiting:
            return self._sub_live(sub)
        return []

    def on_subscribed(self, command_id: object, sid: object, channel: object) -> list[Action]:
        """``subscribed``: the sid exists; its books stay stale until their snapshots."""
        pending = self.replies.peek(command_id)
        if pending is None or pending.kind is not CommandKind.SUBSCRIBE:
            self.stats.ignored_frames += 1
            return []
        if type(sid) is not int or channel != ORDERBOOK_CHANNEL:
            raise TypeError("bad subscribed reply")
        self.replies.take(command_id)
        actions: list[Action] = []
        deadline = self._subscribe_deadlines.pop(command_id, None)  # type: ignore[arg-type]
        if deadline is not None:
            actions.append(CancelDeadline(deadline))
        sub = SidState(
            sid=sid,
            books={ticker: self.books[ticker] for ticker in pending.tickers},
            awaiting=set(pending.tickers),
        )
        for book in sub.books.values():
            book.stale = True
        self.subs[sid] = sub
        return actions + self._arm_deadline(sub, DeadlineKind.FIRST_SNAPSHOTS)

    def on_ok(self, command_id: object, sid: object, seq: object) -> list[Action]:
        """``ok``: releases a barrier, and takes a seq slot if it carries one."""
        pending = self.replies.take(command_id)
        actions: list[Action] = []
        if pending is not None and pending.kind is CommandKind.BARRIER:
            self._barriers.pop(pending.token, None)
            actions.append(ReleaseBarrier(pending.token))
        return actions + self.advance(sid, seq)

    def advance(self, sid: object, seq: object) -> list[Action]:
        """Replies that carry ``sid`` + ``seq`` take a slot in the sid's sequence."""
        sub = self.subs.get(sid) if type(sid) is int else None  # type: ignore[arg-type]
        if sub is None or type(seq) is not int:
            return []
        if seq == sub.last_seq + 1:
            sub.last_seq = seq
        elif seq > sub.last_seq:
            expected = sub.last_seq + 1
            sub.last_seq = seq
            return self.gap(sub, expected, seq, "seq")
        return []

    def on_error(
        self, command_id: object, sid: object, seq: object, code: object, text: str
    ) -> list[Action]:
        """An ``error`` frame: a terminal code replaces sids; otherwise it answers a command."""
        if code in TERMINAL_CODES:  # an unhashable code raises TypeError: a malformed frame
            self.stats.terminal_errors += 1
            actions: list[Action] = [Emit(StreamTerminalError(code, text))]  # type: ignore[arg-type]
            if type(sid) is int:
                victims = [self.subs[sid]] if sid in self.subs else []
            else:  # unscoped: we cannot tell which sid died, so replace them all
                victims = list(self.subs.values())
            for sub in victims:
                actions += self._resubscribe(sub, unsubscribe=False)
            return actions
        actions = self.advance(sid, seq)
        pending = self.replies.take(command_id)
        if pending is None:
            log.warning("exchange error %s: %s", code, text)
            return actions
        if pending.kind is CommandKind.GET_SNAPSHOT:
            sub = self.subs.get(pending.sid)
            if sub is not None and sub.awaiting:
                log.warning(
                    "sid %d: get_snapshot refused (%s %s); resubscribing", sub.sid, code, text
                )
                actions += self._resubscribe(sub, unsubscribe=True)
        elif pending.kind is CommandKind.SUBSCRIBE:
            actions.append(Reconnect(f"subscribe rejected: error {code} ({text})"))
        elif pending.kind is CommandKind.BARRIER:  # still proves ordering
            self._barriers.pop(pending.token, None)
            actions.append(ReleaseBarrier(pending.token))
        return actions

    def on_deadline(self, deadline: Deadline) -> list[Action]:
        """A deadline expired; it acts only if it is still the one armed for its target."""
        if deadline.kind is DeadlineKind.SUBSCRIBE_REPLY:
            if self._subscribe_deadlines.get(deadline.key) != deadline:
                return []
            del self._subscribe_deadlines[deadline.key]
            if deadline.key not in self.replies:
                return []
            return [
                Reconnect(f"no reply to subscribe within {self.snapshot_timeout:g}s; reconnecting")
            ]
        sub = self.subs.get(deadline.key)
        if sub is None or sub.deadline != deadline:
            return []
        sub.deadline = None
        if not sub.awaiting:
            return []
        if deadline.kind is DeadlineKind.SNAPSHOTS:
            log.warning("sid %d: get_snapshot unanswered; resubscribing", sub.sid)
            return self._resubscribe(sub, unsubscribe=True)
        return [
            Reconnect(
                f"sid {sub.sid}: no snapshot for {len(sub.awaiting)} market(s) within "
                f"{self.snapshot_timeout:g}s; reconnecting"
            )
        ]

    # -- gap repair ------------------------------------------------------------------------
    def gap(
        self,
        sub: SidState,
        expected: int,
        received: int,
        reason: str,
        refetch: tuple[str, ...] = (),
    ) -> list[Action]:
        """Data was lost on ``sub``: stale every live book in it and ask for snapshots.

        Books already awaiting a snapshot are not asked for again (the one on its way was
        taken after this point) unless named in ``refetch`` (their snapshot was unusable).
        Repeated failed repairs escalate: after :data:`MAX_REPAIRS` requests without the
        sid going live it is replaced (and :meth:`_resubscribe` escalates further).
        """
        self.stats.gaps += 1
        actions: list[Action] = [Emit(StreamGap(sub.sid, expected, received, reason))]
        wanted = [t for t in sub.books if t not in sub.awaiting or t in refetch]
        if not wanted:
            return actions  # every book is already waiting for a snapshot taken after this
        for ticker in wanted:
            sub.books[ticker].stale = True
        sub.awaiting.update(wanted)
        actions.append(SetSynced(False))
        sub.repairs += 1
        if sub.repairs > MAX_REPAIRS:
            return actions + self._resubscribe(sub, unsubscribe=True)
        return actions + self._request_snapshots(sub, wanted)

    def _sub_live(self, sub: SidState) -> list[Action]:
        """Every book of ``sub`` is live again: report it, and report the stream synced."""
        actions = self._cancel_deadline(sub)
        sub.repairs = 0
        if sub.initial and not self.session_synced:
            sub.initial = False
        else:
            sub.initial = False
            self.stats.resyncs += 1
            actions.append(Emit(StreamResynced(sub.sid)))
        if self.all_live():
            self.replacements = 0
            actions.append(SetSynced(True))
            if not self.session_synced:
                self.session_synced = True
                actions.append(Emit(StreamSynced(len(self.books))))
        return actions

    def _resubscribe(self, sub: SidState, *, unsubscribe: bool) -> list[Action]:
        """Replace a sid whose repair failed or that Kalshi killed with a fresh subscription;
        after :data:`MAX_REPAIRS` replacements without syncing, reconnect instead."""
        self.stats.resubscribes += 1
        actions = self._abandon(sub)
        self.replacements += 1
        if self.replacements > MAX_REPAIRS:
            actions.append(
                Reconnect(
                    f"subscription replaced {MAX_REPAIRS} times without syncing; reconnecting"
                )
            )
            return actions
        if unsubscribe:
            command_id = self.replies.allocate()
            actions.append(
                SendCommand(command_id, {"cmd": "unsubscribe", "params": {"sids": [sub.sid]}})
            )
            self.replies.expect(command_id, Pending(CommandKind.UNSUBSCRIBE, sid=sub.sid))
        return actions + self._subscribe(tuple(sub.books))

    def _abandon(self, sub: SidState) -> list[Action]:
        actions = self._cancel_deadline(sub)
        self.subs.pop(sub.sid, None)
        for book in sub.books.values():
            book.stale = True
        actions.append(SetSynced(False))
        return actions

    # -- outgoing commands -----------------------------------------------------------------
    def _subscribe(self, tickers: Sequence[str]) -> list[Action]:
        params = {
            "channels": [ORDERBOOK_CHANNEL],
            "market_tickers": list(tickers),
            "use_yes_price": self.use_yes_price,
        }
        command_id = self.replies.allocate()
        self.replies.expect(command_id, Pending(CommandKind.SUBSCRIBE, tickers=tuple(tickers)))
        deadline = self._next_deadline(DeadlineKind.SUBSCRIBE_REPLY, command_id)
        self._subscribe_deadlines[command_id] = deadline
        return [
            SendCommand(command_id, {"cmd": "subscribe", "params": params}),
            ArmDeadline(deadline, self.snapshot_timeout),
        ]

    def _request_snapshots(self, sub: SidState, tickers: Iterable[str]) -> list[Action]:
        """Kalshi's in-stream repair: fresh snapshots without touching the subscription."""
        params = {"sids": [sub.sid], "market_tickers": list(tickers), "action": "get_snapshot"}
        command_id = self.replies.allocate()
        self.replies.expect(command_id, Pending(CommandKind.GET_SNAPSHOT, sid=sub.sid))
        actions: list[Action] = [
            SendCommand(command_id, {"cmd": "update_subscription", "params": params})
        ]
        return actions + self._arm_deadline(sub, DeadlineKind.SNAPSHOTS)

    def _send_barrier(self, token: Hashable) -> list[Action]:
        command_id = self.replies.allocate()
        self.replies.expect(command_id, Pending(CommandKind.BARRIER, token=token))
        self._barriers[token] = command_id
        return [SendCommand(command_id, {"cmd": "list_subscriptions"})]

    # -- deadlines -------------------------------------------------------------------------
    def _next_deadline(self, kind: DeadlineKind, key: int) -> Deadline:
        self._serial += 1
        return Deadline(kind, key, self._serial)

    def _arm_deadline(self, sub: SidState, kind: DeadlineKind) -> list[Action]:
        actions = self._cancel_deadline(sub)
        sub.deadline = self._next_deadline(kind, sub.sid)
        actions.append(ArmDeadline(sub.deadline, self.snapshot_timeout))
        return actions

    def _cancel_deadline(self, sub: SidState) -> list[Action]:
        if sub.deadline is None:
            return []
        deadline, sub.deadline = sub.deadline, None
        return [CancelDeadline(deadline)]
