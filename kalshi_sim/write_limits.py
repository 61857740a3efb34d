"""Kalshi's usage tiers, the Write token bucket and the published endpoint costs (§8.8).

Why a module of its own: the Write bucket is charged per member (the authenticated key),
per request *and* per batch item, and a batch that does not fit the bucket at once is
refused whole; the Read bucket (:mod:`kalshi_sim.rate_limit`) knows nothing of that. The
two tier tables Kalshi has published disagree (§8.8), so the one served here is the Aug
2026 copy and is what ``GET /account/limits`` reports: a client must read it, never
hard-code it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kalshi_api.protocol import REST_PREFIX
from kalshi_sim.rate_limit import TokenBucket

DEFAULT_COST = 10
CANCEL_COST = 2
BATCH_CREATE_ITEM_COST = 10
BATCH_CANCEL_ITEM_COST = 2
GET_ORDER_COST = 2


@dataclass(frozen=True, slots=True)
class Tier:
    """One usage tier: tokens per second and bucket sizes for Read and Write."""

    name: str
    read_rate: int
    write_rate: int
    read_capacity: int
    write_capacity: int


def _tier(name: str, read: int, write: int) -> Tier:
    # Basic/Advanced Read and every Write above Basic hold 2 s of budget, the rest 1 s [RLD].
    read_seconds = 2 if name in ("basic", "advanced") else 1
    write_seconds = 1 if name == "basic" else 2
    return Tier(name, read, write, read * read_seconds, write * write_seconds)


TIERS: dict[str, Tier] = {
    t.name: t
    for t in (
        _tier("basic", 200, 100),
        _tier("advanced", 300, 300),
        _tier("expert", 600, 600),
        _tier("premier", 1000, 1000),
        _tier("paragon", 2000, 2000),
        _tier("prime", 4000, 4000),
        _tier("prestige", 10000, 8000),
    )
}
"""The Aug 2026 table [RLD]; the Oct [CONF] copy differs (UNCONFIRMED which stands)."""

_V2 = REST_PREFIX + "/portfolio/events/orders"
_ORDERS = REST_PREFIX + "/portfolio/orders"
_ORDER_GROUPS = REST_PREFIX + "/portfolio/order_groups"


def endpoint_costs(cancel_all_cost: int) -> list[dict[str, Any]]:
    """The non-default costs, as ``GET /account/endpoint_costs`` lists them."""
    return [
        {"method": "DELETE", "path": _V2 + "/{order_id}", "cost": CANCEL_COST},
        {"method": "DELETE", "path": _V2, "cost": cancel_all_cost},
        {"method": "GET", "path": _ORDERS + "/{order_id}", "cost": GET_ORDER_COST},
        {"method": "POST", "path": _V2 + "/batched", "cost": BATCH_CREATE_ITEM_COST},
        {"method": "DELETE", "path": _V2 + "/batched", "cost": BATCH_CANCEL_ITEM_COST},
    ]


_WRITE_PATHS = (
    re.compile(re.escape(_V2) + r"(/.*)?"),
    re.compile(re.escape(_ORDER_GROUPS) + r"(/.*)?"),
)


def is_write(method: str, path: str) -> bool:
    """Whether a request is billed to the Write bucket (orders, amends, cancels, groups).

    Reads of order groups (GET) stay on the Read bucket, as every GET does [RL].
    """
    if method.upper() == "GET":
        return False
    return any(p.fullmatch(path) for p in _WRITE_PATHS)


class WriteLimits:
    """One Write bucket per member at the exchange's tier; thread-safe.

    ``cost`` for a batch is the sum over its items; a request whose cost exceeds what the
    bucket holds is refused whole (nothing spent), which is Kalshi's batch rule.
    """

    def __init__(
        self,
        tier: str = "basic",
        *,
        enabled: bool = True,
        cancel_all_cost: int = CANCEL_COST,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if tier not in TIERS:
            raise ValueError(f"unknown usage tier {tier!r}; one of {', '.join(TIERS)}")
        self.tier = TIERS[tier]
        self.enabled = enabled
        self.cancel_all_cost = cancel_all_cost
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def _bucket(self, member: str) -> TokenBucket:
        with self._lock:
            bucket = self._buckets.get(member)
            if bucket is None:
                extra = {"clock": self._clock} if self._clock is not None else {}
                bucket = TokenBucket(self.tier.write_rate, self.tier.write_capacity, **extra)
                self._buckets[member] = bucket
            return bucket

    def try_take(self, member: str, cost: int) -> bool:
        """Spend ``cost`` Write tokens of ``member``; False (nothing spent) if not there."""
        if not self.enabled:
            return True
        return self._bucket(member).try_take(cost)

    def limits_body(self) -> dict[str, Any]:
        """``GET /account/limits``."""
        tier = self.tier
        return {
            "usage_tier": tier.name,
            "read": {"refill_rate": tier.read_rate, "bucket_capacity": tier.read_capacity},
            "write": {"refill_rate": tier.write_rate, "bucket_capacity": tier.write_capacity},
            "grants": [],
        }

    def costs_body(self) -> dict[str, Any]:
        """``GET /account/endpoint_costs``."""
        costs = endpoint_costs(self.cancel_all_cost)
        return {"default_cost": DEFAULT_COST, "endpoint_costs": costs}
