"""One protocol vocabulary: the client and the embedded exchange use the same definitions."""

from __future__ import annotations

import kalshi_api.ws_session as client
import kalshi_sim.exchange as sim_exchange
import kalshi_sim.rest_server as sim_rest
import kalshi_sim.rules as sim_rules
import kalshi_sim.wire as sim_wire
import kalshi_sim.ws_server as sim_ws
from kalshi_api import protocol
from kalshi_api.protocol import ERROR_TEXT, TERMINAL_CODES, WsErrorCode
from kalshi_api.replies import CommandKind, Pending, PendingReplies


def test_client_and_simulator_share_the_same_objects() -> None:
    assert client.WS_SIGNING_PATH is protocol.WS_PATH is sim_wire.WS_PATH is sim_exchange.WS_PATH
    assert sim_rest.REST_PREFIX is protocol.REST_PREFIX is sim_exchange.REST_PREFIX
    assert client.TERMINAL_CODES is sim_ws.TERMINAL_CODES is protocol.TERMINAL_CODES
    assert sim_rules.AUTH_ERROR_BODY is sim_rest.AUTH_ERROR_BODY is protocol.AUTH_ERROR_BODY
    assert sim_ws.ERROR_TEXT is ERROR_TEXT and sim_ws.CHANNELS is protocol.CHANNELS
    assert client.CHANNEL == sim_ws.ORDERBOOK == protocol.ORDERBOOK_CHANNEL


def test_paths_and_codes_match_kalshis_documentation() -> None:
    assert protocol.REST_PREFIX == "/trade-api/v2"
    assert protocol.WS_PATH == "/trade-api/ws/v2"
    assert sorted(TERMINAL_CODES) == [10, 25]
    assert all(type(code) is int for code in TERMINAL_CODES)  # prints as a number
    assert WsErrorCode(26) is WsErrorCode.MARKET_LIMIT_EXCEEDED
    assert ERROR_TEXT[WsErrorCode.BUFFER_OVERFLOW] == ERROR_TEXT[25]
    assert protocol.AUTH_ERROR_BODY["error"]["code"] == protocol.AUTH_ERROR_CODE
    assert {"orderbook_delta", "market_lifecycle_v2"} <= protocol.CHANNELS


def test_pending_replies_correlate_by_int_id_only() -> None:
    replies = PendingReplies()
    first, second = replies.allocate(), replies.allocate()
    assert second == first + 1
    replies.expect(first, Pending(CommandKind.SUBSCRIBE, tickers=("A",)))
    assert replies.peek("1") is None and replies.peek(True) is None
    assert replies.peek(first) == Pending(CommandKind.SUBSCRIBE, tickers=("A",))
    assert len(replies) == 1 and first in replies
    assert replies.take(first) is not None and replies.take(first) is None
    replies.expect(second, Pending(CommandKind.BARRIER, token="t"))
    replies.clear()
    assert len(replies) == 0 and replies.allocate() == second + 1
