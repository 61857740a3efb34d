"""The embedded exchange's WebSocket, checked frame by frame with a bare websockets client.

These tests pin the wire protocol (shapes, seq numbering, error codes) independently of
our own ``OrderbookStream``, so a bug shared by client and server cannot hide itself.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus

from kalshi_api.auth import KalshiSigner
from kalshi_api.fixed_point import MICROS_PER_DOLLAR, parse_count, parse_dollars
from kalshi_api.orderbook_digest import book_digest
from kalshi_sim.exchange import EmbeddedExchange
from tests.conftest import ExchangeFactory
from tests.harness import signer_for

WS_PATH = "/trade-api/ws/v2"
WAIT = 5.0


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    yield
    leaked = [
        t.name for t in threading.enumerate() if t.name == "kalshi-sim-server" and t.is_alive()
    ]
    assert not leaked, f"WebSocket server threads left running: {leaked}"


@pytest.fixture
def exchange(make_exchange: ExchangeFactory) -> EmbeddedExchange:
    """Still books (no delta stream) so every frame is deterministic."""
    return make_exchange(markets=6, delta_rate=0)


def _headers(exchange: EmbeddedExchange, path: str = WS_PATH) -> dict[str, str]:
    return signer_for(exchange).headers("GET", path)


async def _open(
    exchange: EmbeddedExchange, headers: dict[str, str] | None = None, path: str = WS_PATH
) -> ClientConnection:
    url = exchange.ws_url.replace(WS_PATH, path)
    headers = _headers(exchange) if headers is None else headers
    return await connect(url, additional_headers=headers, proxy=None, open_timeout=WAIT)


async def _send(ws: ClientConnection, payload: dict[str, Any] | str | bytes) -> None:
    await ws.send(payload if isinstance(payload, str | bytes) else orjson.dumps(payload).decode())


async def _recv(ws: ClientConnection) -> Any:
    return orjson.loads(await asyncio.wait_for(ws.recv(), WAIT))


async def _until(ws: ClientConnection, match: Callable[[Any], bool]) -> tuple[Any, list[Any]]:
    """Read until a frame matches; returns it and everything read before it."""
    before: list[Any] = []
    while True:
        message = await _recv(ws)
        if match(message):
            return message, before
        before.append(message)


def _subscribe(tickers: list[str], cid: int = 1, **params: Any) -> dict[str, Any]:
    body = {"channels": ["orderbook_delta"], "market_tickers": tickers, **params}
    return {"id": cid, "cmd": "subscribe", "params": body}


def _run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), 20))


def _ladder(levels: list[list[str]]) -> list[tuple[int, int]]:
    return [(parse_dollars(price), parse_count(size)) for price, size in levels]


# -- the opening handshake -----------------------------------------------------------------
def test_upgrade_when_signature_valid_is_accepted_and_recorded(exchange: EmbeddedExchange) -> None:
    async def body() -> None:
        async with await _open(exchange):
            assert exchange.ws.connection_count() == 1
            assert len(exchange.oplog.entries("ws_handshake")) == 1

    _run(body)


def _tampered(exchange: EmbeddedExchange) -> dict[str, str]:
    headers = _headers(exchange)
    signature = headers["KALSHI-ACCESS-SIGNATURE"]
    headers["KALSHI-ACCESS-SIGNATURE"] = ("A" if signature[0] != "A" else "B") + signature[1:]
    return headers


def _foreign_key(exchange: EmbeddedExchange) -> dict[str, str]:
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return KalshiSigner(exchange.key_id, key).headers("GET", WS_PATH)


@pytest.mark.parametrize(
    "make_headers",
    [
        pytest.param(lambda ex: {}, id="no-headers"),
        pytest.param(_tampered, id="tampered-signature"),
        pytest.param(_foreign_key, id="wrong-private-key"),
        pytest.param(lambda ex: _headers(ex, "/trade-api/v2/portfolio/balance"), id="wrong-path"),
    ],
)
def test_upgrade_when_signature_invalid_is_rejected_with_401_and_kalshi_body(
    exchange: EmbeddedExchange, make_headers: Callable[[EmbeddedExchange], dict[str, str]]
) -> None:
    async def body() -> None:
        with pytest.raises(InvalidStatus) as rejected:
            await _open(exchange, make_headers(exchange))
        response = rejected.value.response
        assert response.status_code == 401
        assert response.headers["Content-Type"] == "application/json"
        assert orjson.loads(response.body)["error"]["code"] == "authentication_error"
        assert exchange.ws.connection_count() == 0
        assert exchange.oplog.entries("ws_handshake") == []

    _run(body)


def test_upgrade_when_auth_fault_pending_rejects_exactly_that_many(
    exchange: EmbeddedExchange,
) -> None:
    exchange.faults.reject_auth(1)

    async def body() -> None:
        with pytest.raises(InvalidStatus) as rejected:
            await _open(exchange)
        assert rejected.value.response.status_code == 401
        async with await _open(exchange):
            assert exchange.ws.connection_count() == 1

    _run(body)


def test_upgrade_when_path_is_not_the_ws_root_returns_404(exchange: EmbeddedExchange) -> None:
    async def body() -> None:
        with pytest.raises(InvalidStatus) as rejected:
            await _open(exchange, path="/trade-api/ws/v1")
        assert rejected.value.response.status_code == 404

    _run(body)


# -- subscribe and snapshots ---------------------------------------------------------------
def test_subscribe_when_orderbook_delta_sends_subscribed_then_a_snapshot_per_market(
    exchange: EmbeddedExchange,
) -> None:
    tickers = exchange.markets.tickers()

    async def body() -> None:
        async with await _open(exchange) as ws:
            await _send(ws, _subscribe(tickers, cid=7, use_yes_price=False))
            subscribed = await _recv(ws)
            assert subscribed == {
                "id": 7,
                "type": "subscribed",
                "msg": {"channel": "orderbook_delta", "sid": subscribed["msg"]["sid"]},
            }
            sid = subscribed["msg"]["sid"]
            for seq, ticker in enumerate(tickers, start=1):
                snapshot = await _recv(ws)
                assert (snapshot["type"], snapshot["sid"], snapshot["seq"]) == (
                    "orderbook_snapshot",
                    sid,
                    seq,
                )
                assert "id" not in snapshot
                msg = snapshot["msg"]
                assert msg["market_ticker"] == ticker
                assert msg["market_id"] == exchange.markets.market(ticker).market_id
                truth = exchange.markets.levels(ticker)
                # An empty side's key is absent, never an empty list.
                assert ("yes_dollars_fp" in msg) == bool(truth.yes)
                assert ("no_dollars_fp" in msg) == bool(truth.no)
                yes = _ladder(msg.get("yes_dollars_fp", []))
                no = _ladder(msg.get("no_dollars_fp", []))
                assert book_digest(yes, no) == exchange.markets.digest(ticker)

    _run(body)
    assert exchange.oplog.entries("ws_subscribe")[0].detail == ",".join(tickers)
    assert [e.detail for e in exchange.oplog.entries("ws_snapshot")] == tickers


def test_subscribe_when_use_yes_price_reports_no_levels_on_the_yes_scale(
    exchange: EmbeddedExchange,
) -> None:
    ticker = exchange.markets.tickers()[0]
    truth = exchange.markets.levels(ticker)
    assert truth.no

    async def body() -> None:
        async with await _open(exchange) as ws:
            await _send(ws, _subscribe([ticker], use_yes_price=True))
            snapshot, _ = await _until(ws, lambda m: m["type"] == "orderbook_snapshot")
            no = _ladder(snapshot["msg"]["no_dollars_fp"])
            assert no == sorted(no)
            assert sorted((MICROS_PER_DOLLAR - p, s) for p, s in no) == list(truth.no)

    _run(body)


def _update(**params: Any) -> dict[str, Any]:
    return {"id": 2, "cmd": "update_subscription", "params": params}


# -- error codes ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("payload", "code"),
    [
        pytest.param("{not json", 1, id="1-not-json"),
        pytest.param({"id": "seven", "cmd": "list_subscriptions"}, 1, id="1-wrong-id-type"),
        pytest.param({"id": 2, "cmd": "subscribe"}, 2, id="2-no-params"),
        pytest.param({"id": 2, "cmd": "subscribe", "params": {"channels": []}}, 3, id="3"),
        pytest.param({"id": 2, "cmd": "unsubscribe", "params": {}}, 4, id="4"),
        pytest.param({"id": 2, "cmd": "dance", "params": {}}, 5, id="5"),
        pytest.param(
            {"id": 2, "cmd": "unsubscribe", "params": {"sids": [999]}}, 7, id="7-unsubscribe"
        ),
        pytest.param(
            _update(sid=999, action="get_snapshot"),
            7,
            id="7-update",
        ),
        pytest.param({"id": 2, "cmd": "subscribe", "params": {"channels": ["tickr"]}}, 8, id="8"),
        pytest.param(
            _update(sids=[1, 2], action="add_markets"),
            12,
            id="12",
        ),
        pytest.param(
            _update(sids=[1], action="rename"),
            13,
            id="13",
        ),
        pytest.param(
            {"id": 2, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"]}}, 14, id="14"
        ),
        pytest.param(_update(sids=[1]), 15, id="15"),
    ],
)
def test_command_when_invalid_returns_the_documented_error_code(
    exchange: EmbeddedExchange, payload: dict[str, Any] | str, code: int
) -> None:
    async def body() -> None:
        async with await _open(exchange) as ws:
            await _send(ws, payload)
            error = await _recv(ws)
            assert error["type"] == "error"
            assert error["msg"]["code"] == code
            assert isinstance(error["msg"]["msg"], str) and error["msg"]["msg"]
            if isinstance(payload, dict) and type(payload.get("id")) is int:
                assert error["id"] == payload["id"]

    _run(body)


def test_subscribe_when_connection_is_anonymous_and_channel_private_returns_code_9(
    exchange: EmbeddedExchange,
) -> None:
    exchange.ws.allow_anonymous = True
    tickers = exchange.markets.tickers()[:1]

    async def body() -> None:
        async with await _open(exchange, headers={}) as ws:
            await _send(ws, _subscribe(tickers))
            assert (await _recv(ws))["msg"]["code"] == 9
            await _send(ws, {"id": 2, "cmd": "subscribe", "params": {"channels": ["trade"]}})
            assert (await _recv(ws))["type"] == "subscribed"

    _run(body)


# -- other commands ------------------------------------------------------------------------
def test_update_subscription_when_get_snapshot_replies_snapshots_carrying_the_command_id(
    exchange: EmbeddedExchange,
) -> None:
    tickers = exchange.markets.tickers()

    async def body() -> None:
        async with await _open(exchange) as ws:
            await _send(ws, _subscribe(tickers))
            sid = (await _recv(ws))["msg"]["sid"]
            for _ in tickers:
                await _recv(ws)
            params = {"sids": [sid], "market_tickers": tickers[:2], "action": "get_snapshot"}
            await _send(ws, {"id": 40, "cmd": "update_subscription", "params": params})
            first, second = await _recv(ws), await _recv(ws)
            assert [(m["id"], m["type"], m["seq"]) for m in (first, second)] == [
                (40, "orderbook_snapshot", len(tickers) + 1),
                (40, "orderbook_snapshot", len(tickers) + 2),
            ]
            assert [m["msg"]["market_ticker"] for m in (first, second)] == tickers[:2]
            # get_snapshot accepts only market_tickers.
            params = {"sid": sid, "market_ticker": tickers[0], "action": "get_snapshot"}
            await _send(ws, {"id": 41, "cmd": "update_subscription", "params": params})
            assert (await _recv(ws))["msg"]["code"] == 11

    _run(body)


def test_update_subscription_when_adding_and_deleting_markets_replies_ok_with_full_list(
    exchange: EmbeddedExchange,
) -> None:
    first, second = exchange.markets.tickers()[:2]

    async def body() -> None:
        async with await _open(exchange) as ws:
            await _send(ws, _subscribe([first]))
            sid = (await _recv(ws))["msg"]["sid"]
            await _recv(ws)  # seq 1
            add = {"sid": sid, "market_tickers": [second], "action": "add_markets"}
            await _send(ws, {"id": 3, "cmd": "update_subscription", "params": add})
            ok = await _recv(ws)
            assert ok == {
                "id": 3,
                "sid": sid,
                "seq": 2,
                "type": "ok",
                "msg": {"market_tickers": [first, second]},
            }
            snapshot = await _recv(ws)
            assert (snapshot["seq"], snapshot["msg"]["market_ticker"]) == (3, second)
            delete = {"sids": [sid], "market_tickers": [first], "action": "delete_markets"}
            await _send(ws, {"id": 4, "cmd": "update_subscription", "params": delete})
            assert (await _recv(ws))["msg"] == {"market_tickers": [second]}

    _run(body)


def test_unsubscribe_when_sid_known_replies_unsubscribed_and_lists_nothing_after(
    exchange: EmbeddedExchange,
) -> None:
    tickers = exchange.markets.tickers()[:1]

    async def body() -> None:
        async with await _open(exchange) as ws:
            await _send(ws, _subscribe(tickers))
            sid = (await _recv(ws))["msg"]["sid"]
            await _send(ws, {"id": 2, "cmd": "list_subscriptions"})
            listing, _ = await _until(ws, lambda m: m.get("id") == 2)
            assert listing == {
                "id": 2,
                "type": "ok",
                "msg": [{"channel": "orderbook_delta", "sid": sid}],
            }
            await _send(ws, {"id": 3, "cmd": "unsubscribe", "params": {"sids": [sid]}})
            assert await _recv(ws) == {"id": 3, "sid": sid, "seq": 2, "type": "unsubscribed"}
            await _send(ws, {"id": 4, "cmd": "list_subscriptions"})
            assert (await _recv(ws))["msg"] == []

    _run(body)


def test_commands_when_client_sends_garbage_server_keeps_serving(
    exchange: EmbeddedExchange,
) -> None:
    async def body() -> None:
        async with await _open(exchange) as ws:
            for junk in (b"\x00\xff binary", "[1,2,3]", "null", '{"cmd": 5}', "[" * 5000):
                await _send(ws, junk)
                assert (await _recv(ws))["type"] == "error"
            await _send(ws, {"id": 9, "cmd": "list_subscriptions"})
            assert (await _recv(ws)) == {"id": 9, "type": "ok", "msg": []}

    _run(body)


# -- the delta stream ----------------------------------------------------------------------
def test_deltas_when_streaming_are_contiguous_per_sid_and_replay_to_the_truth(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=6, delta_rate=1000)
    tickers = exchange.markets.tickers()

    async def body() -> None:
        async with await _open(exchange) as ws:
            await _send(ws, _subscribe(tickers))
            books: dict[str, dict[str, dict[int, int]]] = {}
            last_seq = 0
            deltas = 0
            paused = False
            while True:
                message = await _recv(ws)
                if message["type"] == "ok":
                    break
                if message["type"] == "subscribed":
                    continue
                assert message["seq"] == last_seq + 1
                last_seq = message["seq"]
                msg = message["msg"]
                if message["type"] == "orderbook_snapshot":
                    books[msg["market_ticker"]] = {
                        "yes": dict(_ladder(msg.get("yes_dollars_fp", []))),
                        "no": dict(_ladder(msg.get("no_dollars_fp", []))),
                    }
                    continue
                assert set(msg) >= {"market_ticker", "market_id", "price_dollars", "delta_fp"}
                assert msg["side"] in ("yes", "no") and type(msg["ts_ms"]) is int
                side = books[msg["market_ticker"]][msg["side"]]
                price = parse_dollars(msg["price_dollars"])
                size = side.get(price, 0) + parse_count(msg["delta_fp"])
                assert size >= 0
                if size:
                    side[price] = size
                else:
                    side.pop(price)
                deltas += 1
                if deltas == 200 and not paused:
                    paused = True
                    await asyncio.to_thread(exchange.pause_stream)
                    await _send(ws, {"id": 99, "cmd": "list_subscriptions"})
            for ticker in tickers:
                digest = book_digest(books[ticker]["yes"].items(), books[ticker]["no"].items())
                assert digest == exchange.markets.digest(ticker), ticker

    _run(body)


async def _subscribed_and_first_delta(
    exchange: EmbeddedExchange, ws: ClientConnection
) -> tuple[int, dict[str, Any]]:
    await _send(ws, _subscribe(exchange.markets.tickers()))
    sid = (await _recv(ws))["msg"]["sid"]
    delta, _ = await _until(ws, lambda m: m["type"] == "orderbook_delta")
    return sid, delta


def test_skip_seq_when_applied_the_next_delta_jumps_seq_by_two(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=6, delta_rate=500)

    async def body() -> None:
        async with await _open(exchange) as ws:
            _, delta = await _subscribed_and_first_delta(exchange, ws)
            await asyncio.to_thread(exchange.ws.skip_seq)
            seqs = [delta["seq"]]
            while len(seqs) < 4000:
                seqs.append((await _until(ws, lambda m: m["type"] == "orderbook_delta"))[0]["seq"])
                if seqs[-1] - seqs[-2] != 1:
                    break
            assert seqs[-1] - seqs[-2] == 2

    _run(body)


def test_duplicate_next_delta_when_applied_sends_the_same_seq_twice(
    make_exchange: ExchangeFactory,
) -> None:
    exchange = make_exchange(markets=6, delta_rate=500)

    async def body() -> None:
        async with await _open(exchange) as ws:
            _, previous = await _subscribed_and_first_delta(exchange, ws)
            await asyncio.to_thread(exchange.ws.duplicate_next_delta)
            while True:
                delta, _ = await _until(ws, lambda m: m["type"] == "orderbook_delta")
                if delta["seq"] == previous["seq"]:
                    assert delta == previous
                    return
                previous = delta

    _run(body)


def test_send_malformed_when_applied_sends_non_json_then_wrongly_typed_json(
    exchange: EmbeddedExchange,
) -> None:
    async def body() -> None:
        async with await _open(exchange) as ws:
            await asyncio.to_thread(exchange.ws.send_malformed)
            raw = await asyncio.wait_for(ws.recv(), WAIT)
            with pytest.raises(orjson.JSONDecodeError):
                orjson.loads(raw)
            typed = orjson.loads(await asyncio.wait_for(ws.recv(), WAIT))
            assert type(typed["sid"]) is not int and type(typed["seq"]) is not int

    _run(body)


def test_send_negative_delta_when_applied_removes_more_than_the_level_holds(
    exchange: EmbeddedExchange,
) -> None:
    ticker = exchange.markets.tickers()[0]

    async def body() -> None:
        async with await _open(exchange) as ws:
            await _send(ws, _subscribe([ticker]))
            await _until(ws, lambda m: m["type"] == "orderbook_snapshot")
            truth_before = exchange.markets.digest(ticker)
            assert await asyncio.to_thread(exchange.ws.send_negative_delta) == 1
            delta = await _recv(ws)
            yes = dict(exchange.markets.levels(ticker).yes)
            price = parse_dollars(delta["msg"]["price_dollars"])
            assert (delta["seq"], delta["type"]) == (2, "orderbook_delta")
            assert yes[price] + parse_count(delta["msg"]["delta_fp"]) < 0
            assert exchange.markets.digest(ticker) == truth_before

    _run(body)


def test_stall_when_active_holds_frames_until_unstall(exchange: EmbeddedExchange) -> None:
    async def body() -> None:
        async with await _open(exchange) as ws:
            await asyncio.to_thread(exchange.ws.stall, None)
            await _send(ws, {"id": 5, "cmd": "list_subscriptions"})
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.3)  # bounded check that nothing arrives
            assert exchange.ws.connection_count() == 1
            await asyncio.to_thread(exchange.ws.unstall)
            assert (await _recv(ws))["id"] == 5

    _run(body)


def test_send_terminal_error_when_applied_sends_code_25_and_drops_the_subscription(
    exchange: EmbeddedExchange,
) -> None:
    tickers = exchange.markets.tickers()

    async def body() -> None:
        async with await _open(exchange) as ws:
            await _send(ws, _subscribe(tickers))
            sid = (await _recv(ws))["msg"]["sid"]
            for _ in tickers:
                await _recv(ws)
            assert await asyncio.to_thread(exchange.ws.send_terminal_error) == 1
            error = await _recv(ws)
            assert (error["type"], error["sid"], error["msg"]["code"]) == ("error", sid, 25)
            await _send(ws, {"id": 6, "cmd": "list_subscriptions"})
            assert (await _recv(ws))["msg"] == []
        with pytest.raises(ValueError):
            exchange.ws.send_terminal_error(code=7)

    _run(body)


def test_fail_get_snapshot_when_armed_answers_code_18(exchange: EmbeddedExchange) -> None:
    ticker = exchange.markets.tickers()[0]

    async def body() -> None:
        async with await _open(exchange) as ws:
            await _send(ws, _subscribe([ticker]))
            sid = (await _recv(ws))["msg"]["sid"]
            await _recv(ws)
            await asyncio.to_thread(exchange.ws.fail_get_snapshot, 1)
            params = {"sids": [sid], "market_tickers": [ticker], "action": "get_snapshot"}
            await _send(ws, {"id": 8, "cmd": "update_subscription", "params": params})
            assert (await _recv(ws))["msg"]["code"] == 18
            await _send(ws, {"id": 9, "cmd": "update_subscription", "params": params})
            assert (await _recv(ws))["type"] == "orderbook_snapshot"

    _run(body)


def test_drop_connections_when_applied_aborts_sockets_without_close_frame(
    exchange: EmbeddedExchange,
) -> None:
    async def body() -> None:
        async with await _open(exchange) as ws:
            assert await asyncio.to_thread(exchange.ws.drop_connections) == 1
            assert exchange.ws.connection_count() == 0
            with pytest.raises(ConnectionClosedError) as closed:
                await asyncio.wait_for(ws.recv(), WAIT)
            assert closed.value.rcvd is None

    _run(body)


def test_stop_when_called_twice_closes_clients_and_joins_the_thread(
    exchange: EmbeddedExchange,
) -> None:
    async def body() -> None:
        async with await _open(exchange) as ws:
            await asyncio.to_thread(exchange.stop)
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), WAIT)
        exchange.stop()
        assert exchange.ws.connection_count() == 0
        exchange.ws.skip_seq()  # fault hooks on a stopped server are no-ops

    _run(body)


@pytest.mark.parametrize("refusal", ["401-signature", "429-upgrade-status", "503-exchange-paused"])
def test_upgrade_when_refused_logs_no_server_error(
    make_exchange: ExchangeFactory, caplog: pytest.LogCaptureFixture, refusal: str
) -> None:
    """A refused upgrade is the exchange working as designed, not an ASGI error.

    Before: uvicorn logged "ASGI callable returned without completing handshake" at ERROR
    for every refusal, once per reconnect attempt for as long as an exchange pause lasted.
    Stopping the exchange waits for every connection's task, so the log is complete then.
    """
    exchange = make_exchange(markets=2)
    status, headers = int(refusal[:3]), _headers(exchange)
    if status == 401:
        headers = {}
    elif status == 429:
        exchange.ws.behaviour.upgrade_status = 429
    else:
        exchange.status.pause_exchange()

    async def body() -> None:
        for _ in range(3):
            with pytest.raises(InvalidStatus) as rejected:
                await _open(exchange, headers)
            assert rejected.value.response.status_code == status

    uvicorn_logger = logging.getLogger("uvicorn")  # uvicorn's loggers do not propagate
    uvicorn_logger.addHandler(caplog.handler)
    try:
        _run(body)
        exchange.stop()
    finally:
        uvicorn_logger.removeHandler(caplog.handler)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    assert len(exchange.oplog.entries("ws_handshake_rejected")) == 3
