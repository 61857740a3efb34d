"""Resolving an outcome-unknown write: a pure planner over what a lookup returned.

A create that timed out, got a 408/5xx or lost its connection may or may not have reached
the book. Minting a new ``client_order_id`` and sending again is how a peer doubled a
position (§8.11); so the rule (§8.10) is: look the order up by its ``client_order_id``
(``GET /portfolio/orders`` narrowed by ticker, then matched here), then its fills by
``order_id``; allow for REST read lag; poll with backoff; and only when the exchange's data
provably covers the moment of the write and still shows nothing, send the **same** intent
under the **same** id again. A 409 ``order_already_exists`` to that resend means it exists
after all: look it up again. No decision here can produce a new id: ``Resend`` carries the
old one.

The gateway does the I/O: it calls ``plan`` with each lookup's result and does what the
decision says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from messages.orders import ExchangeOrder, Fill


@dataclass(frozen=True, slots=True)
class LookupPolicy:
    """How patient the resolution is. Defaults suit Kalshi (demo lags ~1 s, §8.2)."""

    in_flight_ms: int = 10_000
    """How long after it was sent a write may still land (≥ the client's write timeout)."""
    read_lag_ms: int = 2_000
    """How far REST portfolio reads may lag the engine when no ``user_data_timestamp`` is read."""
    first_backoff_ms: int = 250
    max_backoff_ms: int = 8_000
    max_lookups: int = 12
    """Lookups per send before giving up on the data ever covering the write."""
    max_sends: int = 3
    """Sends of one intent under its one id (the first included) before escalating."""


@dataclass(frozen=True, slots=True)
class LookupResult:
    """What one lookup saw, and when."""

    client_order_id: str
    orders: tuple[ExchangeOrder, ...]
    """Orders the narrowed read returned (any ids: they are matched here)."""
    fills: tuple[Fill, ...]
    """Fills read for the order ids found (joined on ``order_id``: REST fills have no cid)."""
    sent_at_ms: int
    """When the ambiguous write was (last) sent, on the clock ``checked_at_ms`` uses."""
    checked_at_ms: int
    lookups: int
    """Lookups made since that send, this one included (≥ 1)."""
    sends: int
    """Sends of this intent under this id so far (≥ 1)."""
    data_as_of_ms: int | None = None
    """``GET /exchange/user_data_timestamp`` read with the lookup, if it was."""


@dataclass(frozen=True, slots=True)
class Found:
    """The order exists: apply ``order`` and ``fills`` to the tracker."""

    order: ExchangeOrder
    fills: tuple[Fill, ...] = ()


@dataclass(frozen=True, slots=True)
class RetryLookup:
    """Nothing conclusive yet: look again after ``after_ms``."""

    after_ms: int
    reason: str


@dataclass(frozen=True, slots=True)
class Resend:
    """Absent although the data covers the write: send the same intent under the same id."""

    client_order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Escalate:
    """Stop resolving automatically: the order stays ``outcome_unknown`` (counted by risk as
    open at full size) and the gateway reports it; reconciliation may still find it."""

    reason: str
    anomalies: tuple[str, ...] = field(default=())


Decision = Found | RetryLookup | Resend | Escalate


def backoff_ms(policy: LookupPolicy, lookups: int) -> int:
    """Exponential: ``first``, ``2·first``, ... capped at ``max``."""
    step = max(0, lookups - 1)
    return min(policy.max_backoff_ms, policy.first_backoff_ms * (2 ** min(step, 30)))


def matching(client_order_id: str, orders: Iterable[ExchangeOrder]) -> list[ExchangeOrder]:
    """The orders carrying this id (the read cannot filter by it: §8.2)."""
    return [o for o in orders if o.client_order_id == client_order_id]


def covered_at(result: LookupResult, policy: LookupPolicy) -> int:
    """The engine time up to which the read provably reflects the exchange."""
    if result.data_as_of_ms is not None:
        return result.data_as_of_ms
    return result.checked_at_ms - policy.read_lag_ms


def plan(result: LookupResult, policy: LookupPolicy | None = None) -> Decision:
    """Decide what to do after one lookup (see the module docstring)."""
    policy = policy or LookupPolicy()
    found = matching(result.client_order_id, result.orders)
    order_ids = {o.order_id for o in found}
    if len(order_ids) > 1:
        return Escalate(
            "two orders carry one client_order_id",
            tuple(sorted(order_ids)),
        )
    if found:
        newest = max(found, key=lambda o: (o.ts_ms or -1, o.fill_count))
        fills = tuple(f for f in result.fills if f.order_id == newest.order_id)
        return Found(newest, fills)
    needed = result.sent_at_ms + policy.in_flight_ms
    covered = covered_at(result, policy)
    if covered < needed:
        if result.lookups >= policy.max_lookups:
            return Escalate(f"read data still {needed - covered} ms short of the write")
        wait = max(backoff_ms(policy, result.lookups), min(needed - covered, policy.max_backoff_ms))
        return RetryLookup(wait, f"read data {needed - covered} ms short of the write")
    if result.sends >= policy.max_sends:
        return Escalate(f"absent after {result.sends} sends under one id")
    return Resend(result.client_order_id, "absent, and the read covers the write")
