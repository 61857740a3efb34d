"""What each stage actor replies to the supervisor: its own immutable result, nothing shared."""

from __future__ import annotations

from typing import Literal

from messages.base import Message
from messages.metadata import SyncType, TradingClientSummary


class OrderbookReport(Message):
    """The orderbook stage's live metrics (asked for when READY is entered)."""

    markets_connected: int
    snapshots_received: int
    deltas_received: int
    connection_established: bool
    first_snapshot_received: bool

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


class TradingConnected(Message):
    """The trading API answered a signed request: the key works."""

    api_url: str
    exchange_active: bool
    trading_active: bool


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


class StageFailed(Message):
    """Envelope a stage (or the supervisor's own watchdog) sends when a stage failed."""

    stage: str
    generation: int
    error_type: str
    reason: str
    abnormal: bool = True


class StreamIncident(Message):
    """Something the orderbook stream healed (or could not) while running."""

    stage: str
    generation: int
    kind: Literal["disconnected", "reconnected", "gap", "resynced", "terminal_error", "failed"]
    detail: str
