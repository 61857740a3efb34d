"""Kalshi's private trading channels over a :class:`~kalshi_api.ws_transport.WsTransport`:
``fill``, ``user_orders``, ``market_positions`` and ``order_group_updates`` (protocol §8.7).

Why it is shaped like this:

* **Reconnects are events.** ``fill``, ``user_order`` and ``market_position`` carry no seq,
  so a gap is invisible: whatever happened while the socket was down (or between a drop
  and the resubscribe) is only found by REST. So every session, once each channel has
  answered its subscribe, ends in :class:`~kalshi_api.private_events.PrivateConnected`:
  the owner's cue to reconcile (resting orders, fills since the last seen, positions;
  §8.10). Subscribing first and reconciling after means nothing falls between the two.
* **Order groups are seq-checked.** ``order_group_updates`` numbers its frames per sid; a
  frame that does not follow is reported as :class:`~kalshi_api.private_events.
  OrderGroupGap` (the owner re-reads its groups by REST) and the count re-baselines.
* **Exact and tolerant.** Frames become frozen typed events with integer micro-dollars and
  centi-contracts (:mod:`kalshi_api.private_events`). A frame we cannot read is counted
  per kind and logged once per kind (never per frame: a hostile exchange cannot fill the
  log), and never stops the stream. ``fill`` events are deduplicated by ``trade_id``
  (bounded memory).
* **One subscribe per channel**, each with its own command id, so a refusal names the
  channel it refused; a terminal error (10, 25) on one of ours resubscribes it, followed
  by a fresh ``PrivateConnected`` (events may have been lost).

Every method except the public API runs on the transport's thread. The listener is called
there too: it must not block (hand events to an actor or a queue).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kalshi_api.private_events import (
    OrderGroupGap,
    PrivateConnected,
    PrivateFrameError,
    parse_fill,
    parse_market_position,
    parse_order_group_update,
    parse_user_order,
)
from kalshi_api.protocol import TERMINAL_CODES
from kalshi_api.stream_events import ReconnectPolicy, StreamEvent
from kalshi_api.ws_connect import DEFAULT_MAX_FRAME_BYTES, one_line
from kalshi_api.ws_transport import WsTransport

__all__ = [
    "FILL_CHANNEL",
    "MARKET_POSITIONS_CHANNEL",
    "ORDER_GROUP_CHANNEL",
    "PRIVATE_CHANNELS",
    "USER_ORDERS_CHANNEL",
    "PrivateChannels",
    "PrivateStats",
]

log = logging.getLogger("kalshi_supervisor.kalshi_api.private_channels")

FILL_CHANNEL = "fill"
USER_ORDERS_CHANNEL = "user_orders"
MARKET_POSITIONS_CHANNEL = "market_positions"
ORDER_GROUP_CHANNEL = "order_group_updates"
PRIVATE_CHANNELS = (
    FILL_CHANNEL,
    USER_ORDERS_CHANNEL,
    MARKET_POSITIONS_CHANNEL,
    ORDER_GROUP_CHANNEL,
)
"""The channels (subscribe names) this client follows, in subscribe order."""

_FRAME_TYPE = {
    FILL_CHANNEL: "fill",
    USER_ORDERS_CHANNEL: "user_order",
    MARKET_POSITIONS_CHANNEL: "market_position",
    ORDER_GROUP_CHANNEL: "order_group_updates",
}
"""Channel -> the ``type`` its data frames carry (§8.7: they differ for two of them)."""
_FILTERED = frozenset({FILL_CHANNEL, USER_ORDERS_CHANNEL, MARKET_POSITIONS_CHANNEL})
"""Channels that take a market filter (``order_group_updates`` ignores it)."""
_DEDUPE_LIMIT = 4096
"""Recent ``trade_id`` values remembered to drop a repeated fill (bounded)."""
_LOG_KINDS_LIMIT = 64


class PrivateStats:
    """Counters written only by the transport's thread; any thread may read them."""

    __slots__ = (
        "duplicates_dropped",
        "error_frames",
        "fills",
        "gaps",
        "ignored_frames",
        "malformed_frames",
        "market_positions",
        "order_group_updates",
        "resubscribes",
        "user_orders",
    )

    def __init__(self) -> None:
        self.fills = 0
        self.user_orders = 0
        self.market_positions = 0
        self.order_group_updates = 0
        self.gaps = 0
        self.malformed_frames = 0
        self.duplicates_dropped = 0
        self.ignored_frames = 0
        self.error_frames = 0
        self.resubscribes = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __repr__(self) -> str:
        return f"PrivateStats({self.as_dict()})"


