"""The embedded exchange's demo trading account: balance, positions and orders.

It is the truth a ``KalshiSyncActor`` must report after a sync. The state itself lives in
the matching engine (``MarketSet.engine``) as the member ``Account.member``, so the
member's orders rest in the public books and its fills move its cash and positions; this
class reads it as immutable snapshots and keeps the test mutators (which act on the engine,
a few through its fixture calls) under the exchange's one lock, ``MarketSet.lock``; a mutator
that moves a public book hands its Outcome to ``MarketSet.publish`` for the WS feed.
Units are the exchange's own: balance and portfolio value in integer cents (as the REST
API reports them), money otherwise in integer micro-dollars and counts in integer
centi-contracts, formatted to Kalshi's strings only at the wire.

Collateral is held per exchange shard (``exchange_index``, [SH]): each shard has its own
balance and portfolio value, and every position and order carries the shard of its market.
Reads without a shard return totals.

Orders carry both the 2026 direction fields (``outcome_side``/``book_side``) and the
deprecated ``side``/``action``, derived from one table so they can never disagree.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from kalshi_api.fixed_point import MICROS_PER_DOLLAR, format_dollars
from kalshi_sim.engine_types import EngineOrder, OrderRequest, Position, Reject
from kalshi_sim.markets import CENT, SHARD_DESCRIPTIONS, MarketSet
from kalshi_sim.participant import HOUSE

MICROS_PER_CENT = MICROS_PER_DOLLAR // 100
DEMO_BALANCE_CENTS = 50_000
DEMO_SHARD_BALANCES = {0: 35_000, 2: 10_000, 3: 5_000}
"""The demo's cash per shard (totalling ``DEMO_BALANCE_CENTS``), so a sync must read them all."""
_DEMO_EPOCH = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

DIRECTIONS: dict[tuple[str, str], tuple[str, str]] = {
    ("buy", "yes"): ("yes", "bid"),
    ("sell", "no"): ("yes", "bid"),
    ("buy", "no"): ("no", "ask"),
    ("sell", "yes"): ("no", "ask"),
}
"""``(action, side) -> (outcome_side, book_side)``, Kalshi's order direction table."""

ORDER_STATUSES = ("resting", "canceled", "executed")
DEMO_MEMBER = "demo"
"""The engine member the demo key trades as (the supervisor's account)."""
_DEFAULT_DIRECTION = {"bid": ("buy", "yes"), "ask": ("buy", "no")}
"""The deprecated ``action``/``side`` shown for an order placed without them (V2 creates)."""


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
    exchange_index: int = 0


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
    exchange_index: int = 0

    @property
    def no_price_micros(self) -> int:
        return MICROS_PER_DOLLAR - self.yes_price_micros


@dataclass(frozen=True, slots=True)
class ShardSnapshot:
    """One shard's collateral: what ``/portfolio/balance?exchange_index=N`` reports."""

    exchange_index: int
    balance_cents: int
    portfolio_value_cents: int


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """Everything a sync reads, taken atomically; money fields are totals across shards."""

    balance_cents: int
    balance_dollars: str
    portfolio_value_cents: int
    updated_ts: int
    positions: tuple[SimPosition, ...]
    orders: tuple[SimOrder, ...]
    shards: tuple[ShardSnapshot, ...] = ()

    @property
    def resting_orders(self) -> tuple[SimOrder, ...]:
        return tuple(o for o in self.orders if o.status == "resting")


@dataclass(frozen=True, slots=True)
class AccountSummary:
    """The four numbers a sync reports, taken atomically: what a sync result must equal."""

    balance_cents: int
    """Total across shards, like ``portfolio_value_cents``."""
    portfolio_value_cents: int
    open_positions: int
    """Positions holding contracts (``position != 0``); closed-out rows are not counted."""
    resting_orders: int


