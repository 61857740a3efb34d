"""A client-side copy of the account's write bucket, so writes are paced instead of 429'd.

Why: Kalshi answers an empty write bucket with 429 and no Retry-After (protocol §4.2,
§8.8), and a 429 on a cancel is the worst moment to learn the bucket is empty. The pacer
keeps a token bucket sized from ``GET /account/limits`` (refill rate and capacity) and
prices each write from ``GET /account/endpoint_costs`` (per method and path, default cost
otherwise; batches per item). It

* waits, before sending, until a write's tokens are there (so 429s stay rare);
* keeps ``cancel_reserve`` tokens that only risk-reducing writes (cancels, decreases,
  batch cancels, cancel-all) may spend, so a burst of creates can never starve a cancel;
* refuses locally (:class:`~kalshi_api.errors.LocallyRefusedError`) a batch that could not
  fit the bucket at once, which the exchange would refuse whole anyway;
* empties itself on a 429, the exchange's word being better than our estimate.

Thread-safe: one pacer is shared by every client of an account. ``clock`` and ``sleep``
are injectable, so tests drive time without sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Final

from kalshi_api.account_limits import AccountLimits, EndpointCosts
from kalshi_api.errors import LocallyRefusedError
from kalshi_api.protocol import REST_PREFIX

__all__ = ["DEFAULT_WRITE_COSTS", "WriteCosts", "WritePacer"]

ORDERS_ROUTE: Final = "/portfolio/events/orders"
ORDER_ROUTE: Final = ORDERS_ROUTE + "/{order_id}"
BATCH_ROUTE: Final = ORDERS_ROUTE + "/batched"
DECREASE_ROUTE: Final = ORDER_ROUTE + "/decrease"

_RISK_REDUCING: Final = frozenset(
    {
        ("DELETE", ORDER_ROUTE),
        ("DELETE", BATCH_ROUTE),
        ("DELETE", ORDERS_ROUTE),
        ("POST", DECREASE_ROUTE),
    }
)
"""Writes that only take risk off: they may spend the cancel reserve."""

DEFAULT_WRITE_COSTS: Final = {
    ("DELETE", ORDER_ROUTE): 2,
    ("DELETE", BATCH_ROUTE): 2,
    ("POST", BATCH_ROUTE): 10,
    ("DELETE", ORDERS_ROUTE): 2,
}
"""Known costs (§4.2, §8.8) used until ``/account/endpoint_costs`` says otherwise; batch
costs are per item."""


def _segments(path: str) -> tuple[str, ...]:
    if path.startswith(REST_PREFIX):
        path = path[len(REST_PREFIX) :]
    return tuple(part for part in path.split("?", 1)[0].split("/") if part)


def _matches(template: tuple[str, ...], path: tuple[str, ...]) -> bool:
    return len(template) == len(path) and all(
        t == p or (t.startswith("{") and t.endswith("}"))
        for t, p in zip(template, path, strict=True)
    )


class WriteCosts:
    """Token cost per write, by method and path (templates with ``{placeholders}`` match any
    segment); a batch path's cost is per item."""

    def __init__(
        self, default_cost: int = 10, costs: Mapping[tuple[str, str], int] | None = None
    ) -> None:
        if default_cost < 0:
            raise ValueError(f"default_cost must not be negative, got {default_cost}")
        self.default_cost = default_cost
        table = DEFAULT_WRITE_COSTS if costs is None else costs
        self._table = [
            (method.upper(), _segments(path), int(cost)) for (method, path), cost in table.items()
        ]

    @classmethod
    def from_endpoint_costs(cls, costs: EndpointCosts) -> WriteCosts:
        """The exchange's table, over the known defaults (the exchange wins)."""
        table: dict[tuple[str, str], int] = dict(DEFAULT_WRITE_COSTS)
        for entry in costs.endpoint_costs:
            key = (entry.method.upper(), "/" + "/".join(_segments(entry.path)))
            table[key] = _whole(entry.cost)
        return cls(_whole(costs.default_cost), table)

    def cost(self, method: str, path: str, items: int = 1) -> int:
        """What one request costs (``items`` orders for a batch)."""
        wanted = _segments(path)
        method = method.upper()
        per = self.default_cost
        for entry_method, template, cost in self._table:
            if entry_method == method and _matches(template, wanted):
                per = cost
                break
        return per * max(items, 1) if wanted[-1:] == ("batched",) else per


