"""The supervisor's states, named exactly as the seed's state machine names them."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    STARTUP = "startup"
    INITIALIZING = "initializing"
    ORDERBOOK_CONNECT = "orderbook_connect"
    TRADING_CLIENT_CONNECT = "trading_client_connect"
    KALSHI_DATA_SYNC = "kalshi_data_sync"
    READY = "ready"
    ERROR = "error"
    SHUTDOWN = "shutdown"
