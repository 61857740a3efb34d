"""The default stage list: the three concrete stages and their specs (``DEFAULT_STAGES``).

The spec type is ``actors.stage_spec``; this module is the only one that names the concrete
stages, so the core and the actor kit never import them (an import-linter contract).
"""

from __future__ import annotations

from typing import Any

from actors.kalshi_sync import KalshiSyncActor
from actors.orderbook_connect import OrderbookConnectActor
from actors.stage_spec import PeriodicWork, ReadyPart, StageSpec
from actors.trading_connect import TradingConnectActor
from messages.commands import RefreshMarkets, Report, RunSync
from messages.events import KalshiSyncComplete
from messages.metadata import TradingReadyMetadata
from messages.results import OrderbookReport, SyncCompleted, TradingConnected
from messages.services import AccountChanged
from messages.states import State

__all__ = ["DEFAULT_STAGES", "ORDERBOOK", "SYNC", "TRADING"]


def _orderbook_fields(report: OrderbookReport) -> dict[str, Any]:
    return {
        "markets_connected": report.markets_connected,
        "snapshots_received": report.snapshots_received,
        "deltas_received": report.deltas_received,
        "connection_established": report.connection_established,
        "first_snapshot_received": report.first_snapshot_received,
    }


def _orderbook_live(report: OrderbookReport, market_count: int) -> bool:
    """Live when every market still followed is, and at least one is: a market dropped as
    closed, settled or unknown (or being checked over REST) does not hold READY back, but
    READY with no live market at all would be a false green."""
    synced = report.stream_synced or report.markets_connected == market_count
    return report.connection_established and synced and report.markets_connected > 0


def _trading_fields(result: TradingConnected) -> dict[str, Any]:
    """The trading stage's keys inside READY's ``trading_client`` (the sync stage gives the
    seed's keys; this part refines them, so without the sync stage it adds nothing)."""
    return {
        "trading_client": {
            "tier": result.usage_tier,
            "write_budget": result.write_budget,
            "open_orders": len(result.open_orders),
            "order_group": result.order_group_id,
        }
    }


def _sync_fields(result: SyncCompleted) -> dict[str, Any]:
    """The seed's keys of READY's ``trading_client``: only what the sync stage set."""
    return {"trading_client": result.trading_client.model_dump(exclude_unset=True)}


def _sync_event(result: SyncCompleted) -> KalshiSyncComplete:
    return KalshiSyncComplete(
        sync_type=result.sync_type,
        state=result.state,
        changes=result.changes,
        shards=result.shards,
    )


ORDERBOOK = StageSpec(
    "orderbook",
    State.ORDERBOOK_CONNECT,
    OrderbookConnectActor,
    result_type=OrderbookReport,
    ready=ReadyPart(
        fields=_orderbook_fields,
        ask=Report(),
        live=_orderbook_live,
        absent=OrderbookReport.nothing_yet,
    ),
    entry_context=lambda markets: f"Connecting to {len(markets)} markets",
    hold_retry=lambda generation: RefreshMarkets(generation=generation),
    periodic=(
        PeriodicWork(
            name="discovery",
            interval=lambda config: config.discovery_refresh,
            command=lambda generation: RefreshMarkets(generation=generation),
        ),
    ),
)
TRADING = StageSpec(
    "trading",
    State.TRADING_CLIENT_CONNECT,
    TradingConnectActor,
    requires_trading=True,
    result_type=TradingConnected,
    ready=ReadyPart(fields=_trading_fields, refines=True),
    share=lambda result: result,  # the order gateway starts from it (on_trading_connected)
    entry_context=lambda markets: "Connecting to trading API",
)
SYNC = StageSpec(
    "sync",
    State.KALSHI_DATA_SYNC,
    KalshiSyncActor,
    requires_trading=True,
    result_type=SyncCompleted,
    ready=ReadyPart(
        fields=_sync_fields,
        metadata=TradingReadyMetadata,
    ),
    periodic=(
        PeriodicWork(
            name="sync",
            interval=lambda config: config.sync_interval,
            command=lambda generation: RunSync(generation=generation),
        ),
    ),
    announce=_sync_event,
    share=lambda result: AccountChanged(sync=result),
    entry_context=lambda markets: "Syncing positions and orders with Kalshi",
)

DEFAULT_STAGES: tuple[StageSpec, ...] = (ORDERBOOK, TRADING, SYNC)
