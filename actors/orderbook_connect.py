"""ORDERBOOK_CONNECT: the authenticated WebSocket, the subscription, live books.

The actor owns an ``OrderbookStream``, whose own thread is the single writer of every
book: deltas never hop through an actor mailbox. The actor only hears about lifecycle
events (synced, gap, disconnect) and turns them into messages for the supervisor.

It succeeds only with at least one live market: a stream whose every market was dropped
(closed, settled, unknown) is "synced" with nothing, which is no reason for READY. The
actor then tells the supervisor ``no_live_markets`` (once per wait, with one WARNING line)
and, each time the supervisor asks (``RefreshMarkets``, with backoff), looks for a market
to follow: open markets of the series in discovery mode, the dropped tickers reopened in
config mode.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import pykka

from actors.base import StageActor
from actors.exchange_status import RefusalCheck
from kalshi_api.book_view import BookDepth as DepthView
from kalshi_api.book_view import BookTop
from kalshi_api.fixed_point import MICROS_PER_DOLLAR, format_count, format_dollars
from kalshi_api.market_check import rest_market_checker
from kalshi_api.market_facts import MarketFacts, facts_by_ticker
from kalshi_api.protocol import WS_PATH
from kalshi_api.rest import KalshiRestClient
from kalshi_api.ws_session import (
    OrderbookStream,
    ReconnectPolicy,
    StreamDisconnected,
    StreamEvent,
    StreamFailed,
    StreamGap,
    StreamMarketDropped,
    StreamResynced,
    StreamStale,
    StreamSynced,
    StreamTerminalError,
)
from messages.commands import (
    BookDigests,
    BookLadders,
    BookTops,
    RefreshMarkets,
    Report,
    StreamHealth,
)
from messages.exchange import ExchangeCondition, ExchangeObserved, StageThrottled
from messages.metadata import OrderbookConnectMetadata
from messages.results import (
    BookDepthReport,
    BookTopsReport,
    OrderbookReport,
    PriceLevel,
    StreamHealthReport,
    StreamIncident,
    TopOfBook,
)
from messages.states import State
from messages.text import one_line

logger = logging.getLogger("kalshi_supervisor.actors.orderbook_connect")


@dataclass(frozen=True, slots=True)
class StreamEventArrived:
    """A stream lifecycle event, carried from the stream thread into this actor's mailbox."""

    event: StreamEvent


