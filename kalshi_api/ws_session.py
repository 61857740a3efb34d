"""The orderbook WebSocket session: authenticated connect, subscribe, seq-checked live books.

Why it looks like this:

* **One thread, one writer.** The session runs its own asyncio loop in a dedicated
  thread, and that thread is the only writer of every :class:`OrderBook`. Deltas go
  socket -> ``orjson.loads`` -> seq check -> dict update with no lock, no actor hop and
  no pydantic model: the hot path is a handful of dict operations per frame.
* **Seq is per sid.** Kalshi numbers every message of a subscription (all its markets)
  with one counter. A gap (or a level going negative, or a frame we could not read that
  consumed a seq) means a book of that sid may be wrong, so every book in the sid is
  marked stale, its deltas are discarded, and ``update_subscription get_snapshot`` asks
  for fresh snapshots in-stream. If that is refused or does not arrive in time, the
  subscription is replaced (unsubscribe + subscribe); if *that* does not produce
  snapshots, the connection is dropped and rebuilt from scratch.
* **Snapshots re-baseline.** Whether a ``get_snapshot`` reply continues or restarts the
  sid's seq is unconfirmed, so an awaited snapshot always resets the tracker to its seq.
* **Failures are events, not tracebacks.** Connection problems become one-line reasons
  in :class:`StreamDisconnected` / :class:`StreamFailed`; a rejected upgrade (401/403) is
  final, because retrying a bad key forever only hides the problem.
* **Tests synchronise, never sleep.** :meth:`OrderbookStream.barrier` sends
  ``list_subscriptions`` and waits for its reply: one reader applies frames in order, so
  everything the exchange sent before that reply has been applied when it returns.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

from kalshi_api.fixed_point import MICROS_PER_DOLLAR, FixedPointError, parse_count, parse_dollars
from kalshi_api.orderbook import Level, OrderBook
from kalshi_api.stream_events import (
    ReconnectPolicy,
    StreamConnected,
    StreamDisconnected,
    StreamEvent,
    StreamFailed,
    StreamGap,
    StreamResynced,
    StreamStats,
    StreamSynced,
    StreamTerminalError,
)
from kalshi_api.ws_connect import connect_options, describe_close, describe_connect_error, one_line

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
    "StreamResynced",
    "StreamStats",
    "StreamSynced",
    "StreamTerminalError",
    "connect_options",
    "describe_connect_error",
    "fast_count",
]

log = logging.getLogger(__name__)

WS_SIGNING_PATH = "/trade-api/ws/v2"
CHANNEL = "orderbook_delta"
TERMINAL_CODES = frozenset({10, 25})
"""Kalshi error codes after which the subscription is dead and must be re-created."""
_CACHE_LIMIT = 1 << 16
_MAX_REPAIRS = 3
"""Repair attempts at one level before escalating to the next (snapshot -> resubscribe ->
reconnect), so an exchange that keeps sending bad data cannot trap us in a request loop."""
_UNREADABLE = (orjson.JSONDecodeError, LookupError, TypeError, ValueError, AttributeError)
"""What a frame with the wrong shape raises on the hot path: counted, skipped, never fatal."""
_T = TypeVar("_T")


# -- per-session bookkeeping (stream thread only) ------------------------------------------
@dataclass(eq=False)
class _Subscription:
    """One live sid: its books, seq tracker and what it is still waiting for."""

    sid: int
    books: dict[str, OrderBook]
    last_seq: int = 0
    awaiting: set[str] = field(default_factory=set)
    """Markets whose book is stale until a snapshot arrives."""
    initial: bool = True
    """True until every book of this sid has had its first snapshot."""
    repairs: int = 0
    """``get_snapshot`` requests since this sid was last fully live."""
    deadline: asyncio.TimerHandle | None = None

    def cancel_deadline(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None


@dataclass(frozen=True, slots=True)
class _Pending:
    """A command we sent and the reply we expect: ``kind`` says how to treat the reply."""

    kind: str  # subscribe | get_snapshot | unsubscribe | barrier
    tickers: tuple[str, ...] = ()
    sid: int = 0
    waiter: threading.Event | None = None


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
    ) -> None:
        """``auth_headers`` is called once per connection attempt so every upgrade carries a
        fresh timestamp and signature (typically ``lambda: signer.headers("GET",
        "/trade-api/ws/v2")``). ``snapshot_timeout`` bounds each repair step."""
        unique = tuple(dict.fromkeys(tickers))
        if not unique:
            raise ValueError("an orderbook stream needs at least one market ticker")
        self._url = ws_url
        self._tickers = unique
        self._auth_headers = auth_headers
        self._use_yes_price = bool(use_yes_price)
        self._listener = listener
        self._policy = reconnect or ReconnectPolicy()
        self._open_timeout = open_timeout
        self._ping_interval = ping_interval
        self._snapshot_timeout = snapshot_timeout
        self._books = {ticker: OrderBook(ticker) for ticker in unique}
        self.stats = StreamStats()
        self.connected = False
        """True while a socket is open (books may still be syncing: see ``wait_synced``)."""

        # lifecycle (any thread)
        self._lifecycle = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main_task: asyncio.Task[None] | None = None
        self._loop_ready = threading.Event()
        self._stopping = False
        self._synced = threading.Event()
        self._failed_reason: str | None = None

        # session state (stream thread only)
        self._ws: ClientConnection | None = None
        self._subs: dict[int, _Subscription] = {}
        self._pending: dict[int, _Pending] = {}
        self._next_id = 1
        self._session_synced = False
        self._replacements = 0
        """Subscriptions replaced since every book was last live (escalation counter)."""
        self._close_reason: str | None = None
        self._send_tasks: set[asyncio.Task[None]] = set()
        self._barrier_waiters: dict[threading.Event, int] = {}
        """Barrier waiter -> command id sent on this session (0 = not sent yet)."""
        self._price_cache: dict[Any, int] = {}
        self._count_cache: dict[Any, int] = {}
        """Memo tables for the hot path: a few hundred prices and a long tail of delta sizes
        repeat, and a dict hit is far cheaper than parsing. Bounded by ``_CACHE_LIMIT``."""

    # -- public API (any thread) -----------------------------------------------------------
    @property
    def tickers(self) -> tuple[str, ...]:
        return self._tickers

    @property
    def failed_reason(self) -> str | None:
        """The one-line reason the stream gave up, or None while it is (or may be) running."""
        return self._failed_reason

    def start(self) -> None:
        """Start the stream thread; returns at once (connecting happens in the background)."""
        with self._lifecycle:
            if self._stopping:
                raise RuntimeError("a stopped OrderbookStream cannot be restarted")
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name="orderbook-stream", daemon=True)
            self._thread = thread
            thread.start()
        self._loop_ready.wait()

    def stop(self, timeout: float = 2.0) -> None:
        """Close the socket and join the thread; idempotent and safe from any thread."""
        with self._lifecycle:
            self._stopping = True
            thread, loop = self._thread, self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(self._cancel_main)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("orderbook stream thread did not stop within %.1fs", timeout)

    def wait_synced(self, timeout: float | None = None) -> bool:
        """True once every market has a live (non-stale) book; False on timeout."""
        return self._synced.wait(timeout)

    def synced_market_count(self) -> int:
        """Markets whose book is live right now."""
        return sum(1 for book in self._books.values() if not book.stale)

    def barrier(self, timeout: float = 5.0) -> bool:
        """Round-trip a ``list_subscriptions``; True once its reply has been read.

        Frames are applied in arrival order by one thread, so when this returns True every
        frame the exchange sent before answering has been applied. If no session is open
        the request is sent as soon as one is (after its subscribe).
        """
        loop = self._loop
        if loop is None or threading.current_thread() is self._thread:
            return False
        waiter = threading.Event()
        try:
            loop.call_soon_threadsafe(self._add_barrier, waiter)
        except RuntimeError:
            return False
        done = waiter.wait(timeout)
        if not done:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._barrier_waiters.pop, waiter, None)
        return done

    def book(self, ticker: str) -> OrderBook:
        """The live book object for ``ticker`` (the same object across reconnects)."""
        return self._books[ticker]

    def digests(self) -> dict[str, str]:
        """Every book's digest, taken on the stream thread so both sides match one instant."""
        return self._on_stream_thread(
            lambda: {ticker: book.digest() for ticker, book in self._books.items()}
        )

    def levels(self, ticker: str) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """One book's ``(yes, no)`` levels, read on the stream thread (consistent)."""
        book = self._books[ticker]
        return self._on_stream_thread(book.levels)

    def drop_connection(self) -> None:
        """Client-side fault: abort the socket with no close frame, so the reconnect path runs."""

        def abort() -> None:
            ws = self._ws
            if ws is not None and ws.transport is not None:
                self._close_reason = "connection dropped by the client (fault injection)"
                ws.transport.abort()

        self._on_stream_thread(abort)

    # -- thread plumbing -------------------------------------------------------------------
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._main_task = loop.create_task(self._main())
        self._loop_ready.set()
        try:
            loop.run_until_complete(self._main_task)
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # a bug here must still surface as an event, not a dead thread
            log.exception("orderbook stream crashed")
            self._fail(f"internal error: {type(exc).__name__}: {one_line(exc)}")
        finally:
            self.connected = False
            self._synced.clear()
            for book in self._books.values():
                book.stale = True
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            with self._lifecycle:
                self._loop = None
            loop.close()

    def _cancel_main(self) -> None:
        if self._main_task is not None:
            self._main_task.cancel()

    def _on_stream_thread(self, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` on the stream thread and return its result (directly if not running)."""
        loop = self._loop
        if loop is None or threading.current_thread() is self._thread:
            return fn()
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        try:
            loop.call_soon_threadsafe(run)
        except RuntimeError:  # the loop closed meanwhile: nobody else writes any more
            return fn()
        try:
            return future.result(timeout=2.0)
        except TimeoutError:  # the loop is shutting down and will not run callbacks
            return fn()

    def _emit(self, event: StreamEvent) -> None:
        listener = self._listener
        if listener is None:
            return
        try:
            listener(event)
        except Exception:
            log.exception("orderbook stream listener raised on %r; ignored", event)

    def _fail(self, reason: str) -> None:
        self._failed_reason = reason
        log.error("orderbook stream failed: %s", reason)
        self._emit(StreamFailed(reason))

    # -- connection loop -------------------------------------------------------------------
    async def _main(self) -> None:
        rng = random.Random()
        failures = 0
        sessions = 0
        options = connect_options(
            self._url, open_timeout=self._open_timeout, ping_interval=self._ping_interval
        )
        while not self._stopping:
            try:
                headers = dict(self._auth_headers()) if self._auth_headers is not None else {}
            except Exception as exc:
                self._fail(f"cannot sign the WebSocket upgrade: {one_line(exc)}")
                return
            try:
                ws = await connect(self._url, additional_headers=headers, **options)
            except asyncio.CancelledError:
                raise
            except InvalidStatus as exc:
                reason = describe_connect_error(exc, self._url, self._open_timeout)
                if exc.response.status_code in (401, 403):
                    self._emit(StreamDisconnected(reason, will_retry=False))
                    self._fail(reason)
                    return
            except InvalidURI as exc:
                self._fail(f"invalid WebSocket URL {self._url!r}: {one_line(exc)}")
                return
            except Exception as exc:
                reason = describe_connect_error(exc, self._url, self._open_timeout)
            else:
                sessions += 1
                if sessions > 1:
                    self.stats.reconnects += 1
                reason, synced = await self._session(ws, attempt=failures + 1)
                if self._stopping:
                    return
                # A session that synced was a success: its end starts a fresh outage.
                failures = -1 if synced else failures
            failures += 1
            limit = self._policy.max_attempts
            give_up = limit is not None and failures >= limit
            log.warning("orderbook stream: %s", reason)
            self._emit(StreamDisconnected(reason, will_retry=not give_up))
            if give_up:
                self._fail(f"gave up after {failures} failed attempt(s): {reason}")
                return
            await asyncio.sleep(self._policy.delay(max(1, failures), rng))

    async def _session(self, ws: ClientConnection, attempt: int) -> tuple[str, bool]:
        """Run one connection until it ends; returns (one-line reason, whether it synced)."""
        self._ws = ws
        self._close_reason = None
        self._session_synced = False
        self._replacements = 0
        self.connected = True
        self._emit(StreamConnected(attempt))
        try:
            self._subscribe(self._tickers)
            for waiter in self._barrier_waiters:
                self._send_barrier(waiter)
            await self._read_frames(ws)
        except ConnectionClosed as exc:
            reason = self._close_reason or describe_close(exc)
        finally:
            self._end_session()
            if self._stopping:
                with contextlib.suppress(Exception):
                    await ws.close()
            else:
                ws.transport.abort()
        return reason, self._session_synced

    def _end_session(self) -> None:
        self.connected = False
        self._ws = None
        self._synced.clear()
        for sub in self._subs.values():
            sub.cancel_deadline()
        self._subs.clear()
        self._pending.clear()
        for book in self._books.values():
            book.stale = True
        for waiter in self._barrier_waiters:
            self._barrier_waiters[waiter] = 0

    def _close_session(self, reason: str) -> None:
        """End the current session from inside the stream (the reconnect loop takes over)."""
        ws = self._ws
        if ws is not None and ws.transport is not None:
            self._close_reason = reason
            ws.transport.abort()

    # -- outgoing commands -----------------------------------------------------------------
    def _send(self, payload: dict[str, Any]) -> int:
        """Queue a command on the current socket; returns its id. Order of calls = wire order."""
        command_id = self._next_id
        self._next_id += 1
        ws = self._ws
        if ws is not None:
            data = orjson.dumps({"id": command_id, **payload})
            task = asyncio.get_running_loop().create_task(_send_quietly(ws, data))
            self._send_tasks.add(task)
            task.add_done_callback(self._send_tasks.discard)
        return command_id

    def _subscribe(self, tickers: tuple[str, ...]) -> None:
        params = {
            "channels": [CHANNEL],
            "market_tickers": list(tickers),
            "use_yes_price": self._use_yes_price,
        }
        command_id = self._send({"cmd": "subscribe", "params": params})
        self._pending[command_id] = _Pending("subscribe", tickers=tickers)
        loop = asyncio.get_running_loop()
        loop.call_later(self._snapshot_timeout, self._check_subscribed, command_id, self._ws)

    def _check_subscribed(self, command_id: int, ws: ClientConnection | None) -> None:
        if ws is self._ws and command_id in self._pending:
            self._close_session(
                f"no reply to subscribe within {self._snapshot_timeout:g}s; reconnecting"
            )

    def _request_snapshots(self, sub: _Subscription, tickers: Iterable[str]) -> None:
        """Kalshi's in-stream repair: fresh snapshots without touching the subscription."""
        params = {"sids": [sub.sid], "market_tickers": list(tickers), "action": "get_snapshot"}
        command_id = self._send({"cmd": "update_subscription", "params": params})
        self._pending[command_id] = _Pending("get_snapshot", sid=sub.sid)
        self._arm_deadline(sub, self._snapshots_overdue)

    def _resubscribe(self, sub: _Subscription, *, unsubscribe: bool) -> None:
        """Replace a sid whose repair failed or that Kalshi killed with a fresh subscription."""
        self.stats.resubscribes += 1
        self._abandon(sub)
        self._replacements += 1
        if self._replacements > _MAX_REPAIRS:
            self._close_session(
                f"subscription replaced {_MAX_REPAIRS} times without syncing; reconnecting"
            )
            return
        if unsubscribe:
            command_id = self._send({"cmd": "unsubscribe", "params": {"sids": [sub.sid]}})
            self._pending[command_id] = _Pending("unsubscribe", sid=sub.sid)
        self._subscribe(tuple(sub.books))

    def _abandon(self, sub: _Subscription) -> None:
        sub.cancel_deadline()
        self._subs.pop(sub.sid, None)
        for book in sub.books.values():
            book.stale = True
        self._synced.clear()

    def _add_barrier(self, waiter: threading.Event) -> None:
        self._barrier_waiters[waiter] = 0
        if self._ws is not None:
            self._send_barrier(waiter)

    def _send_barrier(self, waiter: threading.Event) -> None:
        command_id = self._send({"cmd": "list_subscriptions"})
        self._pending[command_id] = _Pending("barrier", waiter=waiter)
        self._barrier_waiters[waiter] = command_id

    def _arm_deadline(self, sub: _Subscription, callback: Callable[[_Subscription], None]) -> None:
        sub.cancel_deadline()
        loop = asyncio.get_running_loop()
        sub.deadline = loop.call_later(self._snapshot_timeout, callback, sub)

    def _snapshots_overdue(self, sub: _Subscription) -> None:
        sub.deadline = None
        if self._subs.get(sub.sid) is sub and sub.awaiting:
            log.warning("sid %d: get_snapshot unanswered; resubscribing", sub.sid)
            self._resubscribe(sub, unsubscribe=True)

    def _first_snapshots_overdue(self, sub: _Subscription) -> None:
        sub.deadline = None
        if self._subs.get(sub.sid) is sub and sub.awaiting:
            self._close_session(
                f"sid {sub.sid}: no snapshot for {len(sub.awaiting)} market(s) within "
                f"{self._snapshot_timeout:g}s; reconnecting"
            )

    # -- incoming frames (the hot path) ----------------------------------------------------
    async def _read_frames(self, ws: ClientConnection) -> None:
        """Read and apply frames until the socket closes (``ConnectionClosed`` ends it).

        This loop is the hot path, so everything it touches per delta is bound to a local
        once per session (the dicts are mutated in place, never replaced) and the delta
        case is inlined: one ``orjson.loads``, a handful of dict lookups, memoised
        fixed-point parsing and the level update ``OrderBook.apply_delta`` defines (kept
        identical to it; the unit tests pin those semantics). Every other frame type is
        rare and goes through ``_on_message``.
        """
        recv = ws.recv
        loads = orjson.loads
        subs = self._subs
        prices = self._price_cache
        parse_price = self._parse_price
        counts = self._count_cache
        count_of = self._parse_count
        stats = self.stats
        monotonic = time.monotonic
        yes_scale = self._use_yes_price
        on_message = self._on_message
        out_of_sequence = self._out_of_sequence
        gap = self._gap
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
                    out_of_sequence(sub, message["sid"], seq)
                    continue
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
                    gap(sub, seq, seq, "negative_level")
            except _UNREADABLE:
                stats.malformed_frames += 1
                gap(sub, seq, seq, "bad_frame")
            except Exception:
                log.exception("orderbook stream failed to apply a delta; repairing")
                stats.malformed_frames += 1
                gap(sub, seq, seq, "bad_frame")

    def _out_of_sequence(self, sub: _Subscription | None, sid: object, seq: object) -> None:
        """A delta that is not the sid's next: unknown sid, bad types, duplicate or gap."""
        if type(sid) is not int or type(seq) is not int:
            raise TypeError("delta envelope needs integer sid and seq")
        if sub is None:
            self.stats.orphan_frames += 1
            return
        last = sub.last_seq
        if seq <= last:
            self.stats.duplicates_dropped += 1
            return
        sub.last_seq = seq
        self._gap(sub, last + 1, seq, "seq")

    def _on_message(self, message: dict[str, Any]) -> None:
        """Every frame type except deltas (rare: replies, snapshots, errors)."""
        kind = message["type"]
        if kind == "orderbook_snapshot":
            self._on_snapshot(message)
        elif kind == "error":
            self._on_error(message)
        elif kind == "ok":
            self._on_ok(message)
        elif kind == "subscribed":
            self._on_subscribed(message)
        elif kind == "unsubscribed":
            self._advance(message)
        else:
            self.stats.ignored_frames += 1

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

    def _on_snapshot(self, message: dict[str, Any]) -> None:
        sid, seq, msg = message["sid"], message["seq"], message["msg"]
        if type(sid) is not int or type(seq) is not int or type(msg) is not dict:
            raise TypeError("bad snapshot envelope")
        sub = self._subs.get(sid)
        if sub is None:
            self.stats.orphan_frames += 1
            return
        ticker = msg["market_ticker"]
        book = sub.books.get(ticker)
        if book is None:
            raise KeyError(f"snapshot for a market not in sid {sid}")
        awaited = ticker in sub.awaiting
        last = sub.last_seq
        if not awaited and seq <= last:
            self.stats.duplicates_dropped += 1
            return
        sub.last_seq = seq  # a snapshot re-baselines the sid (restart or continue: both fine)
        try:
            yes = self._parse_ladder(msg.get("yes_dollars_fp"), no_side=False)
            no = self._parse_ladder(msg.get("no_dollars_fp"), no_side=True)
        except (LookupError, TypeError, ValueError):
            self.stats.malformed_frames += 1
            book.stale = True
            self._gap(sub, seq, seq, "bad_frame", refetch=(ticker,))
            return
        book.apply_snapshot(yes, no)
        market_id = msg.get("market_id")
        if type(market_id) is str:
            book.market_id = market_id
        self.stats.snapshots_received += 1
        sub.awaiting.discard(ticker)
        # A jump in seq also covers deltas the sid's *other* live books may have missed.
        if seq > last + 1 and last and len(sub.awaiting) < len(sub.books) - 1:
            self._gap(sub, last + 1, seq, "seq")
        elif awaited and not sub.awaiting:
            self._sub_live(sub)

    def _on_subscribed(self, message: dict[str, Any]) -> None:
        command_id, msg = message.get("id"), message["msg"]
        pending = self._pending.get(command_id) if type(command_id) is int else None
        if pending is None or pending.kind != "subscribe":
            self.stats.ignored_frames += 1
            return
        sid = msg["sid"]
        if type(sid) is not int or msg.get("channel", CHANNEL) != CHANNEL:
            raise TypeError("bad subscribed reply")
        del self._pending[command_id]
        sub = _Subscription(
            sid=sid,
            books={ticker: self._books[ticker] for ticker in pending.tickers},
            awaiting=set(pending.tickers),
        )
        for book in sub.books.values():
            book.stale = True
        self._subs[sid] = sub
        self._arm_deadline(sub, self._first_snapshots_overdue)

    def _on_ok(self, message: dict[str, Any]) -> None:
        command_id = message.get("id")
        pending = self._pending.pop(command_id, None) if type(command_id) is int else None
        if pending is not None and pending.waiter is not None:
            self._barrier_waiters.pop(pending.waiter, None)
            pending.waiter.set()
        self._advance(message)

    def _advance(self, message: dict[str, Any]) -> None:
        """Replies that carry ``sid`` + ``seq`` take a slot in the sid's sequence."""
        sid, seq = message.get("sid"), message.get("seq")
        sub = self._subs.get(sid) if type(sid) is int else None
        if sub is None or type(seq) is not int:
            return
        if seq == sub.last_seq + 1:
            sub.last_seq = seq
        elif seq > sub.last_seq:
            expected = sub.last_seq + 1
            sub.last_seq = seq
            self._gap(sub, expected, seq, "seq")

    def _on_error(self, message: dict[str, Any]) -> None:
        msg = message.get("msg")
        code = msg.get("code") if type(msg) is dict else None
        text = str(msg.get("msg", "")) if type(msg) is dict else ""
        sid = message.get("sid")
        if code in TERMINAL_CODES:
            self.stats.terminal_errors += 1
            self._emit(StreamTerminalError(code, text))
            if type(sid) is int:
                victims = [self._subs[sid]] if sid in self._subs else []
            else:  # unscoped: we cannot tell which sid died, so replace them all
                victims = list(self._subs.values())
            for sub in victims:
                self._resubscribe(sub, unsubscribe=False)
            return
        self._advance(message)
        command_id = message.get("id")
        pending = self._pending.pop(command_id, None) if type(command_id) is int else None
        if pending is None:
            log.warning("exchange error %s: %s", code, text)
            return
        if pending.kind == "get_snapshot":
            sub = self._subs.get(pending.sid)
            if sub is not None and sub.awaiting:
                log.warning(
                    "sid %d: get_snapshot refused (%s %s); resubscribing", sub.sid, code, text
                )
                self._resubscribe(sub, unsubscribe=True)
        elif pending.kind == "subscribe":
            self._close_session(f"subscribe rejected: error {code} ({text})")
        elif pending.waiter is not None:  # still proves ordering
            self._barrier_waiters.pop(pending.waiter, None)
            pending.waiter.set()

    # -- gap repair ------------------------------------------------------------------------
    def _gap(
        self,
        sub: _Subscription,
        expected: int,
        received: int,
        reason: str,
        refetch: tuple[str, ...] = (),
    ) -> None:
        """Data was lost on ``sid``: stale every live book in it and ask for snapshots.

        Books already awaiting a snapshot are not asked for again (the one on its way was
        taken after this point) unless named in ``refetch`` (their snapshot was unusable).
        Repeated failed repairs escalate: after ``_MAX_REPAIRS`` requests without the sid
        going live it is replaced, and after as many replacements the connection is.
        """
        self.stats.gaps += 1
        self._emit(StreamGap(sub.sid, expected, received, reason))
        wanted = [t for t in sub.books if t not in sub.awaiting or t in refetch]
        if not wanted:
            return  # every book is already waiting for a snapshot taken after this point
        for ticker in wanted:
            sub.books[ticker].stale = True
        sub.awaiting.update(wanted)
        self._synced.clear()
        sub.repairs += 1
        if sub.repairs > _MAX_REPAIRS:
            self._resubscribe(sub, unsubscribe=True)
        else:
            self._request_snapshots(sub, wanted)

    def _sub_live(self, sub: _Subscription) -> None:
        """Every book of ``sub`` is live again: report it, and report the stream synced."""
        sub.cancel_deadline()
        sub.repairs = 0
        if sub.initial and not self._session_synced:
            sub.initial = False
        else:
            sub.initial = False
            self.stats.resyncs += 1
            self._emit(StreamResynced(sub.sid))
        if all(not book.stale for book in self._books.values()):
            self._replacements = 0
            self._synced.set()
            if not self._session_synced:
                self._session_synced = True
                self._emit(StreamSynced(len(self._books)))


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


async def _send_quietly(ws: ClientConnection, data: bytes) -> None:
    """Send a command; a closed socket is reported by the reader, not here."""
    with contextlib.suppress(ConnectionClosed):
        await ws.send(data, text=True)
