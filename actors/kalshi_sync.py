"""KALSHI_DATA_SYNC: balance, portfolio value, every position and every resting order.

Collateral is held per exchange shard, and Kalshi's unscoped ``portfolio_value`` covers
only the default shard, so the sync reads every shard the exchange lists and reports
totals (the seed's keys) plus a per-shard breakdown.

The actor remembers only its own previous result, so an update sync can report what
changed since the last one; a restarted actor starts over with an ``initial`` sync.
"""

from __future__ import annotations

from typing import Any

from actors.base import StageActor
from actors.trading_connect import ConnectionLostError, exchange_status_or_pause
from kalshi_api.rest import KalshiRestClient
from kalshi_api.shards import read_account_money
from messages.commands import RunSync
from messages.metadata import KalshiDataSyncMetadata, TradingClientSummary
from messages.results import ShardAccount, SyncChanges, SyncCompleted, SyncState
from messages.states import State


class KalshiSyncActor(StageActor):
    stage_name = "sync"
    stage_state = State.KALSHI_DATA_SYNC

    def open(self) -> None:
        self._client: KalshiRestClient | None = None
        self._last: SyncState | None = None

    def describe(self) -> KalshiDataSyncMetadata:
        return KalshiDataSyncMetadata(
            mode=self.context.mode, sync_type="initial" if self._last is None else "update"
        )

    def connect(self, generation: int) -> None:
        self._sync()

    def handle(self, message: Any) -> Any:
        if isinstance(message, RunSync):
            self._sync()
            return None
        return super().handle(message)

    def disconnect(self) -> None:
        self.close()
        raise ConnectionLostError("sync API connection dropped")

    def close(self) -> None:
        client, self._client = getattr(self, "_client", None), None
        if client is not None:
            client.close()

    def _sync(self) -> None:
        if self._client is None:
            self._client = KalshiRestClient(
                self.context.rest_url, self.context.signer, timeout=self.context.request_timeout
            )
        status = exchange_status_or_pause(self._client)  # a 503 pause: StageActor waits
        condition = self.observe_exchange(status)
        if condition.exchange_paused:
            self.wait_for_exchange(condition, "exchange paused: the account cannot be read")
            return
        money = read_account_money(self._client, status)
        positions = [p for p in self._client.get_positions() if p.position_fp != 0]
        orders = self._client.get_orders(status="resting")
        state = SyncState(
            balance=money.balance,
            portfolio_value=money.portfolio_value,
            positions=len(positions),
            orders=len(orders),
        )
        previous, self._last = self._last, state
        self.succeed(
            SyncCompleted(
                sync_type="initial" if previous is None else "update",
                state=state,
                changes=None if previous is None else SyncChanges.between(previous, state),
                trading_client=TradingClientSummary(
                    connected=True,
                    mode=self.context.mode,
                    balance=state.balance,
                    portfolio_value=state.portfolio_value,
                    positions=state.positions,
                    orders=state.orders,
                ),
                shards=tuple(
                    ShardAccount(
                        exchange_index=s.exchange_index,
                        balance=s.balance,
                        portfolio_value=s.portfolio_value,
                        trading_active=s.trading_active,
                    )
                    for s in money.shards
                ),
            )
        )
