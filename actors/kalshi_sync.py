"""KALSHI_DATA_SYNC: balance, portfolio value, every position and every resting order.

The actor remembers only its own previous result, so an update sync can report what
changed since the last one; a restarted actor starts over with an ``initial`` sync.
"""

from __future__ import annotations

from typing import Any

from actors.base import StageActor
from actors.trading_connect import ConnectionLostError
from kalshi_api.rest import KalshiRestClient
from messages.commands import RunSync
from messages.metadata import KalshiDataSyncMetadata, TradingClientSummary
from messages.results import SyncChanges, SyncCompleted, SyncState
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
        balance = self._client.get_balance()
        positions = [p for p in self._client.get_positions() if p.position_fp != 0]
        orders = self._client.get_orders(status="resting")
        state = SyncState(
            balance=balance.balance,
            portfolio_value=balance.portfolio_value,
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
            )
        )
