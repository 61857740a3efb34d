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

Repair replies and the seq (issue 17). Whether a ``get_snapshot`` reply continues the sid's
seq or restarts it is unconfirmed (protocol §3.7), and nothing says a reply cannot be
overtaken by newer deltas. A reply numbered above what the sid reached re-baselines the
tracker (forward). One numbered at or below it is either late or a restarted count: the
tracker stays put (moving it back made every late reply a new gap whose repair was late
again: a loop of heals), and the next delta tells which; a restart, once shown, is
remembered (:attr:`SubscriptionCore.snapshot_seq`) and the sid starts over once. Once
replies are known to continue the count, the deltas thrown away during a repair are kept
(:attr:`SidState.held`, bounded) and a late reply is applied and brought up to date with
them. Otherwise a late reply older than a delta already thrown away for its market is not
applied; only the answer to the market's newest request asks again
(:attr:`SidState.requested`). More than :data:`REPLAYS_MAX` deltas numbered below the
tracker are taken for a count that restarted under us: the sid is rebuilt. A sid's
repair count is forgiven only once it has stayed live for :data:`SETTLED_AFTER` seq
slots, so heals that a gap follows at once still escalate to a resubscribe.

The one shortcut: the session's hot-path reader advances ``SidState.last_seq`` itself for
an in-sequence delta (a dict lookup and an int store per frame), notes in
``SidState.discarded`` the seq of a delta it throws away for a stale book (and keeps it in
``SidState.held`` while that is on), and calls in here for everything else. Nothing else
in this module is touched from outside.

Beyond one subscription (issue 8, "a week on the real exchange"):

* **Chunks.** Markets are subscribed in chunks of ``chunk_size`` (default
  :data:`DEFAULT_CHUNK_SIZE`), one sid each, so a gap repairs only its chunk. An error 26
  (per-subscription market cap, number unpublished) splits the refused chunk in two and
  remembers the smaller size for later sessions. Any other refusal of a subscribe is
  bisected the same way to isolate the market the exchange objects to.
* **Per-market sync.** A market with no snapshot within ``snapshot_timeout`` (or one whose
  single-market subscribe is refused) is handed to the owner to check over REST
  (:class:`CheckMarkets`); the stream does not wait for it meanwhile. The answer
  (:meth:`SubscriptionCore.on_market_checked`) drops a closed, settled, determined or
  unknown market for good (:class:`StreamMarketDropped`) or asks again for an open one.
  A market checked open that fails again escalates as before (resubscribe, reconnect).
  Lifecycle events (``market_lifecycle_v2``) drop markets the same way without a check.
* **Close times.** The owner may give each market's REST facts (status, close time;
  :class:`~kalshi_api.market_facts.MarketFacts`). A market listed in a terminal status is
  dropped at once. An empty first snapshot is one way the exchange answers for a closed
  market, so it is checked over REST unless the market was listed ``active`` with its
  close time still ahead and this is the session those facts were read for (empty books
  are legal). A close *by time* sends no WebSocket event, so when a market's close time
  passes (the clock input, :meth:`SubscriptionCore.on_tick`) it is checked over REST,
  batched with every market due at that tick; still active, it is watched again at its
  new close time or, if that did not move, with bounded backoff
  (:data:`CLOSE_RECHECKS` times).
* **Staleness.** :meth:`SubscriptionCore.on_tick` is the clock input. A sid whose seq has
  not moved for ``stale_after`` seconds is probed with a one-market ``get_snapshot``
  (its books stay live: a quiet market answers at once and nothing else happens). A
  probe unanswered within ``snapshot_timeout`` means the feed is silent, not quiet: an
  event, the sid's books go stale and it is replaced; if the socket is dead, the
  unanswered subscribe then reconnects.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from kalshi_api.market_facts import MarketFacts
from kalshi_api.orderbook import Level, OrderBook
from kalshi_api.protocol import (
    MARKET_LIFECYCLE_CHANNEL,
    ORDERBOOK_CHANNEL,
    TERMINAL_CODES,
    WsErrorCode,
)
from kalshi_api.replies import CommandKind, Pending, PendingReplies
from kalshi_api.stream_events import (
    StreamEvent,
    StreamGap,
    StreamMarketDropped,
    StreamResynced,
    StreamStale,
    StreamStats,
    StreamSynced,
    StreamTerminalError,
)

