"""Reading a reconciliation's result into what the order gateway does about it.

``trading.reconcile`` diffs our view against the exchange's REST truth; this module adds
the gateway's own rules on top, as plain functions of explicit state:

- a read made while fills arrived (``stale``) may predate them: its position differences
  are not reported, and the truth is read again (at most ``MAX_RECONCILE_ATTEMPTS`` reads)
  rather than "corrected" to an older position;
- a resting order with our id prefix that nothing here tracks was placed by an earlier
  incarnation or process whose gateway is gone: nobody here will manage it, so it is
  cancelled (``strays``);
- resting orders the trading stage adopted at connect (``--startup-orders adopt``) that
  nothing here tracks are adopted first (``actors.gateway_adoption``), one line each, so
  the diff that follows knows them;
- once the fills are applied, a position still different from the exchange's is set to
  the exchange's (``corrections``), each difference one line of the ``Reconciled`` event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from decimal import Decimal

from actors.gateway_adoption import intent_of, to_adopt, tracking_id
from actors.gateway_cancels import CancelDesk
from actors.gateway_fills import FillLedger
from actors.gateway_messages import IoDone
from actors.gateway_ports import Ports
from actors.trading_link import TradingLink
from messages.orders import ExchangeOrder, Fill, PositionMismatch
from messages.text import one_line
from messages.trading_events import RECONCILED_SHOWN_MAX, Reconciled
from trading.reconcile import ExchangeTruth, Reconciliation, reconcile_tracker
from trading.tracker import OrderTracker

logger = logging.getLogger("kalshi_supervisor.actors.gateway_reconciliation")

ZERO = Decimal(0)
MAX_RECONCILE_ATTEMPTS = 5
"""Reads in a row a reconciliation makes while fills keep arriving across them."""


def difference_lines(result: Reconciliation, *, stale: bool) -> list[str]:
    """One line per difference worth reporting (a stale read's positions are not)."""
    return [
        one_line(str(d.describe()))
        for d in result.differences
        if not (stale and isinstance(d, PositionMismatch))
    ]


def mismatched(result: Reconciliation) -> bool:
    return any(isinstance(d, PositionMismatch) for d in result.differences)


def read_again(result: Reconciliation, *, stale: bool, attempt: int) -> bool:
    """A stale read that saw positions differ: read again (bounded), correct nothing."""
    return stale and mismatched(result) and attempt < MAX_RECONCILE_ATTEMPTS


def strays(truth: ExchangeTruth, tracker: OrderTracker, id_prefix: str) -> list[str]:
    """Order ids of resting orders with our id prefix that nothing here tracks."""
    prefix = f"{id_prefix}-"
    found: list[str] = []
    for order in truth.resting:
        known = tracker.get(order.client_order_id or "") or tracker.by_order_id(order.order_id)
        if known is None and (order.client_order_id or "").startswith(prefix):
            found.append(order.order_id)
    return found


def corrections(
    exchange: Mapping[str, Decimal], local: Mapping[str, Decimal]
) -> dict[str, Decimal]:
    """Per market, what to add to our position to make it the exchange's."""
    deltas: dict[str, Decimal] = {}
    for ticker, position in exchange.items():
        mine = local.get(ticker, ZERO)
        if mine != position:
            deltas[ticker] = position - mine
    for ticker, mine in local.items():
        if ticker not in exchange:
            deltas[ticker] = -mine
    return deltas


def reconciled(trigger: str, lines: list[str]) -> Reconciled:
    return Reconciled(
        trigger=trigger,
        differences=tuple(line[:300] for line in lines[:RECONCILED_SHOWN_MAX]),
        difference_count=len(lines),
    )


def read_failed(trigger: str, error: BaseException) -> Reconciled:
    return Reconciled(trigger=trigger,
                      differences=(one_line(f"read failed: {error}")[:300],))


class Reconciler:
    """Applies one read of the exchange's truth (see the module docstring); remembers the
    balance it last saw, so the next read reports a change."""

    def __init__(
        self,
        ports: Ports,
        cancels: CancelDesk,
        fills: FillLedger,
        link: TradingLink,
        *,
        id_prefix: str,
        on_fill: Callable[[Fill], None],
        adoptable: Callable[[], set[str]],
    ) -> None:
        self.ports = ports
        self.cancels = cancels
        self.fills = fills
        self.link = link
        self.id_prefix = id_prefix
        self.on_fill = on_fill
        self.adoptable = adoptable
        """Order ids the trading stage adopted at its last connect (empty: no adoption)."""
        self.balance: int | None = None

    def apply(self, done: IoDone, trigger: str, fill_seq: int, attempt: int) -> bool:
        """Apply the read in ``done``; True when the truth is to be read again."""
        # fills applied while the exchange was read: its positions may predate them
        stale = fill_seq != self.fills.fill_seq
        if done.error is not None:
            logger.warning("gateway: reconciliation (%s) could not read the exchange: %s",
                           trigger, one_line(str(done.error)))
            self.link.publish(read_failed(trigger, done.error))
            return False
        truth: ExchangeTruth = done.result
        tracker, pnl = self.ports.tracker, self.fills.pnl
        adopted = self._adopt(truth.resting)
        result = reconcile_tracker(tracker, pnl.positions(None), self.balance, truth)
        lines = [*adopted, *difference_lines(result, stale=stale)]
        for fill in result.apply_fills:
            self.on_fill(fill)
        for order in result.apply_orders:
            self.ports.emit_routed(tracker.on_exchange_order(order).client_order_id)
        for order_id in result.vanished:
            tracker.on_vanished(order_id)
            self.cancels.look_up(order_id)
        for order_id in (*result.cancel_again, *strays(truth, tracker, self.id_prefix)):
            self.cancels.by_id(order_id)
        again = read_again(result, stale=stale, attempt=attempt)
        if not again and not stale and mismatched(result):
            quotes = self.fills.out.quotes()
            for ticker, delta in corrections(truth.positions, pnl.positions(None)).items():
                self.fills.seed(ticker, delta, quotes)
        self.balance = result.balance
        self.ports.changed()
        self.link.publish(reconciled(trigger, lines))
        return again

    def _adopt(self, resting: tuple[ExchangeOrder, ...]) -> list[str]:
        """Track the stage's adopted orders not yet tracked; one line each."""
        ids = self.adoptable()
        if not ids:
            return []
        tracker, allocator = self.ports.tracker, self.link.allocator
        lines: list[str] = []
        for order in to_adopt(resting, tracker, ids):
            try:
                key = tracking_id(order, tracker)
                tracker.adopt(key, intent_of(order), order)
            except ValueError as exc:
                lines.append(one_line(f"not adopted: {exc}"))
                continue
            if allocator is not None:
                allocator.skip_past(order.client_order_id)
            self.ports.emit_routed(key)
            lines.append(f"adopted order {order.order_id} as {key} ({order.ticker} "
                         f"{order.side} {order.remaining_count} @ {order.price})")
        return lines
