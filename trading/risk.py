"""Pre-trade risk: the trading state's gate, then limits per service and global.

Checked before anything is sent, so a breaching order never reaches the exchange. The
gate first (§ "Trading state" of issue 16):

- ``HALTED``: nothing but cancels (``check_order`` refuses every order);
- ``REDUCING``: cancels and reduce-only orders that do reduce the position;
- ``ACTIVE``: everything the limits allow (a reduce-only order that would not reduce is
  refused: the exchange would cancel it anyway).

Then each scope's ``RiskLimits`` (the service's, then the global one) against its
``Exposure``, worst case throughout (pending and outcome-unknown orders count as resting
at their full remaining size):

- daily loss (checked in every scope before anything else, so no other refusal hides it):
  realized + unrealized (at exit) - fees ≤ ``-max_daily_loss`` refuses and says **halt**;
- order size: ``count ≤ max_order_count``;
- open orders: ``open_orders + 1 ≤ max_open_orders``;
- position per market: a bid's worst case ``position + resting bids + count ≤ max``, an
  ask's ``position - resting asks - count ≥ -max``;
- notional at risk: ``notional + count · cost ≤ max_notional`` (cost ``p`` for a bid,
  ``1 - p`` for an ask).

A reduce-only order that reduces is exempt from the position and notional limits (it
lowers both), not from the size and open-order limits. Cancels are never refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from messages.orders import OrderIntent, OrderUpdate, RiskLimits, TradingState

ZERO = Decimal(0)
ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class Exposure:
    """What one scope (a service, or the process) has at risk now."""

    open_orders: int = 0
    notional: Decimal = ZERO
    buying: Mapping[str, Decimal] = field(default_factory=dict)
    """Remaining contracts of open bids per market."""
    selling: Mapping[str, Decimal] = field(default_factory=dict)
    """Remaining contracts of open asks per market."""
    positions: Mapping[str, Decimal] = field(default_factory=dict)
    daily_pnl: Decimal = ZERO
    """Today's realized + unrealized (at exit) - fees."""

    @classmethod
    def of(
        cls,
        orders: Iterable[OrderUpdate],
        positions: Mapping[str, Decimal],
        daily_pnl: Decimal = ZERO,
        service: str | None = None,
    ) -> Exposure:
        """Sum the open orders (of ``service``, or all) into an exposure."""
        count = 0
        notional = ZERO
        buying: dict[str, Decimal] = {}
        selling: dict[str, Decimal] = {}
        for order in orders:
            if not order.status.is_open or (service is not None and order.service != service):
                continue
            count += 1
            if order.side == "bid":
                notional += order.remaining * order.price
                buying[order.ticker] = buying.get(order.ticker, ZERO) + order.remaining
            else:
                notional += order.remaining * (ONE - order.price)
                selling[order.ticker] = selling.get(order.ticker, ZERO) + order.remaining
        return cls(count, notional, buying, selling, dict(positions), daily_pnl)


@dataclass(frozen=True, slots=True)
class RiskVerdict:
    """Admitted, or refused with the limit and scope that refused it."""

    admitted: bool
    reason: str = ""
    limit: str | None = None
    scope: str | None = None
    halt: bool = False
    """The breach must halt trading (the daily loss)."""


ADMITTED = RiskVerdict(True)


def reduces(intent: OrderIntent, position: Decimal) -> bool:
    """Would filling all of ``intent`` move ``position`` toward zero without crossing it?"""
    if intent.side == "bid":
        return position < 0 and intent.count <= -position
    return position > 0 and intent.count <= position


def daily_loss_breached(limits: RiskLimits, daily_pnl: Decimal) -> bool:
    return limits.max_daily_loss is not None and daily_pnl <= -limits.max_daily_loss


def check_order(
    intent: OrderIntent,
    state: TradingState,
    scopes: Iterable[tuple[str, RiskLimits, Exposure]],
) -> RiskVerdict:
    """May ``intent`` be sent? ``scopes``: (name, limits, exposure), e.g. the service's
    then ``("global", ...)``. The first refusal is returned."""
    checked = list(scopes)
    reducing = intent.reduce_only and bool(checked) and all(
        reduces(intent, exposure.positions.get(intent.ticker, ZERO)) for _, _, exposure in checked
    )
    if state is TradingState.HALTED:
        return RiskVerdict(False, "trading is halted: only cancels", "trading_state")
    for scope, limits, exposure in checked:  # first: no other refusal may hide a halt
        if daily_loss_breached(limits, exposure.daily_pnl):
            return RiskVerdict(
                False,
                f"{scope}: daily loss {-exposure.daily_pnl} reached the limit "
                f"{limits.max_daily_loss}",
                "max_daily_loss",
                scope,
                halt=True,
            )
    if intent.reduce_only and not reducing:
        return RiskVerdict(False, "reduce_only order would not reduce the position", "reduce_only")
    if state is TradingState.REDUCING and not reducing:
        return RiskVerdict(
            False, "trading is reducing: only cancels and reduce-only orders", "trading_state"
        )
    for scope, limits, exposure in checked:
        verdict = _check_scope(intent, limits, exposure, reducing)
        if not verdict.admitted:
            return RiskVerdict(False, f"{scope}: {verdict.reason}", verdict.limit, scope,
                               verdict.halt)
    return ADMITTED


def _check_scope(
    intent: OrderIntent, limits: RiskLimits, exposure: Exposure, reducing: bool
) -> RiskVerdict:
    if limits.max_order_count is not None and intent.count > limits.max_order_count:
        return RiskVerdict(
            False, f"order of {intent.count} exceeds {limits.max_order_count}", "max_order_count"
        )
    if limits.max_open_orders is not None and exposure.open_orders + 1 > limits.max_open_orders:
        return RiskVerdict(
            False, f"{exposure.open_orders} open orders already (max {limits.max_open_orders})",
            "max_open_orders",
        )
    if reducing:
        return ADMITTED
    if limits.max_position is not None:
        position = exposure.positions.get(intent.ticker, ZERO)
        if intent.side == "bid":
            worst = position + exposure.buying.get(intent.ticker, ZERO) + intent.count
            breach = worst > limits.max_position
        else:
            worst = position - exposure.selling.get(intent.ticker, ZERO) - intent.count
            breach = worst < -limits.max_position
        if breach:
            return RiskVerdict(
                False,
                f"position in {intent.ticker} could reach {worst} (max ±{limits.max_position})",
                "max_position",
            )
    if limits.max_notional is not None:
        after = exposure.notional + intent.count * intent.cost_per_contract
        if after > limits.max_notional:
            return RiskVerdict(
                False, f"notional at risk would be {after} (max {limits.max_notional})",
                "max_notional",
            )
    return ADMITTED
