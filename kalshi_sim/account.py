"""The embedded exchange's one trading account: balance, positions and resting orders.

It is the truth a ``KalshiSyncActor`` must report after a sync, so every read returns an
immutable snapshot and every mutator (for tests and fault scenarios) takes the lock.
Units are the exchange's own: balance and portfolio value in integer cents (as the REST
API reports them), money otherwise in integer micro-dollars and counts in integer
centi-contracts, formatted to Kalshi's strings only at the wire.

Orders carry both the 2026 direction fields (``outcome_side``/``book_side``) and the
deprecated ``side``/``action``, derived from one table so they can never disagree.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from kalshi_api.fixed_point import MICROS_PER_DOLLAR, format_dollars
from kalshi_sim.markets import CENT, MarketSet

MICROS_PER_CENT = MICROS_PER_DOLLAR // 100
DEMO_BALANCE_CENTS = 50_000
_DEMO_EPOCH = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

DIRECTIONS: dict[tuple[str, str], tuple[str, str]] = {
    ("buy", "yes"): ("yes", "bid"),
    ("sell", "no"): ("yes", "bid"),
    ("buy", "no"): ("no", "ask"),
    ("sell", "yes"): ("no", "ask"),
}
"""``(action, side) -> (outcome_side, book_side)``, Kalshi's order direction table."""

ORDER_STATUSES = ("resting", "canceled", "executed")


@dataclass(frozen=True, slots=True)
class SimPosition:
    """One market position; ``position_centi`` > 0 holds YES, < 0 holds NO."""

    ticker: str
    event_ticker: str
    position_centi: int
    exposure_micros: int
    realized_pnl_micros: int
    fees_paid_micros: int
    total_traded_micros: int
    last_updated: datetime


@dataclass(frozen=True, slots=True)
class SimOrder:
    """One order; ``seq`` is its creation order, which listings and cursors follow."""

    order_id: str
    seq: int
    ticker: str
    event_ticker: str
    action: str
    side: str
    outcome_side: str
    book_side: str
    yes_price_micros: int
    initial_centi: int
    fill_centi: int
    remaining_centi: int
    status: str
    client_order_id: str
    created_time: datetime
    last_update_time: datetime | None = None

    @property
    def no_price_micros(self) -> int:
        return MICROS_PER_DOLLAR - self.yes_price_micros


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """Everything a sync reads, taken atomically."""

    balance_cents: int
    balance_dollars: str
    portfolio_value_cents: int
    updated_ts: int
    positions: tuple[SimPosition, ...]
    orders: tuple[SimOrder, ...]

    @property
    def resting_orders(self) -> tuple[SimOrder, ...]:
        return tuple(o for o in self.orders if o.status == "resting")


@dataclass(frozen=True, slots=True)
class AccountSummary:
    """The four numbers a sync reports, taken atomically: what a sync result must equal."""

    balance_cents: int
    portfolio_value_cents: int
    open_positions: int
    """Positions holding contracts (``position != 0``); closed-out rows are not counted."""
    resting_orders: int


