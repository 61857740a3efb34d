"""P&L from fills, exact: realized, unrealized (at mid and at exit), fees; per market and service.

Kalshi nets YES and NO (§8.5): a bid buys YES at ``p``; an ask sells YES at ``p``, which is
buying NO at ``1 - p``; a position is one signed number of YES contracts. So a ledger here
is a signed position with **FIFO lots** ``(signed qty, price)``:

- a fill that adds to the position (or opens one) appends a lot;
- a fill against the position closes the oldest lots first; each closed contract realizes
  ``(exit - entry)`` for a long lot and ``(entry - exit)`` for a short one.

FIFO, rather than average cost, because it needs no division: every number stays an exact
``Decimal`` (an average cost of 1/3 would not). Fees are kept apart (``fees``); ``net`` is
``realized + unrealized - fees``. The invariant the tests check, for any mark ``m``:

    realized + unrealized(m) - fees == cash flow + position · m

where the cash flow is what the fills paid and received (``Fill.cash_flow``) minus fees.

Marks: ``mid`` is the middle of the best YES bid and ask; ``exit`` is where the position
would leave, the best bid for a long and the best ask for a short. With no bid a long
exits at 0, with no ask a short at 1 (the worst case); ``mid`` with a side missing falls
back to the exit mark.

Per-service ledgers and the account's per-market ledger are kept separately: when two
services trade against each other in one market, the exchange nets them (one position),
and the per-market ledger is the account's truth while each service still sees its own.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from messages.orders import Fill, MarketPnl

ZERO = Decimal(0)
ONE = Decimal(1)
TWO = Decimal(2)
DEFAULT_MAX_TRADE_IDS = 100_000


@dataclass(frozen=True, slots=True)
class Quote:
    """A market's best YES bid and ask (None: that side is empty)."""

    bid: Decimal | None = None
    ask: Decimal | None = None

    def mid(self) -> Decimal | None:
        if self.bid is None or self.ask is None:
            return None
        return (self.bid + self.ask) / TWO

    def exit_for(self, position: Decimal) -> Decimal:
        """Where ``position`` would leave: a long sells at the bid, a short buys at the ask."""
        if position >= 0:
            return self.bid if self.bid is not None else ZERO
        return self.ask if self.ask is not None else ONE


class Ledger:
    """One market's (for one service, or for the account) position, lots and P&L."""

    def __init__(self, ticker: str) -> None:
        self.ticker = ticker
        self.position = ZERO
        self.realized = ZERO
        self.fees = ZERO
        self.cash = ZERO
        """Fill cash flows minus fees: what the fills did to the balance."""
        self.volume = ZERO
        self._lots: deque[list[Decimal]] = deque()  # [signed qty, price], oldest first

    def apply(self, fill: Fill) -> None:
        qty = fill.signed_count
        self.fees += fill.fee
        self.cash += fill.cash_flow - fill.fee
        self.volume += fill.count
        self.position += qty
        while qty != 0 and self._lots and (self._lots[0][0] > 0) != (qty > 0):
            lot = self._lots[0]
            closing = min(abs(qty), abs(lot[0]))
            if lot[0] > 0:  # a long lot sold at the fill's price
                self.realized += closing * (fill.price - lot[1])
                lot[0] -= closing
                qty += closing
            else:  # a short lot bought back
                self.realized += closing * (lot[1] - fill.price)
                lot[0] += closing
                qty -= closing
            if lot[0] == 0:
                self._lots.popleft()
        if qty != 0:
            self._lots.append([qty, fill.price])

    @property
    def cost_basis(self) -> Decimal:
        """Signed cost of the open lots: Σ qty · entry price."""
        return sum((q * p for q, p in self._lots), ZERO)

    def unrealized(self, mark: Decimal) -> Decimal:
        """What the open lots gain if marked at ``mark``: Σ qty · (mark - entry)."""
        return self.position * mark - self.cost_basis

    def snapshot(self, quote: Quote | None, service: str | None = None) -> MarketPnl:
        quote = quote or Quote()
        exit_mark = quote.exit_for(self.position)
        mid = quote.mid()
        mid_mark = mid if mid is not None else exit_mark
        return MarketPnl(
            ticker=self.ticker,
            service=service,
            position=self.position,
            realized=self.realized,
            unrealized_mid=self.unrealized(mid_mark),
            unrealized_exit=self.unrealized(exit_mark),
            fees=self.fees,
        )


