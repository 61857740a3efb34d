"""The orderbook stream: subscribe, seq-checked live books, repair; a client of the transport.

Why it looks like this:

* **The connection is not ours.** Connecting, signing the upgrade, keep-alive, reconnect
  pacing and command-id routing live in :class:`~kalshi_api.ws_transport.WsTransport`,
  which may carry other channels on the same socket (the private ones); this stream is one
  :class:`~kalshi_api.ws_transport.ChannelClient` of it and lends it the hot read loop.
  Without a transport given, the stream makes one of its own.
* **Decisions apart from I/O.** What a frame, a reply or an expired deadline *means*
  (seq tracking, gap detection, the repair escalation get_snapshot -> resubscribe ->
  reconnect) lives in :mod:`kalshi_api.subscription_core`, which returns actions as data.
  This module turns frames into the core's inputs and executes the actions the core
  returns (send, arm a timer, emit, ask the transport to reconnect).
  Reply correlation is :mod:`kalshi_api.replies`; the loop thread is
  :mod:`kalshi_api.loop_thread`; Kalshi's names and codes are :mod:`kalshi_api.protocol`.
* **One thread, one writer.** The transport runs its asyncio loop in a dedicated
  thread, and that thread is the only writer of every :class:`OrderBook`. Deltas go
  socket -> ``orjson.loads`` -> seq check -> dict update with no lock, no actor hop and
  no pydantic model: the hot path is a handful of dict operations per frame, kept in one
  function (:meth:`OrderbookStream._read_frames`) that calls the core only off the fast path.
* **Seq is per sid.** Kalshi numbers every message of a subscription (all its markets)
  with one counter. A gap (or a level going negative, or a frame we could not read that
  consumed a seq) means a book of that sid may be wrong, so every book in the sid is
  marked stale, its deltas are discarded, and fresh snapshots are requested in-stream.
* **Failures are events, not tracebacks.** Connection problems become one-line reasons
  in :class:`StreamDisconnected` / :class:`StreamFailed` (the transport's, passed on to
  the listener); a rejected upgrade (401/403) is final, because retrying a bad key
  forever only hides the problem.
* **Tests synchronise, never sleep.** :meth:`OrderbookStream.barrier` sends
  ``list_subscriptions`` and waits for its reply: one reader applies frames in order, so
  everything the exchange sent before that reply has been applied when it returns.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection

from kalshi_api.book_changes import BookChangeFeed
from kalshi_api.book_view import BookDepth, BookTop, ChangeClock, depth_of, top_of
from kalshi_api.fixed_point import MICROS_PER_DOLLAR, FixedPointError, parse_count, parse_dollars
from kalshi_api.market_facts import MarketFacts
from kalshi_api.orderbook import Level, OrderBook
from kalshi_api.protocol import (
    MARKET_LIFECYCLE_CHANNEL,
    ORDERBOOK_CHANNEL,
    ORDERBOOK_SNAPSHOT,
    TERMINAL_CODES,
    WS_PATH,
)
from kalshi_api.stream_events import (
    ReconnectPolicy,
    StreamConnected,
    StreamDisconnected,
    StreamEvent,
    StreamFailed,
    StreamGap,
    StreamMarketDropped,
    StreamResynced,
    StreamStale,
    StreamStats,
    StreamSynced,
    StreamTerminalError,
)
from kalshi_api.subscription_core import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_STALE_AFTER,
    HELD_MAX,
    Action,
    ArmDeadline,
    CancelDeadline,
    CheckMarkets,
    Deadline,
    Emit,
    Reconnect,
    ReleaseBarrier,
    SendCommand,
    SetSynced,
    SidState,
    SnapshotFrame,
    SubscriptionCore,
)
from kalshi_api.ws_connect import (
    DEFAULT_MAX_FRAME_BYTES,
    connect_options,
    describe_connect_error,
    one_line,
)
from kalshi_api.ws_transport import Router, WsTransport

__all__ = [
    "CHANNEL",
    "TERMINAL_CODES",
    "WS_SIGNING_PATH",
    "OrderbookStream",
    "ReconnectPolicy",
    "StreamConnected",
    "StreamDisconnected",
    "StreamEvent",
    "StreamFailed",
    "StreamGap",
    "StreamMarketDropped",
    "StreamResynced",
    "StreamStale",
    "StreamStats",
    "StreamSynced",
    "StreamTerminalError",
    "connect_options",
    "describe_connect_error",
    "fast_count",
]

log = logging.getLogger("kalshi_supervisor.kalshi_api.ws_session")

WS_SIGNING_PATH = WS_PATH
"""Kept for callers that sign the upgrade: the path is :data:`kalshi_api.protocol.WS_PATH`."""
CHANNEL = ORDERBOOK_CHANNEL
_CACHE_LIMIT = 1 << 16
_UNREADABLE = (orjson.JSONDecodeError, LookupError, TypeError, ValueError, AttributeError)
"""What a frame with the wrong shape raises on the hot path: counted, skipped, never fatal."""

MarketChecker = Callable[[Sequence[str]], Mapping[str, "str | MarketFacts | None"]]
"""Tickers -> each one's REST ``status`` or :class:`MarketFacts` (None when the exchange does
not know it). Called on a worker thread, so it may block on HTTP; raising means "could not
tell" (kept, retried)."""


