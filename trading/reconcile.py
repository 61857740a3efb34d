"""Reconciliation: a pure diff of our view against the exchange's REST truth.

The private channels have no sequence numbers (§8.7), so a gap is invisible: after every
reconnect and on each return to READY the gateway reads the truth over REST (resting
orders, fills since the last one seen minus a margin, positions, balance) and calls
``reconcile``. Rules (docs/trading.md):

1. Fills are authoritative. A fill whose ``trade_id`` we have not seen is ``FillMissed``
   and is applied (deduplicated by ``trade_id``: the margin makes the pull overlap).
2. An exchange resting order is matched to ours by ``client_order_id``, then ``order_id``.
   No match: ``OrderUnknownLocally`` (the startup policy decides). A match whose counts or
   status differ: ``OrderDiffers``, and the exchange's view is applied. If we think it done
   but it rests (a lagging read, or a cancel we wrongly believed), it is cancelled again.
3. An order we think may rest (it exists, is not final) that the exchange does not list,
   and whose fills (missed ones included) do not complete it: ``OrderGoneAtExchange``. It
   is marked vanished and **looked up**, never concluded cancelled (a fast fill may be
   behind it). Pending and outcome-unknown orders are left to the lookup planner.
4. Positions come from the exchange. Ours, with the missed fills applied, is compared per
   market: ``PositionMismatch`` when they still differ.
5. ``BalanceChanged`` when the balance moved since the last read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from messages.orders import (
    BalanceChanged,
    Difference,
    ExchangeOrder,
    Fill,
    FillMissed,
    OrderDiffers,
    OrderGoneAtExchange,
    OrderStatus,
    OrderUnknownLocally,
    OrderUpdate,
    PositionMismatch,
)
from trading.tracker import OrderTracker

ZERO = Decimal(0)
DEFAULT_FILL_MARGIN_MS = 60_000
"""How far before the last fill seen the next pull starts: covers clock skew, the REST
lag, and fills with equal timestamps (duplicates are dropped by ``trade_id``)."""


def fills_since(last_seen_ms: int | None, margin_ms: int = DEFAULT_FILL_MARGIN_MS) -> int | None:
    """``min_ts`` for the fill pull: last seen minus the margin (None: pull everything)."""
    return None if last_seen_ms is None else max(0, last_seen_ms - margin_ms)


@dataclass(frozen=True, slots=True)
class ExchangeTruth:
    """What the REST reads returned."""

    resting: tuple[ExchangeOrder, ...]
    fills: tuple[Fill, ...]
    positions: Mapping[str, Decimal]
    """Signed YES position per market (markets at zero may be absent)."""
    balance: int | None = None
    """Cents; None if not read this time."""
    shards: Mapping[str, int] = field(default_factory=dict)
    """Market -> ``exchange_index`` as the reads said (orders, positions, listings)."""


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """The differences, and what the gateway applies so that its state is the truth's."""

    differences: tuple[Difference, ...]
    apply_fills: tuple[Fill, ...]
    apply_orders: tuple[ExchangeOrder, ...]
    vanished: tuple[str, ...]
    """Order ids to mark vanished (and look up)."""
    cancel_again: tuple[str, ...]
    """Order ids we think done that still rest: cancel them (404 = gone)."""
    positions: dict[str, Decimal] = field(default_factory=dict)
    """The corrected positions: the exchange's, zeros dropped."""
    balance: int | None = None

    @property
    def clean(self) -> bool:
        return not self.differences


