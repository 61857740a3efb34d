"""Helpers for the trading-wire tests: a signed raw-HTTP trader and a private WS session.

Raw httpx plus ``kalshi_api.auth`` signing, so the tests check what the exchange sends,
not what a client library makes of it.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from websockets.sync.client import ClientConnection, connect

from kalshi_api.auth import KalshiSigner
from kalshi_sim.engine_types import Outcome
from kalshi_sim.exchange import EmbeddedExchange
from kalshi_sim.matching.engine import MatchingEngine
from kalshi_sim.participant import HOUSE
from kalshi_sim.trading_desk import MemberKey
from tests.harness import PLAIN_HTTP, signer_from_file

PREFIX = "/trade-api/v2"
ORDERS = "/portfolio/events/orders"
WS_PATH = "/trade-api/ws/v2"


class Trader:
    """One member's signed HTTP session against the exchange."""

    def __init__(self, exchange: EmbeddedExchange, key: MemberKey, timeout: float = 5.0) -> None:
        self.exchange = exchange
        self.member = key.member
        self.key = key
        self.signer: KalshiSigner = signer_from_file(key.key_id, key.private_key_path)
        self.http = httpx.Client(
            base_url=f"http://127.0.0.1:{exchange.port}",
            trust_env=False,
            timeout=timeout,
            verify=PLAIN_HTTP,
        )

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = self.signer.headers(method, PREFIX + path)
        return self.http.request(method, PREFIX + path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def place(self, ticker: str, side: str, count: str, price: str, **extra: Any) -> httpx.Response:
        return self.request("POST", ORDERS, json=order(ticker, side, count, price, **extra))

    def cancel(self, order_id: str, **params: Any) -> httpx.Response:
        return self.request("DELETE", f"{ORDERS}/{order_id}", params=params)

    def orders(self, **params: Any) -> list[dict[str, Any]]:
        response = self.get("/portfolio/orders", params=params)
        assert response.status_code == 200, response.text
        orders: list[dict[str, Any]] = response.json()["orders"]
        return orders

    def ws(self) -> PrivateSession:
        headers = self.signer.headers("GET", WS_PATH)
        url = f"ws://127.0.0.1:{self.exchange.port}{WS_PATH}"
        # A connection object rather than a context manager: a test holds several at once.
        socket = connect(url, additional_headers=headers, legacy=True)
        return PrivateSession(socket)


def order(ticker: str, side: str, count: str, price: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ticker": ticker,
        "side": side,
        "count": count,
        "price": price,
        "time_in_force": "good_till_canceled",
        "self_trade_prevention_type": "taker_at_cross",
    }
    body.update(extra)
    return body


class PrivateSession:
    """A signed WS session: subscribe, then read frames of chosen types with a timeout."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self._next_id = 1

    def close(self) -> None:
        self.socket.close()

    def subscribe(self, *channels: str, **params: Any) -> list[int]:
        """Subscribe and return the sids, in channel order (waits for every ack)."""
        command_id = self._next_id
        self._next_id += 1
        body = {
            "id": command_id,
            "cmd": "subscribe",
            "params": {"channels": list(channels), **params},
        }
        self.socket.send(orjson.dumps(body).decode())
        sids = []
        while len(sids) < len(channels):
            frame = self.next_frame()
            assert frame.get("type") == "subscribed", frame
            sids.append(frame["msg"]["sid"])
        return sids

    def command(self, body: dict[str, Any]) -> None:
        self.socket.send(orjson.dumps(body).decode())

    def next_frame(self, timeout: float = 5.0) -> dict[str, Any]:
        raw = self.socket.recv(timeout=timeout)
        frame: dict[str, Any] = orjson.loads(raw)
        return frame

    def next_of(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next frame of type ``kind``, skipping others (e.g. orderbook deltas)."""
        while True:
            frame = self.next_frame(timeout)
            if frame.get("type") == kind:
                return frame


def trader(exchange: EmbeddedExchange, member: str, **cash: int) -> Trader:
    return Trader(exchange, exchange.add_member(member, {0: 100_000, **_shards(cash)}))


def _shards(cash: dict[str, int]) -> dict[int, int]:
    return {int(k.removeprefix("shard")): v for k, v in cash.items()}


def quiet(exchange: EmbeddedExchange) -> EmbeddedExchange:
    """Take the house's generated liquidity and the demo portfolio's resting orders off every
    book, so members trade only with each other and a test's prices mean what it says (books
    grow on first use, so grow them all first)."""

    def clear(engine: MatchingEngine, now: int) -> Outcome:
        for ticker in exchange.markets.tickers():
            engine.level_orders(ticker, "bid", 0)  # lists and grows the book as real orders
        engine.cancel_all(exchange.account.member, now)  # the demo portfolio's resting orders
        return engine.cancel_all(HOUSE, now)

    exchange.trading.call(clear)
    return exchange
