"""What the order gateway tells: order changes, fills and positions to the owning service
and to the event stream, and the ``TradingStatus`` view.

Why a class of its own: telling is the same few steps from every place the gateway learns
something (a reply, a private event, a lookup, a reconciliation); keeping them here keeps
the actor module the decision loop. It holds only what telling needs: the link, the
tracker and P&L book (read, never changed, except through ``apply_fill``'s one call),
the book reader for marks, and the last thing told per order, so a fact that changes
nothing a service can see is not told twice (bounded: forgotten with the tracker's
evicted orders).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from actors.trading_link import TradingLink
from messages.orders import Fill, OrderUpdate, Position, TradingState, reason_beyond
from messages.text import one_line
from messages.trading_events import FillEvent, OrderUpdateEvent, PositionChanged
from messages.trading_status import TradingStatus, WriteBudgetStatus
from trading.order_state import OrderRecord
from trading.pnl import PnlBook, Quote
from trading.tracker import OrderTracker

ZERO = Decimal(0)

BookReader = Callable[[str], Any]
"""``ServiceActor.book``: a consistent copy of a streamed book, or None."""


class GatewayPublisher:
    """Tells services and the event stream what changed (see the module docstring)."""

    def __init__(
        self, link: TradingLink, tracker: OrderTracker, pnl: PnlBook, book: BookReader,
        *, changed: Callable[[], None] = lambda: None,
    ) -> None:
        self.link = link
        self.changed = changed
        """Told whenever an order or a position a service can see changed (``on_account``)."""
        self.tracker = tracker
        self.pnl = pnl
        self.book = book
        self._emitted: dict[str, tuple[Any, ...]] = {}

    # -- orders --------------------------------------------------------------------------------
    def emit(self, record: OrderRecord, reason: str | None = None) -> OrderUpdate | None:
        """Tell the owner and publish, when something it can see changed; returns the view
        told (None: nothing new)."""
        view = record.view()
        if reason is not None:  # said only when it adds to the status
            shown = reason_beyond(view.status, one_line(reason)[:300])
            view = view.model_copy(update={"reason": shown or view.reason})
        key = (view.status, view.filled, view.remaining, view.count, view.order_id, view.reason)
        cid = record.client_order_id
        if self._emitted.get(cid) == key:
            return None
        self._emitted[cid] = key
        self.changed()
        if len(self._emitted) > 2 * len(self.tracker) + 1000:  # bounded: forget evicted orders
            self._emitted = {c: k for c, k in self._emitted.items() if self.tracker.get(c)}
        self.link.tell_service(view.service, view)
        self.link.publish(
            OrderUpdateEvent(service=view.service, client_order_id=cid, order_id=view.order_id,
                             ticker=view.ticker, side=view.side, status=view.status,
                             count=view.count, filled=view.filled, price=view.price,
                             reason=view.reason)
        )
        return view

    # -- fills and positions -------------------------------------------------------------------
    def fill(self, fill: Fill, record: OrderRecord | None, service: str | None) -> None:
        """A fill new to the P&L book: published, told to its service with its position."""
        if record is not None:
            fill = fill.model_copy(update={"client_order_id": record.client_order_id})
        self.link.publish(
            FillEvent(service=service, trade_id=fill.trade_id, order_id=fill.order_id,
                      client_order_id=fill.client_order_id, ticker=fill.ticker,
                      side=fill.side, count=fill.count, price=fill.price, fee=fill.fee,
                      is_taker=fill.is_taker)
        )
        if service is not None:
            self.link.tell_service(service, fill)
            position = self.pnl.positions(service).get(fill.ticker, ZERO)
            self.link.tell_service(
                service, Position(ticker=fill.ticker, position=position, service=service)
            )
        self.position(fill.ticker)

    def position(self, ticker: str) -> None:
        self.changed()
        ledger = self.pnl.market(ticker)
        if ledger is None:
            return
        snap = ledger.snapshot(self.quotes().get(ticker))
        self.link.publish(
            PositionChanged(ticker=ticker, position=snap.position, realized_pnl=snap.realized,
                            unrealized_pnl=snap.unrealized_exit, fees=snap.fees)
        )

    def quotes(self) -> dict[str, Quote]:
        """Marks for every market we hold: the streamed book's best bid and ask, if any."""
        quotes: dict[str, Quote] = {}
        for ticker in self.pnl.positions(None):
            view = self.book(ticker)
            if view is None:
                continue
            bid, ask = view.best_yes_bid(), view.best_yes_ask()
            quotes[ticker] = Quote(
                bid=Decimal(bid[0]).scaleb(-6) if bid else None,
                ask=Decimal(ask[0]).scaleb(-6) if ask else None,
            )
        return quotes

    # -- the status view -----------------------------------------------------------------------
    def status(
        self, state: TradingState, reason: str | None, group_id: str | None, pacer: Any
    ) -> TradingStatus:
        return TradingStatus(
            state=state,
            reason=reason,
            open_orders=[r.view() for r in self.tracker.open_orders()],
            positions=[
                Position(ticker=t, position=p) for t, p in sorted(self.pnl.positions(None).items())
            ],
            pnl=self.pnl.markets(self.quotes()),
            order_group_id=group_id,
            write_budget=_budget(pacer),
        )


def _budget(pacer: Any) -> WriteBudgetStatus | None:
    """The shared write pacer's state (``GatewayIo.current_pacer``), if writes began."""
    if pacer is None:
        return None
    return WriteBudgetStatus(
        capacity=Decimal(f"{pacer.capacity:.3f}"),
        tokens=Decimal(f"{pacer.tokens:.3f}"),
        refill_per_second=Decimal(f"{pacer.refill_rate:.3f}"),
        rate_limited=pacer.rate_limited_count,
    )