def reconcile(
    orders: Iterable[OrderUpdate],
    seen_trade: frozenset[str] | set[str],
    positions: Mapping[str, Decimal],
    balance: int | None,
    truth: ExchangeTruth,
) -> Reconciliation:
    """Compare our orders, fills, positions and balance with ``truth`` (rules above)."""
    local = list(orders)
    by_cid = {o.client_order_id: o for o in local}
    by_oid = {o.order_id: o for o in local if o.order_id is not None}
    differences: list[Difference] = []

    missed: dict[str, Fill] = {}
    for fill in truth.fills:
        if fill.trade_id not in seen_trade and fill.trade_id not in missed:
            missed[fill.trade_id] = fill
            differences.append(FillMissed(fill=fill))
    missed_by_order: dict[str, Decimal] = {}
    for fill in missed.values():
        missed_by_order[fill.order_id] = missed_by_order.get(fill.order_id, ZERO) + fill.count

    apply_orders: list[ExchangeOrder] = []
    cancel_again: list[str] = []
    listed: set[str] = set()
    for order in truth.resting:
        listed.add(order.order_id)
        mine = by_cid.get(order.client_order_id or "") or by_oid.get(order.order_id)
        if mine is None:
            differences.append(OrderUnknownLocally(order=order))
            continue
        if mine.status.is_final:
            cancel_again.append(order.order_id)
        elif (
            mine.order_id == order.order_id
            and mine.filled == order.fill_count
            and mine.remaining == order.remaining_count
            and mine.status in (OrderStatus.RESTING, OrderStatus.PARTIALLY_FILLED)
        ):
            continue
        differences.append(
            OrderDiffers(
                client_order_id=mine.client_order_id,
                order_id=order.order_id,
                local_status=mine.status,
                local_filled=mine.filled,
                local_remaining=mine.remaining,
                exchange_filled=order.fill_count,
                exchange_remaining=order.remaining_count,
            )
        )
        apply_orders.append(order)

    vanished: list[str] = []
    for mine in local:
        if (
            mine.order_id is None
            or mine.order_id in listed
            or mine.status.is_final
            or mine.status in (OrderStatus.PENDING, OrderStatus.OUTCOME_UNKNOWN)
        ):
            continue
        if mine.filled + missed_by_order.get(mine.order_id, ZERO) >= mine.count:
            continue  # the missed fills complete it: it will read executed
        differences.append(
            OrderGoneAtExchange(
                client_order_id=mine.client_order_id,
                order_id=mine.order_id,
                local_status=mine.status,
            )
        )
        vanished.append(mine.order_id)

    ours_after = dict(positions)
    for fill in missed.values():
        ours_after[fill.ticker] = ours_after.get(fill.ticker, ZERO) + fill.signed_count
    for ticker in sorted(set(ours_after) | set(truth.positions)):
        mine_pos = ours_after.get(ticker, ZERO)
        theirs = truth.positions.get(ticker, ZERO)
        if mine_pos != theirs:
            differences.append(PositionMismatch(ticker=ticker, local=mine_pos, exchange=theirs))

    if truth.balance is not None and balance is not None and truth.balance != balance:
        differences.append(BalanceChanged(before=balance, after=truth.balance))

    return Reconciliation(
        differences=tuple(differences),
        apply_fills=tuple(missed.values()),
        apply_orders=tuple(apply_orders),
        vanished=tuple(vanished),
        cancel_again=tuple(cancel_again),
        positions={t: p for t, p in truth.positions.items() if p != 0},
        balance=truth.balance if truth.balance is not None else balance,
    )


def reconcile_tracker(
    tracker: OrderTracker,
    positions: Mapping[str, Decimal],
    balance: int | None,
    truth: ExchangeTruth,
) -> Reconciliation:
    """``reconcile`` over a tracker's orders and seen fills."""
    views = [record.view() for record in tracker]
    seen = {trade for record in tracker for trade in record.fills}
    seen |= {f.trade_id for f in truth.fills if tracker.seen_trade(f.trade_id)}
    return reconcile(views, seen, positions, balance, truth)


def apply(tracker: OrderTracker, reconciliation: Reconciliation) -> None:
    """Bring the tracker to the truth: missed fills, then the exchange's order views, then the
    vanished marks (which only ask for a lookup). Orphans left are the unknown orders."""
    for fill in reconciliation.apply_fills:
        tracker.on_fill(fill)
    for order in reconciliation.apply_orders:
        tracker.on_exchange_order(order)
    for order_id in reconciliation.vanished:
        tracker.on_vanished(order_id)
