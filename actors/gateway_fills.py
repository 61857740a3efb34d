"""Fills into positions and P&L, and the day's loss watched against the limits.

A fill is routed to its order in the tracker (deduplicated by ``trade_id``; a fill the
tracker refuses changes nothing), applied once to the ``PnlBook`` under the owning
service (None: not one of ours, e.g. an order of another client on this account), and
told (``GatewayPublisher.fill``). ``fill_seq`` counts the fills applied, so a
reconciliation read across one knows its positions may be stale; ``last_fill_ms`` is
where the next reconciliation's fill pull starts (minus a margin).
"""

from __future__ import annotations

from decimal import Decimal

from actors.gateway_config import GatewayConfig
from actors.gateway_publish import GatewayPublisher
from messages.orders import Fill
from trading.pnl import PnlBook, Quote
from trading.risk import daily_loss_breached
from trading.tracker import OrderTracker, Routed

HALF = Decimal("0.5")


class FillLedger:
    """Applies fills and position corrections (see the module docstring)."""

    def __init__(
        self, cfg: GatewayConfig, tracker: OrderTracker, pnl: PnlBook, out: GatewayPublisher
    ) -> None:
        self.cfg = cfg
        self.tracker = tracker
        self.pnl = pnl
        self.out = out
        self.fill_seq = 0
        """Fills applied so far (a reconciliation read across one may be stale)."""
        self.last_fill_ms: int | None = None

    def apply(self, fill: Fill) -> tuple[Routed, bool, str | None] | None:
        """Route and apply one fill: (where it went, whether it was new, its service);
        None when the tracker refused it (nothing changed, nothing to tell)."""
        routed = self.tracker.on_fill(fill)
        record = self.tracker.get(routed.client_order_id) if routed.client_order_id else None
        service = record.intent.service if record is not None else None
        if routed.transition is not None and routed.transition.outcome == "refused":
            return None
        if fill.ts_ms is not None:
            self.last_fill_ms = max(self.last_fill_ms or 0, fill.ts_ms)
        if not self.pnl.apply(fill, service):
            return routed, False, service
        self.fill_seq += 1
        self.out.fill(fill, record, service)
        return routed, True, service

    def seed(self, ticker: str, delta: Decimal, quotes: dict[str, Quote]) -> None:
        """Correct a position to the exchange's, at the mark (mid, else 0.5)."""
        quote = quotes.get(ticker) or Quote()
        self.pnl.seed(ticker, delta, quote.mid() or HALF)
        self.out.position(ticker)

    def daily_loss_breach(self, service: str | None) -> str | None:
        """Which limit's daily loss is past (the global one first), if any."""
        quotes = self.out.quotes()
        scopes = [("global", self.cfg.global_limits, None)]
        if service is not None and service in self.cfg.service_limits:
            scopes.append((service, self.cfg.service_limits[service], service))
        for scope, limits, name in scopes:
            if daily_loss_breached(limits, self.pnl.daily(quotes, name)):
                return f"{scope}: daily loss past the limit"
        return None
