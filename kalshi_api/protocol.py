"""Kalshi's wire vocabulary, defined once: paths, channel names, WS error codes, error bodies.

Why a module of its own: the client (``kalshi_api``) and the embedded exchange
(``kalshi_sim``) must agree on every one of these, and each used to keep its own copy (the
WebSocket path in five places, the terminal codes and the auth error body twice). A copy
that drifts makes the simulator test a protocol the client does not speak, so both sides
import from here. Nothing in this module does I/O or imports anything of ours.

Source: ``shared/KALSHI_PROTOCOL.md`` §1 (paths), §3.5 (WS error codes), §4.1 (error
bodies), §7 (newer changes, which override the older sections).
"""

from __future__ import annotations

from enum import IntEnum
from types import MappingProxyType
from typing import Any, Final

__all__ = [
    "AUTH_ERROR_BODY",
    "AUTH_ERROR_CODE",
    "CHANNELS",
    "ERROR_TEXT",
    "MARKET_LIFECYCLE_CHANNEL",
    "ORDERBOOK_CHANNEL",
    "ORDERBOOK_SNAPSHOT",
    "REST_PREFIX",
    "TERMINAL_CODES",
    "WS_PATH",
    "WsErrorCode",
]

# -- paths ---------------------------------------------------------------------------------
REST_PREFIX: Final = "/trade-api/v2"
"""The REST API root: every REST path, and every signed REST path, starts here."""
WS_PATH: Final = "/trade-api/ws/v2"
"""The WebSocket path; also the path a WebSocket upgrade is signed over (``GET`` + this)."""

# -- channels and frame types --------------------------------------------------------------
ORDERBOOK_CHANNEL: Final = "orderbook_delta"
"""The order book channel; its incremental frames carry this same string as their ``type``."""
ORDERBOOK_SNAPSHOT: Final = "orderbook_snapshot"
"""The ``type`` of a full-book frame on the order book channel."""
MARKET_LIFECYCLE_CHANNEL: Final = "market_lifecycle_v2"
"""Market opens, early closes, determinations and settlements (§7.3)."""
CHANNELS: Final = frozenset(
    {
        ORDERBOOK_CHANNEL,
        "ticker",
        "trade",
        "fill",
        "market_positions",
        MARKET_LIFECYCLE_CHANNEL,
        "multivariate_market_lifecycle",
        "multivariate",
        "communications",
        "order_group_updates",
        "user_orders",
        "cfbenchmarks_value",
        "cfbenchmarks_value_5hz",
        "pyth_value",
    }
)
"""Every channel name Kalshi accepts in ``subscribe`` (``multivariate`` was removed on
2026-08-06 but is kept here because the simulator still models the older exchange)."""


# -- WebSocket error codes -----------------------------------------------------------------
class WsErrorCode(IntEnum):
    """Kalshi's WebSocket ``error`` frame codes (§3.5), named so code reads as intent."""

    UNABLE_TO_PROCESS = 1
    PARAMS_REQUIRED = 2
    CHANNELS_REQUIRED = 3
    SIDS_REQUIRED = 4
    UNKNOWN_COMMAND = 5
    ALREADY_SUBSCRIBED = 6
    UNKNOWN_SID = 7
    UNKNOWN_CHANNEL = 8
    AUTH_REQUIRED = 9
    CHANNEL_ERROR = 10
    INVALID_PARAMETER = 11
    ONE_SID_REQUIRED = 12
    UNSUPPORTED_ACTION = 13
    MARKET_TICKER_REQUIRED = 14
    ACTION_REQUIRED = 15
    COMMAND_TIMEOUT = 18
    SHARD_FACTOR_POSITIVE = 19
    SHARD_FACTOR_REQUIRED = 20
    SHARD_KEY_RANGE = 21
    SHARD_FACTOR_MAX = 22
    MATCH_IDS_REQUIRED = 23
    INDEX_IDS_REQUIRED = 24
    BUFFER_OVERFLOW = 25
    MARKET_LIMIT_EXCEEDED = 26
    TOO_MANY_REQUESTS = 27
    UNDERLYINGS_REQUIRED = 28


TERMINAL_CODES: Final = frozenset(
    {int(WsErrorCode.CHANNEL_ERROR), int(WsErrorCode.BUFFER_OVERFLOW)}
)
"""Codes after which the subscription is dead and must be re-created (10 channel error,
25 buffer overflow). Plain ints, as read off the wire, so they print as numbers in
messages; ``WsErrorCode`` members compare and hash equal to them."""

ERROR_TEXT: Final = MappingProxyType(
    {
        int(code): text
        for code, text in {
            WsErrorCode.UNABLE_TO_PROCESS: "Unable to process message",
            WsErrorCode.PARAMS_REQUIRED: "Params required",
            WsErrorCode.CHANNELS_REQUIRED: "Channels required",
            WsErrorCode.SIDS_REQUIRED: "Subscription IDs required",
            WsErrorCode.UNKNOWN_COMMAND: "Unknown command",
            WsErrorCode.UNKNOWN_SID: "Unknown subscription ID",
            WsErrorCode.UNKNOWN_CHANNEL: "Unknown channel name",
            WsErrorCode.AUTH_REQUIRED: "Authentication required",
            WsErrorCode.CHANNEL_ERROR: "Channel error",
            WsErrorCode.INVALID_PARAMETER: "Invalid parameter",
            WsErrorCode.ONE_SID_REQUIRED: "Exactly one subscription ID is required",
            WsErrorCode.UNSUPPORTED_ACTION: "Unsupported action",
            WsErrorCode.MARKET_TICKER_REQUIRED: "Market Ticker required",
            WsErrorCode.ACTION_REQUIRED: "Action required",
            WsErrorCode.COMMAND_TIMEOUT: "Command timeout",
            WsErrorCode.BUFFER_OVERFLOW: "Subscription buffer overflow",
            WsErrorCode.MARKET_LIMIT_EXCEEDED: "Subscription market limit exceeded",
        }.items()
    }
)
"""The ``msg`` text Kalshi sends with each code it emits (read-only: shared by both sides)."""

# -- REST / upgrade error bodies -----------------------------------------------------------
AUTH_ERROR_CODE: Final = "authentication_error"
"""The ``error.code`` of a 401 on REST or on the WebSocket upgrade."""
AUTH_ERROR_BODY: Final[dict[str, Any]] = {
    "error": {
        "code": AUTH_ERROR_CODE,
        "message": AUTH_ERROR_CODE,
        "details": "rpc error: code = Unauthenticated desc = INCORRECT_API_KEY_SIGNATURE",
    }
}
"""Kalshi's 401 body exactly as sent on the wire (a plain dict so ``orjson`` serialises it
directly; treat it as read-only, or ``copy.deepcopy`` it before editing)."""