# -- the stream ----------------------------------------------------------------------------
class OrderbookStream:
    """Live, seq-checked order books for a fixed set of markets over one Kalshi WebSocket."""

    def __init__(
        self,
        ws_url: str,
        tickers: Sequence[str],
        *,
        auth_headers: Callable[[], Mapping[str, str]] | None,
        use_yes_price: bool = False,
        listener: Callable[[StreamEvent], None] | None = None,
        reconnect: ReconnectPolicy | None = None,
        open_timeout: float = 5.0,
        ping_interval: float | None = 10.0,
        snapshot_timeout: float = 5.0,
        book_changes: BookChangeFeed | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        stale_after: float | None = DEFAULT_STALE_AFTER,
        market_checker: MarketChecker | None = None,
        lifecycle: bool = False,
        market_facts: Mapping[str, MarketFacts] | None = None,
        facts_fresh: bool = True,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        compression: bool = False,
        transport: WsTransport | None = None,
    ) -> None:
        """``auth_headers`` is called once per connection attempt so every upgrade carries a
        fresh timestamp and signature (typically ``lambda: signer.headers("GET",
        "/trade-api/ws/v2")``). ``snapshot_timeout`` bounds each repair step.

        ``chunk_size`` markets go in each subscribe; ``stale_after`` seconds without a frame
        on a sid trigger a probe (None disables it); ``market_checker`` answers "is this
        market still trading?" over REST for markets that get no snapshot (without it they
        escalate to a reconnect, as before); ``lifecycle`` subscribes ``market_lifecycle_v2``
        to drop markets that close early, are determined or settle. ``market_facts`` (REST
        status and close time per market, as listed when the markets were chosen) drop
        markets listed closed at once, let an empty first snapshot of a market listed
        open before its close time count as live without a REST check (any other empty
        first snapshot is checked, one closed-market variant), and make the stream check a
        market over REST when its close time passes (a close by time sends no event).
        ``facts_fresh`` False says the facts were read long before this stream started
        (a restart): its empty first snapshots are then checked too.
        ``max_frame_bytes`` caps one frame; ``compression`` (permessage-deflate) is off
        unless asked for, so a small compressed frame cannot inflate into a large buffer.
        ``book_changes``, if given, gets these books attached and is marked (on this
        stream's thread, without blocking) after every applied snapshot and delta.

        ``transport``, if given, is a :class:`~kalshi_api.ws_transport.WsTransport` (not yet
        started) this stream rides on with other channels (the private ones, say); its URL,
        signing, backoff and frame settings then apply and the ones here are ignored, and
        :meth:`stop` stops it. Without one the stream has a transport of its own."""
        unique = tuple(dict.fromkeys(tickers))
        if not unique:
            raise ValueError("an orderbook stream needs at least one market ticker")
        if transport is None:
            transport = WsTransport(
                ws_url,
                auth_headers=auth_headers,
                reconnect=reconnect,
                open_timeout=open_timeout,
                ping_interval=ping_interval,
                max_frame_bytes=max_frame_bytes,
                compression=compression,
                name="orderbook-stream",
            )
        self._transport = transport
        self._runner = transport.runner
        self._tickers = unique
        self._use_yes_price = bool(use_yes_price)
        self._listener = listener
        self._checker = market_checker
        self._stale_after = stale_after
        self._books = {ticker: OrderBook(ticker) for ticker in unique}
        self._feed = book_changes
        if book_changes is not None:
            book_changes.attach(self._books)
        self.stats = StreamStats()
        self._core = SubscriptionCore(
            self._books,
            self.stats,
            use_yes_price=self._use_yes_price,
            snapshot_timeout=snapshot_timeout,
            chunk_size=chunk_size,
            stale_after=stale_after,
            can_check=market_checker is not None,
            lifecycle=lifecycle,
            facts=market_facts,
            facts_fresh=facts_fresh,
            ids=transport.allocate_id,
        )
        self._watch_closes = market_facts is not None
        self._synced = threading.Event()

        # session state (stream thread only)
        self._ticker_task: asyncio.Task[None] | None = None
        self._synced_at: tuple[int, int] | None = None
        """(deltas, snapshots) received when this session synced: data after it makes the
        session healthy (see :meth:`session_healthy`)."""
        self._timers: dict[Deadline, asyncio.TimerHandle] = {}
        self._to_check: dict[str, None] = {}
        """Tickers queued for one batched REST check (flushed once the reader yields)."""
        self._price_cache: dict[Any, int] = {}
        self._count_cache: dict[Any, int] = {}
        self._change_clock = ChangeClock()
        """When each book was last seen to change, from reads (``tops``/``depth``) only."""
        """Memo tables for the hot path: a few hundred prices and a long tail of delta sizes
        repeat, and a dict hit is far cheaper than parsing. Bounded by ``_CACHE_LIMIT``."""
        transport.attach(self, fast_reader=self._read_frames)

    frame_types = frozenset({CHANNEL, ORDERBOOK_SNAPSHOT, MARKET_LIFECYCLE_CHANNEL})
    """Frame types this stream reads (for :class:`~kalshi_api.ws_transport.WsTransport`)."""

    # -- public API (any thread) -----------------------------------------------------------
    @property
    def tickers(self) -> tuple[str, ...]:
        return self._tickers

    @property
    def transport(self) -> WsTransport:
        """The WebSocket this stream rides on (shared with other channels, or its own)."""
        return self._transport

    @property
    def connected(self) -> bool:
        """True while a socket is open (books may still be syncing: see ``wait_synced``)."""
        return self._transport.connected

    @property
    def failed_reason(self) -> str | None:
        """The one-line reason the stream gave up, or None while it is (or may be) running."""
        return self._transport.failed_reason

    def start(self) -> None:
        """Start the stream thread; returns at once (connecting happens in the background)."""
        try:
            self._transport.start()
        except RuntimeError:
            raise RuntimeError("a stopped OrderbookStream cannot be restarted") from None

    def stop(self, timeout: float = 2.0) -> None:
        """Close the socket and join the thread; idempotent and safe from any thread."""
        self._transport.stop(timeout)

    def retry_now(self) -> None:
        """Skip the rest of the current backoff wait and start the backoff afresh.

        Why: an owner may know the outage is over before the backoff does. After an exchange
        pause the backoff has grown through refused upgrades; waiting out tens of seconds
        once the exchange is back would keep the books stale for no reason. While a session
        is up this does nothing.
        """
        self._transport.retry_now()

    def wait_synced(self, timeout: float | None = None) -> bool:
        """True once every market has a live (non-stale) book; False on timeout."""
        return self._synced.wait(timeout)

    def synced_market_count(self) -> int:
        """Markets whose book is live right now (dropped and unsynced ones excluded)."""
        return self._core.live_count()

    def followed_count(self) -> int:
        """How many markets are followed now (added ones included, dropped ones not); a
        cheap read from any thread, for status reports."""
        core = self._core
        return len(core.books) - len(core.dropped)

    def followed_markets(self) -> tuple[str, ...]:
        """Markets followed now (added ones included, dropped ones not), read on the stream
        thread so the answer is consistent."""
        return self._runner.run_sync(self._core.active)

    def update_markets(
        self,
        add: Sequence[str],
        remove: Sequence[str],
        reason: str,
        facts: Mapping[str, MarketFacts] | None = None,
    ) -> bool:
        """Follow ``add`` too and stop following ``remove`` (dropped with ``reason``);
        applied on the stream thread. ``facts`` (REST status, close time) of the added
        markets let the stream watch their close times; a dropped market is followed
        again only if its facts say ``active``. False if the stream is not running."""

        def apply() -> None:
            core = self._core
            self._execute(core.add_markets(add, facts) + core.remove_markets(remove, reason))

        return self._runner.call_soon(apply)

    def dropped_markets(self) -> dict[str, str]:
        """Markets removed for good -> why (a copy; read from any thread)."""
        return dict(self._core.dropped)

    def error_codes(self) -> dict[object, int]:
        """``error`` frames seen per code (a copy)."""
        return dict(self._core.error_codes)

    def barrier(self, timeout: float = 5.0) -> bool:
        """Round-trip a ``list_subscriptions``; True once its reply has been read.

        Frames are applied in arrival order by one thread, so when this returns True every
        frame the exchange sent before answering has been applied. If no session is open
        the request is sent as soon as one is (after its subscribe).
        """
        runner = self._runner
        if runner.loop is None or runner.in_loop_thread():
            return False
        waiter = threading.Event()
        if not runner.call_soon(self._add_barrier, waiter):
            return False
        done = waiter.wait(timeout)
        if not done:
            runner.call_soon(self._core.drop_barrier, waiter)
        return done

    def book(self, ticker: str) -> OrderBook:
        """The live book object for ``ticker`` (the same object across reconnects)."""
        return self._books[ticker]

    def digests(self) -> dict[str, str]:
        """Every book's digest, taken on the stream thread so both sides match one instant."""
        return self._runner.run_sync(
            lambda: {ticker: book.digest() for ticker, book in self._books.items()}
        )

    def levels(self, ticker: str) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """One book's ``(yes, no)`` levels, read on the stream thread (consistent)."""
        book = self._books[ticker]
        return self._runner.run_sync(book.levels)

    def tops(self) -> list[tuple[BookTop, float]]:
        """Every book's top with the seconds since it was last seen to change, in ticker order.

        Read on the stream thread (each book from one instant; the hot path is untouched:
        the change age comes from comparing reads, see :mod:`kalshi_api.book_view`).
        """

        def read() -> list[tuple[BookTop, float]]:
            clock = self._change_clock
            tops = [top_of(book) for book in self._books.values()]
            return [(top, clock.age(top.ticker, top.signature)) for top in tops]

        return self._runner.run_sync(read)

    def depth(self, ticker: str) -> tuple[BookDepth, float] | None:
        """One book's ladders and change age, read on the stream thread; None if not ours."""
        book = self._books.get(ticker)
        if book is None:
            return None

        def read() -> tuple[BookDepth, float]:
            depth = depth_of(book)
            return depth, self._change_clock.age(ticker, depth.signature)

        return self._runner.run_sync(read)

    def last_frame_age(self) -> float | None:
        """Seconds since the last frame arrived, or None before the first."""
        last = self.stats.last_frame_monotonic
        return None if last == 0.0 else max(0.0, time.monotonic() - last)

    def drop_connection(self) -> None:
        """Client-side fault: abort the socket with no close frame, so the reconnect path runs."""
        self._transport.drop_connection()

    def session_healthy(self) -> bool:
        """Whether the current (or last) session delivered every snapshot and then data
        (a delta, or a snapshot answering a probe): what lets its end reset the backoff.
        Also the transport's question to this client, asked on the stream thread."""
        marks = self._synced_at
        if marks is None or not self._core.session_synced:
            return False
        stats = self.stats
        return stats.deltas_received > marks[0] or stats.snapshots_received > marks[1]

    # -- the transport's client interface (stream thread) -----------------------------------
    def transport_started(self) -> None:
        """Run what was decided at construction (markets listed closed) before connecting."""
        self._execute(self._core.opening())

    def on_transport_event(self, event: StreamEvent) -> None:
        if type(event) is StreamConnected and self._transport.sessions > 1:
            self.stats.reconnects += 1
        self._emit(event)

    def session_started(self) -> None:
        self._synced_at = None
        self._ticker_task = self._start_ticking()
        self._execute(self._core.start_session())

    def session_ended(self) -> None:
        if self._ticker_task is not None:
            self._ticker_task.cancel()
            self._ticker_task = None
        self._execute(self._core.end_session())
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def on_frame(self, message: dict[str, Any]) -> None:
        self._on_message(message)

    def transport_stopped(self) -> None:
        self._synced.clear()
        for book in self._books.values():
            book.stale = True

    def _emit(self, event: StreamEvent) -> None:
        listener = self._listener
        if listener is None:
            return
        try:
            listener(event)
        except Exception:
            log.exception("orderbook stream listener raised on %r; ignored", event)

    def _start_ticking(self) -> asyncio.Task[None] | None:
        """The core's clock input for staleness (a few ticks per bound) and close times
        (about once a second); None when neither is wanted."""
        stale_after = self._stale_after
        if stale_after is None and not self._watch_closes:
            return None
        interval = 1.0 if stale_after is None else max(0.01, min(1.0, stale_after / 5))

        async def tick() -> None:
            while True:
                await asyncio.sleep(interval)
                self._execute(self._core.on_tick(time.monotonic(), time.time()))

        return asyncio.get_running_loop().create_task(tick())

    # -- executing the core's actions ------------------------------------------------------
    def _execute(self, actions: Iterable[Action]) -> None:
        """Carry out the core's actions in order (the only place its decisions touch I/O).

        Runs only off the hot path (replies, snapshots, gaps, deadlines), so clarity wins
        over speed here.
        """
        for action in actions:
            match action:
                case SendCommand():
                    self._send(action)
                case Emit(event=event):
                    self._emit(event)
                case SetSynced(synced=True):
                    if self._synced_at is None:
                        stats = self.stats
                        self._synced_at = (stats.deltas_received, stats.snapshots_received)
                    self._synced.set()
                case SetSynced():
                    self._synced.clear()
                case ArmDeadline(deadline=deadline, after=after):
                    superseded = self._timers.pop(deadline, None)
                    if superseded is not None:
                        superseded.cancel()
                    self._timers[deadline] = asyncio.get_running_loop().call_later(
                        after, self._deadline_expired, deadline
                    )
                case CancelDeadline(deadline=deadline):
                    timer = self._timers.pop(deadline, None)
                    if timer is not None:
                        timer.cancel()
                case Reconnect(reason=reason):
                    self._transport.close_session(reason)
                case ReleaseBarrier(token=token):
                    token.set()  # type: ignore[attr-defined]  # always a waiter's Event
                case CheckMarkets(tickers=tickers):
                    self._check_markets(tickers)

    def _check_markets(self, tickers: tuple[str, ...]) -> None:
        """Queue tickers for the owner's REST check. Checks asked for while the reader is
        busy (a burst of empty snapshots after a reconnect) go out as one batched check
        once it yields, not one GET each."""
        if self._checker is None:
            return
        flush = not self._to_check
        self._to_check.update(dict.fromkeys(tickers))
        if flush:
            asyncio.get_running_loop().call_soon(self._flush_checks)

    def _flush_checks(self) -> None:
        """Run the queued REST check on a worker thread; feed the answer back in here."""
        checker = self._checker
        tickers, self._to_check = tuple(self._to_check), {}
        if checker is None or not tickers:
            return
        loop = asyncio.get_running_loop()

        def answered(future: asyncio.Future[Mapping[str, str | MarketFacts | None]]) -> None:
            try:
                statuses: dict[str, str | MarketFacts | None] = dict(future.result())
            except Exception as exc:  # REST down: we cannot tell, so keep them and retry
                log.warning(
                    "market check failed (%s); keeping %d market(s)",
                    one_line(exc)[:200],
                    len(tickers),
                )
                statuses = dict.fromkeys(tickers, "unchecked")
            self._execute(self._core.on_market_checked(statuses))

        future = loop.run_in_executor(None, checker, tickers)
        future.add_done_callback(answered)

    def _deadline_expired(self, deadline: Deadline) -> None:
        self._timers.pop(deadline, None)
        self._execute(self._core.on_deadline(deadline))

    def _send(self, command: SendCommand) -> None:
        """Queue a command on the current socket. Order of calls = wire order."""
        self._transport.send(self, command.command_id, command.payload)

    def _add_barrier(self, waiter: threading.Event) -> None:
        self._execute(self._core.add_barrier(waiter))

    # -- incoming frames (the hot path) ----------------------------------------------------
    async def _read_frames(self, ws: ClientConnection, route: Router) -> None:
        """Read and apply frames until the socket closes (``ConnectionClosed`` ends it).

        This loop is the hot path, so everything it touches per delta is bound to a local
        once per session (the dicts are mutated in place, never replaced) and the delta
        case is inlined: one ``orjson.loads``, a handful of dict lookups, memoised
        fixed-point parsing and the level update ``OrderBook.apply_delta`` defines (kept
        identical to it; the unit tests pin those semantics). Every other frame type is
        rare and goes through the transport's ``route`` (to this stream's ``_on_message``, or
        to another client of a shared socket); only what is not an in-sequence delta
        reaches the subscription core (whose ``SidState.last_seq`` this loop advances).
        """
        recv = ws.recv
        loads = orjson.loads
        core = self._core
        subs = core.subs
        prices = self._price_cache
        parse_price = self._parse_price
        counts = self._count_cache
        count_of = self._parse_count
        stats = self.stats
        monotonic = time.monotonic
        yes_scale = self._use_yes_price
        on_message = route
        out_of_sequence = core.out_of_sequence
        gap = core.gap
        execute = self._execute
        mark = self._feed.mark if self._feed is not None else None
        while True:
            raw = await recv(decode=False)
            stats.last_frame_monotonic = monotonic()
            try:
                message = loads(raw)
                if message["type"] != CHANNEL:
                    on_message(message)
                    continue
                sub = subs.get(message["sid"])
                seq = message["seq"]
                if sub is None or seq != sub.last_seq + 1:
                    execute(out_of_sequence(sub, message["sid"], seq, message.get("msg")))
                    if sub is None or sub.held is None or sub.last_seq != seq:
                        continue
                    if subs.get(sub.sid) is not sub:  # replaced: nothing to keep for
                        continue
                    # a gap's own delta: its book is stale now, so it is only kept (below)
                else:
                    sub.last_seq = seq
                    stats.deltas_received += 1
            except _UNREADABLE:
                stats.malformed_frames += 1
                continue
            except Exception:  # a bug, not the exchange's fault: still never fatal
                log.exception("orderbook stream failed to handle a frame; skipped")
                stats.malformed_frames += 1
                continue
            # The delta consumed a seq: from here on, unreadable means lost data (a gap).
            try:
                msg = message["msg"]
                book = sub.books.get(msg["market_ticker"])
                if book is None:  # not one of this sid's markets: none of our books changed
                    stats.malformed_frames += 1
                    continue
                if book.stale:
                    stats.deltas_discarded += 1
                    sub.discarded[book.ticker] = seq  # a snapshot older than this is no use
                    if sub.held is not None:
                        self._hold(sub, seq, book.ticker, msg)
                    continue
                raw_price = msg["price_dollars"]
                price = prices.get(raw_price)
                if price is None:
                    price = parse_price(raw_price)
                raw_delta = msg["delta_fp"]
                delta = counts.get(raw_delta)
                if delta is None:
                    delta = count_of(raw_delta)
                side = msg["side"]
                if side == "yes":
                    levels = book.yes
                elif side == "no":
                    levels = book.no
                    if yes_scale:
                        price = MICROS_PER_DOLLAR - price
                else:
                    raise ValueError(f"unknown side {side!r}")
                size = levels.get(price, 0) + delta
                if size > 0:
                    levels[price] = size
                elif size == 0:
                    levels.pop(price, None)
                else:
                    execute(gap(sub, seq, seq, "negative_level"))
                    continue
                if mark is not None:  # readers copy under the book's seqlock: bump, then tell
                    book.version += 2
                    mark(book.ticker)
            except _UNREADABLE:
                stats.malformed_frames += 1
                execute(gap(sub, seq, seq, "bad_frame"))
            except Exception:
                log.exception("orderbook stream failed to apply a delta; repairing")
                stats.malformed_frames += 1
                execute(gap(sub, seq, seq, "bad_frame"))

    def _hold(self, sub: SidState, seq: int, ticker: str, msg: dict[str, Any]) -> None:
        """Keep a thrown-away delta for a late repair reply (``SidState.held``); an
        unreadable one, or one too many, ends the keeping (the reply is then asked again)."""
        held = sub.held
        if held is None:
            return
        try:
            if len(held) >= HELD_MAX:
                raise OverflowError
            side = msg["side"]
            if side not in ("yes", "no"):
                raise ValueError(f"unknown side {side!r}")
            price = self._parse_price(msg["price_dollars"])
            if side == "no" and self._use_yes_price:
                price = MICROS_PER_DOLLAR - price
            held.append((seq, ticker, side, price, self._parse_count(msg["delta_fp"])))
        except (LookupError, TypeError, ValueError, OverflowError):
            sub.held = None

    def _on_message(self, message: dict[str, Any]) -> None:
        """Every frame type except deltas (rare: replies, snapshots, errors), turned into the
        core's inputs. Shape checks raise here or in the core before any state changes."""
        kind = message["type"]
        core = self._core
        if kind == ORDERBOOK_SNAPSHOT:
            frame = self._snapshot_frame(message)
            actions = core.on_snapshot(frame, time.time())
            if self._feed is not None and type(frame.ticker) is str and frame.ticker in self._books:
                self._feed.mark(frame.ticker)
        elif kind == "error":
            msg = message.get("msg")
            code = msg.get("code") if type(msg) is dict else None
            text = str(msg.get("msg", "")) if type(msg) is dict else ""
            named: list[object] = []
            if type(msg) is dict:
                many = msg.get("market_tickers")
                named = list(many) if type(many) is list else [msg.get("market_ticker")]
            actions = core.on_error(
                message.get("id"), message.get("sid"), message.get("seq"), code, text, named
            )
        elif kind == "ok":
            actions = core.on_ok(message.get("id"), message.get("sid"), message.get("seq"))
        elif kind == "subscribed":
            msg = message["msg"]
            is_dict = type(msg) is dict
            actions = core.on_subscribed(
                message.get("id"),
                msg.get("sid") if is_dict else None,
                msg.get("channel", CHANNEL) if is_dict else CHANNEL,
            )
        elif kind == "unsubscribed":
            actions = core.advance(message.get("sid"), message.get("seq"))
        elif kind == MARKET_LIFECYCLE_CHANNEL:
            actions = core.on_lifecycle(message["msg"], time.time())
        else:
            self.stats.ignored_frames += 1
            return
        self._execute(actions)

    def _snapshot_frame(self, message: dict[str, Any]) -> SnapshotFrame:
        """Parse a snapshot's envelope and ladders; unreadable ladders become ``levels=None``
        (the frame still consumed a seq, so the core must see it)."""
        sid, seq, msg = message["sid"], message["seq"], message["msg"]
        if type(sid) is not int or type(seq) is not int or type(msg) is not dict:
            raise TypeError("bad snapshot envelope")
        levels: tuple[list[Level], list[Level]] | None
        try:
            levels = (
                self._parse_ladder(msg.get("yes_dollars_fp"), no_side=False),
                self._parse_ladder(msg.get("no_dollars_fp"), no_side=True),
            )
        except (LookupError, TypeError, ValueError):
            levels = None
        return SnapshotFrame(
            sid, seq, msg.get("market_ticker"), levels, msg.get("market_id"), message.get("id")
        )

    def _parse_price(self, raw: object) -> int:
        price = parse_dollars(raw)
        if not 0 < price < MICROS_PER_DOLLAR:
            raise FixedPointError(f"price {raw!r} is outside (0, 1) dollars")
        if len(self._price_cache) >= _CACHE_LIMIT:
            self._price_cache.clear()
        self._price_cache[raw] = price
        return price

    def _parse_count(self, raw: object) -> int:
        count = fast_count(raw)
        if len(self._count_cache) >= _CACHE_LIMIT:
            self._count_cache.clear()
        self._count_cache[raw] = count
        return count

    def _parse_ladder(self, levels: Any, *, no_side: bool) -> list[Level]:
        """A snapshot side: absent means empty; prices normalised to no-leg for NO."""
        if levels is None:
            return []
        if type(levels) is not list:
            raise TypeError("a snapshot side must be a list of levels")
        flip = no_side and self._use_yes_price
        parsed: list[Level] = []
        for level in levels:
            if type(level) is not list or len(level) != 2:
                raise TypeError("a level must be [price_dollars, count_fp]")
            price = self._price_cache.get(level[0]) or self._parse_price(level[0])
            size = fast_count(level[1])
            if size < 0:
                raise ValueError("negative size in a snapshot")
            parsed.append((MICROS_PER_DOLLAR - price if flip else price, size))
        return parsed


# -- helpers -------------------------------------------------------------------------------
def fast_count(raw: Any) -> int:
    """A ``_fp`` count as centi-contracts, fast for Kalshi's fixed 2-decimal shape.

    Kalshi always sends counts with exactly two decimals, so ``"-62.69"`` is
    ``int("-62" + "69")``, about half the cost of the general parser. It is exact
    whenever it succeeds: the last two characters must be digits right after a ``.``,
    and ``int`` rejects anything else in the whole part. It is lenient only where ``int``
    is (surrounding whitespace, ``_`` separators), which never changes the number. Any
    other shape goes to the strict :func:`~kalshi_api.fixed_point.parse_count`.
    """
    if type(raw) is str and raw[-3:-2] == "." and raw[-2:].isdigit():
        return int(raw[:-3] + raw[-2:])
    return parse_count(raw)
