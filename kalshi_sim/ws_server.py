"""The embedded exchange's WebSocket feed: Kalshi's 2026 ``/trade-api/ws/v2`` as an ASGI endpoint.

It exists so the client's orderbook stream can be tested against real sockets and real
frames rather than mocks. It speaks the current wire shapes only (``yes_dollars_fp`` /
``no_dollars_fp`` snapshots with an empty side's key omitted, ``price_dollars`` /
``delta_fp`` deltas, ``use_yes_price``, ``get_snapshot``, per-sid seq counters starting
at 1, the published error codes) and lets a test break the stream on command: drop every
socket, skip a seq, inject garbage, stall, or kill subscriptions with a terminal error.

Design:

* The feed runs on the exchange server's event loop (uvicorn's, in the server thread);
  the public methods are called from other threads and hop onto that loop, returning
  once their effect applies. The upgrade's signature check is a rule in front of this
  endpoint (:class:`kalshi_sim.rules.SignatureRule`).
* Every frame to a client goes through that connection's FIFO queue and writer task, so
  command replies, snapshots and deltas leave in exactly the order they were produced,
  a slow client never blocks the others, and a stall only has to hold the writers.
* A single generator task mutates the truth (``MarketSet.next_delta``) and fans each
  change out in the same loop step, so a snapshot built on this loop is always exactly
  the truth as of its position in every stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import orjson
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send
from websockets.protocol import State

from kalshi_api.fixed_point import MICROS_PER_DOLLAR, format_count, format_dollars
from kalshi_api.protocol import MARKET_LIFECYCLE_CHANNEL, WsErrorCode
from kalshi_sim.engine_types import EngineOrder, Outcome
from kalshi_sim.markets import Delta, MarketSet, deltas_of
from kalshi_sim.trading_wire import (
    ws_fill,
    ws_group_update,
    ws_market_position,
    ws_trade,
    ws_user_order,
)
from kalshi_sim.wire import (
    AUTH_HEADERS,
    CHANNELS,
    ERROR_TEXT,
    ORDERBOOK_CHANNEL,
    TERMINAL_CODES,
)

if TYPE_CHECKING:
    from kalshi_sim.exchange import EmbeddedExchange

log = logging.getLogger("kalshi_supervisor.kalshi_sim.ws_server")

CONNECTION_EXTENSION = "kalshi_sim.connection"
"""Scope extension under which the server's WebSocket protocol hands the feed itself
(:mod:`kalshi_sim.server`): the feed needs the transport to cut a connection with no
close frame (``ws_drop``), which ASGI alone cannot express."""
ORDERBOOK = ORDERBOOK_CHANNEL
"""Channels Kalshi accepts. Only ``orderbook_delta`` carries data here; the others are
acknowledged with a sid and stay silent, which is all a client needs to test against."""
PRIVATE_CHANNELS = frozenset(
    {
        "orderbook_delta",
        "fill",
        "market_positions",
        "communications",
        "order_group_updates",
        "user_orders",
    }
)
MARKET_UPDATE_CHANNELS = frozenset({"orderbook_delta", "ticker", "fill", "user_orders", "trade"})
TRADING_PRIVATE = frozenset({"fill", "user_orders", "market_positions", "order_group_updates"})
"""The private channels that carry the member's own trading events (§8.7)."""
KNOWN_ACTIONS = frozenset(
    {
        "add_markets",
        "delete_markets",
        "get_snapshot",
        "subscribe_indices",
        "unsubscribe_indices",
        "indexlist",
        "subscribe_underlyings",
        "unsubscribe_underlyings",
        "underlying_list",
    }
)

MALFORMED_FRAMES: tuple[str, ...] = (
    '{"type":"orderbook_delta","sid":1,"seq":',
    '{"type":"orderbook_delta","sid":"1","seq":null,'
    '"msg":{"market_ticker":42,"price_dollars":0.5,"delta_fp":[],"side":true}}',
)
"""What ``send_malformed`` injects: truncated JSON, then JSON with every type wrong. Neither
carries a usable (sid, seq), so a correct client skips both without losing its place."""

_T = TypeVar("_T")

ClosedAnswer = Literal["nothing", "empty", "error", "error_unnamed"]
SnapshotSeq = Literal["continue", "restart"]


@dataclass
class StreamBehaviour:
    """How the feed answers what Kalshi leaves undocumented (protocol §7.3), set by tests.

    Plain attributes read on the server loop at each use, so a test may change them at any
    time. The defaults are the feed's ordinary behaviour.
    """

    closed_answer: ClosedAnswer = "nothing"
    """What subscribe / ``get_snapshot`` gives for a market whose status is not ``active``:
    no snapshot at all, a snapshot with empty ladders, or error 11 (naming the markets in
    ``msg.market_tickers``, or not: ``error_unnamed``)."""
    market_limit: int | None = None
    """Markets allowed in one orderbook subscribe; more answer error 26."""
    drop_after_sync: float | None = None
    """Cut every session this many seconds after its first subscribe was answered."""
    upgrade_status: int | None = None
    """Refuse every WebSocket upgrade with this HTTP status (e.g. 429: connection limit)."""
    snapshot_seq: SnapshotSeq = "continue"
    """How a ``get_snapshot`` reply is numbered (protocol §3.7 leaves it UNCONFIRMED): it takes
    the sid's next seq (``continue``), or restarts the sid's counter, its first snapshot
    taking seq 1 and every later frame of the sid following on (``restart``)."""
    drop_on_exchange_pause: bool = True
    """Drop every open session (no close frame) the moment the whole exchange is paused, as
    Kalshi warns it may ("be prepared for session disconnections", [MP]). Whatever this says,
    upgrades are refused (503) while the exchange is paused; a trading-only pause leaves the
    feed alone."""


