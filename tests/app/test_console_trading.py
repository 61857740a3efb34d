"""The console's trading surfaces over real loopback sockets: ``POST /halt`` and ``/resume``
(token, body, refusals), ``/status``'s trading part and the trading series of ``/metrics``.

The supervisor side is a recording stand-in for ``TradingControl`` (the process tests in
tests/cli/test_halt_cli.py drive the real gateway): here what is under test is the server's
handling of what arrives and of what the gateway answers.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.console_server import ConsoleServer
from app.console_trading import MAX_REASON_CHARS, NO_TRADING
from app.event_log import EventRecorder
from messages.base import Message
from messages.orders import OrderStatus, OrderUpdate, TradingState
from messages.trading_events import (
    FillEvent,
    HaltCompleted,
    OrderUpdateEvent,
    PositionChanged,
    TradingStateChanged,
)

TOKEN = "right-token-0123456789abcdefghijklmnopqrstu"


class Report(Message):
    """Shaped like the gateway's halt report (``messages.trading_status.HaltReport``)."""

    reason: str
    state: TradingState
    duration_ms: int = 12
    cancel_all_calls: int = 1
    verify_reads: int = 2
    remaining: int = 0


class Status(Message):
    state: TradingState
    reason: str | None
    open_orders: list[OrderUpdate]
    write_budget: dict[str, Decimal | int]


