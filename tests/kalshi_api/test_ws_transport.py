"""WsTransport wiring rules (the socket behaviour is tested through its clients)."""

from __future__ import annotations

import pytest

from kalshi_api.private_channels import PrivateChannels
from kalshi_api.ws_session import OrderbookStream
from kalshi_api.ws_transport import WsTransport

URL = "ws://127.0.0.1:9/trade-api/ws/v2"


def test_second_client_when_it_claims_frame_types_already_taken_is_refused() -> None:
    transport = WsTransport(URL, auth_headers=None)
    PrivateChannels(transport, listener=lambda event: None)
    with pytest.raises(ValueError, match="already have a client"):
        PrivateChannels(transport, listener=lambda event: None)


def test_second_orderbook_stream_when_the_reader_is_taken_is_refused() -> None:
    transport = WsTransport(URL, auth_headers=None)
    OrderbookStream(URL, ["KX-1"], auth_headers=None, transport=transport)
    with pytest.raises(ValueError, match="reader"):
        OrderbookStream(URL, ["KX-2"], auth_headers=None, transport=transport)


def test_transport_when_started_without_clients_refuses() -> None:
    with pytest.raises(RuntimeError, match="at least one client"):
        WsTransport(URL, auth_headers=None).start()


def test_unknown_private_channel_when_asked_for_is_refused() -> None:
    with pytest.raises(ValueError, match="private channels"):
        PrivateChannels(WsTransport(URL, auth_headers=None), listener=print, channels=["ticker"])