class Account:
    """Thread-safe account state of the embedded exchange."""

    def __init__(
        self,
        markets: MarketSet,
        *,
        balance_cents: int = 0,
        portfolio_value_cents: int = 0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._markets = markets
        self._lock = threading.RLock()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._balance_cents = balance_cents
        self._portfolio_micros = portfolio_value_cents * MICROS_PER_CENT
        self._positions: dict[str, SimPosition] = {}
        self._orders: dict[str, SimOrder] = {}
        self._next_seq = 1
        self._synthetic = 0
        self._updated = self._clock()

    @classmethod
    def demo(cls, markets: MarketSet, seed: int) -> Account:
        """The account ``kalshi-supervisor run`` shows: $500.00 cash, 3 positions, 4 orders.

        Deterministic in ``seed`` (ids, sizes, timestamps), so two exchanges built with
        the same seed report identical portfolios. Portfolio value is the sum of the
        positions' exposures, truncated to cents like Kalshi's.
        """
        rng = random.Random(seed ^ 0xACC0)
        clock_now = _DEMO_EPOCH
        account = cls(markets, balance_cents=DEMO_BALANCE_CENTS, clock=lambda: clock_now)
        tickers = markets.tickers()
        for index, size in enumerate((1000, -2500, 1250)[: len(tickers)]):
            ticker = tickers[index]
            account.add_position(
                ticker,
                size,
                realized_pnl_micros=rng.randint(-300, 300) * MICROS_PER_CENT,
                fees_paid_micros=rng.randint(1, 150) * MICROS_PER_CENT,
            )
        directions = (("buy", "yes"), ("buy", "no"), ("sell", "yes"), ("sell", "no"))
        for index, (action, side) in enumerate(directions):
            clock_now = _DEMO_EPOCH + timedelta(minutes=index + 1)
            account.add_resting_order(
                tickers[index % len(tickers)],
                action=action,
                side=side,
                count_centi=rng.choice((500, 1000, 250, 2000)),
                order_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                client_order_id=f"demo-{seed}-{index + 1}",
            )
        account._clock = lambda: datetime.now(UTC)
        return account

    # -- reads ------------------------------------------------------------------------------------
    def balance_cents(self) -> int:
        with self._lock:
            return self._balance_cents

    def balance_dollars(self) -> str:
        """The exact balance as Kalshi's ``balance_dollars`` string (4 decimals)."""
        with self._lock:
            return format_dollars(self._balance_cents * MICROS_PER_CENT)

    def portfolio_value_cents(self) -> int:
        """Value of all positions in cents, sub-cent amounts truncated (like ``balance``)."""
        with self._lock:
            return self._portfolio_micros // MICROS_PER_CENT

    def updated_ts(self) -> int:
        """Unix seconds of the last change (Kalshi's ``updated_ts``; seconds is the likely unit)."""
        with self._lock:
            return int(self._updated.timestamp())

    def positions(self) -> list[SimPosition]:
        """All positions, sorted by ticker (the order listings page through)."""
        with self._lock:
            return [self._positions[t] for t in sorted(self._positions)]

    def position(self, ticker: str) -> SimPosition | None:
        with self._lock:
            return self._positions.get(ticker)

    def orders(self, status: str | None = None) -> list[SimOrder]:
        """Orders in creation order, optionally only those with ``status``."""
        with self._lock:
            ordered = sorted(self._orders.values(), key=lambda o: o.seq)
        return [o for o in ordered if status is None or o.status == status]

    def resting_orders(self) -> list[SimOrder]:
        return self.orders("resting")

    def order(self, order_id: str) -> SimOrder | None:
        with self._lock:
            return self._orders.get(order_id)

    def snapshot(self) -> AccountSnapshot:
        with self._lock:
            return AccountSnapshot(
                balance_cents=self._balance_cents,
                balance_dollars=self.balance_dollars(),
                portfolio_value_cents=self.portfolio_value_cents(),
                updated_ts=self.updated_ts(),
                positions=tuple(self.positions()),
                orders=tuple(self.orders()),
            )

    def summary(self) -> AccountSummary:
        with self._lock:
            return AccountSummary(
                balance_cents=self._balance_cents,
                portfolio_value_cents=self.portfolio_value_cents(),
                open_positions=sum(1 for p in self._positions.values() if p.position_centi),
                resting_orders=sum(1 for o in self._orders.values() if o.status == "resting"),
            )

    # -- mutators ---------------------------------------------------------------------------------
    def set_balance(self, cents: int) -> None:
        with self._lock:
            self._balance_cents = int(cents)
            self._touch()

    def set_portfolio_value(self, cents: int) -> None:
        """Override the portfolio value; later position changes adjust it by their exposure."""
        with self._lock:
            self._portfolio_micros = int(cents) * MICROS_PER_CENT
            self._touch()

    def add_position(
        self,
        ticker: str,
        position_centi: int,
        *,
        exposure_micros: int | None = None,
        realized_pnl_micros: int = 0,
        fees_paid_micros: int = 0,
        total_traded_micros: int | None = None,
        event_ticker: str | None = None,
    ) -> SimPosition:
        """Add (or replace) the position in ``ticker``; the portfolio value follows its exposure.

        Exposure defaults to the position marked at the market's fair price on the held leg
        (50c for tickers the exchange does not list, e.g. settled markets).
        """
        with self._lock:
            if exposure_micros is None:
                exposure_micros = abs(position_centi) * self._mark_micros(ticker, position_centi)
                exposure_micros //= 100
            position = SimPosition(
                ticker=ticker,
                event_ticker=event_ticker or self._event_ticker(ticker),
                position_centi=int(position_centi),
                exposure_micros=int(exposure_micros),
                realized_pnl_micros=int(realized_pnl_micros),
                fees_paid_micros=int(fees_paid_micros),
                total_traded_micros=int(
                    exposure_micros if total_traded_micros is None else total_traded_micros
                ),
                last_updated=self._clock(),
            )
            previous = self._positions.get(ticker)
            if previous is not None:
                self._portfolio_micros -= previous.exposure_micros
            self._positions[ticker] = position
            self._portfolio_micros += position.exposure_micros
            self._touch()
            return position

    def remove_position(self, ticker: str) -> bool:
        """Drop the position (its exposure leaves the portfolio value); False if there was none."""
        with self._lock:
            previous = self._positions.pop(ticker, None)
            if previous is None:
                return False
            self._portfolio_micros -= previous.exposure_micros
            self._touch()
            return True

    def add_resting_order(
        self,
        ticker: str,
        *,
        action: str = "buy",
        side: str = "yes",
        yes_price_micros: int | None = None,
        count_centi: int = 1000,
        client_order_id: str | None = None,
        order_id: str | None = None,
    ) -> str:
        """Rest a limit order on a listed market and return its order id.

        The price defaults to 5c away from the market's fair value on the passive side,
        snapped to the market's tick grid; an explicit price must be on the grid.
        """
        try:
            outcome_side, book_side = DIRECTIONS[(action, side)]
        except KeyError:
            raise ValueError(f"unknown order direction action={action!r} side={side!r}") from None
        if count_centi <= 0:
            raise ValueError(f"count_centi must be positive, got {count_centi}")
        try:
            market = self._markets.market(ticker)
        except KeyError:
            raise ValueError(f"unknown ticker {ticker!r}") from None
        if yes_price_micros is None:
            offset = -5 * CENT if book_side == "bid" else 5 * CENT
            yes_price_micros = min(max(market.fair_micros + offset, CENT), MICROS_PER_DOLLAR - CENT)
        if not 0 < yes_price_micros < MICROS_PER_DOLLAR or (
            yes_price_micros % market.tick_at(yes_price_micros)
        ):
            raise ValueError(
                f"price {format_dollars(yes_price_micros)} is off the tick grid of {ticker} "
                f"({market.price_level_structure})"
            )
        with self._lock:
            order_id = order_id or str(uuid.uuid4())
            if order_id in self._orders:
                raise ValueError(f"duplicate order id {order_id}")
            self._orders[order_id] = SimOrder(
                order_id=order_id,
                seq=self._next_seq,
                ticker=ticker,
                event_ticker=market.event_ticker,
                action=action,
                side=side,
                outcome_side=outcome_side,
                book_side=book_side,
                yes_price_micros=yes_price_micros,
                initial_centi=count_centi,
                fill_centi=0,
                remaining_centi=count_centi,
                status="resting",
                client_order_id=client_order_id or f"sim-{self._next_seq}",
                created_time=self._clock(),
            )
            self._next_seq += 1
            self._touch()
            return order_id

    def cancel_order(self, order_id: str) -> bool:
        """Cancel a resting order (remaining goes to 0); False if unknown or not resting."""
        return self._finish(order_id, "canceled")

    def execute_order(self, order_id: str) -> bool:
        """Fill a resting order completely (status ``executed``); False if not resting."""
        return self._finish(order_id, "executed")

    def add_positions(self, n: int) -> list[str]:
        """Add ``n`` positions on unlisted (e.g. long-settled) tickers, for pagination tests."""
        tickers: list[str] = []
        with self._lock:
            for _ in range(n):
                self._synthetic += 1
                index = self._synthetic
                ticker = f"KXSIMPAGE-26DEC31-T{index:05d}"
                size = (index % 7 + 1) * 100 * (1 if index % 2 else -1)
                self.add_position(ticker, size, fees_paid_micros=index * MICROS_PER_CENT)
                tickers.append(ticker)
        return tickers

    def add_orders(self, n: int) -> list[str]:
        """Rest ``n`` orders spread over the listed markets, for pagination tests."""
        tickers = self._markets.tickers()
        directions = list(DIRECTIONS)
        with self._lock:
            return [
                self.add_resting_order(
                    tickers[i % len(tickers)],
                    action=directions[i % 4][0],
                    side=directions[i % 4][1],
                    count_centi=100 + i,
                )
                for i in range(n)
            ]

    # -- helpers ----------------------------------------------------------------------------------
    def _finish(self, order_id: str, status: str) -> bool:
        with self._lock:
            order = self._orders.get(order_id)
            if order is None or order.status != "resting":
                return False
            filled = order.fill_centi + (order.remaining_centi if status == "executed" else 0)
            self._orders[order_id] = replace(
                order,
                status=status,
                fill_centi=filled,
                remaining_centi=0,
                last_update_time=self._clock(),
            )
            self._touch()
            return True

    def _mark_micros(self, ticker: str, position_centi: int) -> int:
        try:
            fair = self._markets.market(ticker).fair_micros
        except KeyError:
            fair = MICROS_PER_DOLLAR // 2
        return fair if position_centi >= 0 else MICROS_PER_DOLLAR - fair

    def _event_ticker(self, ticker: str) -> str:
        try:
            return self._markets.market(ticker).event_ticker
        except KeyError:
            return ticker.rsplit("-", 1)[0]

    def _touch(self) -> None:
        self._updated = self._clock()
