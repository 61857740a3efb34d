"""A market maker: one order a side per market around the mid, within an inventory limit.

Run it on the embedded exchange, whose built-in participant takes liquidity and so fills
it (``--exchange-take-rate``)::

    kalshi-supervisor run --service examples/market_maker.py:MarketMaker \\
        --exchange-take-rate 5

Against any compatible exchange it runs unchanged, on the markets you name::

    kalshi-supervisor run --env paper --markets KXFED-26NOV24-T4.25 \\
        --service examples/market_maker.py:MarketMaker \\
        --service-option market_maker.size=1 --service-option market_maker.max_position=3

What it does, per market (``tickers``, default the first ``markets`` streamed):

- the **mid** is taken from the book *without its own orders* (it knows their prices and
  sizes), so its quotes never chase themselves;
- it bids ``size`` at the mid minus ``edge`` (rounded down to the cent) and offers at
  the mid plus ``edge`` (rounded up), post-only, never crossing the others' best price;
- **inventory**: a bid only while position + size stays within ``max_position``, an ask
  only while -position + size does (a long stops buying, a short stops selling);
- as the book moves it **re-quotes**: an order at the wrong price (or partly filled) is
  cancelled and replaced once the cancel is confirmed, one whose size no longer fits the
  inventory room is amended (``self.trading.amend``), a side it must not quote any more
  cancelled; one write per side at a time, so a fast book never piles up writes;
- on an exchange **pause**, on leaving READY (``on_not_ready``) and when trading is
  halted, it cancels everything it has (``cancel_all_mine``) and quotes again only once
  READY, unpaused and active; an order refused locally makes it wait ``retry_s`` before
  quoting again rather than retrying at the book's pace.

Every order goes through the order gateway (``self.trading``), so the gateway's risk
limits, kill switch and reconciliation apply to it like to any service. Money is exact:
integer micro-dollars for prices, ``Decimal`` contracts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from pydantic import Field

from actors.service import ServiceActor, ServiceOptions
from kalshi_api.book_changes import BookView
from kalshi_api.fixed_point import MICROS_PER_DOLLAR
from messages.events import Event, ExchangePaused, ExchangeResumed
from messages.metadata import ReadyMetadata
from messages.orders import Fill, OrderStatus, OrderUpdate, Position, Side
from messages.states import State

logger = logging.getLogger("market_maker")

ZERO = Decimal(0)
CENTI = 100
RESTING = frozenset({OrderStatus.RESTING, OrderStatus.PARTIALLY_FILLED})
"""Centi-contracts per contract (the books' size unit)."""


class MarketMakerOptions(ServiceOptions):
    tickers: tuple[str, ...] | None = None
    """Markets to quote; default the first ``markets`` the system streams."""
    markets: int = Field(default=3, ge=1, le=200)
    edge: Decimal = Field(default=Decimal("0.01"), gt=0, lt=Decimal("0.5"), decimal_places=2)
    """Dollars from the mid to each quote."""
    size: Decimal = Field(default=Decimal(1), gt=0, decimal_places=2)
    """Contracts per quote."""
    max_position: Decimal = Field(default=Decimal(5), ge=0, decimal_places=2)
    """Largest YES position (long or short) the quotes may lead to, per market."""
    tick: Decimal = Field(default=Decimal("0.01"), gt=0, lt=Decimal("0.5"), decimal_places=4)
    """Price step of the quotes (a cent is valid on every Kalshi price grid)."""
    retry_s: float = Field(default=2.0, gt=0, le=600)
    """After an order is refused locally (halted, not READY, a limit), wait this long."""


@dataclass
class Want:
    """The quote one side should have: a YES price in micro-dollars and a count."""

    price: int
    count: Decimal


class MarketMaker(ServiceActor):
    """See the module docstring."""

    options_model = MarketMakerOptions
    service_name = "market_maker"

    def setup(self) -> None:
        options: MarketMakerOptions = self.options
        self._tick = int(options.tick * MICROS_PER_DOLLAR)
        self._edge = int(options.edge * MICROS_PER_DOLLAR)
        self._sides: dict[tuple[str, Side], str] = {}
        """(ticker, side) -> the client_order_id quoting it."""
        self._busy: set[str] = set()
        """Orders with a write in flight (placed, amended, cancelled) not yet answered."""
        self._chosen: tuple[str, ...] = tuple(options.tickers or ())
        self._halted = False
        self._waiting = False
        self.quotes_placed = 0
        self.amends = 0

    # -- what to quote -------------------------------------------------------------------
    @property
    def quoting(self) -> tuple[str, ...]:
        if not self._chosen:
            self._chosen = tuple(self.markets[: self.options.markets])
        return self._chosen

    def _may_quote(self) -> bool:
        return (
            self.trading is not None
            and self.ready
            and not self._halted
            and not self._waiting
            and not self.trading_paused()
        )

    def _outside_view(self, ticker: str, book: BookView) -> tuple[int | None, int | None]:
        """The best YES bid and ask of everyone else (our own resting volume taken out)."""
        assert self.trading is not None
        yes, no = dict(book.yes), dict(book.no)
        for order in self.trading.open_orders.values():
            if order.ticker != ticker or order.status not in RESTING:
                continue
            price = int(order.price * MICROS_PER_DOLLAR)
            size = int(order.remaining * CENTI)
            levels, key = (yes, price) if order.side == "bid" else (no, MICROS_PER_DOLLAR - price)
            left = levels.get(key, 0) - size
            if left > 0:
                levels[key] = left
            else:
                levels.pop(key, None)
        bid = max(yes) if yes else None
        ask = MICROS_PER_DOLLAR - max(no) if no else None
        return bid, ask

    def _wants(self, ticker: str, book: BookView) -> dict[Side, Want | None]:
        bid, ask = self._outside_view(ticker, book)
        if bid is None or ask is None or bid >= ask:
            return {"bid": None, "ask": None}
        tick, edge = self._tick, self._edge
        mid2 = bid + ask  # twice the mid: exact in integers
        bid_price = ((mid2 - 2 * edge) // (2 * tick)) * tick
        ask_price = -((-(mid2 + 2 * edge)) // (2 * tick)) * tick
        bid_price = min(bid_price, ask - tick)  # post-only: never cross the others' ask
        ask_price = max(ask_price, bid + tick)
        assert self.trading is not None
        position = self.trading.positions.get(ticker, ZERO)
        limit, size = self.options.max_position, self.options.size
        wants: dict[Side, Want | None] = {"bid": None, "ask": None}
        bid_room = min(size, limit - position)
        if bid_room > 0 and tick <= bid_price < MICROS_PER_DOLLAR:
            wants["bid"] = Want(bid_price, bid_room)
        ask_room = min(size, limit + position)
        if ask_room > 0 and 0 < ask_price <= MICROS_PER_DOLLAR - tick:
            wants["ask"] = Want(ask_price, ask_room)
        return wants

    # -- quoting ---------------------------------------------------------------------------
    def _quote(self, ticker: str) -> None:
        if not self._may_quote() or ticker not in self.quoting:
            return
        book = self.book(ticker)
        if book is None or book.stale:
            return
        for side, want in self._wants(ticker, book).items():
            self._quote_side(ticker, side, want)

    def _quote_side(self, ticker: str, side: Side, want: Want | None) -> None:
        trading = self.trading
        assert trading is not None
        cid = self._sides.get((ticker, side))
        current = trading.open_orders.get(cid) if cid is not None else None
        if cid is not None and current is None:  # closed since: the side is free
            self._sides.pop((ticker, side), None)
            self._busy.discard(cid)
            cid = None
        if cid is not None and cid in self._busy:
            return  # one write per side at a time
        if current is not None and cid is not None:
            price = int(current.price * MICROS_PER_DOLLAR)
            if want is not None and price == want.price and current.remaining == want.count:
                return
            if (
                want is None
                or price != want.price
                or current.filled > 0
                or current.status is not OrderStatus.RESTING
            ):
                trading.cancel(cid)  # replaced once the cancel is confirmed (on_order)
            else:  # same price, another size (the inventory room changed)
                trading.amend(cid, price=current.price, count=want.count)
                self.amends += 1
            self._busy.add(cid)
            return
        if want is None:
            return
        cid = trading.place(
            ticker, side, want.count, _dollars(want.price), post_only=True
        )
        self._sides[(ticker, side)] = cid
        self._busy.add(cid)
        self.quotes_placed += 1

    def _cancel_everything(self, why: str) -> None:
        if self.trading is not None and (self._sides or self.trading.open_orders):
            logger.info("market_maker cancelling its quotes: %s", why)
            self.trading.cancel_all_mine()

    def _requote_all(self) -> None:
        for ticker in self.quoting:
            self._quote(ticker)

    def _retry(self) -> None:
        self._waiting = False
        self._requote_all()

    # -- hooks -------------------------------------------------------------------------------
    def on_ready(self, metadata: ReadyMetadata) -> None:
        if self.trading is None:
            logger.warning("market_maker: trading is off (--no-trading?); not quoting")
            return
        self._requote_all()

    def on_not_ready(self, state: State, reason: str) -> None:
        self._cancel_everything(f"the system left READY for {state.value}")

    def on_book_changed(self, ticker: str, book: BookView) -> None:
        self._quote(ticker)

    def on_event(self, event: Event) -> None:
        if isinstance(event, ExchangePaused):
            self._cancel_everything(f"{event.scope} pause")
        elif isinstance(event, ExchangeResumed):
            self._requote_all()
        elif getattr(event, "type", None) == "trading_state":
            halted = str(getattr(event, "state", "")) != "active"
            was, self._halted = self._halted, halted
            if halted and not was:
                self._cancel_everything(f"trading is {getattr(event, 'state', '')}")
            elif was and not halted:
                self._requote_all()

    def on_order(self, update: OrderUpdate) -> None:
        cid = update.client_order_id
        if update.status is OrderStatus.PENDING:
            return
        self._busy.discard(cid)
        if update.status.is_final:
            for key, quoting in list(self._sides.items()):
                if quoting == cid:
                    del self._sides[key]
        if update.status is OrderStatus.REJECTED and not self._waiting:
            logger.info("market_maker order refused (%s); quoting again in %ss",
                        update.reason, self.options.retry_s)
            self._waiting = True
            self.call_later(self.options.retry_s, self._retry)
            return
        self._quote(update.ticker)

    def on_fill(self, fill: Fill) -> None:
        logger.info("market_maker filled %s %s %s at %s", fill.ticker, fill.side, fill.count,
                    fill.price)

    def on_position(self, position: Position) -> None:
        self._quote(position.ticker)


def _dollars(micros: int) -> Decimal:
    return Decimal(micros).scaleb(-6).normalize()