class _CommandError(Exception):
    """A command the exchange refuses; becomes one ``type:"error"`` frame."""

    def __init__(self, code: int, **extra: Any) -> None:
        super().__init__(ERROR_TEXT.get(code, "error"))
        self.code = code
        self.extra = extra


@dataclass(eq=False)
class _Subscription:
    """One sid: its channel, markets and the seq counter every market in it shares."""

    sid: int
    channel: str
    tickers: list[str]
    use_yes_price: bool = False
    skip_ticker_ack: bool = False
    seq: int = 0
    skip_next: bool = False
    """Set by ``skip_seq``: the next delta advances seq by 2, a gap the client must repair."""
    duplicate_next: bool = False
    """Set by ``duplicate_next_delta``: the next delta goes out twice with the same seq."""
    book_seq: dict[str, int] = field(default_factory=dict)
    """Per market, the book version its last snapshot was as of: changes at or below it
    are already in that snapshot and are not sent again (changes published from another
    thread can arrive after a snapshot that holds them)."""

    all_markets: bool = False
    """A private or trade subscription made with no market filter: every market."""

    def covers(self, ticker: str) -> bool:
        return self.channel == ORDERBOOK and ticker in self.tickers

    def covers_market(self, ticker: str) -> bool:
        """For the trading channels: no filter means every market."""
        return self.all_markets or ticker in self.tickers


@dataclass(eq=False)
class _Connection:
    """One upgraded client socket, its subscriptions and its outgoing queue."""

    send_message: Send
    protocol: Any
    """uvicorn's protocol object for this socket (``transport``, ``conn.state``), or None."""
    authenticated: bool
    member: str | None = None
    """The member the upgrade's API key trades for: private channels carry only its events."""
    queue: asyncio.Queue[bytes | str] = field(default_factory=asyncio.Queue)
    subs: dict[int, _Subscription] = field(default_factory=dict)
    closed: bool = False
    writer: asyncio.Task[None] | None = None
    drop_timer: asyncio.TimerHandle | None = None

    def send(self, frame: bytes | str) -> None:
        """Queue a frame; order of calls is order on the wire."""
        if not self.closed:
            self.queue.put_nowait(frame)

    def is_open(self) -> bool:
        """Open until its closing handshake starts (not when its handler is cleaned up)."""
        if self.closed:
            return False
        state = getattr(getattr(self.protocol, "conn", None), "state", State.OPEN)
        return state is State.OPEN

    def abort(self) -> None:
        """Cut the socket with no close frame, as a network failure would."""
        self.closed = True
        transport = getattr(self.protocol, "transport", None)
        if transport is not None:
            transport.abort()