class OrderbookConnectActor(StageActor):
    stage_name = "orderbook"
    stage_state = State.ORDERBOOK_CONNECT

    def open(self) -> None:
        self._stream: OrderbookStream | None = None
        self._awaiting_sync = False
        self._established = False
        self._no_live = False
        """A ``no_live_markets`` wait was announced and no market is live yet."""
        parent, generation = self.parent, self.generation

        def observed(condition: ExchangeCondition) -> None:  # on the check's own thread
            with contextlib.suppress(pykka.ActorDeadError):  # the supervisor is stopping
                parent.tell(
                    ExchangeObserved(
                        stage=self.stage_name, generation=generation, condition=condition
                    )
                )

        self._refusals = RefusalCheck(self.context.rest_url, self.context.request_timeout, observed)

    def describe(self) -> OrderbookConnectMetadata:
        markets = self.context.markets
        return OrderbookConnectMetadata(
            ws_url=self.context.ws_url,
            markets=OrderbookConnectMetadata.summarize_markets(markets),
            market_count=len(markets),
            environment=self.context.environment,
        )

    def connect(self, generation: int) -> None:
        if self._stream is None:
            self._stream = self._new_stream()
            self._awaiting_sync = True
            self._stream.start()
            return
        self._awaiting_sync = True
        self._maybe_done()

    def _maybe_done(self) -> None:
        """Connecting: succeed once the stream is synced with a live market; with none
        left to follow, say so (the supervisor holds the stage and asks for refreshes)."""
        stream = self._stream
        if stream is None or not self._awaiting_sync or not stream.wait_synced(0):
            return
        if stream.synced_market_count() > 0:
            self._done()
        elif stream.followed_count() == 0:
            self._announce_no_live()

    def _done(self) -> None:
        self._awaiting_sync = False
        self._established = True
        self._no_live = False
        self.succeed(self.report())

    def report(self) -> OrderbookReport:
        stream = self._stream
        if stream is None:
            return OrderbookReport.nothing_yet()
        stats = stream.stats
        return OrderbookReport(
            markets_connected=stream.synced_market_count(),
            snapshots_received=stats.snapshots_received,
            deltas_received=stats.deltas_received,
            connection_established=stream.connected,
            first_snapshot_received=stats.snapshots_received > 0,
            stream_synced=stream.wait_synced(0),
            markets_dropped=stats.markets_dropped,
            counters=self._counters(),
        )

    def _counters(self) -> dict[str, int]:
        stream = self._stream
        if stream is None:
            return {}
        return {k: int(v) for k, v in stream.stats.as_dict().items() if k != "last_frame_monotonic"}

    def handle(self, message: Any) -> Any:
        handler = self._MESSAGES.get(type(message))
        if handler is None:
            return super().handle(message)
        return handler(self, message)

    def _on_refresh(self, message: RefreshMarkets) -> None:
        self._refresh_markets()
        if self._awaiting_sync:  # held without a live market: success comes with one
            self._maybe_done()
        else:
            self.succeed(self.report())

    _MESSAGES: ClassVar[dict[type, Callable[[OrderbookConnectActor, Any], Any]]] = {
        StreamEventArrived: lambda self, message: self._on_stream_event(message.event),
        Report: lambda self, _: self.report(),
        RefreshMarkets: _on_refresh,
        BookDigests: lambda self, message: self._book_digests(message.timeout),
        BookTops: lambda self, _: self.book_tops(),
        BookLadders: lambda self, message: self.book_depth(message.ticker),
        StreamHealth: lambda self, _: self.stream_health(),
    }

    def disconnect(self) -> None:
        if self._stream is not None:
            self._stream.drop_connection()

    def retry_now(self) -> None:
        """The exchange resumed: reconnect at once, not after the backoff the pause grew."""
        if self._stream is not None:
            self._stream.retry_now()

    def close(self) -> None:
        stream, self._stream = getattr(self, "_stream", None), None
        if stream is not None:
            stream.stop()
        refusals = getattr(self, "_refusals", None)
        if refusals is not None:
            refusals.close()

    def _refresh_markets(self) -> None:
        """Discovery mode: add newly listed open markets (up to ``market_count``) and drop
        followed ones that no longer trade, each an event. A REST failure changes nothing
        (logged once per refresh; the next refresh tries again)."""
        stream, context = self._stream, self.context
        if stream is None:
            return
        if not context.discovery:
            if stream.followed_count() == 0:
                self._recheck_dropped(stream)
            return
        followed = stream.followed_markets()
        limit = context.market_count
        try:
            with KalshiRestClient(
                context.rest_url, context.signer, timeout=context.request_timeout
            ) as client:
                listing = client.get_markets(
                    status="open",
                    series_ticker=context.series,
                    max_items=None if limit is None else limit + len(followed),
                )
            open_now = {m.ticker for m in listing}
            unlisted = [t for t in followed if t not in open_now]
            statuses = (
                rest_market_checker(
                    context.rest_url, context.signer, timeout=context.request_timeout
                )(unlisted)
                if unlisted
                else {}
            )
        except Exception as exc:
            logger.warning("market refresh failed: %s", one_line(str(exc))[:200])
            return
        gone = [t for t, status in statuses.items() if status != "active"]
        dropped = stream.dropped_markets()
        room = len(listing) if limit is None else max(0, limit - (len(followed) - len(gone)))
        # With nothing followed (waiting for a live market), a dropped market listed open
        # again is taken back; otherwise a drop stands (the listing may lag the drop).
        known = set(followed) | (set(dropped) if followed else set())
        added = [m.ticker for m in listing if m.ticker not in known][:room]
        if not added and not gone:
            return
        stream.update_markets(
            added, gone, "no longer open (discovery refresh)", facts_by_ticker(listing)
        )
        for ticker in added:
            self._incident("market_added", f"{ticker}: listed open (discovery refresh)")

    def _recheck_dropped(self, stream: OrderbookStream) -> None:
        """Config mode with no market left: a dropped ticker may reopen (a paused market,
        a close time extended); follow again those REST now says are ``active``."""
        context = self.context
        dropped = list(stream.dropped_markets())
        try:
            found = rest_market_checker(
                context.rest_url, context.signer, timeout=context.request_timeout
            )(dropped)
        except Exception as exc:
            logger.warning("market re-check failed: %s", one_line(str(exc))[:200])
            return
        facts = {t: f for t, f in found.items() if isinstance(f, MarketFacts)}
        reopened = [t for t, f in facts.items() if f.status == "active"]
        if not reopened:
            return
        stream.update_markets(reopened, (), "", facts)
        for ticker in reopened:
            self._incident("market_added", f"{ticker}: active again (re-checked)")

    # -- read-only views for the console (never fail the stage) ---------------------------
    def book_tops(self) -> BookTopsReport:
        stream = self._stream
        if stream is None:
            return BookTopsReport(books=())
        return BookTopsReport(books=tuple(_top_of_book(top, age) for top, age in stream.tops()))

    def book_depth(self, ticker: str) -> BookDepthReport | None:
        stream = self._stream
        read = stream.depth(ticker) if stream is not None else None
        if read is None:
            return None
        depth, age = read
        return _depth_report(depth, age)

    def stream_health(self) -> StreamHealthReport:
        stream = self._stream
        if stream is None:
            return StreamHealthReport.nothing_yet()
        counters = {
            name: value
            for name, value in stream.stats.as_dict().items()
            if isinstance(value, int) and not isinstance(value, bool)
        }
        return StreamHealthReport(
            connected=stream.connected,
            markets=stream.followed_count(),
            live_markets=stream.synced_market_count(),
            counters=counters,
            last_frame_age_seconds=stream.last_frame_age(),
        )

    def _book_digests(self, timeout: float) -> dict[str, str]:
        stream = self._stream
        if stream is None or not stream.barrier(timeout):
            raise TimeoutError("orderbook stream did not answer a barrier in time")
        return stream.digests()

    # -- internals ------------------------------------------------------------------------
    def _new_stream(self) -> OrderbookStream:
        signer = self.context.signer
        actor_ref = self.actor_ref

        def forward(event: StreamEvent) -> None:
            # Called on the stream thread; a dead actor just means we are shutting down.
            if actor_ref.is_alive():
                actor_ref.tell(StreamEventArrived(event))

        return OrderbookStream(
            self.context.ws_url,
            self.context.markets,
            auth_headers=lambda: signer.headers("GET", WS_PATH),
            use_yes_price=self.context.use_yes_price,
            listener=forward,
            reconnect=ReconnectPolicy(
                min_delay=self.context.reconnect_min_delay,
                max_delay=self.context.reconnect_max_delay,
                max_attempts=None,
            ),
            open_timeout=self.context.request_timeout,
            book_changes=self.context.book_changes,
            snapshot_timeout=self.context.request_timeout,
            chunk_size=self.context.subscribe_chunk,
            stale_after=self.context.stale_after,
            market_checker=rest_market_checker(
                self.context.rest_url, signer, timeout=self.context.request_timeout
            ),
            lifecycle=True,
            market_facts=self.context.market_facts,
            facts_fresh=self.context.market_facts_fresh,
        )

    def _announce_no_live(self) -> None:
        """Every market was dropped: one WARNING line and one ``no_live_markets`` incident
        per wait (the supervisor leaves READY, holds this stage and asks for refreshes)."""
        stream = self._stream
        if self._no_live or stream is None:
            return
        self._no_live = True
        reasons: dict[str, int] = {}
        for reason in stream.dropped_markets().values():
            key = reason.split(" (")[0]
            reasons[key] = reasons.get(key, 0) + 1
        counted = ", ".join(f"{n} {why}" for why, n in sorted(reasons.items()))
        source = "open markets" if self.context.discovery else "a dropped market to reopen"
        detail = f"no live market: {counted}; waiting for {source}"
        logger.warning("%s", detail)
        self._incident("no_live_markets", detail)

    def _report_throttled(self, event: StreamDisconnected) -> None:
        """The exchange said "too many" to the upgrade and the stream waits it out before
        trying again: a documented rate limit, not a failure, so the deadline must wait too."""
        self.parent.tell(
            StageThrottled(
                stage=self.stage_name,
                generation=self.generation,
                wait_seconds=event.retry_in or 0.0,
                reason=event.reason,
            )
        )

    def _incident(self, kind: str, detail: str) -> None:
        self.parent.tell(
            StreamIncident(
                stage=self.stage_name,
                generation=self.generation,
                kind=kind,  # type: ignore[arg-type]
                detail=detail,
                counters=self._counters(),
            )
        )

    def _on_stream_event(self, event: StreamEvent) -> None:
        handler = self._STREAM_EVENTS.get(type(event))
        if handler is not None:
            handler(self, event)

    def _on_disconnected(self, event: StreamDisconnected) -> None:
        self._refusals.refused(event.refused_status)  # a 5xx upgrade refusal: is it a pause?
        if event.refused_status == 429 and event.will_retry and self._awaiting_sync:
            self._report_throttled(event)
        if self._established:
            self._incident("disconnected", event.reason)

    def _on_market_dropped(self, event: StreamMarketDropped) -> None:
        self._incident("market_dropped", f"{event.ticker}: {event.reason}")  # in any phase
        stream = self._stream
        if stream is not None and stream.followed_count() == 0:
            self._announce_no_live()
        elif self._awaiting_sync:
            self._maybe_done()

    def _on_synced(self, event: StreamSynced) -> None:
        if self._awaiting_sync:
            if event.market_count > 0:
                self._done()
            else:
                self._maybe_done()
        elif self._established:
            self._incident("reconnected", f"{event.market_count} books rebuilt from snapshots")

    def _on_resynced(self, event: StreamResynced) -> None:
        if self._awaiting_sync:
            self._maybe_done()  # markets added while waiting for one went live
        elif self._established:
            self._incident("resynced", f"sid {event.sid} rebuilt from a fresh snapshot")

    def _on_gap(self, event: StreamGap) -> None:
        if self._established:
            self._incident(
                "gap", f"sid {event.sid}: expected seq {event.expected}, got {event.received}"
            )

    def _on_terminal_error(self, event: StreamTerminalError) -> None:
        if self._established:
            self._incident("terminal_error", f"code {event.code}: {event.message}")

    _STREAM_EVENTS: ClassVar[dict[type, Callable[[OrderbookConnectActor, Any], None]]] = {
        StreamDisconnected: _on_disconnected,
        StreamMarketDropped: _on_market_dropped,
        StreamStale: lambda self, event: self._incident(
            "stale", f"sid {event.sid} silent for {event.silent_for:.1f}s"
        ),
        StreamSynced: _on_synced,
        StreamFailed: lambda self, event: self.fail("StreamFailed", event.reason),
        StreamResynced: _on_resynced,
        StreamGap: _on_gap,
        StreamTerminalError: _on_terminal_error,
    }


