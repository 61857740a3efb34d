"""The write pacer on an injected clock: pacing, the cancel reserve, batch refusal, 429s,
costs from /account/endpoint_costs, and many threads never overspending the bucket."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from kalshi_api.account_limits import AccountLimits, EndpointCosts
from kalshi_api.errors import LocallyRefusedError
from kalshi_api.write_pacer import WriteCosts, WritePacer

ORDERS = "/portfolio/events/orders"


class FakeClock:
    """A clock that only moves when something sleeps on it (or the test advances it)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self.now += seconds


def _pacer(
    rate: float = 10, capacity: float = 20, **kwargs: object
) -> tuple[WritePacer, FakeClock]:
    clock = FakeClock()
    return WritePacer(rate, capacity, clock=clock, sleep=clock.sleep, **kwargs), clock  # type: ignore[arg-type]


def test_acquire_when_bucket_empties_waits_for_the_refill() -> None:
    pacer, clock = _pacer(rate=100, capacity=20)
    assert pacer.acquire("POST", ORDERS) == 0.0
    assert pacer.acquire("POST", ORDERS) == 0.0
    waited = pacer.acquire("POST", ORDERS)  # 10 tokens at 100/s: 0.1 s
    assert waited == pytest.approx(0.1) and clock.slept == [pytest.approx(0.1)]
    assert pacer.tokens == pytest.approx(0.0)


def test_try_acquire_when_cancel_reserve_held_refuses_creates_but_serves_cancels() -> None:
    pacer, _ = _pacer(rate=10, capacity=20, cancel_reserve=6)
    assert pacer.try_acquire("POST", ORDERS) == 0.0  # 20 -> 10
    wait = pacer.try_acquire("POST", ORDERS)  # would leave 0 < 6 reserved
    assert wait == pytest.approx(0.6)
    assert pacer.tokens == pytest.approx(10)
    for _ in range(5):  # cancels cost 2 and may spend the reserve
        assert pacer.try_acquire("DELETE", ORDERS + "/o-1") == 0.0
    assert pacer.tokens == pytest.approx(0.0)


def test_try_acquire_when_batch_cannot_fit_bucket_refuses_locally_with_one_line() -> None:
    pacer, _ = _pacer(rate=100, capacity=100)
    assert pacer.try_acquire("POST", ORDERS + "/batched", items=10) == 0.0
    with pytest.raises(LocallyRefusedError, match="11 orders costs 110") as caught:
        pacer.try_acquire("POST", ORDERS + "/batched", items=11)
    assert "\n" not in str(caught.value)
    assert pacer.try_acquire("DELETE", ORDERS + "/batched", items=50) > 0  # 2 each: fits, later


def test_acquire_when_wait_exceeds_max_wait_refuses_without_taking_tokens() -> None:
    pacer, clock = _pacer(rate=1, capacity=20, max_wait=2.0)
    pacer.acquire("POST", ORDERS)
    pacer.acquire("POST", ORDERS)
    with pytest.raises(LocallyRefusedError, match="max wait"):
        pacer.acquire("POST", ORDERS)
    assert clock.slept == []


def test_rate_limited_when_exchange_says_429_empties_the_bucket() -> None:
    pacer, clock = _pacer(rate=10, capacity=20)
    pacer.rate_limited()
    assert pacer.tokens == 0 and pacer.rate_limited_count == 1
    clock.now += 0.5
    assert pacer.tokens == pytest.approx(5)


def test_from_account_when_limits_and_costs_read_sizes_bucket_and_prices_paths() -> None:
    limits = AccountLimits.model_validate(
        {
            "usage_tier": "premier",
            "read": {"refill_rate": 1000, "bucket_capacity": 1000},
            "write": {"refill_rate": 1000, "bucket_capacity": 2000},
            "grants": [],
        }
    )
    costs = EndpointCosts.model_validate(
        {
            "default_cost": 10,
            "endpoint_costs": [
                {
                    "method": "DELETE",
                    "path": "/trade-api/v2/portfolio/events/orders/{order_id}",
                    "cost": 3,
                },
                {"method": "POST", "path": "/portfolio/events/orders/{order_id}/amend", "cost": 7},
            ],
        }
    )
    clock = FakeClock()
    pacer = WritePacer.from_account(limits, costs, clock=clock, sleep=clock.sleep)
    assert (pacer.refill_rate, pacer.capacity, pacer.cancel_reserve) == (1000, 2000, 200)
    assert pacer.costs.cost("DELETE", ORDERS + "/abc") == 3
    assert pacer.costs.cost("POST", ORDERS + "/abc/amend") == 7
    assert pacer.costs.cost("POST", ORDERS) == 10
    assert pacer.costs.cost("POST", ORDERS + "/batched", items=4) == 40  # known default
    assert pacer.costs.cost("PUT", "/portfolio/order_groups/g1/trigger") == 10


def test_write_costs_when_default_changed_applies_to_unlisted_paths() -> None:
    costs = WriteCosts.from_endpoint_costs(EndpointCosts(default_cost=Decimal(5)))
    assert costs.cost("POST", ORDERS) == 5
    assert costs.cost("DELETE", ORDERS + "/x") == 2


def test_acquire_when_many_threads_race_never_overspends() -> None:
    pacer, _clock = _pacer(rate=10, capacity=100)
    granted: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(50):
            if pacer.try_acquire("POST", ORDERS) == 0.0:
                with lock:
                    granted.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sum(granted) == 10  # the clock never moved: exactly the 100 tokens, 10 each
