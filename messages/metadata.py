"""Per-transition metadata: one model per transition, with exactly the seed's fields.

Each model is built by the stage that owns the facts in it and is never updated
afterwards. There is no shared dictionary anywhere: a transition carries one of these
instances and nothing else, and the state machine checks that it is the right class for
the state being entered.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field

from messages.base import Message
from messages.states import State

TradingMode = Literal["paper", "live"]
SyncType = Literal["initial", "update"]


class StartupMetadata(Message):
    """STARTUP -> INITIALIZING: how this process was configured."""

    environment: str
    host: str
    log_level: str
    mode: Literal["config", "discovery"]


class OrderbookConnectMetadata(Message):
    """INITIALIZING (or READY, on reconnection) -> ORDERBOOK_CONNECT: what we subscribe to."""

    ws_url: str
    markets: tuple[str, ...]
    market_count: int = Field(ge=0)
    environment: str

    @staticmethod
    def summarize_markets(tickers: tuple[str, ...] | list[str]) -> tuple[str, ...]:
        """The seed's display form: the first two tickers, then ``"...and N more"``."""
        head = tuple(tickers[:2])
        rest = len(tickers) - len(head)
        return (*head, f"...and {rest} more") if rest > 0 else head


class TradingClientConnectMetadata(Message):
    """ORDERBOOK_CONNECT -> TRADING_CLIENT_CONNECT: which trading API we are about to reach."""

    mode: TradingMode
    environment: str
    api_url: str


class KalshiDataSyncMetadata(Message):
    """TRADING_CLIENT_CONNECT -> KALSHI_DATA_SYNC: which kind of sync is starting."""

    mode: TradingMode
    sync_type: SyncType


class WriteBudget(Message):
    """The account's write token bucket as ``/account/limits`` says: tokens per second and
    the most it holds (exact decimals: the exchange sends them as decimal strings)."""

    refill_per_second: Decimal
    capacity: Decimal


class TradingClientSummary(Message):
    """READY's nested trading summary.

    The seed's six keys come from the sync stage's own results; ``tier``, ``write_budget``,
    ``open_orders`` and ``order_group`` from the trading stage's (its ``ReadyPart``): each
    stage contributes what it knows, and READY merges the two halves of this one model.
    None where the trading stage did not say (a hand-built summary, a test rig).
    """

    connected: bool
    mode: TradingMode
    balance: int
    portfolio_value: int
    positions: int
    orders: int
    tier: str | None = None
    """The account's API usage tier (``/account/limits``)."""
    write_budget: WriteBudget | None = None
    open_orders: int | None = None
    """Resting orders this process knows after the startup policy (ours plus adopted)."""
    order_group: str | None = None
    """The session's order group id (None when none was created: dry run, trading halted)."""


class ReadyMetadata(Message):
    """-> READY with trading disabled: orderbook metrics only, no trading field at all."""

    markets_connected: int
    snapshots_received: int
    deltas_received: int
    connection_established: bool
    first_snapshot_received: bool
    environment: str


class TradingReadyMetadata(ReadyMetadata):
    """-> READY with trading enabled: the orderbook metrics plus the trading summary."""

    trading_client: TradingClientSummary


class ErrorMetadata(Message):
    """-> ERROR: what failed and what happens next; nothing from any other state."""

    failed_state: State
    actor: str
    error_type: str
    reason: str
    restart_attempt: int
    next_restart_in_ms: int | None
    """None when the supervisor is giving up instead of restarting."""


class RecoveryMetadata(Message):
    """ERROR -> STARTUP: which stages are being restarted, on which attempt."""

    restart_attempt: int
    restarting: tuple[str, ...]


class ShutdownMetadata(Message):
    """-> SHUTDOWN (terminal): why the process is stopping."""

    reason: str


StateMetadata = (
    StartupMetadata
    | OrderbookConnectMetadata
    | TradingClientConnectMetadata
    | KalshiDataSyncMetadata
    | ReadyMetadata
    | TradingReadyMetadata
    | ErrorMetadata
    | RecoveryMetadata
    | ShutdownMetadata
)

METADATA_FOR_STATE: dict[State, tuple[type[Message], ...]] = {
    State.INITIALIZING: (StartupMetadata,),
    State.ORDERBOOK_CONNECT: (OrderbookConnectMetadata,),
    State.TRADING_CLIENT_CONNECT: (TradingClientConnectMetadata,),
    State.KALSHI_DATA_SYNC: (KalshiDataSyncMetadata,),
    State.READY: (ReadyMetadata, TradingReadyMetadata),
    State.ERROR: (ErrorMetadata,),
    State.STARTUP: (RecoveryMetadata,),
    State.SHUTDOWN: (ShutdownMetadata,),
}
"""The only metadata classes a transition into each state may carry (checked exactly, by type)."""
