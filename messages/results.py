"""What each stage actor replies to the supervisor: its own immutable result, nothing shared."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from messages.base import Message
from messages.metadata import SyncType, TradingClientSummary, WriteBudget
from messages.orders import ExchangeOrder

StartupPolicy = Literal["cancel", "adopt", "leave"]
"""What the trading stage does with resting orders this process does not know."""


class OrderbookReport(Message):
    """The orderbook stage's live metrics (asked for when READY is entered)."""

    markets_connected: int
    """Markets whose book is live right now (dropped and unsynced markets excluded)."""
    snapshots_received: int
    deltas_received: int
    connection_established: bool
    first_snapshot_received: bool
    stream_synced: bool = False
    """Every market still followed is live (dropped ones, and ones being checked over
    REST, do not hold this back): what READY's liveness waits for."""
    markets_dropped: int = 0
    """Markets removed for good (closed, settled, determined or unknown)."""
    counters: dict[str, int] = {}
    """Every stream counter (malformed, orphan, duplicate, discarded, gaps, resyncs,
    reconnects, dropped markets, stale, error frames...), for ``/status`` and events."""

    @classmethod
    def nothing_yet(cls) -> OrderbookReport:
        """The report of a stage that has not connected (no stream, no books)."""
        return cls(
            markets_connected=0,
            snapshots_received=0,
            deltas_received=0,
            connection_established=False,
            first_snapshot_received=False,
        )


class WriteCost(Message):
    """One exception to the default write cost (``/account/endpoint_costs``)."""

    method: str
    path: str
    cost: Decimal


class TradingConnected(Message):
    """The trading connection is up: the key works, the account's limits are known, the
    session's order group exists, the startup policy was applied to resting orders we did
    not know, and the private channels are open (they stay open while the stage lives).

    Shared with services (the order gateway sizes its write pacer from ``write_budget``
    and ``write_costs``, puts its orders in ``order_group_id`` and starts from
    ``open_orders``). Every count is exact; nothing secret is in here.
    """

    api_url: str
    exchange_active: bool
    trading_active: bool
    usage_tier: str | None = None
    write_budget: WriteBudget | None = None
    default_write_cost: Decimal | None = None
    write_costs: tuple[WriteCost, ...] = ()
    order_group_id: str | None = None
    order_group_limit: Decimal | None = None
    """Contracts the group lets fill per rolling 15 s (``--order-group-limit``)."""
    open_orders: tuple[ExchangeOrder, ...] = ()
    """Resting orders after the startup policy that this process owns: ours (the id
    allocator's) plus, under ``adopt``, the unknown ones."""
    startup_policy: StartupPolicy = "cancel"
    cancelled: int = 0
    adopted: int = 0
    left: int = 0
    trading_allowed: bool = True
    """False in production without ``--allow-production-trading``: reads only, trading
    HALTED (no group created, nothing cancelled)."""
    dry_run: bool = False
    """``--dry-run``: orders are validated and logged, never sent (the gateway honours it)."""
    private_channels: tuple[str, ...] = ()
    """The private channels subscribed when the stage succeeded (empty: not yet connected)."""


class SyncState(Message):
    """Account state after a sync: money in integer cents, positions and orders as counts."""

    balance: int
    portfolio_value: int
    positions: int
    orders: int


class ShardAccount(Message):
    """One exchange shard's collateral after a sync (integer cents) and its trading flag."""

    exchange_index: int
    balance: int
    portfolio_value: int
    trading_active: bool


class SyncChanges(Message):
    """Signed differences against the previous sync, as the seed's strings (``"+120"``)."""

    balance_change: str
    portfolio_change: str
    positions_change: str
    orders_change: str

    @classmethod
    def between(cls, before: SyncState, after: SyncState) -> SyncChanges:
        return cls(
            balance_change=f"{after.balance - before.balance:+d}",
            portfolio_change=f"{after.portfolio_value - before.portfolio_value:+d}",
            positions_change=f"{after.positions - before.positions:+d}",
            orders_change=f"{after.orders - before.orders:+d}",
        )