# -- views: micro-dollars and centi-contracts become exact decimal strings -------------------
def _top_of_book(top: BookTop, age: float) -> TopOfBook:
    bid, no_bid = top.best_yes_bid, top.best_no_bid
    return TopOfBook(
        ticker=top.ticker,
        stale=top.stale,
        best_yes_bid=None if bid is None else format_dollars(bid[0]),
        best_yes_bid_size=None if bid is None else format_count(bid[1]),
        best_yes_ask=None if no_bid is None else format_dollars(MICROS_PER_DOLLAR - no_bid[0]),
        best_yes_ask_size=None if no_bid is None else format_count(no_bid[1]),
        yes_levels=top.yes_levels,
        no_levels=top.no_levels,
        unchanged_for_seconds=round(age, 3),
    )


def _depth_report(depth: DepthView, age: float) -> BookDepthReport:
    return BookDepthReport(
        ticker=depth.ticker,
        stale=depth.stale,
        unchanged_for_seconds=round(age, 3),
        yes_bids=tuple(
            PriceLevel(price=format_dollars(price), size=format_count(size))
            for price, size in reversed(depth.yes)
        ),
        yes_asks=tuple(
            PriceLevel(price=format_dollars(MICROS_PER_DOLLAR - price), size=format_count(size))
            for price, size in reversed(depth.no)
        ),
    )