class PrivateChannels:
    """Our fills, order updates, positions and order-group events, as typed events.

    ``listener`` gets every event: the typed frames
    (:class:`~kalshi_api.private_events.FillEvent`, ``UserOrder``, ``MarketPosition``,
    ``OrderGroupUpdate``), ``OrderGroupGap``, ``PrivateConnected`` after each (re)subscribe,
    and the transport's ``StreamConnected`` / ``StreamDisconnected`` / ``StreamFailed``.
    ``market_tickers`` narrows the filtered channels (None: every market).
    """

    frame_types = frozenset(_FRAME_TYPE.values())

    def __init__(
        self,
        transport: WsTransport,
        *,
        listener: Callable[[object], None],
        channels: Sequence[str] = PRIVATE_CHANNELS,
        market_tickers: Sequence[str] | None = None,
        subscribe_timeout: float = 5.0,
    ) -> None:
        """``subscribe_timeout`` bounds the wait for every channel's answer on a session;
        an exchange that never answers gets the session dropped (the transport reconnects),
        since an unanswered subscribe would otherwise mean silent channels for good."""
        unknown = [c for c in channels if c not in _FRAME_TYPE]
        if unknown or not channels:
            raise ValueError(f"private channels must be some of {PRIVATE_CHANNELS}: {unknown}")
        self._transport = transport
        self._listener = listener
        self._channels = tuple(dict.fromkeys(channels))
        self._tickers = list(market_tickers) if market_tickers is not None else None
        self._subscribe_timeout = subscribe_timeout
        self._deadline: asyncio.TimerHandle | None = None
        self.stats = PrivateStats()
        self.error_codes: dict[object, int] = {}
        self.bad_frames: dict[str, int] = {}
        """Frames we could not read, per kind (each kind is logged once)."""
        # session state (transport thread only)
        self._pending: dict[int, str] = {}
        """Subscribe command id -> channel, until answered."""
        self._sids: dict[int, str] = {}
        self._subscribed: dict[str, int] = {}
        self._refused: dict[str, None] = {}
        self._group_seq: dict[int, int] = {}
        self._answered = False
        self._barriers: dict[int, threading.Event] = {}
        self._seen_trades: OrderedDict[str, None] = OrderedDict()
        transport.attach(self)

    @classmethod
    def connect(
        cls,
        ws_url: str,
        *,
        auth_headers: Callable[[], Mapping[str, str]] | None,
        listener: Callable[[object], None],
        channels: Sequence[str] = PRIVATE_CHANNELS,
        market_tickers: Sequence[str] | None = None,
        subscribe_timeout: float = 5.0,
        reconnect: ReconnectPolicy | None = None,
        open_timeout: float = 5.0,
        ping_interval: float | None = 10.0,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> PrivateChannels:
        """A client on a transport of its own (not started: call :meth:`start`)."""
        transport = WsTransport(
            ws_url,
            auth_headers=auth_headers,
            reconnect=reconnect,
            open_timeout=open_timeout,
            ping_interval=ping_interval,
            max_frame_bytes=max_frame_bytes,
            name="kalshi-private-ws",
        )
        return cls(
            transport,
            listener=listener,
            channels=channels,
            market_tickers=market_tickers,
            subscribe_timeout=subscribe_timeout,
        )

    # -- public API (any thread) -------------------------------------------------------------
    @property
    def transport(self) -> WsTransport:
        return self._transport

    @property
    def channels(self) -> tuple[str, ...]:
        return self._channels

    @property
    def connected(self) -> bool:
        """True while the socket is open (the channels may still be subscribing)."""
        return self._transport.connected

    @property
    def failed_reason(self) -> str | None:
        """The one-line reason the transport gave up, or None while it is (or may be) running."""
        return self._transport.failed_reason

    def start(self) -> None:
        """Start the transport (idempotent); connecting happens in the background."""
        self._transport.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the transport (and every client on it); idempotent."""
        self._transport.stop(timeout)

    def barrier(self, timeout: float = 5.0) -> bool:
        """Round-trip a ``list_subscriptions``; True once its reply was read, so every frame
        the exchange sent before answering has been handled. False when no session is open
        or no reply came within ``timeout``."""
        runner = self._transport.runner
        if runner.loop is None or runner.in_loop_thread():
            return False
        waiter = threading.Event()

        def send() -> None:
            command_id = self._transport.allocate_id()
            if self._transport.send(self, command_id, {"cmd": "list_subscriptions"}):
                self._barriers[command_id] = waiter

        if not runner.call_soon(send):
            return False
        return waiter.wait(timeout)

    # -- the transport's client interface (transport thread) --------------------------------
    def transport_started(self) -> None:
        pass

    def on_transport_event(self, event: StreamEvent) -> None:
        self._emit(event)

    def session_started(self) -> None:
        self._answered = False
        for channel in self._channels:
            self._subscribe(channel)

    def session_ended(self) -> None:
        self._disarm()
        self._pending.clear()
        self._sids.clear()
        self._subscribed.clear()
        self._refused.clear()
        self._group_seq.clear()
        for waiter in self._barriers.values():
            waiter.set()  # the socket is gone: nothing more will arrive before a reply
        self._barriers.clear()

    def session_healthy(self) -> bool:
        """Every channel answered its subscribe on this session."""
        return self._answered

    def transport_stopped(self) -> None:
        for waiter in self._barriers.values():
            waiter.set()
        self._barriers.clear()

    def on_frame(self, message: dict[str, Any]) -> None:
        """One routed frame. Never raises: what cannot be read is counted and logged once."""
        kind = message.get("type")
        try:
            if kind == "fill":
                self._on_fill(message)
            elif kind == "user_order":
                self.stats.user_orders += 1
                self._emit(parse_user_order(message.get("msg")))
            elif kind == "market_position":
                self.stats.market_positions += 1
                self._emit(parse_market_position(message.get("msg")))
            elif kind == "order_group_updates":
                self._on_group_update(message)
            elif kind == "subscribed":
                self._on_subscribed(message)
            elif kind == "error":
                self._on_error(message)
            elif kind == "ok":
                self._on_ok(message)
            elif kind == "unsubscribed":
                pass
            else:
                self.stats.ignored_frames += 1
        except PrivateFrameError as exc:
            self._bad_frame(str(kind), exc)
        except Exception as exc:  # a bug of ours must not end the stream either
            log.exception("private channels failed to handle a %s frame; skipped", kind)
            self._bad_frame(str(kind), exc)

    # -- frames ------------------------------------------------------------------------------
    def _on_fill(self, message: dict[str, Any]) -> None:
        fill = parse_fill(message.get("msg"))
        seen = self._seen_trades
        if fill.trade_id in seen:
            self.stats.duplicates_dropped += 1
            return
        seen[fill.trade_id] = None
        if len(seen) > _DEDUPE_LIMIT:
            seen.popitem(last=False)
        self.stats.fills += 1
        self._emit(fill)

    def _on_group_update(self, message: dict[str, Any]) -> None:
        sid, seq = message.get("sid"), message.get("seq")
        if type(sid) is not int or type(seq) is not int:
            raise PrivateFrameError("order_group_updates needs integer sid and seq")
        self._advance(sid, seq)
        try:
            update = parse_order_group_update(sid, seq, message.get("msg"))
        except PrivateFrameError:
            self._gap(sid, seq, seq, "bad_frame")  # it consumed a seq: that update is lost
            raise
        self.stats.order_group_updates += 1
        self._emit(update)

    def _advance(self, sid: int, seq: int) -> None:
        """Check ``seq`` against the sid's last one (the first frame of a sid sets the
        baseline: §3.7 leaves the first seq of a new sid unconfirmed)."""
        last = self._group_seq.get(sid)
        self._group_seq[sid] = seq
        if last is not None and seq != last + 1:
            self._gap(sid, last + 1, seq, "seq")

    def _gap(self, sid: int, expected: int, received: int, reason: str) -> None:
        self.stats.gaps += 1
        log.warning(
            "order_group_updates sid %d: expected seq %d, got %d (%s); reconcile by REST",
            sid,
            expected,
            received,
            reason,
        )
        self._emit(OrderGroupGap(sid, expected, received, reason))

    def _on_subscribed(self, message: dict[str, Any]) -> None:
        command_id = message.get("id")
        channel = self._pending.pop(command_id, None) if type(command_id) is int else None
        msg = message.get("msg")
        sid = msg.get("sid") if type(msg) is dict else None
        if channel is None or type(sid) is not int:
            raise PrivateFrameError("subscribed reply without a pending subscribe or an int sid")
        self._sids[sid] = channel
        self._subscribed[channel] = sid
        self._maybe_connected()

    def _on_ok(self, message: dict[str, Any]) -> None:
        command_id = message.get("id")
        waiter = self._barriers.pop(command_id, None) if type(command_id) is int else None
        if waiter is not None:
            waiter.set()
        sid, seq = message.get("sid"), message.get("seq")
        if type(sid) is int and type(seq) is int and self._sids.get(sid) == ORDER_GROUP_CHANNEL:
            self._advance(sid, seq)  # replies carrying (sid, seq) take a slot (§3.7)

    def _on_error(self, message: dict[str, Any]) -> None:
        msg = message.get("msg")
        code = msg.get("code") if type(msg) is dict else None
        text = one_line(msg.get("msg", "")) if type(msg) is dict else ""
        if type(code) is not int:
            raise PrivateFrameError("error frame without an integer code")
        self.stats.error_frames += 1
        command_id, sid = message.get("id"), message.get("sid")
        channel = self._pending.pop(command_id, None) if type(command_id) is int else None
        waiter = self._barriers.pop(command_id, None) if type(command_id) is int else None
        if waiter is not None:
            waiter.set()
        self._note_error(code, text)
        if channel is not None:  # our subscribe was refused: go on without that channel
            log.warning("private channel %s refused (error %d: %s)", channel, code, text[:200])
            self._refused[channel] = None
            self._maybe_connected()
        elif code in TERMINAL_CODES:
            victims = [self._sids[sid]] if type(sid) is int and sid in self._sids else []
            if sid is None:  # unscoped: any of ours may be dead
                victims = list(self._subscribed)
            for lost in victims:
                self._sids.pop(self._subscribed.pop(lost), None)
                self.stats.resubscribes += 1
                self._answered = False
                self._subscribe(lost)

    def _subscribe(self, channel: str) -> None:
        params: dict[str, Any] = {"channels": [channel]}
        if self._tickers is not None and channel in _FILTERED:
            params["market_tickers"] = self._tickers
        command_id = self._transport.allocate_id()
        if self._transport.send(self, command_id, {"cmd": "subscribe", "params": params}):
            self._pending[command_id] = channel
            if self._deadline is None:
                self._deadline = asyncio.get_running_loop().call_later(
                    self._subscribe_timeout, self._unanswered
                )

    def _unanswered(self) -> None:
        self._deadline = None
        if self._pending:
            missing = ", ".join(sorted(set(self._pending.values())))
            self._transport.close_session(
                f"no reply to private subscribe ({missing}) within "
                f"{self._subscribe_timeout:g}s; reconnecting"
            )

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _maybe_connected(self) -> None:
        if self._pending or self._answered:
            return
        self._disarm()
        self._answered = True
        subscribed = tuple(c for c in self._channels if c in self._subscribed)
        refused = tuple(c for c in self._channels if c in self._refused)
        self._emit(PrivateConnected(self._transport.sessions, subscribed, refused))

    # -- reporting ---------------------------------------------------------------------------
    def _emit(self, event: object) -> None:
        try:
            self._listener(event)
        except Exception:
            log.exception("private channels listener raised on %r; ignored", type(event).__name__)

    def _bad_frame(self, kind: str, exc: BaseException) -> None:
        self.stats.malformed_frames += 1
        if kind not in self.bad_frames and len(self.bad_frames) >= _LOG_KINDS_LIMIT:
            kind = "other"
        seen = self.bad_frames.get(kind, 0)
        self.bad_frames[kind] = seen + 1
        if seen == 0:
            log.warning(
                "private channels: unreadable %s frame skipped (%s); further ones are only counted",
                kind[:40],
                one_line(exc)[:200],
            )

    def _note_error(self, code: int, text: str) -> None:
        seen = self.error_codes.get(code, 0)
        if seen == 0 and len(self.error_codes) >= _LOG_KINDS_LIMIT:
            return
        self.error_codes[code] = seen + 1
        if seen == 0:
            log.warning(
                "exchange error %s on the private channels: %s (further ones are only counted)",
                code,
                text[:200],
            )