class SyncCompleted(Message):
    """The sync stage fetched balance, positions and resting orders."""

    sync_type: SyncType
    state: SyncState
    changes: SyncChanges | None
    trading_client: TradingClientSummary
    shards: tuple[ShardAccount, ...] = ()
    """Per-shard breakdown; ``state`` holds the totals across these shards."""


class StageSucceeded(Message):
    """Envelope a stage tells the supervisor when its state's work is done."""

    stage: str
    generation: int
    result: Message
    """The stage's own result model; the supervisor checks the class it expects per stage."""


class ChildFailed(Message):
    """A supervised child (stage or service) failed: told by the child itself, whatever
    its kind; the supervisor's own watchdogs reach the same decision without it."""

    child: str
    generation: int
    error_type: str
    reason: str
    abnormal: bool = True


class StreamIncident(Message):
    """Something the orderbook stream healed (or could not) while running."""

    stage: str
    generation: int
    kind: Literal[
        "disconnected",
        "reconnected",
        "gap",
        "resynced",
        "terminal_error",
        "failed",
        "market_dropped",
        "market_added",
        "stale",
        "no_live_markets",
    ]
    detail: str
    counters: dict[str, int] = {}
    """The stream's counters when it happened (see ``OrderbookReport.counters``)."""

    # What each kind means to the supervisor: read here, so the core names no kind.
    @property
    def interrupts(self) -> bool:
        """The stream dropped: READY survives it for ``heal_timeout``."""
        return self.kind == "disconnected"

    @property
    def heals(self) -> bool:
        """The stream is whole again (a dropped or gapped stream recovered in place)."""
        return self.kind in ("reconnected", "resynced")

    @property
    def is_notice(self) -> bool:
        """Published as it comes, in any state (a market dropped at startup matters)."""
        return self.kind in ("market_dropped", "market_added", "stale")

    @property
    def holds(self) -> bool:
        """The stage has nothing to work on (no live market): hold it, do not fail it."""
        return self.kind == "no_live_markets"


class TopOfBook(Message):
    """One market's top of book for the console: exact decimal strings, never floats.

    The YES ask is implied by the best NO bid (``1 - p``) and its size is that bid's size.
    """

    ticker: str
    stale: bool
    """The stream marks a book stale until its first snapshot and while a gap is repaired."""
    best_yes_bid: str | None
    best_yes_bid_size: str | None
    best_yes_ask: str | None
    best_yes_ask_size: str | None
    yes_levels: int
    no_levels: int
    unchanged_for_seconds: float
    """Seconds since the book was last seen to change (resolution: the interval between reads)."""


class BookTopsReport(Message):
    """Every book's top, read on the stream thread."""

    books: tuple[TopOfBook, ...]


class PriceLevel(Message):
    price: str
    """Dollars as an exact decimal string (``"0.5600"``)."""
    size: str
    """Contracts as an exact decimal string (``"12.00"``)."""


class BookDepthReport(Message):
    """One market's full ladders in YES terms, best first on each side."""

    ticker: str
    stale: bool
    unchanged_for_seconds: float
    yes_bids: tuple[PriceLevel, ...]
    """YES bids, highest price first."""
    yes_asks: tuple[PriceLevel, ...]
    """YES asks (NO bids at ``1 - p``), lowest price first."""


class StreamHealthReport(Message):
    """The orderbook stream's counters, kept generic so new counters flow through untouched."""

    connected: bool
    markets: int
    live_markets: int
    counters: dict[str, int]
    """Every integer counter of the stream's ``StreamStats``, by its attribute name."""
    last_frame_age_seconds: float | None

    @classmethod
    def nothing_yet(cls) -> StreamHealthReport:
        return cls(
            connected=False, markets=0, live_markets=0, counters={}, last_frame_age_seconds=None
        )