def _whole(value: Decimal) -> int:
    return int(value.to_integral_value(rounding="ROUND_CEILING"))


class WritePacer:
    """A token bucket mirroring the exchange's write bucket (see the module docstring)."""

    def __init__(
        self,
        refill_rate: float,
        capacity: float,
        *,
        costs: WriteCosts | None = None,
        cancel_reserve: float = 0.0,
        max_wait: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if refill_rate <= 0 or capacity <= 0:
            raise ValueError("refill_rate and capacity must be positive")
        if not 0 <= cancel_reserve < capacity:
            raise ValueError(f"cancel_reserve must be in [0, {capacity:g}), got {cancel_reserve}")
        self.refill_rate = float(refill_rate)
        self.capacity = float(capacity)
        self.costs = costs or WriteCosts()
        self.cancel_reserve = float(cancel_reserve)
        self.max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self.capacity
        self._stamp = clock()
        self.rate_limited_count = 0

    @classmethod
    def from_account(
        cls,
        limits: AccountLimits,
        costs: EndpointCosts | None = None,
        *,
        cancel_reserve_fraction: float = 0.1,
        **kwargs: object,
    ) -> WritePacer:
        """Sized from ``/account/limits`` (write bucket) and ``/account/endpoint_costs``."""
        capacity = float(limits.write.bucket_capacity)
        return cls(
            float(limits.write.refill_rate),
            capacity,
            costs=WriteCosts.from_endpoint_costs(costs) if costs is not None else None,
            cancel_reserve=capacity * cancel_reserve_fraction,
            **kwargs,  # type: ignore[arg-type]
        )

    # -- queries ---------------------------------------------------------------------------------
    @property
    def tokens(self) -> float:
        with self._lock:
            self._refill()
            return self._tokens

    def is_risk_reducing(self, method: str, path: str) -> bool:
        wanted = _segments(path)
        return any(
            method.upper() == m and _matches(_segments(t), wanted) for m, t in _RISK_REDUCING
        )

    # -- spending --------------------------------------------------------------------------------
    def try_acquire(self, method: str, path: str, *, items: int = 1) -> float:
        """Take the write's tokens now and return 0.0, or take nothing and return how many
        seconds until they will be there. Raises if the write can never fit."""
        cost = self.costs.cost(method, path, items)
        floor = 0.0 if self.is_risk_reducing(method, path) else self.cancel_reserve
        if cost > self.capacity - floor:
            what = f"{items} orders" if items > 1 else f"{method.upper()} {path}"
            raise LocallyRefusedError(
                f"refused before sending: {what} costs {cost} write tokens, more than the "
                f"{self.capacity - floor:g} the write bucket can ever hold for it"
            )
        with self._lock:
            self._refill()
            if self._tokens - cost >= floor:
                self._tokens -= cost
                return 0.0
            return (cost + floor - self._tokens) / self.refill_rate

    def acquire(self, method: str, path: str, *, items: int = 1) -> float:
        """Wait (with the injected ``sleep``) until the write's tokens are there and take
        them; returns the seconds waited. Gives up, sending nothing, after ``max_wait``."""
        waited = 0.0
        while True:
            wait = self.try_acquire(method, path, items=items)
            if wait <= 0:
                return waited
            if waited + wait > self.max_wait:
                raise LocallyRefusedError(
                    f"refused before sending: the write bucket would need {waited + wait:.3f}s "
                    f"to pay for {method.upper()} {path} (max wait {self.max_wait:g}s)"
                )
            self._sleep(wait)
            waited += wait

    def rate_limited(self) -> None:
        """The exchange answered 429: its bucket is empty, so ours is too."""
        with self._lock:
            self._refill()
            self._tokens = 0.0
            self.rate_limited_count += 1

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(now - self._stamp, 0.0)
        self._stamp = now
        self._tokens = min(self.capacity, self._tokens + elapsed * self.refill_rate)
