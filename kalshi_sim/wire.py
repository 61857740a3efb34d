"""Kalshi's paths, error bodies and WebSocket error codes, as the embedded exchange serves them.

What client and exchange must agree on (paths, the 401 body, WS error codes and texts)
comes from ``kalshi_api.protocol``, defined once for both; what only the exchange says
(its 429 and 500 bodies, its ping payload) is defined here.
"""

from __future__ import annotations

from typing import Any

from kalshi_api.protocol import (
    AUTH_ERROR_BODY,
    CHANNELS,
    ERROR_TEXT,
    ORDERBOOK_CHANNEL,
    REST_PREFIX,
    TERMINAL_CODES,
    WS_PATH,
)

__all__ = [
    "AUTH_ERROR_BODY",
    "AUTH_HEADERS",
    "CHANNELS",
    "ERROR_TEXT",
    "HEARTBEAT_PAYLOAD",
    "INTERNAL_ERROR",
    "ORDERBOOK_CHANNEL",
    "REST_PREFIX",
    "TERMINAL_CODES",
    "TOO_MANY_REQUESTS",
    "WS_PATH",
]

AUTH_HEADERS = ("KALSHI-ACCESS-KEY", "KALSHI-ACCESS-TIMESTAMP", "KALSHI-ACCESS-SIGNATURE")
TOO_MANY_REQUESTS: dict[str, Any] = {"error": "too many requests"}
"""The 429 body of the token-bucket limit; Kalshi sends no Retry-After with it."""
INTERNAL_ERROR: dict[str, Any] = {"error": {"code": "internal_error", "message": "internal error"}}

HEARTBEAT_PAYLOAD = b"heartbeat"
"""Kalshi's ping frames carry this body, every 10 s."""