__all__ = [
    "CLOSE_RECHECKS",
    "CLOSE_RECHECK_MAX",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_STALE_AFTER",
    "DROP_STATUSES",
    "HELD_MAX",
    "MAX_REPAIRS",
    "REPLAYS_MAX",
    "SETTLED_AFTER",
    "Action",
    "ArmDeadline",
    "CancelDeadline",
    "CheckMarkets",
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

log = logging.getLogger("kalshi_supervisor.kalshi_api.subscription_core")

MAX_REPAIRS = 3
"""Repair attempts at one level before escalating to the next (snapshot -> resubscribe ->
reconnect), so an exchange that keeps sending bad data cannot trap us in a request loop."""

HELD_MAX = 4096
"""Deltas a sid keeps while its books wait for repair replies (a late reply is brought up
to date with them); beyond it, or for an unreadable one, it stops keeping them and a late
reply is asked for again instead."""

REPLAYS_MAX = 16
"""Deltas numbered below the tracker a sid may see before that is taken for a count that
restarted under us rather than replays: the sid's books are rebuilt."""

SETTLED_AFTER = 100
"""Seq slots a sid must stay live after a repair before its repair count is forgiven. A
heal that a new gap follows at once (a repair reply that overtook nothing it should have,
yet left the tracker wrong) is no heal: counting on keeps such a loop bounded."""

DEFAULT_CHUNK_SIZE = 200
"""Markets per ``subscribe`` (Kalshi's per-subscription cap is unpublished; error 26 halves
a refused chunk, so a lower real cap costs a few refusals once, then the learned size)."""

DEFAULT_STALE_AFTER = 15.0
"""Seconds a sid may go without any frame before it is probed. Kalshi pings every 10 s but
pings prove the socket, not the data, so the probe is a one-market ``get_snapshot``."""

DROP_STATUSES = frozenset({"closed", "settled", "determined", "finalized"})
"""Market statuses (REST ``status``, lifecycle ``event_type``) that end a market's book for
good. ``inactive`` (paused) is not one: a paused market comes back."""

CLOSE_RECHECKS = 8
"""Re-checks of a market still ``active`` after its close time passed with the close time
unchanged (the exchange's status lags), at :data:`CLOSE_RECHECK_FIRST` seconds doubling
to :data:`CLOSE_RECHECK_MAX`: about ten minutes in all, then it is no longer watched."""

CLOSE_RECHECK_FIRST = 1.0
CLOSE_RECHECK_MAX = 300.0

_LIFECYCLE_DROPS = frozenset({"determined", "settled", "deactivated"})
"""Lifecycle event types after which a market's book is over (an early close arrives as
``close_date_updated`` with a ``close_ts`` in the past, handled separately)."""

_MAX_ERROR_TEXT = 200
"""Characters of an exchange error message worth a log line (one was 100,018 long)."""


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
    command_id: object = None
    """The envelope's ``id``: set when the snapshot answers a ``get_snapshot``."""


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
class CheckMarkets:
    """Ask the owner whether these markets still trade (REST ``GET /markets``) and report
    the answer to :meth:`SubscriptionCore.on_market_checked`."""

    tickers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReleaseBarrier:
    """The reply to a barrier's ``list_subscriptions`` arrived: wake its waiter."""

    token: Hashable


Action = (
    SendCommand
    | ArmDeadline
    | CancelDeadline
    | Emit
    | SetSynced
    | Reconnect
    | ReleaseBarrier
    | CheckMarkets
)


class MarketSync(Enum):
    """Where one market stands right now."""

    LIVE = "live"
    """Its book is built from a snapshot plus every delta since."""
    AWAITING_SNAPSHOT = "awaiting_snapshot"
    """Subscribed, but its book is stale until a (fresh) snapshot arrives."""
    UNSUBSCRIBED = "unsubscribed"
    """No subscription carries it (between sessions, or while being resubscribed)."""
    CHECKING = "checking"
    """No snapshot came in time; being checked over REST (the stream does not wait)."""
    DROPPED = "dropped"
    """Closed, settled, determined or unknown: removed from the subscription for good."""


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
    seen_seq: int = -1
    """``last_seq`` at the last tick that saw it move (staleness without a hot-path cost)."""
    seen_at: float | None = None
    """When (``on_tick``'s clock) the sid was last seen moving."""
    heard: bool = False
    """Something arrived for this sid that need not move its seq (a duplicate snapshot, an
    error answering a probe): it still proves the sid is not silent."""
    probe_at: float | None = None
    """When a staleness probe was sent, while it is unanswered."""
    live_at: int | None = None
    """``last_seq`` when every book last went live (None while any is awaiting)."""
    requested: dict[str, int] = field(default_factory=dict)
    """Market -> command id of the newest ``get_snapshot`` asking for it, until its
    snapshot is applied; an answer to an older request is never acted on twice."""
    discarded: dict[str, int] = field(default_factory=dict)
    """Market -> seq of the newest delta thrown away while its book waited (the session's
    reader writes it): a snapshot numbered below it is older than the book must be."""
    held: list[tuple[int, str, str, int, int]] | None = None
    """``(seq, market, side, price, delta)`` of deltas thrown away since a repair began,
    kept (the session's reader appends, up to :data:`HELD_MAX`) once replies are known to
    continue the count: a reply that newer deltas overtook is applied, then these. None
    while not keeping."""
    held_from: int = 0
    """The first seq whose thrown-away delta is sure to be in :attr:`held`."""
    replayed: int = 0
    """Deltas numbered at or below ``last_seq`` since every book was last live:
    a replay, or a restarted count that overtook its reply (then it is not evidence that
    replies continue the count)."""
    rebase: tuple[int, int] | None = None
    """``(reply seq, last_seq)`` of a ``get_snapshot`` reply numbered at or below what the
    sid had reached, while the numbering is not yet learned: the next frame tells whether
    the reply came late (the count goes on) or restarted the count."""


# -- the core ------------------------------------------------------------------------------
class SubscriptionCore:
    """Decisions for one orderbook subscription set across connections; no I/O.

    Every ``on_*``/command method returns the actions to execute, in order. Methods that
    receive malformed input raise ``TypeError``/``KeyError`` *before* changing any state,
    so the session can count the frame as malformed and carry on. Time enters only as
    the ``now`` given to :meth:`on_tick` (any monotonic clock; tests pass plain numbers).
    """

    def __init__(
        self,
        books: dict[str, OrderBook],
        stats: StreamStats,
        *,
        use_yes_price: bool = False,
        snapshot_timeout: float = 5.0,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        stale_after: float | None = DEFAULT_STALE_AFTER,
        can_check: bool = False,
        lifecycle: bool = False,
        facts: Mapping[str, MarketFacts] | None = None,
        facts_fresh: bool = True,
        ids: Callable[[], int] | None = None,
    ) -> None:
        """``ids`` is the shared command-id source when the socket carries other clients
        too (see :class:`~kalshi_api.replies.PendingReplies`)."""
        if not books:
            raise ValueError("a subscription core needs at least one market")
        if chunk_size < 1:
            raise ValueError("chunk_size must be >= 1")
        if stale_after is not None and stale_after <= 0:
            raise ValueError("stale_after must be positive (or None to disable)")
        self.books = books
        """Every market's book, shared with the session (the same objects for ever)."""
        self.stats = stats
        self.use_yes_price = bool(use_yes_price)
        self.snapshot_timeout = snapshot_timeout
        self.chunk_size = chunk_size
        """Markets per subscribe; shrinks for good when the exchange answers error 26."""
        self.stale_after = stale_after
        self.can_check = can_check
        """Whether the owner answers :class:`CheckMarkets`; without it, a market that never
        gets a snapshot escalates (resubscribe, reconnect) and a refused one is dropped."""
        self.lifecycle = lifecycle
        """Whether to subscribe ``market_lifecycle_v2`` and drop markets it says are over."""
        self.subs: dict[int, SidState] = {}
        """Live sids of the current session. Mutated in place, never rebound: the hot-path
        reader binds it once per session."""
        self.replies = PendingReplies(ids)
        self.session_open = False
        self.session_synced = False
        """Whether the current (or last) connection reached every book live."""
        self.replacements = 0
        """Subscriptions replaced since every book was last live (escalation counter)."""
        self.dropped: dict[str, str] = {}
        """Markets removed for good -> why (never subscribed again)."""
        self.checking: set[str] = set()
        """Markets handed to the owner's REST check, not yet answered."""
        self.cleared: set[str] = set()
        """Markets checked open this session: if they fail again, escalate instead."""
        self.lifecycle_sid: int | None = None
        self.snapshot_seq: str | None = None
        """How this exchange numbers a ``get_snapshot`` reply (protocol §3.7 leaves it
        open), once a frame has shown it: ``"continue"`` (the sid's next seq) or
        ``"restart"`` (the count starts again at the reply). Kept across sessions."""
        self.error_codes: dict[object, int] = {}
        """``error`` frames per code; each code is logged only the first time."""
        self._barriers: dict[Hashable, int] = {}
        """Barrier token -> command id sent on this session (0 = not sent yet)."""
        self._subscribe_deadlines: dict[int, Deadline] = {}
        self._serial = 0
        self.facts: dict[str, MarketFacts] = {}
        """What REST last said about each market (status, close time), where known."""
        self.trusted: set[str] = set()
        """Markets whose facts were read for this session: an empty first snapshot of one
        listed ``active`` with its close time ahead is live without a REST check."""
        self.close_checking: set[str] = set()
        """Markets past their close time being checked over REST (they stay live)."""
        self.wall: float | None = None
        """The wall clock (Unix seconds) at the last tick."""
        self._close_heap: list[tuple[float, str]] = []
        self._close_due: dict[str, float] = {}
        """Ticker -> when (Unix seconds) to check whether it closed; heap entries that do
        not match are stale."""
        self._close_rechecks: dict[str, int] = {}
        self._opening: list[Action] = []
        for ticker, known in (facts or {}).items():
            if ticker not in books:
                continue
            if known.status in DROP_STATUSES:  # listed closed: no wait, no subscribe
                self._opening += self._drop(ticker, f"{known.status} (listed so at startup)")
            else:
                self._learn(ticker, known)
        if not facts_fresh:  # read long before this stream (a restart): check empty books
            self.trusted.clear()

    def opening(self) -> list[Action]:
        """The actions decided at construction (markets listed closed, dropped): the
        session runs them once, before its first connection."""
        actions, self._opening = self._opening, []
        return actions

    # -- queries ---------------------------------------------------------------------------
    def market_states(self) -> dict[str, MarketSync]:
        """Each market's sync status right now (for status reports and per-market sync)."""
        states = dict.fromkeys(self.books, MarketSync.UNSUBSCRIBED)
        for sub in self.subs.values():
            for ticker, book in sub.books.items():
                states[ticker] = MarketSync.AWAITING_SNAPSHOT if book.stale else MarketSync.LIVE
        for ticker in self.checking:
            states[ticker] = MarketSync.CHECKING
        for ticker in self.dropped:
            states[ticker] = MarketSync.DROPPED
        return states

    def all_live(self) -> bool:
        """True when no book we are waiting for is stale (dropped markets and markets being
        checked over REST do not hold the stream back)."""
        dropped, checking = self.dropped, self.checking
        return all(
            not book.stale
            for ticker, book in self.books.items()
            if ticker not in dropped and ticker not in checking
        )

    def live_count(self) -> int:
        """Markets whose book is live right now (what ``markets_connected`` reports)."""
        return sum(1 for book in self.books.values() if not book.stale)

    def active(self) -> tuple[str, ...]:
        """Markets still followed (not dropped)."""
        return tuple(t for t in self.books if t not in self.dropped)

    # -- session lifecycle -----------------------------------------------------------------
    def start_session(self) -> list[Action]:
        """A socket opened: subscribe to every market (in chunks) and resend barriers."""
        self.session_open = True
        self.session_synced = False
        self.replacements = 0
        self.cleared.clear()
        self.lifecycle_sid = None
        # Lifecycle first: the exchange answers commands in order, so it is in place before
        # the books sync (no early-close event can slip between READY and its subscribe).
        actions = self._subscribe_lifecycle() if self.lifecycle else []
        actions += self._subscribe_chunks(self.active())
        for token in self._barriers:
            actions += self._send_barrier(token)
        return actions

    def end_session(self) -> list[Action]:
        """The socket closed: every sid and pending reply died with it; books go stale.

        Barriers survive (they are resent on the next session) so a waiter is not failed
        by a reconnect it did not cause. REST checks in flight survive too.
        """
        self.session_open = False
        self.trusted.clear()  # the next session's empty books are checked
        actions: list[Action] = [SetSynced(False)]
        for sub in self.subs.values():
            actions += self._cancel_deadline(sub)
        actions += [CancelDeadline(d) for d in self._subscribe_deadlines.values()]
        self._subscribe_deadlines.clear()
        self.subs.clear()
        self.replies.clear()
        self.lifecycle_sid = None
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
    def out_of_sequence(
        self, sub: SidState | None, sid: object, seq: object, msg: object = None
    ) -> list[Action]:
        """A delta that is not the sid's next: unknown sid, bad types, duplicate or gap.

        ``msg`` is the delta's body: a gap's delta is not applied, so its market is noted
        as having lost data newer than any snapshot numbered below it."""
        if type(sid) is not int or type(seq) is not int:
            raise TypeError("delta envelope needs integer sid and seq")
        if sub is None:
            self.stats.orphan_frames += 1
            return []
        if self._restart_shown(sub, seq):
            return self._restarted(sub, seq)
        last = sub.last_seq
        ticker = msg.get("market_ticker") if type(msg) is dict else None
        if seq <= last:
            self.stats.duplicates_dropped += 1
            sub.replayed += 1
            if ticker in sub.awaiting:
                # numbered below us yet maybe new (a restarted count): no snapshot numbered
                # below what we reached can be trusted to hold it
                sub.discarded[ticker] = last + 1  # type: ignore[index]
            if sub.replayed > REPLAYS_MAX:
                # Not replays but a count that went back under us (replies restart it,
                # whatever we concluded): unlearn that, and start the sid over.
                self.snapshot_seq = None
                sub.replayed = 0
                sub.last_seq = seq
                sub.held = None
                sub.discarded.clear()
                return self.gap(sub, seq, seq, "seq", refetch=tuple(sub.awaiting))
            return []
        sub.last_seq = seq
        actions = self.gap(sub, last + 1, seq, "seq")
        if ticker in sub.books:
            sub.discarded[ticker] = seq  # type: ignore[index]
        return actions

    def _restart_shown(self, sub: SidState, seq: int, *, delta: bool = True) -> bool:
        """Settle an ambiguous reply (:attr:`SidState.rebase`) with a later frame.

        The sid having moved on from where the reply found it means the count went on. A
        delta numbered above the reply's yet within what we had already reached means the
        reply restarted the count (where the count goes on, that would be a replay, which
        the exchange does not do). A snapshot never settles it: a late multi-market reply
        and a restarted one both number their snapshots upwards."""
        if sub.rebase is None:
            return False
        at, reached = sub.rebase
        if sub.last_seq != reached or seq > reached:
            sub.rebase = None
            if not sub.replayed:  # a restarted count climbing past ours also moves it
                self.snapshot_seq = "continue"
            return False
        if not delta or seq <= at:
            return False  # still undecided
        sub.rebase = None
        self.snapshot_seq = "restart"
        log.info("get_snapshot replies restart the sid's seq on this exchange")
        return True

    def _held_since(self, sub: SidState, seq: int) -> bool:
        """Every delta thrown away after ``seq`` is in :attr:`SidState.held` (so a reply at
        ``seq`` can be brought up to date), and nothing replayed casts doubt on it."""
        return sub.held is not None and not sub.replayed and seq >= sub.held_from - 1

    def _restarted(self, sub: SidState, seq: int) -> list[Action]:
        """The count restarted at a reply we read as late: the tracker and whatever was
        applied meanwhile are not to be trusted. Start the sid over, once: from now on
        the numbering is known and replies re-baseline at once."""
        sub.last_seq = seq
        sub.discarded.clear()
        sub.held = None
        return self.gap(sub, seq, seq, "seq", refetch=tuple(sub.awaiting))

    def on_snapshot(self, frame: SnapshotFrame, now_ts: float | None = None) -> list[Action]:
        """A snapshot: re-baseline its book and the sid's seq; the sid may go live.

        ``now_ts`` (Unix seconds) decides whether an empty book is trusted (see
        :meth:`_empty_is_open`); without it every empty first snapshot is checked."""
        sub = self.subs.get(frame.sid)
        if sub is None:
            self.stats.orphan_frames += 1
            return []
        ticker = frame.ticker
        book = sub.books.get(ticker)
        if book is None:
            if ticker in self.dropped:  # in flight while we dropped it
                self.stats.orphan_frames += 1
                return self.advance(frame.sid, frame.seq)
            raise KeyError(f"snapshot for a market not in sid {frame.sid}")
        seq = frame.seq
        sub.heard = True
        self._restart_shown(sub, seq, delta=False)
        awaited = ticker in sub.awaiting
        last = sub.last_seq
        reply = type(frame.command_id) is int and frame.command_id > 0
        if reply and seq <= last and self.snapshot_seq != "restart":
            # Whether a get_snapshot reply continues or restarts the sid's seq is
            # unconfirmed (protocol §3.7). At or below what we reached, it either came late
            # (newer frames overtook it) or restarted the count: the tracker stays where it
            # is (moving it back would make the next delta a gap, and its repair reply could
            # be late again: a loop), and the next frame settles which (_restart_shown).
            if self.snapshot_seq is None and last:
                sub.rebase = (seq, last)
            if not awaited:
                self.stats.duplicates_dropped += 1
                return []
            if sub.discarded.get(ticker, 0) > seq and not self._held_since(sub, seq):
                # Newer deltas of this market were thrown away while it waited (and not
                # kept): the snapshot is older than the book must be. Ask again, unless a
                # newer request is already on its way.
                self.stats.stale_snapshots += 1
                if frame.command_id != sub.requested.get(ticker):
                    return []
                return self.gap(sub, seq, seq, "stale_snapshot", refetch=(ticker,))
        elif not awaited and seq <= last:
            self.stats.duplicates_dropped += 1
            return []
        else:
            if reply and last and seq > last:
                self.snapshot_seq = self.snapshot_seq or "continue"
            if seq < last:  # the count restarted: older numbers mean nothing now
                sub.discarded.clear()
            sub.last_seq = seq
        if frame.levels is None:
            self.stats.malformed_frames += 1
            book.stale = True
            return self.gap(sub, seq, seq, "bad_frame", refetch=(ticker,))
        book.apply_snapshot(*frame.levels)
        if sub.discarded.get(ticker, 0) > seq and self._held_since(sub, seq):
            for at, market, side, price, delta in sub.held:  # in seq order
                if market != ticker or at <= seq:
                    continue
                if not book.apply_delta(side, price, delta):
                    book.stale = True
                    return self.gap(sub, at, at, "negative_level", refetch=(ticker,))
                self.stats.deltas_replayed += 1
        if type(frame.market_id) is str:
            book.market_id = frame.market_id
        self.stats.snapshots_received += 1
        sub.awaiting.discard(ticker)
        sub.requested.pop(ticker, None)
        sub.discarded.pop(ticker, None)
        actions: list[Action] = []
        if (
            self.can_check
            and not frame.levels[0]
            and not frame.levels[1]
            and ticker not in self.cleared
            and ticker not in self.checking
            and not self._empty_is_open(ticker, now_ts)
        ):
            # An empty book is one way an exchange answers for a closed market: check it
            # once per session (it stays live meanwhile; a quiet open market costs one GET).
            self.checking.add(ticker)
            actions.append(CheckMarkets((ticker,)))
        # A jump in seq also covers deltas the sid's *other* live books may have missed.
        if seq > last + 1 and last and len(sub.awaiting) < len(sub.books) - 1:
            return actions + self.gap(sub, last + 1, seq, "seq")
        if awaited and not sub.awaiting:
            return actions + self._sub_live(sub)
        return actions

    def _empty_is_open(self, ticker: str, now_ts: float | None) -> bool:
        """An empty book needs no REST check when this session's facts say the market is
        ``active`` and its close time is still ahead: empty books are legal. Past its close
        time, without a known one, or in a later session (the facts may be hours old), it
        is checked."""
        known = self.facts.get(ticker)
        return (
            known is not None
            and ticker in self.trusted
            and known.status == "active"
            and known.close_ts is not None
            and now_ts is not None
            and known.close_ts > now_ts
        )

    def on_subscribed(self, command_id: object, sid: object, channel: object) -> list[Action]:
        """``subscribed``: the sid exists; its books stay stale until their snapshots."""
        pending = self.replies.peek(command_id)
        if pending is None or pending.kind not in (CommandKind.SUBSCRIBE, CommandKind.LIFECYCLE):
            self.stats.ignored_frames += 1
            return []
        wanted = (
            ORDERBOOK_CHANNEL if pending.kind is CommandKind.SUBSCRIBE else MARKET_LIFECYCLE_CHANNEL
        )
        if type(sid) is not int or channel != wanted:
            raise TypeError("bad subscribed reply")
        self.replies.take(command_id)
        actions: list[Action] = []
        deadline = self._subscribe_deadlines.pop(command_id, None)  # type: ignore[arg-type]
        if deadline is not None:
            actions.append(CancelDeadline(deadline))
        if pending.kind is CommandKind.LIFECYCLE:
            self.lifecycle_sid = sid
            return actions
        tickers = [t for t in pending.tickers if t not in self.dropped]
        if not tickers:  # every market of the chunk was dropped while it was in flight
            return actions + self._unsubscribe(sid)
        sub = SidState(
            sid=sid,
            books={ticker: self.books[ticker] for ticker in tickers},
            awaiting={t for t in tickers if t not in self.checking},
        )
        for book in sub.books.values():
            book.stale = True
        self.subs[sid] = sub
        if not sub.awaiting:
            return actions + self._sub_live(sub)
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
        self,
        command_id: object,
        sid: object,
        seq: object,
        code: object,
        text: str,
        markets: Sequence[object] = (),
    ) -> list[Action]:
        """An ``error`` frame: a terminal code replaces sids; otherwise it answers a command.

        ``markets`` are the ``msg.market_ticker(s)`` the exchange named, if any.
        """
        if code in TERMINAL_CODES:  # an unhashable code raises TypeError: a malformed frame
            self.stats.terminal_errors += 1
            self._note_error(code, text)
            actions: list[Action] = [Emit(StreamTerminalError(code, text))]  # type: ignore[arg-type]
            if type(sid) is int:
                victims = [self.subs[sid]] if sid in self.subs else []
            else:  # unscoped: we cannot tell which sid died, so replace them all
                victims = list(self.subs.values())
            for sub in victims:
                actions += self._resubscribe(sub, unsubscribe=False)
            return actions
        hash(code)  # an unhashable code is a malformed frame, before any state changes
        actions = self.advance(sid, seq)
        pending = self.replies.take(command_id)
        self._note_error(code, text, quiet=pending is not None)
        if pending is None:
            return actions
        if pending.kind is CommandKind.GET_SNAPSHOT:
            sub = self.subs.get(pending.sid)
            if sub is not None:
                sub.heard = True  # a refusal still proves the sid is not silent
            if sub is not None and sub.awaiting:
                log.warning("sid %d: get_snapshot refused (error %s); resubscribing", sub.sid, code)
                actions += self._resubscribe(sub, unsubscribe=True)
        elif pending.kind is CommandKind.SUBSCRIBE:
            actions += self._subscribe_refused(command_id, pending, code, markets)  # type: ignore[arg-type]
        elif pending.kind is CommandKind.LIFECYCLE:
            deadline = self._subscribe_deadlines.pop(command_id, None)  # type: ignore[arg-type]
            if deadline is not None:
                actions.append(CancelDeadline(deadline))
            log.warning("market_lifecycle_v2 refused (error %s); going on without it", code)
        elif pending.kind is CommandKind.BARRIER:  # still proves ordering
            self._barriers.pop(pending.token, None)
            actions.append(ReleaseBarrier(pending.token))
        return actions

    def on_lifecycle(self, msg: object, now_ts: float | None = None) -> list[Action]:
        """A ``market_lifecycle_v2`` event: a determined/settled/deactivated market, or one
        closed early (``close_date_updated`` with ``close_ts`` at or before ``now_ts``,
        Unix seconds), is dropped. Events for markets we do not follow change nothing."""
        if type(msg) is not dict:
            raise TypeError("lifecycle msg must be an object")
        ticker = msg.get("market_ticker")
        event = msg.get("event_type")
        if ticker not in self.books or ticker in self.dropped:
            return []
        if event in _LIFECYCLE_DROPS:
            reason = f"{event} (market_lifecycle_v2)"
        elif event == "close_date_updated":
            close_ts = msg.get("close_ts")
            if type(close_ts) not in (int, float) or now_ts is None or close_ts > now_ts:
                return []
            reason = "closed early (market_lifecycle_v2)"
        else:
            return []
        self.checking.discard(ticker)  # type: ignore[arg-type]
        return self._drop(ticker, reason) + self._maybe_synced()  # type: ignore[arg-type]

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
        if self.can_check:
            suspects = [t for t in sub.awaiting if t not in self.cleared]
            if suspects:
                return self._check(sub, suspects)
        if deadline.kind is DeadlineKind.SNAPSHOTS:
            log.warning("sid %d: get_snapshot unanswered; resubscribing", sub.sid)
            return self._resubscribe(sub, unsubscribe=True)
        return [
            Reconnect(
                f"sid {sub.sid}: no snapshot for {len(sub.awaiting)} market(s) within "
                f"{self.snapshot_timeout:g}s; reconnecting"
            )
        ]

    # -- changing the market set (discovery refresh) ----------------------------------------
    def add_markets(
        self, tickers: Iterable[str], facts: Mapping[str, MarketFacts] | None = None
    ) -> list[Action]:
        """Follow more markets: new books (stale until their snapshots), subscribed in chunks
        on the open session (or by the next one). Known tickers are ignored; a dropped one
        is followed again only when ``facts`` say it is ``active`` again (reopened)."""
        facts = facts or {}
        new: list[str] = []
        for ticker in dict.fromkeys(tickers):
            known = facts.get(ticker)
            if ticker in self.dropped and known is not None and known.status == "active":
                del self.dropped[ticker]  # reopened (a paused market, a close time extended)
            elif ticker in self.books:
                continue
            else:
                self.books[ticker] = OrderBook(ticker)
            self.books[ticker].stale = True
            if known is not None:
                self._learn(ticker, known)
            new.append(ticker)
        if not new or not self.session_open:
            return []
        return [SetSynced(False), *self._subscribe_chunks(new)]

    def remove_markets(self, tickers: Iterable[str], reason: str) -> list[Action]:
        """Stop following markets for good (each a :class:`StreamMarketDropped`)."""
        actions: list[Action] = []
        for ticker in dict.fromkeys(tickers):
            if ticker in self.books and ticker not in self.dropped:
                self.checking.discard(ticker)
                actions += self._drop(ticker, reason)
        return actions + self._maybe_synced()

    # -- per-market sync -------------------------------------------------------------------
    def on_market_checked(
        self, statuses: Mapping[str, str | MarketFacts | None]
    ) -> list[Action]:
        """The owner's REST answer for a :class:`CheckMarkets`: ticker -> status, or the
        market's :class:`MarketFacts` (None when the exchange does not know the market).
        Closed, settled, determined, finalized and unknown markets are dropped; any other
        status gets one more chance this session (and, past its close time, a later
        re-check)."""
        actions: list[Action] = []
        for ticker, answer in statuses.items():
            if ticker not in self.books:
                continue
            if isinstance(answer, MarketFacts):
                self.facts[ticker] = answer
                status: str | None = answer.status
            else:
                status = answer
            if ticker in self.close_checking:
                self.close_checking.discard(ticker)
                actions += self._after_close_check(ticker, status)
            if ticker not in self.checking:
                continue
            self.checking.discard(ticker)
            if status is None or status in DROP_STATUSES:
                actions += self._drop(ticker, "unknown market" if status is None else status)
                continue
            self.cleared.add(ticker)
            if not self.session_open or not self.books[ticker].stale:
                continue  # the next session subscribes it / its snapshot came meanwhile
            sub = next((s for s in self.subs.values() if ticker in s.books), None)
            actions.append(SetSynced(False))
            if sub is None:  # its subscribe was refused: try it once more on its own
                actions += self._subscribe((ticker,))
            else:
                sub.awaiting.add(ticker)
                actions += self._request_snapshots(sub, (ticker,))
        return actions + self._maybe_synced()

    def _check(self, sub: SidState, tickers: Sequence[str]) -> list[Action]:
        """Hand ``tickers`` to the REST check; the sid goes on without them meanwhile."""
        for ticker in tickers:
            sub.awaiting.discard(ticker)
            self.checking.add(ticker)
        log.info("sid %d: no snapshot for %d market(s); checking them", sub.sid, len(tickers))
        actions: list[Action] = [CheckMarkets(tuple(tickers))]
        if sub.awaiting:
            return actions + self._arm_deadline(sub, DeadlineKind.SNAPSHOTS)
        return actions + self._sub_live(sub)

    def _drop(self, ticker: str, reason: str) -> list[Action]:
        """Remove ``ticker`` for good: out of its sid (told to the exchange), never
        subscribed again; its book stays stale so nothing reads it as live."""
        self.dropped[ticker] = reason
        self.stats.markets_dropped += 1
        self._close_due.pop(ticker, None)
        self._close_rechecks.pop(ticker, None)
        self.close_checking.discard(ticker)
        self.books[ticker].stale = True
        actions: list[Action] = [Emit(StreamMarketDropped(ticker, reason))]
        for sub in list(self.subs.values()):
            if ticker not in sub.books:
                continue
            del sub.books[ticker]
            sub.requested.pop(ticker, None)
            sub.discarded.pop(ticker, None)
            was_waiting = bool(sub.awaiting)
            sub.awaiting.discard(ticker)
            if not sub.books:
                actions += self._cancel_deadline(sub)
                del self.subs[sub.sid]
                actions += self._unsubscribe(sub.sid)
                continue
            command_id = self.replies.allocate()
            self.replies.expect(command_id, Pending(CommandKind.UNSUBSCRIBE, sid=sub.sid))
            params = {"sids": [sub.sid], "market_tickers": [ticker], "action": "delete_markets"}
            actions.append(
                SendCommand(command_id, {"cmd": "update_subscription", "params": params})
            )
            if was_waiting and not sub.awaiting:
                actions += self._sub_live(sub)
        return actions

    def _subscribe_refused(
        self, command_id: int, pending: Pending, code: object, markets: Sequence[object]
    ) -> list[Action]:
        """A refused subscribe: split the chunk (error 26 is the market cap; any other
        refusal is bisected to isolate the market it is about), or check a lone market."""
        actions: list[Action] = []
        deadline = self._subscribe_deadlines.pop(command_id, None)
        if deadline is not None:
            actions.append(CancelDeadline(deadline))
        tickers = [t for t in pending.tickers if t not in self.dropped]
        named = [t for t in tickers if t in markets]
        if named and len(named) < len(tickers):
            rest = tuple(t for t in tickers if t not in named)
            return actions + self._subscribe_chunks(rest) + self._refuse(named, code)
        if len(tickers) > 1:
            half = len(tickers) // 2
            self.stats.subscribe_splits += 1
            if code == WsErrorCode.MARKET_LIMIT_EXCEEDED:
                self.chunk_size = max(1, min(self.chunk_size, half))
            return actions + self._subscribe(tickers[:half]) + self._subscribe(tickers[half:])
        return actions + self._refuse(tickers, code)

    def _refuse(self, tickers: Sequence[str], code: object) -> list[Action]:
        actions: list[Action] = []
        for ticker in tickers:
            if ticker in self.cleared:
                return [Reconnect(f"subscribe to open market {ticker} refused again: error {code}")]
        if self.can_check:
            self.checking.update(tickers)
            actions.append(CheckMarkets(tuple(tickers)))
        else:
            for ticker in tickers:
                actions += self._drop(ticker, f"subscribe refused (error {code})")
        return actions + self._maybe_synced()

    # -- staleness -------------------------------------------------------------------------
    def on_tick(self, now: float, wall: float | None = None) -> list[Action]:
        """The clock: probe sids silent for ``stale_after``; a probe unanswered within
        ``snapshot_timeout`` makes the sid stale (event, replaced; a dead socket then
        fails the subscribe reply and reconnects). ``wall`` (Unix seconds) drives the
        close-time watch: markets whose close time passed are checked over REST."""
        actions: list[Action] = [] if wall is None else self._closes_due(wall)
        if not self.session_open or self.stale_after is None:
            return actions
        for sub in list(self.subs.values()):
            if sub.last_seq != sub.seen_seq or sub.heard or sub.seen_at is None:
                sub.seen_seq, sub.seen_at, sub.heard, sub.probe_at = sub.last_seq, now, False, None
                continue
            if sub.awaiting:
                continue  # a repair is in flight; its own deadlines bound it
            if sub.probe_at is not None:
                if now - sub.probe_at >= self.snapshot_timeout:
                    self.stats.stale += 1
                    silent = now - sub.seen_at
                    log.warning("sid %d: no frames for %.1fs; resubscribing", sub.sid, silent)
                    actions.append(Emit(StreamStale(sub.sid, silent)))
                    actions += self._resubscribe(sub, unsubscribe=True)
            elif now - sub.seen_at >= self.stale_after:
                sub.probe_at = now
                actions += self._probe(sub)
        return actions

    # -- close times -----------------------------------------------------------------------
    def _learn(self, ticker: str, known: MarketFacts) -> None:
        """Keep a market's REST facts (fresh for this session) and watch its close time."""
        self.facts[ticker] = known
        self.trusted.add(ticker)
        if known.close_ts is not None and known.status not in DROP_STATUSES:
            self._watch_close(ticker, known.close_ts)

    def _watch_close(self, ticker: str, at: float) -> None:
        self._close_due[ticker] = at
        heapq.heappush(self._close_heap, (at, ticker))

    def _closes_due(self, wall: float) -> list[Action]:
        """Markets whose close time (or re-check time) has come: one batched REST check."""
        self.wall = wall
        heap, due_at = self._close_heap, self._close_due
        due: list[str] = []
        while heap and heap[0][0] <= wall:
            at, ticker = heapq.heappop(heap)
            if due_at.get(ticker) != at:
                continue  # superseded by a later schedule
            del due_at[ticker]
            if ticker in self.dropped or ticker in self.close_checking:
                continue
            due.append(ticker)
        if not due:
            return []
        self.close_checking.update(due)
        log.info("%d market(s) reached their close time; checking them", len(due))
        return [CheckMarkets(tuple(due))]

    def _after_close_check(self, ticker: str, status: str | None) -> list[Action]:
        """A market past its close time was checked: drop it if it no longer trades; if it
        does, watch its new close time, or re-check with bounded backoff."""
        if ticker in self.dropped:
            return []
        if status is None or status in DROP_STATUSES:
            reason = "unknown market" if status is None else status
            self.checking.discard(ticker)
            return self._drop(ticker, f"{reason} (close time passed)") + self._maybe_synced()
        wall = self.wall or 0.0
        known = self.facts.get(ticker)
        if known is not None and known.close_ts is not None and known.close_ts > wall:
            self._close_rechecks.pop(ticker, None)  # the close time was extended
            self._watch_close(ticker, known.close_ts)
            return []
        tries = self._close_rechecks.get(ticker, 0)
        if tries >= CLOSE_RECHECKS:
            del self._close_rechecks[ticker]
            log.info("%s still %s long after its close time; no longer watched", ticker, status)
            return []
        self._close_rechecks[ticker] = tries + 1
        self._watch_close(ticker, wall + min(CLOSE_RECHECK_MAX, CLOSE_RECHECK_FIRST * 2**tries))
        return []

    def _probe(self, sub: SidState) -> list[Action]:
        """A one-market ``get_snapshot`` that leaves the books live: its answer (or any
        frame) proves the sid is quiet rather than silent."""
        ticker = next(iter(sub.books))
        params = {"sids": [sub.sid], "market_tickers": [ticker], "action": "get_snapshot"}
        command_id = self.replies.allocate()
        self.replies.expect(command_id, Pending(CommandKind.GET_SNAPSHOT, sid=sub.sid))
        return [SendCommand(command_id, {"cmd": "update_subscription", "params": params})]

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
        Only this sid is touched: the other chunks stay live.
        """
        self.stats.gaps += 1
        if sub.live_at is not None and sub.last_seq - sub.live_at >= SETTLED_AFTER:
            sub.repairs = 0  # the last repair held: this is a new fault
        sub.live_at = None
        if sub.held is None and self.snapshot_seq == "continue":
            sub.held = []
            sub.held_from = sub.last_seq + 1
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
        sub.live_at = sub.last_seq
        sub.replayed = 0
        sub.held = None
        if sub.initial and not self.session_synced:
            sub.initial = False
        else:
            sub.initial = False
            self.stats.resyncs += 1
            actions.append(Emit(StreamResynced(sub.sid)))
        return actions + self._maybe_synced()

    def _maybe_synced(self) -> list[Action]:
        """If every followed book is live (and nothing is still to subscribe), say so."""
        if not self.session_open or not self.all_live() or self._subscribe_deadlines:
            return []
        self.replacements = 0
        actions: list[Action] = [SetSynced(True)]
        if not self.session_synced:
            self.session_synced = True
            actions.append(Emit(StreamSynced(self.live_count())))
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
            actions += self._unsubscribe(sub.sid)
        return actions + self._subscribe(tuple(sub.books))

    def _abandon(self, sub: SidState) -> list[Action]:
        actions = self._cancel_deadline(sub)
        self.subs.pop(sub.sid, None)
        for book in sub.books.values():
            book.stale = True
        actions.append(SetSynced(False))
        return actions

    # -- outgoing commands -----------------------------------------------------------------
    def _subscribe_chunks(self, tickers: Sequence[str]) -> list[Action]:
        size = self.chunk_size
        actions: list[Action] = []
        for start in range(0, len(tickers), size):
            actions += self._subscribe(tickers[start : start + size])
        return actions

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

    def _subscribe_lifecycle(self) -> list[Action]:
        """``market_lifecycle_v2`` ignores market filters: one subscription for every market.
        Its reply is not awaited for sync (a refusal only means no early-close events)."""
        command_id = self.replies.allocate()
        self.replies.expect(command_id, Pending(CommandKind.LIFECYCLE))
        params = {"channels": [MARKET_LIFECYCLE_CHANNEL]}
        return [SendCommand(command_id, {"cmd": "subscribe", "params": params})]

    def _unsubscribe(self, sid: int) -> list[Action]:
        command_id = self.replies.allocate()
        self.replies.expect(command_id, Pending(CommandKind.UNSUBSCRIBE, sid=sid))
        return [SendCommand(command_id, {"cmd": "unsubscribe", "params": {"sids": [sid]}})]

    def _request_snapshots(self, sub: SidState, tickers: Iterable[str]) -> list[Action]:
        """Kalshi's in-stream repair: fresh snapshots without touching the subscription."""
        params = {"sids": [sub.sid], "market_tickers": list(tickers), "action": "get_snapshot"}
        command_id = self.replies.allocate()
        self.replies.expect(command_id, Pending(CommandKind.GET_SNAPSHOT, sid=sub.sid))
        for ticker in params["market_tickers"]:
            sub.requested[ticker] = command_id
        actions: list[Action] = [
            SendCommand(command_id, {"cmd": "update_subscription", "params": params})
        ]
        return actions + self._arm_deadline(sub, DeadlineKind.SNAPSHOTS)

    def _send_barrier(self, token: Hashable) -> list[Action]:
        command_id = self.replies.allocate()
        self.replies.expect(command_id, Pending(CommandKind.BARRIER, token=token))
        self._barriers[token] = command_id
        return [SendCommand(command_id, {"cmd": "list_subscriptions"})]

    # -- error logging ---------------------------------------------------------------------
    def _note_error(self, code: object, text: str, *, quiet: bool = False) -> None:
        """Count an error frame; log its code once (text capped), never per frame, so a
        hostile exchange cannot fill the log. ``quiet``: it answered a command we handle."""
        self.stats.error_frames += 1
        seen = self.error_codes.get(code, 0)
        if seen == 0 and len(self.error_codes) >= 64:  # bounded: pool unknown codes
            code = "other"
            seen = self.error_codes.get(code, 0)
        self.error_codes[code] = seen + 1
        if seen == 0 and not quiet:
            log.warning(
                "exchange error %s: %s (further errors with this code are only counted)",
                code,
                _capped(text),
            )

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


def _capped(text: object) -> str:
    """One line of at most :data:`_MAX_ERROR_TEXT` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= _MAX_ERROR_TEXT else line[:_MAX_ERROR_TEXT] + "..."
