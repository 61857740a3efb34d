"""TRADING_CLIENT_CONNECT: reach the trading REST API with a signed request.

Fetching the balance is the cheapest request that proves the key is accepted; exchange
status tells whether trading is open at all. Nothing here is kept as metadata for later
states: the sync stage fetches the account itself.
"""

from __future__ import annotations

from actors.base import StageActor
from kalshi_api.errors import ExchangePausedError
from kalshi_api.models import ExchangeStatus
from kalshi_api.rest import KalshiRestClient
from messages.metadata import TradingClientConnectMetadata
from messages.results import TradingConnected
from messages.states import State


class ConnectionLostError(RuntimeError):
    """The stage's connection was dropped (the ``disconnect`` fault, or the link died)."""


def exchange_status_or_pause(client: KalshiRestClient) -> ExchangeStatus:
    """The exchange status, raising :class:`ExchangePausedError` during an exchange pause.

    The REST client hands back the 503 status body as a typed status; the stage cannot do
    its work while the exchange refuses everything, so it stops with a typed, one-line
    error the supervisor can tell apart from a failure.
    """
    status = client.get_exchange_status()
    if status.unavailable:
        resume = status.exchange_estimated_resume_time
        when = f", estimated resume {resume.isoformat()}" if resume else ""
        raise ExchangePausedError(
            f"exchange paused (HTTP {status.http_status}{when})",
            status=status.http_status,
            resume_time=resume,
        )
    return status


class TradingConnectActor(StageActor):
    stage_name = "trading"
    stage_state = State.TRADING_CLIENT_CONNECT

    def open(self) -> None:
        self._client: KalshiRestClient | None = None

    def describe(self) -> TradingClientConnectMetadata:
        return TradingClientConnectMetadata(
            mode=self.context.mode,
            environment=self.context.environment,
            api_url=self.context.rest_url,
        )

    def connect(self, generation: int) -> None:
        if self._client is None:
            self._client = KalshiRestClient(
                self.context.rest_url, self.context.signer, timeout=self.context.request_timeout
            )
        status = exchange_status_or_pause(self._client)  # a 503 pause: StageActor waits
        condition = self.observe_exchange(status)
        if condition.exchange_paused:
            self.wait_for_exchange(condition, "exchange paused: the trading API refuses requests")
            return
        self._client.get_balance()
        self.succeed(
            TradingConnected(
                api_url=self.context.rest_url,
                exchange_active=status.exchange_active,
                trading_active=status.trading_active,
            )
        )

    def disconnect(self) -> None:
        self.close()
        raise ConnectionLostError("trading API connection dropped")

    def close(self) -> None:
        client, self._client = getattr(self, "_client", None), None
        if client is not None:
            client.close()