class WsFeed:
    """Kalshi's orderbook WebSocket: the endpoint, the delta generator and the stream faults."""

    backlog_limit: int = 100_000
    """Frames queued to one client before its subscriptions die with error 25, as Kalshi
    does to readers that cannot keep up (reached only when a client stops reading)."""
    allow_anonymous: bool = False
    """When True, an upgrade with no ``KALSHI-ACCESS-*`` headers at all is accepted (the
    2025 public-data mode) and private channels then answer error 9."""

    def __init__(self, exchange: EmbeddedExchange) -> None:
        self._exchange = exchange
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flowing: asyncio.Event | None = None
        self._generator: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._stall_timer: asyncio.TimerHandle | None = None
        self._connections: set[_Connection] = set()
        self._next_sid = 1
        self._paused = False
        self._refuse_snapshots = 0
        self._lose_next: set[str | None] = set()
        self.behaviour = StreamBehaviour()

    # -- lifecycle -------------------------------------------------------------------------
    def begin(self) -> None:
        """Bind the feed to the running (server) loop and start the delta stream.

        Called on the server's loop during its startup, before it accepts connections.
        """
        self._loop = asyncio.get_running_loop()
        self._flowing = asyncio.Event()
        self._flowing.set()
        rate = self._exchange.config.delta_rate
        if rate > 0:
            self._generator = asyncio.create_task(self._generate(rate), name="ws-delta-generator")
        trading = self._exchange.trading
        trading.set_runner(self._run_on_loop)
        self._sweeper = asyncio.create_task(self._sweep_calendar(), name="trading-calendar")

    def stop(self) -> None:
        """Stop the stream and release any stall, so the server can close promptly; idempotent.

        Called from the exchange's thread before the server stops: the server's forced
        exit does not run lifespan shutdown, so the feed is closed here instead.
        """
        self._call(self._close)
        self._loop = None

    def _close(self) -> None:
        self._exchange.trading.set_runner(None)
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._generator is not None:
            self._generator.cancel()
            self._generator = None
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
        if self._flowing is not None:
            self._flowing.set()

    def _call(self, fn: Callable[[], _T]) -> _T | None:
        """Run ``fn`` on the server loop and return its result; None if not running."""
        loop = self._loop
        if loop is None:
            return None
        with contextlib.suppress(RuntimeError):
            if asyncio.get_running_loop() is loop:
                return fn()

        async def runner() -> _T:
            return fn()

        return self._await(runner())

    def _run_on_loop(self, fn: Callable[[], _T]) -> _T:
        """The trading desk's runner: ``fn()`` on the server loop (directly when already on
        it), its result or its exception returned here; on the caller's thread once the loop
        is gone. Why: a change and its frames must be made in one loop step (see module doc)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return fn()
        try:
            if asyncio.get_running_loop() is loop:
                return fn()
        except RuntimeError:
            pass

        async def runner() -> _T:
            return fn()

        try:
            future = asyncio.run_coroutine_threadsafe(runner(), loop)
        except RuntimeError:  # the loop closed between the check and the call
            return fn()
        return future.result(timeout=30.0)

    async def _sweep_calendar(self) -> None:
        """The trading desk's calendar sweep, every ``sweep_interval`` s, on this loop."""
        trading = self._exchange.trading
        while True:
            await asyncio.sleep(trading.sweep_interval)
            try:
                trading.sweep()
            except Exception:  # one bad sweep must not end the sweeps
                log.exception("trading calendar sweep failed")

    def _await(self, coro: Coroutine[Any, Any, _T]) -> _T | None:
        loop = self._loop
        if loop is None or loop.is_closed():
            coro.close()
            return None
        try:
            future = asyncio.run_coroutine_threadsafe(coro, loop)
        except RuntimeError:  # loop closed between the check and the call
            coro.close()
            return None
        try:
            return future.result(timeout=10.0)
        except (TimeoutError, asyncio.CancelledError):  # the loop stopped under us
            return None

    # -- one connection --------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one upgraded client: accept, read commands, write through its queue."""
        if (await receive())["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        headers = Headers(scope=scope)
        conn = _Connection(
            send_message=send,
            protocol=scope.get("extensions", {}).get(CONNECTION_EXTENSION),
            authenticated=any(name in headers for name in AUTH_HEADERS),
            member=self._exchange.trading.member_of(headers.get("KALSHI-ACCESS-KEY")),
        )
        self._connections.add(conn)
        conn.writer = asyncio.create_task(self._write_loop(conn))
        self._exchange.oplog.record("ws_handshake")
        try:
            while True:
                message = await receive()
                if message["type"] != "websocket.receive":
                    break
                raw = message.get("text")
                try:
                    self._on_command(conn, raw if raw is not None else message.get("bytes") or b"")
                except Exception:  # the exchange must never die of a client's input
                    log.exception("unexpected failure handling a client command")
                    self._send_error(conn, 0, _CommandError(1))
        finally:
            conn.closed = True
            if conn.drop_timer is not None:
                conn.drop_timer.cancel()
            self._connections.discard(conn)
            conn.writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await conn.writer

    async def _write_loop(self, conn: _Connection) -> None:
        """Drain the connection's queue in order, holding while the exchange is stalled."""
        assert self._flowing is not None
        flowing = self._flowing
        queue = conn.queue
        send = conn.send_message
        try:
            while True:
                frame = await queue.get()
                if not flowing.is_set():
                    await flowing.wait()
                try:
                    text = frame if isinstance(frame, str) else frame.decode()
                    await send({"type": "websocket.send", "text": text})
                finally:
                    queue.task_done()
        except (OSError, RuntimeError):  # the client went away (uvicorn's ClientDisconnected)
            conn.closed = True

    # -- commands --------------------------------------------------------------------------
    def _on_command(self, conn: _Connection, raw: str | bytes) -> None:
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self._send_error(conn, 0, _CommandError(1))
            return
        if not isinstance(message, dict):
            self._send_error(conn, 0, _CommandError(1))
            return
        command_id = message.get("id", 0)
        if command_id is None:
            command_id = 0
        if type(command_id) is not int:
            self._send_error(conn, 0, _CommandError(1))
            return
        command = message.get("cmd")
        handlers: dict[str, Callable[[_Connection, int, Any], None]] = {
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "update_subscription": self._update_subscription,
            "list_subscriptions": self._list_subscriptions,
        }
        handler = handlers.get(command) if isinstance(command, str) else None
        if handler is None:
            self._send_error(conn, command_id, _CommandError(5))
            return
        try:
            handler(conn, command_id, message.get("params"))
        except _CommandError as error:
            self._send_error(conn, command_id, error)

    def _subscribe(self, conn: _Connection, command_id: int, params: Any) -> None:
        params = _require_params(params)
        channels = params.get("channels")
        if channels is None or channels == []:
            raise _CommandError(3)
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            raise _CommandError(1)
        unknown = [c for c in channels if c not in CHANNELS]
        if unknown:
            raise _CommandError(8, channels=unknown)
        if not conn.authenticated and PRIVATE_CHANNELS.intersection(channels):
            raise _CommandError(9)
        tickers = self._market_filter(params)
        use_yes_price = params.get("use_yes_price", False)
        skip_ack = params.get("skip_ticker_ack", False)
        if type(use_yes_price) is not bool or type(skip_ack) is not bool:
            raise _CommandError(1)
        if ORDERBOOK in channels and not tickers:
            raise _CommandError(14)
        if ORDERBOOK in channels:
            limit = self.behaviour.market_limit
            if limit is not None and len(tickers) > limit:
                raise _CommandError(WsErrorCode.MARKET_LIMIT_EXCEEDED)
            self._refuse_closed(tickers)
        created: list[_Subscription] = []
        for channel in dict.fromkeys(channels):
            sub = _Subscription(
                sid=self._next_sid,
                channel=channel,
                tickers=list(tickers),
                use_yes_price=use_yes_price,
                skip_ticker_ack=skip_ack,
                all_markets=not tickers,
            )
            self._next_sid += 1
            conn.subs[sub.sid] = sub
            created.append(sub)
            subscribed = {"type": "subscribed", "msg": {"channel": channel, "sid": sub.sid}}
            conn.send(_frame(command_id, subscribed))
        if ORDERBOOK in channels:
            self._exchange.oplog.record("ws_subscribe", ",".join(tickers))
        else:  # a market-less channel (e.g. market_lifecycle_v2): not a market subscription
            self._exchange.oplog.record("ws_subscribe_channel", ",".join(channels))
        for sub in created:
            if sub.channel == ORDERBOOK:
                for ticker in sub.tickers:
                    self._send_snapshot(conn, sub, ticker, 0)
        after = self.behaviour.drop_after_sync
        if after is not None and conn.drop_timer is None and self._loop is not None:
            conn.drop_timer = self._loop.call_later(after, conn.abort)

    def _is_open(self, ticker: str) -> bool:
        status = self._exchange.markets.market(ticker).status
        return self._exchange.close_times.status(ticker, status) == "active"

    def _refuse_closed(self, tickers: list[str]) -> None:
        """The ``error`` variants of :attr:`StreamBehaviour.closed_answer`."""
        answer = self.behaviour.closed_answer
        if answer not in ("error", "error_unnamed"):
            return
        closed = [t for t in tickers if not self._is_open(t)]
        if closed:
            named = {"market_tickers": closed} if answer == "error" else {}
            raise _CommandError(WsErrorCode.INVALID_PARAMETER, **named)

    def _send_snapshot(self, conn: _Connection, sub: _Subscription, ticker: str, cid: int) -> None:
        """A snapshot, or what :attr:`StreamBehaviour.closed_answer` says for a closed market."""
        if self._is_open(ticker):
            conn.send(self._snapshot_frame(sub, ticker, cid))
        elif self.behaviour.closed_answer == "empty":
            conn.send(self._snapshot_frame(sub, ticker, cid, empty=True))

    def _unsubscribe(self, conn: _Connection, command_id: int, params: Any) -> None:
        params = _require_params(params)
        sids = params.get("sids")
        if sids is None or sids == []:
            raise _CommandError(4)
        if not isinstance(sids, list) or not all(type(s) is int for s in sids):
            raise _CommandError(1)
        for sid in dict.fromkeys(sids):
            sub = conn.subs.pop(sid, None)
            if sub is None:
                self._send_error(conn, command_id, _CommandError(7, sid=sid))
                continue
            sub.seq += 1
            conn.send(_frame(command_id, {"sid": sid, "seq": sub.seq, "type": "unsubscribed"}))

    def _update_subscription(self, conn: _Connection, command_id: int, params: Any) -> None:
        params = _require_params(params)
        action = params.get("action")
        if action is None or action == "":
            raise _CommandError(15)
        if not isinstance(action, str):
            raise _CommandError(1)
        if action not in KNOWN_ACTIONS:
            raise _CommandError(13)
        sids: list[Any] = []
        if params.get("sid") is not None:
            sids.append(params["sid"])
        if params.get("sids") is not None:
            if not isinstance(params["sids"], list):
                raise _CommandError(1)
            sids.extend(params["sids"])
        if len(sids) != 1:
            raise _CommandError(12)
        if type(sids[0]) is not int:
            raise _CommandError(1)
        sub = conn.subs.get(sids[0])
        if sub is None:
            raise _CommandError(7)
        if action == "get_snapshot":
            self._get_snapshot(conn, command_id, sub, params)
        elif action in ("add_markets", "delete_markets") and sub.channel in MARKET_UPDATE_CHANNELS:
            self._change_markets(conn, command_id, sub, params, add=action == "add_markets")
        else:
            raise _CommandError(13)

    def _get_snapshot(
        self, conn: _Connection, command_id: int, sub: _Subscription, params: dict[str, Any]
    ) -> None:
        """Kalshi's repair path: fresh snapshots, in-stream, carrying the command's id."""
        if sub.channel != ORDERBOOK:
            raise _CommandError(13)
        if self._refuse_snapshots > 0:
            self._refuse_snapshots -= 1
            raise _CommandError(18)
        if any(params.get(key) is not None for key in ("market_ticker", "market_id", "market_ids")):
            raise _CommandError(11)  # get_snapshot accepts only market_tickers
        tickers = params.get("market_tickers")
        if tickers is None or tickers == []:
            raise _CommandError(14)
        if not isinstance(tickers, list) or not all(isinstance(t, str) for t in tickers):
            raise _CommandError(1)
        foreign = [t for t in tickers if t not in sub.tickers]
        if foreign:
            raise _CommandError(11, market_tickers=foreign)
        self._refuse_closed(tickers)
        if self.behaviour.snapshot_seq == "restart":
            sub.seq = 0
        for ticker in dict.fromkeys(tickers):
            self._send_snapshot(conn, sub, ticker, command_id)

    def _change_markets(
        self,
        conn: _Connection,
        command_id: int,
        sub: _Subscription,
        params: dict[str, Any],
        *,
        add: bool,
    ) -> None:
        tickers = self._market_filter(params)
        if not tickers:
            raise _CommandError(14)
        if add:
            added = [t for t in tickers if t not in sub.tickers]
            sub.tickers.extend(added)
        else:
            added = []
            sub.tickers = [t for t in sub.tickers if t not in tickers]
            sub.all_markets = False  # deleting from "every market" leaves the rest listed
        sub.seq += 1
        reply: dict[str, Any] = {"sid": sub.sid, "seq": sub.seq, "type": "ok"}
        reply["msg"] = {} if sub.skip_ticker_ack else {"market_tickers": list(sub.tickers)}
        conn.send(_frame(command_id, reply))
        if sub.channel == ORDERBOOK:
            for ticker in added:
                self._send_snapshot(conn, sub, ticker, 0)

    def _list_subscriptions(self, conn: _Connection, command_id: int, params: Any) -> None:
        listing = [{"channel": sub.channel, "sid": sub.sid} for sub in conn.subs.values()]
        conn.send(_frame(command_id, {"type": "ok", "msg": listing}))

    def _market_filter(self, params: dict[str, Any]) -> list[str]:
        """``market_ticker`` xor ``market_tickers``, de-duplicated, every ticker known."""
        single, many = params.get("market_ticker"), params.get("market_tickers")
        if single is not None and many is not None:
            raise _CommandError(11)
        if params.get("market_id") is not None or params.get("market_ids") is not None:
            raise _CommandError(11)  # ids are for the ticker channel, which carries no data here
        if single is not None:
            if not isinstance(single, str):
                raise _CommandError(1)
            tickers = [single]
        elif many is not None:
            if not isinstance(many, list) or not all(isinstance(t, str) for t in many):
                raise _CommandError(1)
            tickers = list(dict.fromkeys(many))
        else:
            return []
        markets = self._exchange.markets
        unknown = [t for t in tickers if not _known(markets.market, t)]
        if unknown:
            raise _CommandError(11, market_tickers=unknown)
        return tickers

    def _send_error(self, conn: _Connection, command_id: int, error: _CommandError) -> None:
        body: dict[str, Any] = {"code": error.code, "msg": str(error)}
        scope = {}
        if "sid" in error.extra:
            scope["sid"] = error.extra.pop("sid")
        body.update(error.extra)
        conn.send(_frame(command_id, {**scope, "type": "error", "msg": body}))

    # -- frames ----------------------------------------------------------------------------
    def _snapshot_frame(
        self, sub: _Subscription, ticker: str, command_id: int, *, empty: bool = False
    ) -> bytes:
        """The market's true book as one snapshot (or an empty one), taking the sub's next seq."""
        markets = self._exchange.markets
        with markets.lock:  # the levels and the version they are as of, taken at once
            levels = markets.levels(ticker)
            sub.book_seq[ticker] = markets.engine.book_seq(ticker)
        msg: dict[str, Any] = {
            "market_ticker": ticker,
            "market_id": markets.market(ticker).market_id,
        }
        if levels.yes and not empty:
            msg["yes_dollars_fp"] = _ladder(levels.yes)
        if levels.no and not empty:
            no = levels.no
            if sub.use_yes_price:
                no = tuple(sorted((MICROS_PER_DOLLAR - p, s) for p, s in no))
            msg["no_dollars_fp"] = _ladder(no)
        sub.seq += 1
        frame = orjson.dumps(
            _envelope(
                command_id,
                {"type": "orderbook_snapshot", "sid": sub.sid, "seq": sub.seq, "msg": msg},
            )
        )
        self._exchange.oplog.record("ws_snapshot", ticker)
        return frame

    # -- the delta stream ------------------------------------------------------------------
    async def _generate(self, rate: float) -> None:
        """Apply ``rate`` truth changes per second and fan each out, batching per wake-up.

        Waking every few milliseconds and emitting what is due keeps the long-run rate
        exact without relying on sub-millisecond sleeps; a burst cap stops a loop that
        was blocked for a while from dumping seconds of deltas at once.
        """
        loop = asyncio.get_running_loop()
        tick = max(1.0 / rate, 0.002)
        burst_cap = max(1, int(rate * 0.25))
        carry = 0.0
        last = loop.time()
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            if self._paused:
                last, carry = now, 0.0
                continue
            carry += (now - last) * rate
            last = now
            due = int(carry)
            carry -= due
            for _ in range(min(due, burst_cap)):
                self._emit_activity()

    def _emit_activity(self) -> None:
        """One step of the exchange's own activity (house quotes, takes, expiries), published
        whole: its level changes, its trades and the private events of users it touched."""
        outcome = self._exchange.markets.next_activity()
        if outcome is not None:
            self._publish_now(outcome)

    def _send_delta(self, delta: Delta, subaccount: int = 0) -> None:
        """One level change to every orderbook subscription covering its market; the member
        whose order caused it also gets its ``client_order_id`` and, from a subaccount, the
        ``subaccount`` (§3.6)."""
        markets = self._exchange.markets
        ticker = delta.ticker
        if not self._is_open(ticker):
            return  # a closed market trades no more (its truth still moved: nobody reads it)
        base = {
            "market_ticker": ticker,
            "market_id": markets.market(ticker).market_id,
            "price_dollars": format_dollars(delta.price_micros),
            "delta_fp": format_count(delta.delta_centi),
            "side": delta.side,
            "ts_ms": int(time.time() * 1000),
        }
        yes_scale: dict[str, Any] | None = None
        for conn in self._connections:
            if conn.closed:
                continue
            for sub in conn.subs.values():
                if not sub.covers(ticker):
                    continue
                if delta.book_seq and delta.book_seq <= sub.book_seq.get(ticker, 0):
                    continue  # already in the snapshot this subscription was sent
                msg = base
                if sub.use_yes_price and delta.side == "no":
                    if yes_scale is None:
                        yes_price = format_dollars(MICROS_PER_DOLLAR - delta.price_micros)
                        yes_scale = {**base, "price_dollars": yes_price}
                    msg = yes_scale
                if (
                    delta.client_order_id
                    and conn.member is not None
                    and conn.member == delta.member
                ):
                    msg = {**msg, "client_order_id": delta.client_order_id}
                    if subaccount:
                        msg["subaccount"] = subaccount
                sub.seq += 2 if sub.skip_next else 1
                sub.skip_next = False
                frame = _delta_frame(sub, msg)
                conn.send(frame)
                if sub.duplicate_next:
                    sub.duplicate_next = False
                    conn.send(frame)
            if conn.queue.qsize() > self.backlog_limit:
                self._kill_subscriptions(conn, 25)

    def _kill_subscriptions(self, conn: _Connection, code: int) -> int:
        """Send a terminal error for every subscription of ``conn`` and forget them."""
        killed = 0
        for sid, sub in list(conn.subs.items()):
            sub.seq += 1
            frame = {
                "type": "error",
                "sid": sid,
                "seq": sub.seq,
                "msg": {"code": code, "msg": ERROR_TEXT[code]},
            }
            conn.send(orjson.dumps(frame))
            del conn.subs[sid]
            killed += 1
        return killed

    def pause(self) -> None:
        """Stop generating deltas; returns once no further delta will be sent.

        Deltas already queued still go out (they match the truth up to the pause), and
        unless the exchange is stalled this waits, briefly, for those queues to drain.
        """
        self._paused = True

        async def drain() -> None:
            if self._flowing is None or not self._flowing.is_set():
                return
            queues = [c.queue.join() for c in self._connections if not c.closed]
            if queues:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.gather(*queues), timeout=2.0)

        self._await(drain())

    def resume(self) -> None:
        """Restart the delta generator."""
        self._paused = False

    def on_exchange_paused(self) -> None:
        """The whole exchange was just paused: drop the open sessions unless told not to."""
        if self.behaviour.drop_on_exchange_pause:
            dropped = self.drop_connections()
            self._exchange.oplog.record("ws_dropped_for_pause", str(dropped))

    # -- trading events (private channels and the public trade channel) -------------------
    def on_outcome(self, outcome: Outcome) -> None:
        """The trading desk's listener (calendar sweeps): publish on the loop, never block.

        Why fire-and-forget from other threads: the desk calls this under its lock, and the
        loop may be waiting for that lock in a REST handler.
        """
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            if asyncio.get_running_loop() is loop:
                self._publish_now(outcome)
                return
        except RuntimeError:
            pass
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._publish_now, outcome)

    def publish(
        self, outcomes: Iterable[Outcome], *, public: bool = True, private: bool = True
    ) -> None:
        """Send each outcome's events (on the loop, by the REST endpoint): the public ones
        (book deltas, trades) in the loop step that made the change, so no snapshot can
        already hold a change whose delta is still to come; the private ones before or after
        the REST reply."""
        for outcome in outcomes:
            self._publish_now(outcome, public=public, private=private)

    async def publish_and_flush(self, outcomes: Iterable[Outcome], timeout: float = 2.0) -> None:
        """Publish the private events, then wait (bounded) until they have left."""
        self.publish(outcomes, public=False)
        queues = [c.queue.join() for c in self._connections if not c.closed and c.member]
        if queues:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*queues), timeout=timeout)

    def lose_private_events(self, member: str | None = None) -> None:
        """Fault: at the next event for ``member`` (any member when None), cut that member's
        sessions first, so the event (a fill, typically) is lost to them; thread-safe."""
        if self._call(lambda: self._lose_next.add(member)) is None and self._loop is None:
            self._lose_next.add(member)  # not serving yet: armed for when it does

    def drop_private_sessions(self, member: str | None = None) -> int:
        """Cut (no close frame) every session of ``member`` (every authenticated one when
        None) that has a private subscription; returns how many."""

        def drop() -> int:
            return self._drop_member(member)

        return self._call(drop) or 0

    def _drop_member(self, member: str | None) -> int:
        dropped = 0
        for conn in list(self._connections):
            if conn.member is None or (member is not None and conn.member != member):
                continue
            if not any(sub.channel in TRADING_PRIVATE for sub in conn.subs.values()):
                continue
            self._connections.discard(conn)
            conn.abort()
            dropped += 1
        if dropped:
            self._exchange.oplog.record("ws_private_dropped", f"{member or '*'} {dropped}")
        return dropped

    def _publish_now(self, outcome: Outcome, *, public: bool = True, private: bool = True) -> None:
        members = (
            {f.member for f in outcome.fills}
            | {o.member for o in outcome.orders_changed}
            | {p.member for p in outcome.positions_changed}
            | {g.member for g in outcome.group_events}
        )
        if outcome.order is not None:
            members.add(outcome.order.member)
        if public:
            subaccounts = {
                c.client_order_id: c.subaccount for c in outcome.book_changes if c.client_order_id
            }
            for delta in deltas_of(outcome.book_changes):
                self._send_delta(delta, subaccounts.get(delta.client_order_id, 0))
        if private and self._lose_next:
            for member in sorted(members):
                if member in self._lose_next or None in self._lose_next:
                    self._lose_next.discard(member)
                    self._lose_next.discard(None)
                    self._drop_member(member)
        orders = list(outcome.orders_changed)
        if outcome.order is not None and all(o.order_id != outcome.order.order_id for o in orders):
            orders.append(outcome.order)
        for conn in self._connections:
            if conn.closed:
                continue
            for sub in conn.subs.values():
                if sub.channel == "trade":
                    if not public:
                        continue
                    for trade in outcome.trades:
                        if sub.covers_market(trade.ticker):
                            sub.seq += 1
                            frame = {"type": "trade", "sid": sub.sid, "seq": sub.seq}
                            conn.send(orjson.dumps({**frame, "msg": ws_trade(trade)}))
                    continue
                if not private or conn.member is None or sub.channel not in TRADING_PRIVATE:
                    continue
                self._send_private(conn, sub, outcome, orders)

    def _send_private(
        self, conn: _Connection, sub: _Subscription, outcome: Outcome, orders: list[EngineOrder]
    ) -> None:
        member = conn.member
        if sub.channel == "fill":
            for fill in outcome.fills:
                if fill.member == member and sub.covers_market(fill.ticker):
                    frame = {"type": "fill", "sid": sub.sid, "msg": ws_fill(fill)}
                    conn.send(orjson.dumps(frame))
        elif sub.channel == "user_orders":
            for order in orders:
                if order.member == member and sub.covers_market(order.ticker):
                    frame = {"type": "user_order", "sid": sub.sid, "msg": ws_user_order(order)}
                    conn.send(orjson.dumps(frame))
        elif sub.channel == "market_positions":
            for position in outcome.positions_changed:
                if position.member == member and sub.covers_market(position.ticker):
                    msg = ws_market_position(position)
                    conn.send(orjson.dumps({"type": "market_position", "sid": sub.sid, "msg": msg}))
        elif sub.channel == "order_group_updates":
            for event in outcome.group_events:
                if event.member == member:
                    sub.seq += 1
                    frame = {"type": "order_group_updates", "sid": sub.sid, "seq": sub.seq}
                    conn.send(orjson.dumps({**frame, "msg": ws_group_update(event)}))

    # -- exchange-side faults (thread-safe; each returns once applied) ---------------------
    def drop_connections(self) -> int:
        """Abort every client socket with no close frame (a network cut); returns how many."""

        def drop() -> int:
            dropped = 0
            for conn in list(self._connections):
                self._connections.discard(conn)
                conn.abort()
                dropped += 1
            return dropped

        return self._call(drop) or 0

    def skip_seq(self, sid: int | None = None) -> None:
        """The next delta on every subscription (or only on ``sid``) jumps its seq by one
        extra (a lost frame)."""

        def skip() -> None:
            for conn in self._connections:
                for sub in conn.subs.values():
                    if sid is None or sub.sid == sid:
                        sub.skip_next = True

        self._call(skip)

    def duplicate_next_delta(self) -> None:
        """The next delta on every subscription is sent twice with the same seq (a replay)."""

        def duplicate() -> None:
            for conn in self._connections:
                for sub in conn.subs.values():
                    sub.duplicate_next = True

        self._call(duplicate)

    def send_negative_delta(self) -> int:
        """Send each orderbook subscription one in-sequence delta that empties a level past
        zero without touching the truth: the client must see a negative level and repair.
        Returns how many were sent."""

        def corrupt() -> int:
            sent = 0
            markets = self._exchange.markets
            for conn in self._connections:
                for sub in conn.subs.values():
                    target = _first_level(markets, sub) if sub.channel == ORDERBOOK else None
                    if target is None:
                        continue
                    ticker, price, size = target
                    sub.seq += 1
                    msg = {
                        "market_ticker": ticker,
                        "market_id": markets.market(ticker).market_id,
                        "price_dollars": format_dollars(price),
                        "delta_fp": format_count(-(size + 100)),
                        "side": "yes",
                        "ts_ms": int(time.time() * 1000),
                    }
                    conn.send(_delta_frame(sub, msg))
                    sent += 1
            return sent

        return self._call(corrupt) or 0

    def fail_get_snapshot(self, count: int = 1) -> None:
        """Answer the next ``count`` ``get_snapshot`` commands with error 18 (command timeout)."""

        def arm() -> None:
            self._refuse_snapshots = count

        self._call(arm)

    def send_malformed(self) -> None:
        """Queue one non-JSON text frame and one wrongly typed JSON frame to every client."""

        def inject() -> None:
            for conn in self._connections:
                for frame in MALFORMED_FRAMES:
                    conn.send(frame)

        self._call(inject)

    def send_error_frames(self, code: int, text: str, count: int = 1) -> None:
        """Queue ``count`` unsolicited error frames (no id, no sid) to every client: an odd
        or hostile exchange, e.g. a 100,000-character message repeated; nothing else changes."""
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        frame = orjson.dumps({"type": "error", "msg": {"code": code, "msg": text}})

        def inject() -> None:
            for conn in self._connections:
                for _ in range(count):
                    conn.send(frame)

        self._call(inject)

    def stall(self, seconds: float | None = None) -> None:
        """Hold every outgoing frame, connections left open; None holds until ``unstall()``."""

        def hold() -> None:
            assert self._flowing is not None and self._loop is not None
            if self._stall_timer is not None:
                self._stall_timer.cancel()
                self._stall_timer = None
            self._flowing.clear()
            if seconds is not None:
                self._stall_timer = self._loop.call_later(seconds, self._flowing.set)

        self._call(hold)

    def unstall(self) -> None:
        """Release a stall; held frames go out in their original order."""

        def release() -> None:
            assert self._flowing is not None
            if self._stall_timer is not None:
                self._stall_timer.cancel()
                self._stall_timer = None
            self._flowing.set()

        self._call(release)

    def send_terminal_error(self, code: int = 25) -> int:
        """Kill every subscription with a terminal error (10 or 25); returns how many died."""
        if code not in TERMINAL_CODES:
            raise ValueError(f"terminal WS error codes are {sorted(TERMINAL_CODES)}, not {code}")

        def kill() -> int:
            return sum(self._kill_subscriptions(conn, code) for conn in self._connections)

        return self._call(kill) or 0

    def set_market_status(self, ticker: str, status: str) -> None:
        """Close (``closed``, ``determined``, ``finalized``...) or reopen (``active``) a market
        silently, as a close by time does on Kalshi (no WebSocket event)."""

        def change() -> None:
            self._exchange.markets.market(ticker).status = status

        if self._call(change) is None and self._loop is None:
            change()
        self._exchange.trading.touch_market(ticker)

    def send_lifecycle(self, ticker: str, event_type: str, **fields: Any) -> int:
        """Send a ``market_lifecycle_v2`` event to every lifecycle subscription; returns how
        many got it."""

        def send() -> int:
            sent = 0
            for conn in self._connections:
                for sub in conn.subs.values():
                    if sub.channel != MARKET_LIFECYCLE_CHANNEL:
                        continue
                    sub.seq += 1
                    msg = {"market_ticker": ticker, "event_type": event_type, **fields}
                    frame = {"type": MARKET_LIFECYCLE_CHANNEL, "sid": sub.sid, "seq": sub.seq}
                    conn.send(orjson.dumps({**frame, "msg": msg}))
                    sent += 1
            return sent

        return self._call(send) or 0

    def send_oversize(self, size: int) -> int:
        """Queue one text frame of about ``size`` bytes to every client; returns how many."""
        frame = '{"type":"padding","msg":"' + "x" * size + '"}'

        def send() -> int:
            for conn in self._connections:
                conn.send(frame)
            return len(self._connections)

        return self._call(send) or 0

    def connection_count(self) -> int:
        """Upgraded client connections currently open.

        A connection stops counting as soon as its closing handshake starts (state leaves
        OPEN), not when its handler is cleaned up later: so once a client's ``close()``
        has returned, this is already down by one.
        """

        def count() -> int:
            return sum(1 for c in self._connections if c.is_open())

        return self._call(count) or 0


def _first_level(markets: MarketSet, sub: _Subscription) -> tuple[str, int, int] | None:
    """The first YES level (ticker, price, size) among the sub's markets, if any."""
    for ticker in sub.tickers:
        yes = markets.levels(ticker).yes
        if yes:
            return ticker, yes[0][0], yes[0][1]
    return None


def _delta_frame(sub: _Subscription, msg: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": ORDERBOOK, "sid": sub.sid, "seq": sub.seq, "msg": msg})


def _require_params(params: Any) -> dict[str, Any]:
    if params is None:
        raise _CommandError(2)
    if not isinstance(params, dict):
        raise _CommandError(1)
    return params


def _known(lookup: Callable[[str], object], ticker: str) -> bool:
    try:
        lookup(ticker)
    except KeyError:
        return False
    return True


def _ladder(levels: Iterable[tuple[int, int]]) -> list[list[str]]:
    return [[format_dollars(price), format_count(size)] for price, size in levels]


def _envelope(command_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """Prefix ``id`` when the command had one (``id: 0`` is Kalshi's "no id")."""
    return {"id": command_id, **body} if command_id else body


def _frame(command_id: int, body: dict[str, Any]) -> bytes:
    return orjson.dumps(_envelope(command_id, body))