class PnlBook:
    """Ledgers per (service, market) and per market (the account), fed by fills.

    Fills are deduplicated by ``trade_id`` here too (a bounded window of recent ids), so a
    fill replayed by a reconnect's REST pull is never counted twice, whoever feeds it.
    """

    def __init__(self, *, max_trade_ids: int = DEFAULT_MAX_TRADE_IDS) -> None:
        self._by_service: dict[tuple[str, str], Ledger] = {}
        self._by_market: dict[str, Ledger] = {}
        self._trades: OrderedDict[str, None] = OrderedDict()
        self._max_trade_ids = max_trade_ids
        self._seeds = 0
        self._day_start: dict[str | None, Decimal] = {}

    def apply(self, fill: Fill, service: str | None) -> bool:
        """One fill of an order that ``service`` placed (None: not a service's, e.g. an
        adopted order); False, and nothing counted, if its ``trade_id`` was seen."""
        if fill.trade_id in self._trades:
            return False
        self._trades[fill.trade_id] = None
        while len(self._trades) > self._max_trade_ids:
            self._trades.popitem(last=False)
        if service is not None:
            key = (service, fill.ticker)
            if key not in self._by_service:
                self._by_service[key] = Ledger(fill.ticker)
            self._by_service[key].apply(fill)
        if fill.ticker not in self._by_market:
            self._by_market[fill.ticker] = Ledger(fill.ticker)
        self._by_market[fill.ticker].apply(fill)
        return True

    def seed(self, ticker: str, position: Decimal, price: Decimal, service: str | None = None
             ) -> None:
        """Open a position we hold without its fills (adopted at start, or corrected by
        reconciliation), as if bought (or sold) at ``price``: from then on, exact. The
        caller picks the price (the exchange's cost per contract on the grid, or the mark)."""
        if position == 0:
            return
        self._seeds += 1
        self.apply(
            Fill(
                trade_id=f"seed:{self._seeds}",
                order_id="seed",
                ticker=ticker,
                side="bid" if position > 0 else "ask",
                count=abs(position),
                price=price,
            ),
            service,
        )

    def start_day(self, quotes: Mapping[str, Quote]) -> None:
        """Mark the start of a trading day: ``daily`` counts from here."""
        self._day_start = {None: self.net(quotes)}
        for service in {s for s, _ in self._by_service}:
            self._day_start[service] = self.net(quotes, service)

    def daily(self, quotes: Mapping[str, Quote], service: str | None = None) -> Decimal:
        """Net P&L since ``start_day`` (since the start, if never called): what
        ``RiskLimits.max_daily_loss`` is checked against."""
        return self.net(quotes, service) - self._day_start.get(service, ZERO)

    def market(self, ticker: str) -> Ledger | None:
        return self._by_market.get(ticker)

    def service_market(self, service: str, ticker: str) -> Ledger | None:
        return self._by_service.get((service, ticker))

    def positions(self, service: str | None = None) -> dict[str, Decimal]:
        """Nonzero positions per market: the account's, or one service's."""
        if service is None:
            return {t: lg.position for t, lg in self._by_market.items() if lg.position != 0}
        return {
            t: lg.position
            for (s, t), lg in self._by_service.items()
            if s == service and lg.position != 0
        }

    def markets(self, quotes: Mapping[str, Quote]) -> list[MarketPnl]:
        return [lg.snapshot(quotes.get(t)) for t, lg in sorted(self._by_market.items())]

    def services(self, quotes: Mapping[str, Quote]) -> list[MarketPnl]:
        return [
            lg.snapshot(quotes.get(t), service=s)
            for (s, t), lg in sorted(self._by_service.items())
        ]

    def net(self, quotes: Mapping[str, Quote], service: str | None = None) -> Decimal:
        """Realized + unrealized at exit - fees: what the daily-loss limit watches (the exit
        mark, not the mid: a loss is what leaving would cost)."""
        if service is None:
            ledgers = list(self._by_market.values())
        else:
            ledgers = [lg for (s, _), lg in self._by_service.items() if s == service]
        total = ZERO
        for lg in ledgers:
            mark = (quotes.get(lg.ticker) or Quote()).exit_for(lg.position)
            total += lg.realized + lg.unrealized(mark) - lg.fees
        return total
