"""The console's trading surfaces against the real thing over sockets: a supervisor on the
embedded exchange, its order gateway, and a test service with orders resting. ``/status``
carries the gateway's view in exact decimal strings, ``/metrics`` counts what the events said,
and ``POST /halt`` / ``/resume`` drive the real kill switch."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from actors.service_spec import ServiceSpec
from app.handle import Supervisor
from kalshi_sim.exchange import EmbeddedExchange
from messages.events import SupervisorEvent
from messages.states import State
from messages.trading_events import OrderUpdateEvent
from tests.harness import WAIT, running_supervisor, start_exchange
from tests.resting_quoter import RestingQuoter


@pytest.fixture
def exchange() -> Iterator[EmbeddedExchange]:
    exchange = start_exchange()
    try:
        yield exchange
    finally:
        exchange.stop()


@pytest.fixture
def supervisor(exchange: EmbeddedExchange) -> Iterator[Supervisor]:
    services = [ServiceSpec("resting_quoter", RestingQuoter, {"orders": 2})]
    with running_supervisor(exchange, services=services) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        yield supervisor


def _resting(events: list[SupervisorEvent]) -> list[OrderUpdateEvent] | None:
    rested = [e for e in events if isinstance(e, OrderUpdateEvent) and e.status == "resting"]
    return rested if len(rested) == 2 else None


def _samples(client: httpx.Client, url: str) -> dict[tuple[str, str], float]:
    return {
        (s.name, ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(client.get(f"{url}/metrics").text)
        for s in family.samples
    }


def test_console_when_a_service_trades_shows_orders_counts_them_and_halts_for_real(
    supervisor: Supervisor, exchange: EmbeddedExchange
) -> None:
    rested = supervisor.recorder.wait_for(_resting, WAIT)
    assert rested is not None
    ours = {e.client_order_id for e in rested}
    url, auth = supervisor.control_url, {"Authorization": f"Bearer {supervisor.control_token}"}

    with httpx.Client(trust_env=False, timeout=30.0) as client:
        trading = client.get(f"{url}/status").json()["trading"]
        before = _samples(client, url)
        refused = client.post(f"{url}/halt", json={"reason": "drill"})
        halted = client.post(f"{url}/halt", json={"reason": "drill"}, headers=auth)
        after = _samples(client, url)
        resumed = client.post(f"{url}/resume", json={}, headers=auth)
        trading_after = client.get(f"{url}/status").json()["trading"]

    assert (trading["enabled"], trading["available"], trading["state"]) == (True, True, "active")
    shown = {o["client_order_id"]: o for o in trading["open_orders"]}
    assert set(shown) == ours
    assert {(o["price"], o["count"], o["status"]) for o in shown.values()} == {
        ("0.01", "3.00", "resting")  # the exchange's own decimals, exactly
    }
    assert before[("kalshi_supervisor_orders_sent_total", "")] == 2
    assert before[("kalshi_supervisor_trading_state", "state=active")] == 1.0
    assert before[("kalshi_supervisor_trading_halted", "")] == 0.0
    capacity = before[("kalshi_supervisor_write_budget_capacity", "")]
    assert capacity > 0  # the gateway's copy of the account's write bucket
    assert 0.0 <= before[("kalshi_supervisor_write_budget_used_ratio", "")] <= 1.0
    assert refused.status_code == 401
    assert halted.status_code == 200, halted.text
    report = halted.json()
    assert (report["reason"], report["state"], report["remaining"]) == ("drill", "halted", 0)
    resting_now = [
        o.client_order_id
        for view in exchange.truth().values()
        for o in view.orders
        if o.client_order_id in ours and o.status == "resting"
    ]
    assert resting_now == []
    assert after[("kalshi_supervisor_trading_halted", "")] == 1.0
    assert after[("kalshi_supervisor_halts_total", "")] == 1
    assert resumed.status_code == 200 and resumed.json()["state"] == "active"
    assert trading_after["state"] == "active" and trading_after["open_orders"] == []
