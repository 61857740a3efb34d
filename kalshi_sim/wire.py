"""Kalshi's paths, error bodies and WebSocket error codes, as the embedded exchange serves them.

Held in one module so that when the shared ``kalshi_api.protocol`` lands (issue 7: one
protocol module for client and simulator), switching the simulator over is one import
here rather than a hunt through the servers.
"""

from __future__ import annotations

from typing import Any

REST_PREFIX = "/trade-api/v2"
WS_PATH = "/trade-api/ws/v2"

AUTH_HEADERS = ("KALSHI-ACCESS-KEY", "KALSHI-ACCESS-TIMESTAMP", "KALSHI-ACCESS-SIGNATURE")
AUTH_ERROR_BODY: dict[str, Any] = {
    "error": {
        "code": "authentication_error",
        "message": "authentication_error",
        "details": "rpc error: code = Unauthenticated desc = INCORRECT_API_KEY_SIGNATURE",
    }
}
"""What Kalshi answers (401) to a bad or missing signature, on REST and on the WS upgrade."""
TOO_MANY_REQUESTS: dict[str, Any] = {"error": "too many requests"}
"""The 429 body of the token-bucket limit; Kalshi sends no Retry-After with it."""
INTERNAL_ERROR: dict[str, Any] = {"error": {"code": "internal_error", "message": "internal error"}}

TERMINAL_CODES = frozenset({10, 25})
"""WS error codes after which the subscription is gone and must be made again."""
ERROR_TEXT = {
    1: "Unable to process message",
    2: "Params required",
    3: "Channels required",
    4: "Subscription IDs required",
    5: "Unknown command",
    7: "Unknown subscription ID",
    8: "Unknown channel name",
    9: "Authentication required",
    10: "Channel error",
    11: "Invalid parameter",
    12: "Exactly one subscription ID is required",
    13: "Unsupported action",
    14: "Market Ticker required",
    15: "Action required",
    18: "Command timeout",
    25: "Subscription buffer overflow",
}
HEARTBEAT_PAYLOAD = b"heartbeat"
"""Kalshi's ping frames carry this body, every 10 s."""