class StandInTrading:
    """Records what the console asked; ``error`` makes every call raise it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.error: Exception | None = None
        self.state = TradingState.ACTIVE
        self.remaining = 0
        """What the next halt reports as still resting."""
        self._lock = threading.Lock()

    def _called(self, what: str, arg: Any = None) -> None:
        with self._lock:
            self.calls.append((what, arg))
        if self.error is not None:
            raise self.error

    def halt(self, reason: str) -> Report:
        self._called("halt", reason)
        self.state = TradingState.HALTED
        return Report(reason=reason, state=self.state, remaining=self.remaining)

    def resume_trading(self) -> Report:
        self._called("resume")
        self.state = TradingState.ACTIVE
        return Report(reason="resumed", state=self.state, remaining=0)

    def trading_status(self) -> Status:
        self._called("status")
        order = OrderUpdate(
            client_order_id="ks-1-1",
            order_id="o-1",
            service="mm",
            ticker="KXT-A",
            side="bid",
            price=Decimal("0.4500"),
            count=Decimal("10"),
            filled=Decimal("2.50"),
            remaining=Decimal("7.50"),
            status=OrderStatus.PARTIALLY_FILLED,
        )
        return Status(
            state=self.state,
            reason=None,
            open_orders=[order],
            write_budget={"capacity": Decimal(100), "tokens": Decimal("37.5"), "rate_limited": 2},
        )


@pytest.fixture
def trading() -> StandInTrading:
    return StandInTrading()


@pytest.fixture
def recorder() -> EventRecorder:
    return EventRecorder()


def _serve(recorder: EventRecorder, **kwargs: Any) -> Iterator[ConsoleServer]:
    server = ConsoleServer(recorder, port=0, token=TOKEN, inject=lambda fault: {}, **kwargs)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server(recorder: EventRecorder, trading: StandInTrading) -> Iterator[ConsoleServer]:
    yield from _serve(recorder, trading=trading)


@pytest.fixture
def orderbook_only(recorder: EventRecorder, trading: StandInTrading) -> Iterator[ConsoleServer]:
    yield from _serve(recorder, trading=trading, trading_enabled=False)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=5.0) as http:
        yield http


def _post(
    client: httpx.Client, server: ConsoleServer, path: str, token: str | None = TOKEN, **kw: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.post(f"{server.url}{path}", headers=headers, **kw)


def _one_line(response: httpx.Response) -> str:
    error = response.json()["error"]
    assert isinstance(error, str) and error and "\n" not in error
    return error


def test_halt_when_token_is_right_passes_reason_and_returns_the_report(
    server: ConsoleServer, client: httpx.Client, trading: StandInTrading
) -> None:
    response = _post(client, server, "/halt", json={"reason": "fat finger on KXT-A"})

    assert response.status_code == 200
    assert response.json() == {
        "accepted": True,
        "reason": "fat finger on KXT-A",
        "state": "halted",
        "duration_ms": 12,
        "cancel_all_calls": 1,
        "verify_reads": 2,
        "remaining": 0,
    }
    assert trading.calls == [("halt", "fat finger on KXT-A")]


def test_halt_when_body_is_empty_halts_with_the_manual_reason(
    server: ConsoleServer, client: httpx.Client, trading: StandInTrading
) -> None:
    assert _post(client, server, "/halt").status_code == 200
    assert _post(client, server, "/halt", json={}).status_code == 200
    assert trading.calls == [("halt", "manual"), ("halt", "manual")]


@pytest.mark.parametrize("path", ["/halt", "/resume"])
@pytest.mark.parametrize("token", [None, "wrong-token-zyxwvutsrqponmlkjihgfedcba987", TOKEN[:-1]])
def test_control_when_token_is_wrong_or_missing_returns_401_and_nothing_is_called(
    server: ConsoleServer,
    client: httpx.Client,
    trading: StandInTrading,
    path: str,
    token: str | None,
) -> None:
    response = _post(client, server, path, token=token, json={})

    assert response.status_code == 401
    assert "token" in _one_line(response)
    assert trading.calls == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{not json", "invalid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'"halt"', "JSON object"),
        (b'{"reason": "x", "force": true}', "unknown field 'force'"),
        (b'{"reason": 5}', "reason: must be a string"),
        (b'{"reason": "   "}', "reason: must not be empty"),
        (b'{"reason": "a\\nb"}', "reason: must be one printable line"),
        (b'{"reason": "' + b"x" * (MAX_REASON_CHARS + 1) + b'"}', "reason: at most"),
    ],
    ids=["not-json", "list", "string", "unknown-field", "number", "blank", "newline", "long"],
)
def test_halt_when_body_is_bad_returns_one_line_400_and_does_not_halt(
    server: ConsoleServer,
    client: httpx.Client,
    trading: StandInTrading,
    body: bytes,
    expected: str,
) -> None:
    response = client.post(
        f"{server.url}/halt",
        content=body,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert expected in _one_line(response)
    assert trading.calls == []


def test_resume_when_body_has_a_field_returns_400_else_resumes(
    server: ConsoleServer, client: httpx.Client, trading: StandInTrading
) -> None:
    refused = _post(client, server, "/resume", json={"reason": "x"})
    accepted = _post(client, server, "/resume", json={})

    assert refused.status_code == 400
    assert "/resume takes no fields" in _one_line(refused)
    assert accepted.status_code == 200
    assert accepted.json()["state"] == "active"
    assert trading.calls == [("resume", None)]


@pytest.mark.parametrize("path", ["/halt", "/resume"])
def test_control_when_orderbook_only_returns_409_one_line(
    orderbook_only: ConsoleServer, client: httpx.Client, trading: StandInTrading, path: str
) -> None:
    response = _post(client, orderbook_only, path, json={})

    assert response.status_code == 409
    assert _one_line(response) == NO_TRADING
    assert trading.calls == []


def test_halt_when_the_gateway_cannot_be_reached_returns_503_one_line(
    server: ConsoleServer, client: httpx.Client, trading: StandInTrading
) -> None:
    trading.error = TimeoutError("order gateway did not answer within 30 s\nretry")

    response = _post(client, server, "/halt", json={"reason": "drill"})

    assert response.status_code == 503
    assert _one_line(response) == "halt failed: order gateway did not answer within 30 s retry"


def test_status_when_trading_is_enabled_carries_the_gateways_view_in_exact_strings(
    server: ConsoleServer, client: httpx.Client
) -> None:
    trading = client.get(f"{server.url}/status").json()["trading"]

    assert (trading["enabled"], trading["available"], trading["state"]) == (True, True, "active")
    [order] = trading["open_orders"]
    assert (order["price"], order["filled"], order["remaining"]) == ("0.4500", "2.50", "7.50")


def test_status_when_orderbook_only_says_trading_is_off_and_asks_nothing(
    orderbook_only: ConsoleServer, client: httpx.Client, trading: StandInTrading
) -> None:
    assert client.get(f"{orderbook_only.url}/status").json()["trading"] == {
        "enabled": False,
        "reason": NO_TRADING,
    }
    assert trading.calls == []


def _samples(client: httpx.Client, server: ConsoleServer) -> dict[tuple[str, str], float]:
    text = client.get(f"{server.url}/metrics").text
    return {
        (sample.name, ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _order(status: OrderStatus, cid: str) -> OrderUpdateEvent:
    return OrderUpdateEvent(
        service="mm",
        client_order_id=cid,
        order_id=None if status is OrderStatus.PENDING else f"o-{cid}",
        ticker="KXT-A",
        side="bid",
        status=status,
        count=Decimal(10),
        filled=Decimal(0),
        price=Decimal("0.45"),
    )


def test_metrics_when_trading_events_are_recorded_export_orders_fills_positions_and_state(
    server: ConsoleServer, client: httpx.Client, recorder: EventRecorder, trading: StandInTrading
) -> None:
    for status, cid in [
        (OrderStatus.PENDING, "a"),
        (OrderStatus.RESTING, "a"),
        (OrderStatus.PENDING, "b"),
        (OrderStatus.OUTCOME_UNKNOWN, "b"),
        (OrderStatus.PENDING, "c"),
        (OrderStatus.REJECTED, "c"),
    ]:
        recorder(_order(status, cid))
    for trade in ("t1", "t2"):
        recorder(
            FillEvent(
                service="mm",
                trade_id=trade,
                order_id="o-a",
                ticker="KXT-A",
                side="bid",
                count=Decimal("2.5"),
                price=Decimal("0.45"),
            )
        )
    recorder(
        PositionChanged(
            ticker="KXT-A", position="-5", realized_pnl="1.25", unrealized_pnl="-0.50", fees="0.07"
        )
    )
    recorder(TradingStateChanged(state=TradingState.HALTED, reason="manual"))
    trading.state = TradingState.HALTED  # what the gateway's status says too
    recorder(
        HaltCompleted(
            reason="manual", duration_ms=5, cancel_all_calls=1, verify_reads=1, remaining=0
        )
    )

    samples = _samples(client, server)

    assert samples[("kalshi_supervisor_orders_sent_total", "")] == 3
    assert samples[("kalshi_supervisor_orders_rejected_total", "")] == 1
    assert samples[("kalshi_supervisor_orders_outcome_unknown_total", "")] == 1
    assert samples[("kalshi_supervisor_fills_total", "market=KXT-A")] == 2
    assert samples[("kalshi_supervisor_filled_contracts_total", "market=KXT-A")] == 5.0
    assert samples[("kalshi_supervisor_position", "market=KXT-A")] == -5.0
    assert samples[("kalshi_supervisor_pnl_realized_dollars", "market=KXT-A")] == 1.25
    assert samples[("kalshi_supervisor_pnl_unrealized_dollars", "market=KXT-A")] == -0.5
    assert samples[("kalshi_supervisor_trading_state", "state=halted")] == 1.0
    assert samples[("kalshi_supervisor_trading_state", "state=active")] == 0.0
    assert samples[("kalshi_supervisor_trading_halted", "")] == 1.0
    assert samples[("kalshi_supervisor_halts_total", "")] == 1
    assert samples[("kalshi_supervisor_write_budget_capacity", "")] == 100.0
    assert samples[("kalshi_supervisor_write_budget_tokens", "")] == 37.5
    assert samples[("kalshi_supervisor_write_budget_used_ratio", "")] == 0.625
    assert samples[("kalshi_supervisor_write_rate_limited_total", "")] == 2


def test_metrics_when_orderbook_only_have_no_trading_series(
    orderbook_only: ConsoleServer, client: httpx.Client
) -> None:
    names = {name for name, _ in _samples(client, orderbook_only)}

    assert "kalshi_supervisor_state" in names
    assert not {n for n in names if "order" in n and "orderbook" not in n}
    assert "kalshi_supervisor_trading_halted" not in names


def test_metrics_when_the_gateway_answers_take_its_state_else_the_last_event(
    server: ConsoleServer, client: httpx.Client, recorder: EventRecorder, trading: StandInTrading
) -> None:
    recorder(TradingStateChanged(state=TradingState.REDUCING, reason="risk_breach"))
    trading.state = TradingState.HALTED

    asked = _samples(client, server)
    trading.error = TimeoutError("gateway busy")
    from_events = _samples(client, server)

    assert asked[("kalshi_supervisor_trading_state", "state=halted")] == 1.0
    assert from_events[("kalshi_supervisor_trading_state", "state=reducing")] == 1.0
    assert from_events[("kalshi_supervisor_trading_state", "state=halted")] == 0.0
    assert ("kalshi_supervisor_write_budget_capacity", "") not in from_events


def test_halt_when_console_is_flooded_with_slow_connections_still_halts(
    recorder: EventRecorder, trading: StandInTrading
) -> None:
    """The kill switch has the control lane (``app.console_http``): a console whose every
    connection slot is held by slow clients still halts for the operator with the token."""
    with ConsoleServer(
        recorder,
        port=0,
        token=TOKEN,
        inject=lambda fault: {},
        trading=trading,
        max_connections=50,
        header_timeout=120.0,
    ) as console:
        host, port = console.address.rsplit(":", 1)
        slow = []
        try:
            for _ in range(250):
                sock = socket.create_connection((host, int(port)), timeout=10.0)
                sock.sendall(b"GET /status HTTP/1.1\r\nHo")
                slow.append(sock)
            flooded = threading.Event()
            for _ in range(10_000):
                if httpx.get(f"{console.url}/alive", timeout=10.0).status_code == 503:
                    flooded.set()
                    break
            refused = httpx.post(f"{console.url}/halt", json={}, timeout=10.0)
            halted = httpx.post(
                f"{console.url}/halt",
                json={"reason": "flood"},
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=10.0,
            )
            resumed = httpx.post(
                f"{console.url}/resume",
                json={},
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=10.0,
            )
        finally:
            for sock in slow:
                sock.close()

    assert flooded.is_set(), "the slow connections never filled the server"
    assert refused.status_code == 503  # no lane without the token
    assert halted.status_code == 200, halted.text
    assert resumed.status_code == 200, resumed.text
    assert [c for c in trading.calls if c[0] != "status"] == [("halt", "flood"), ("resume", None)]
    assert console.connections.control_in_flight == 0
