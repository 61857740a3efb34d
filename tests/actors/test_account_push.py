"""The gateway's account snapshots, on a fake clock: one per burst, never closer than the
minimum interval, and the last change always gets one."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from actors.account_push import REFRESH_ACCOUNT, AccountPush
from actors.gateway_config import GatewayConfig
from actors.trading_link import TradingLink
from messages.account import ACCOUNT_MOVED
from messages.orders import Fill


class Ref:
    def __init__(self) -> None:
        self.told: list[Any] = []

    def tell(self, message: Any) -> None:
        self.told.append(message)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


Timers = list[tuple[float, Callable[[], Any]]]


def _rig() -> tuple[AccountPush, TradingLink, Ref, Ref, Clock, Timers]:
    config = GatewayConfig(rest_url="http://x", ws_url="ws://x", signer=None)  # type: ignore[arg-type]
    link = TradingLink(config)
    gateway, service = Ref(), Ref()
    link.attach_service("mm", service)  # type: ignore[arg-type]
    timers: Timers = []
    clock = Clock()
    push = AccountPush(link, gateway, lambda delay, fn: timers.append((delay, fn)),  # type: ignore[arg-type]
                       min_interval=0.1, clock=clock)
    return push, link, gateway, service, clock, timers


def _fill(n: int) -> Fill:
    return Fill(trade_id=f"t{n}", order_id="o1", ticker="T", side="bid", count=Decimal(1),
                price=Decimal("0.4"))


def test_a_burst_asks_for_one_refresh_and_it_builds_one_snapshot() -> None:
    push, link, gateway, service, _, timers = _rig()
    for _ in range(50):
        push.changed()
    assert gateway.told == [REFRESH_ACCOUNT] and timers == []
    link.pnl.apply(_fill(1), "mm")
    push.refresh()
    assert push.snapshots == 1 and service.told == [ACCOUNT_MOVED]
    latest = link.take_account("mm")
    assert latest is not None and latest.positions[0].position == Decimal(1)


def test_a_change_inside_the_interval_waits_for_its_end_and_is_not_lost() -> None:
    push, link, gateway, _, clock, timers = _rig()
    push.changed()
    push.refresh()  # the first snapshot, at t=100
    link.take_account("mm")
    clock.now += 0.03
    link.pnl.apply(_fill(2), "mm")
    push.changed()
    push.changed()
    assert gateway.told == [REFRESH_ACCOUNT]  # no second immediate refresh
    assert len(timers) == 1 and abs(timers[0][0] - 0.07) < 1e-9
    clock.now += 0.07
    timers[0][1]()  # the timer fires on the gateway's thread
    latest = link.take_account("mm")
    assert push.snapshots == 2 and latest is not None
    assert latest.positions[0].position == Decimal(1) and latest.version == 2
    clock.now += 5
    push.changed()  # long after: at once again
    assert gateway.told == [REFRESH_ACCOUNT, REFRESH_ACCOUNT] and len(timers) == 1