class Account:
    """Thread-safe view (and test mutators) of one engine member's account."""

    def __init__(
        self,
        markets: MarketSet,
        *,
        balance_cents: int = 0,
        portfolio_value_cents: int = 0,
        clock: Callable[[], datetime] | None = None,
        member: str = DEMO_MEMBER,
    ) -> None:
        self._markets = markets
        self._engine = markets.engine
        self._lock = markets.lock
        self._clock = clock or (lambda: datetime.now(UTC))
        self.member = member
        """The engine member whose account this is (REST/WS requests signed by the demo key
        act as it)."""
        self._directions: dict[str, tuple[str, str]] = {}
        self._portfolio_offset: dict[int, int] = dict.fromkeys(SHARD_DESCRIPTIONS, 0)
        """Micro-dollars added to a shard's summed exposures (``set_portfolio_value``)."""
        self._synthetic = 0
        self._client_ids = 0
        with self._lock:
            # A new Account is a fresh one, even over books where the member traded before.
            markets.publish(self._engine.reset_member(member, self._now_ms()))
            self._engine.open_account(member, dict.fromkeys(SHARD_DESCRIPTIONS, 0))
            self._engine.set_cash(member, balance_cents * MICROS_PER_CENT, 0)
            self._portfolio_offset[0] = portfolio_value_cents * MICROS_PER_CENT
            self._updated = self._clock()

    @classmethod
    def demo(cls, markets: MarketSet, seed: int) -> Account:
        """The account ``kalshi-supervisor run`` shows: $500.00 cash, 3 positions, 4 orders.

        Deterministic in ``seed`` (ids, sizes, timestamps), so two exchanges built with
        the same seed report identical portfolios. Portfolio value is the sum of the
        positions' exposures, truncated to cents like Kalshi's. The orders are real resting
        orders in the books (on markets whose books the stream moves, never on the
        deliberately empty or one-sided ones), holding no cash.
        """
        rng = random.Random(seed ^ 0xACC0)
        clock_now = _DEMO_EPOCH
        account = cls(markets, clock=lambda: clock_now)
        for shard, cents in DEMO_SHARD_BALANCES.items():
            account.set_balance(cents, exchange_index=shard)
        tickers = markets.tickers()
        for index, size in enumerate((1000, -2500, 1250)[: len(tickers)]):
            ticker = tickers[index]
            account.add_position(
                ticker,
                size,
                realized_pnl_micros=rng.randint(-300, 300) * MICROS_PER_CENT,
                fees_paid_micros=rng.randint(1, 150) * MICROS_PER_CENT,
            )
        moving = [m.ticker for m in markets.markets() if not m.frozen_book] or tickers
        directions = (("buy", "yes"), ("buy", "no"), ("sell", "yes"), ("sell", "no"))
        for index, (action, side) in enumerate(directions):
            clock_now = _DEMO_EPOCH + timedelta(minutes=index + 1)
            account.add_resting_order(
                moving[index % len(moving)],
                action=action,
                side=side,
                count_centi=rng.choice((500, 1000, 250, 2000)),
                order_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                client_order_id=f"demo-{seed}-{index + 1}",
            )
        account._clock = lambda: datetime.now(UTC)
        return account

    # -- reads ------------------------------------------------------------------------------------
    def shard_indexes(self) -> tuple[int, ...]:
        with self._lock:
            return self._engine.shards(self.member)

    def balance_cents(self, exchange_index: int | None = None) -> int:
        """Cash on one shard, or the total across shards (each shard truncated to cents)."""
        with self._lock:
            engine = self._engine
            if exchange_index is None:
                return sum(
                    engine.cash_micros(self.member, shard) // MICROS_PER_CENT
                    for shard in engine.shards(self.member)
                )
            return engine.cash_micros(self.member, exchange_index) // MICROS_PER_CENT

    def balance_dollars(self, exchange_index: int | None = None) -> str:
        """The balance as Kalshi's ``balance_dollars`` string (4 decimals)."""
        with self._lock:
            return format_dollars(self.balance_cents(exchange_index) * MICROS_PER_CENT)

    def portfolio_value_cents(self, exchange_index: int | None = None) -> int:
        """Value of positions in cents, one shard's or the total of every shard's.

        Each shard's value is truncated to cents (like ``balance``) before totalling, so the
        total equals what a client gets by adding up the per-shard answers.
        """
        with self._lock:
            values = self._portfolio_micros()
            if exchange_index is None:
                return sum(micros // MICROS_PER_CENT for micros in values.values())
            return values.get(exchange_index, 0) // MICROS_PER_CENT

    def balance_response(self, exchange_index: int | None = None) -> dict[str, object]:
        """The body of ``GET /portfolio/balance`` [SH].

        Without ``exchange_index``: ``balance`` is the total across shards, but
        ``portfolio_value`` covers only the requested shard, which is the default shard 0
        when none is named. A client must ask each shard to total its portfolio value.
        """
        with self._lock:
            value_shard = 0 if exchange_index is None else exchange_index
            return {
                "balance": self.balance_cents(exchange_index),
                "balance_dollars": self.balance_dollars(exchange_index),
                "portfolio_value": self.portfolio_value_cents(value_shard),
                "updated_ts": self.updated_ts(),
                "balance_breakdown": [
                    {"exchange_index": i, "balance": self.balance_dollars(i)}
                    for i in self.shard_indexes()
                    if exchange_index is None or i == exchange_index
                ],
            }

    def shard_snapshots(self) -> tuple[ShardSnapshot, ...]:
        with self._lock:
            return tuple(
                ShardSnapshot(i, self.balance_cents(i), self.portfolio_value_cents(i))
                for i in self.shard_indexes()
            )

    def updated_ts(self) -> int:
        """Unix seconds of the last change (Kalshi's ``updated_ts``; seconds is the likely
        unit): a mutator's, or the engine's (an order, a fill) if later."""
        with self._lock:
            touched = int(self._updated.timestamp())
            return max(touched, self._engine.updated_ms(self.member) // 1000)

    def positions(self) -> list[SimPosition]:
        """All positions, sorted by ticker (the order listings page through)."""
        with self._lock:
            views = self._engine.positions(self.member)
        return sorted((_sim_position(p) for p in views), key=lambda p: p.ticker)

    def position(self, ticker: str) -> SimPosition | None:
        with self._lock:
            view = self._engine.position(self.member, ticker)
        return None if view is None else _sim_position(view)

    def orders(self, status: str | None = None) -> list[SimOrder]:
        """Orders in creation order, optionally only those with ``status``."""
        with self._lock:
            views = self._engine.orders(self.member, status=status)
            directions = self._directions
            return [_sim_order(o, directions.get(o.order_id)) for o in views]

    def resting_orders(self) -> list[SimOrder]:
        return self.orders("resting")

    def order(self, order_id: str) -> SimOrder | None:
        with self._lock:
            try:
                view = self._engine.order(self.member, order_id)
            except Reject:
                return None
            return _sim_order(view, self._directions.get(order_id))

    def direction(self, order_id: str) -> tuple[str, str] | None:
        """The deprecated ``(action, side)`` a fixture created the order with (None: none was
        given; REST derives them from the book side)."""
        with self._lock:
            return self._directions.get(order_id)

    def snapshot(self) -> AccountSnapshot:
        with self._lock:
            return AccountSnapshot(
                balance_cents=self.balance_cents(),
                balance_dollars=self.balance_dollars(),
                portfolio_value_cents=self.portfolio_value_cents(),
                updated_ts=self.updated_ts(),
                positions=tuple(self.positions()),
                orders=tuple(self.orders()),
                shards=self.shard_snapshots(),
            )

    def summary(self) -> AccountSummary:
        with self._lock:
            engine = self._engine
            return AccountSummary(
                balance_cents=self.balance_cents(),
                portfolio_value_cents=self.portfolio_value_cents(),
                open_positions=sum(1 for p in engine.positions(self.member) if p.position_centi),
                resting_orders=engine.live_order_count(self.member),
            )

    # -- mutators ---------------------------------------------------------------------------------
    def set_balance(self, cents: int, *, exchange_index: int = 0) -> None:
        """Set one shard's cash (any integer: tests set impossible values on purpose)."""
        with self._lock:
            self._engine.set_cash(self.member, int(cents) * MICROS_PER_CENT, exchange_index)
            self._portfolio_offset.setdefault(exchange_index, 0)
            self._touch()

    def set_portfolio_value(self, cents: int, *, exchange_index: int = 0) -> None:
        """Override a shard's portfolio value; later position changes adjust it by exposure."""
        with self._lock:
            exposure = self._exposures().get(exchange_index, 0)
            self._portfolio_offset[exchange_index] = int(cents) * MICROS_PER_CENT - exposure
            if exchange_index not in self._engine.shards(self.member):
                self._engine.set_cash(self.member, 0, exchange_index)
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
        exchange_index: int | None = None,
    ) -> SimPosition:
        """Add (or replace) the position in ``ticker``; the portfolio value follows its exposure.

        Exposure defaults to the position marked at the market's fair price on the held leg
        (50c for tickers the exchange does not list, e.g. settled markets). A fixture: the
        engine takes it as is, without a counterparty.
        """
        with self._lock:
            if exposure_micros is None:
                exposure_micros = abs(position_centi) * self._mark_micros(ticker, position_centi)
                exposure_micros //= 100
            shard = self._shard_of(ticker) if exchange_index is None else exchange_index
            view = self._engine.set_position(
                self.member,
                ticker,
                int(position_centi),
                cost_micros=int(exposure_micros),
                realized_pnl_micros=int(realized_pnl_micros),
                fees_paid_micros=int(fees_paid_micros),
                total_traded_micros=int(
                    exposure_micros if total_traded_micros is None else total_traded_micros
                ),
                event_ticker=event_ticker or self._event_ticker(ticker),
                exchange_index=shard,
                now_ms=self._now_ms(),
            )
            if shard not in self._engine.shards(self.member):
                self._engine.set_cash(self.member, 0, shard)
            self._touch()
            return _sim_position(view)

    def remove_position(self, ticker: str) -> bool:
        """Drop the position (its exposure leaves the portfolio value); False if there was none."""
        with self._lock:
            removed = self._engine.remove_position(self.member, ticker, self._now_ms())
            if removed:
                self._touch()
            return removed

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
        snapped to the market's tick grid; an explicit price must be on the grid. A fixture:
        the order holds no cash (tests set balances independently), but it is a real order
        in the book and trades if its price crosses.
        """
        try:
            _, book_side = DIRECTIONS[(action, side)]
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
            if client_order_id is None:
                self._client_ids += 1
                client_order_id = f"sim-{self.member}-{self._client_ids}"
            request = OrderRequest(
                self.member,
                ticker,
                book_side,  # type: ignore[arg-type]
                count_centi,
                yes_price_micros,
                client_order_id=client_order_id,
            )
            try:
                outcome = self._engine.place(
                    request, self._now_ms(), order_id=order_id, funded=False, ignore_pause=True
                )
            except Reject as reject:
                raise ValueError(f"order refused: {reject}") from None
            assert outcome.order is not None
            self._directions[outcome.order.order_id] = (action, side)
            self._markets.publish(outcome)
            self._touch()
            return outcome.order.order_id

    def cancel_order(self, order_id: str) -> bool:
        """Cancel a resting order (remaining goes to 0); False if unknown or not resting."""
        with self._lock:
            try:
                outcome = self._engine.cancel(
                    self.member, order_id, self._now_ms(), ignore_pause=True
                )
            except Reject:
                return False
            self._markets.publish(outcome)
            self._touch()
            return True

    def execute_order(self, order_id: str) -> bool:
        """Fill a resting order completely now (status ``executed``), the house taking the
        other side at its price; False if not resting."""
        with self._lock:
            try:
                outcome = self._engine.fill_resting(self.member, order_id, self._now_ms(), HOUSE)
            except Reject:
                return False
            self._markets.publish(outcome)
            self._touch()
            return True

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
    def _exposures(self) -> dict[int, int]:
        exposures: dict[int, int] = {}
        for position in self._engine.positions(self.member):
            shard = position.exchange_index
            exposures[shard] = exposures.get(shard, 0) + position.cost_micros
        return exposures

    def _portfolio_micros(self) -> dict[int, int]:
        values = dict(self._portfolio_offset)
        for shard in self._engine.shards(self.member):
            values.setdefault(shard, 0)
        for shard, exposure in self._exposures().items():
            values[shard] = values.get(shard, 0) + exposure
        return values

    def _now_ms(self) -> int:
        return int(self._clock().timestamp() * 1000)

    def _shard_of(self, ticker: str) -> int:
        try:
            return self._markets.market(ticker).exchange_index
        except KeyError:
            return 0

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


def _datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _sim_position(view: Position) -> SimPosition:
    return SimPosition(
        ticker=view.ticker,
        event_ticker=view.event_ticker,
        position_centi=view.position_centi,
        exposure_micros=view.cost_micros,
        realized_pnl_micros=view.realized_pnl_micros,
        fees_paid_micros=view.fees_paid_micros,
        total_traded_micros=view.total_traded_micros,
        last_updated=_datetime(view.last_update_ms),
        exchange_index=view.exchange_index,
    )


def _sim_order(view: EngineOrder, direction: tuple[str, str] | None) -> SimOrder:
    action, side = direction or _DEFAULT_DIRECTION[view.side]
    outcome_side, book_side = DIRECTIONS[(action, side)]
    return SimOrder(
        order_id=view.order_id,
        seq=view.seq,
        ticker=view.ticker,
        event_ticker=view.event_ticker,
        action=action,
        side=side,
        outcome_side=outcome_side,
        book_side=book_side,
        yes_price_micros=view.price_micros,
        initial_centi=view.initial_centi,
        fill_centi=view.fill_centi,
        remaining_centi=view.remaining_centi,
        status=view.status,
        client_order_id=view.client_order_id or "",
        created_time=_datetime(view.created_ms),
        last_update_time=(
            None if view.last_update_ms == view.created_ms else _datetime(view.last_update_ms)
        ),
        exchange_index=view.exchange_index,
    )
