"""Whether the order gateway lets a new order out: the one place a new order is admitted.

An order goes out only while trading is allowed (production needs its flag), the system
is READY, the exchange is not paused where the order would trade (the whole exchange, or
the shard its market trades on: ``MarketShards``), and the trading state
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

DEFAULT_SHARD = 0
"""The shard a market of unknown shard is taken to trade on: Kalshi's default one, where
every market lived before sharding and most still do (§7.2). Taking it is safe both ways:
an order on a paused shard that slips through is refused by the exchange, and a shard
learnt later (from the order's reply, its events, a position) corrects it."""
MAX_MARKETS = 200_000
"""Markets whose shard is remembered; past it the oldest is forgotten (back to the default)."""


class MarketShards:
    """Which shard (``exchange_index``) each market trades on, as the exchange said it:
    market listings read at the first reconciliation, and every order, fill and position
    read or pushed since. Bounded (``MAX_MARKETS``)."""

    def __init__(self) -> None:
        self._by_ticker: dict[str, int] = {}

    def learn(self, ticker: str, exchange_index: int | None) -> None:
        if exchange_index is None or exchange_index < 0:  # -1 / absent: auto-routed
            return
        by_ticker = self._by_ticker
        if by_ticker.get(ticker) == exchange_index:
            return
        by_ticker.pop(ticker, None)
        if len(by_ticker) >= MAX_MARKETS:
            del by_ticker[next(iter(by_ticker))]
        by_ticker[ticker] = exchange_index

    def update(self, shards: Mapping[str, int]) -> None:
        for ticker, index in shards.items():
            self.learn(ticker, index)

    def known(self, ticker: str) -> bool:
        return ticker in self._by_ticker

    def of(self, ticker: str) -> int:
        """The market's shard; ``DEFAULT_SHARD`` when no read has said."""
        return self._by_ticker.get(ticker, DEFAULT_SHARD)


def pause_refusal(
    ticker: str, shards: MarketShards, pauses: Mapping[int | None, str]
) -> str | None:
    """Why a new order on ``ticker`` would be refused by a pause now, or None."""
    if None in pauses:
        if pauses[None] == "exchange":
            return "the exchange is paused (every shard)"
        return "the exchange has paused trading on every shard"
    shard = shards.of(ticker)
    if shard in pauses:
        known = "" if shards.known(ticker) else ", taken as the default"
        return f"the exchange has paused trading on shard {shard} ({ticker}'s shard{known})"
    return None


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
    shards: MarketShards,
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
    intent = record.intent
    paused = pause_refusal(intent.ticker, shards, pauses)
    if paused is not None:
        return Verdict(paused)
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
