"""Whether the order gateway lets a new order out: the one place a new order is admitted.

An order goes out only while trading is allowed (production needs its flag), the system
is READY, the exchange is not paused where the order would trade, and the trading state
and the risk limits allow it (``trading.risk.check_order``: ACTIVE everything the limits
allow; REDUCING reduce-only; HALTED nothing), within the service's and the global
``RiskLimits``. Otherwise it is refused locally with the reason returned here, and never
sent.

Why a plain function of explicit state: admission is the gateway's most consequential
decision, and it reads many things (readiness, pauses, open orders, positions, marks);
passing them in says exactly what it depends on, and tests can reason about it alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from actors.gateway_config import GatewayConfig
from messages.orders import OrderStatus, TradingState
from trading.order_state import OrderRecord
from trading.pnl import PnlBook, Quote
from trading.risk import Exposure, check_order


@dataclass(frozen=True, slots=True)
class RiskView:
    """What the risk check reads of an open order (``trading.risk.Exposure.of``), without
    building a full ``OrderUpdate`` model per open order on every new order."""

    status: OrderStatus
    service: str
    side: str
    ticker: str
    remaining: Decimal
    price: Decimal

    @classmethod
    def of(cls, record: OrderRecord) -> RiskView:
        intent = record.intent
        return cls(
            record.status, intent.service, intent.side, intent.ticker, record.remaining,
            record.price,
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """``reason`` None: admitted. ``halt``: the refusal is a daily-loss breach (halts)."""

    reason: str | None = None
    halt: bool = False


ADMITTED = Verdict()


def admit(
    record: OrderRecord,
    *,
    cfg: GatewayConfig,
    ready: bool,
    pauses: Mapping[int | None, str],
    state: TradingState,
    open_orders: Iterable[OrderRecord],
    pnl: PnlBook,
    quotes: dict[str, Quote],
) -> Verdict:
    """Whether ``record`` (tracked, not yet sent) may go out now (see the module docstring)."""
    if not cfg.trading_allowed:
        return Verdict("production without --allow-production-trading: trading is halted")
    if not ready:
        return Verdict("the system is not READY")
    if pauses:
        return Verdict("the exchange has paused trading")
    intent = record.intent
    views = [RiskView.of(r) for r in open_orders if r is not record]
    scopes = []
    limits = cfg.service_limits.get(intent.service)
    if limits is not None:
        scopes.append(
            (
                intent.service,
                limits,
                Exposure.of(views, pnl.positions(intent.service),
                            pnl.daily(quotes, intent.service), intent.service),
            )
        )
    scopes.append(
        ("global", cfg.global_limits,
         Exposure.of(views, pnl.positions(None), pnl.daily(quotes)))
    )
    verdict = check_order(intent, state, scopes)
    if verdict.admitted:
        return ADMITTED
    return Verdict(verdict.reason, halt=verdict.halt)
