"""What the console knows of trading: the kill switch's endpoints, ``/status``'s trading part,
and the trading series of ``/metrics``.

Kept out of ``app.console_server`` so the server stays about serving. Two sources, on purpose:

* **Asked live** (``TradingControl``, i.e. ``app.handle.Supervisor``): ``halt``,
  ``resume_trading`` and ``trading_status`` reach the order gateway, each an ask with a
  timeout, so ``/status`` shows the gateway's own view of open orders and positions.
* **Counted from events** (``app.trading_tally.TradingTally``, fed by the recorder): orders sent /
  rejected / outcome-unknown, fills, position and P&L per market, the trading state. A
  scrape of ``/metrics`` then never waits on the gateway, and the counts survive a gateway
  restart.

Amounts stay exact decimal strings everywhere but in Prometheus, whose samples are floats
by definition (a metric is for a graph, never for an order).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from app.trading_tally import MarketLine, TradingTally
from messages.orders import OrderStatus, TradingState
from messages.text import one_line

logger = logging.getLogger("kalshi_supervisor.app.console_trading")

MAX_REASON_CHARS = 200
"""A halt's reason is one line for a person; longer is not a reason."""

DEFAULT_HALT_REASON = "manual"

NO_TRADING = "trading is not enabled (orderbook-only mode: --no-trading)"


class TradingControl(Protocol):
    """What the console needs of the supervisor to show and stop trading (``Supervisor``).

    Each call may raise when the gateway cannot be reached (not running, not answering
    within its timeout): the console answers 503 with the error's one line.
    """

    def halt(self, reason: str) -> Any: ...

    def resume_trading(self) -> Any: ...

    def trading_status(self) -> Any: ...


class BadControlBody(ValueError):
    """A ``/halt`` or ``/resume`` body that is not what they take; one line."""


def parse_halt_body(document: object) -> str:
    """The reason from a ``/halt`` body: ``{}`` or ``{"reason": "text"}``; anything else refused."""
    if document is None:
        return DEFAULT_HALT_REASON
    if not isinstance(document, dict):
        raise BadControlBody("request body must be a JSON object")
    extra = sorted(set(document) - {"reason"})
    if extra:
        raise BadControlBody(f"unknown field {extra[0]!r}: /halt takes only 'reason'")
    reason = document.get("reason", DEFAULT_HALT_REASON)
    return check_reason(reason)


def check_reason(reason: object) -> str:
    """A halt reason: a non-empty printable line of at most :data:`MAX_REASON_CHARS`."""
    if not isinstance(reason, str):
        raise BadControlBody("reason: must be a string")
    text = reason.strip()
    if not text:
        raise BadControlBody("reason: must not be empty")
    if len(text) > MAX_REASON_CHARS:
        raise BadControlBody(f"reason: at most {MAX_REASON_CHARS} characters")
    if not text.isprintable():
        raise BadControlBody("reason: must be one printable line")
    return text


def parse_resume_body(document: object) -> None:
    """``/resume`` takes nothing: no body or ``{}``."""
    if document is None:
        return
    if not isinstance(document, dict):
        raise BadControlBody("request body must be a JSON object")
    if document:
        raise BadControlBody(f"unknown field {sorted(document)[0]!r}: /resume takes no fields")


def as_json(value: Any) -> Any:
    """A reply (a pydantic model, mapping, list or scalar) as JSON-ready data, decimals as
    exact strings."""
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(k): as_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [as_json(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "value") and isinstance(value.value, str):  # an enum
        return value.value
    return value


NO_GATEWAY = "no order gateway is wired to this console"


def status_part(enabled: bool, trading: TradingControl | None) -> dict[str, Any]:
    """``/status``'s ``trading``: the gateway's view, or why there is none (never an error)."""
    if not enabled:
        return {"enabled": False, "reason": NO_TRADING}
    if trading is None:
        return {"enabled": True, "available": False, "reason": NO_GATEWAY}
    try:
        status = as_json(trading.trading_status())
    except Exception as exc:
        return {"enabled": True, "available": False, "reason": one_line(f"{exc}" or repr(exc))}
    if not isinstance(status, dict):
        return {"enabled": True, "available": False, "reason": "unexpected trading status"}
    return {"enabled": True, "available": True, **status}


class TradingCollector:
    """The trading series of ``/metrics``: read from the tally (and the write budget, when
    the gateway's status reports one) at scrape time."""

    def __init__(self, tally: TradingTally, trading: TradingControl | None) -> None:
        self._tally = tally
        self._trading = trading

    def describe(self) -> list[Metric]:
        return []

    def _status(self) -> dict[str, Any]:
        """The gateway's status now (one ask per scrape), or {} when it cannot be had."""
        if self._trading is None:
            return {}
        try:
            status = as_json(self._trading.trading_status())
        except Exception:
            return {}
        return status if isinstance(status, dict) else {}

    def collect(self) -> Iterator[Metric]:
        seen = self._tally.snapshot()
        gateway = self._status()
        updates: dict[str, int] = seen["order_updates"]
        for name, status, text in (
            ("kalshi_supervisor_orders_sent", OrderStatus.PENDING, "Orders sent to the exchange"),
            (
                "kalshi_supervisor_orders_rejected",
                OrderStatus.REJECTED,
                "Orders rejected (by the exchange, or refused locally before sending)",
            ),
            (
                "kalshi_supervisor_orders_outcome_unknown",
                OrderStatus.OUTCOME_UNKNOWN,
                "Creates whose outcome became unknown (each resolved by lookup, never resent)",
            ),
        ):
            family = CounterMetricFamily(name, text)
            family.add_metric([], updates.get(status.value, 0))
            yield family
        by_status = CounterMetricFamily(
            "kalshi_supervisor_order_updates", "order_update events by status", labels=["status"]
        )
        for status, count in sorted(updates.items()):
            by_status.add_metric([status], count)
        yield by_status
        fills = CounterMetricFamily(
            "kalshi_supervisor_fills", "Fills per market", labels=["market"]
        )
        contracts = CounterMetricFamily(
            "kalshi_supervisor_filled_contracts", "Contracts filled per market", labels=["market"]
        )
        for ticker, count in sorted(seen["fills"].items()):
            fills.add_metric([ticker], count)
        for ticker, amount in sorted(seen["filled_contracts"].items()):
            contracts.add_metric([ticker], float(amount))
        yield fills
        yield contracts
        gauges = {
            "position": GaugeMetricFamily(
                "kalshi_supervisor_position",
                "Signed YES position per market (contracts; < 0 long NO)",
                labels=["market"],
            ),
            "realized": GaugeMetricFamily(
                "kalshi_supervisor_pnl_realized_dollars",
                "Realized P&L per market",
                labels=["market"],
            ),
            "unrealized": GaugeMetricFamily(
                "kalshi_supervisor_pnl_unrealized_dollars",
                "Unrealized P&L per market, marked at exit",
                labels=["market"],
            ),
            "fees": GaugeMetricFamily(
                "kalshi_supervisor_fees_dollars", "Fees paid per market", labels=["market"]
            ),
        }
        markets: dict[str, MarketLine] = seen["markets"]
        for ticker, line in sorted(markets.items()):
            for key, family in gauges.items():
                family.add_metric([ticker], float(getattr(line, key)))
        yield from gauges.values()
        state = GaugeMetricFamily(
            "kalshi_supervisor_trading_state",
            "1 for the trading state (active, reducing, halted), 0 for the others",
            labels=["state"],
        )
        try:  # the gateway's word first: no event is published until the state changes
            current = TradingState(gateway["state"])
        except (KeyError, ValueError):
            current = seen["state"]
        for each in TradingState:
            state.add_metric([each.value], 1.0 if each is current else 0.0)
        yield state
        yield GaugeMetricFamily(
            "kalshi_supervisor_trading_halted",
            "1 while trading is halted",
            value=1.0 if current is TradingState.HALTED else 0.0,
        )
        halts = CounterMetricFamily("kalshi_supervisor_halts", "Kill-switch halts completed")
        halts.add_metric([], seen["halts"])
        yield halts
        yield from self._write_budget(gateway.get("write_budget"))

    def _write_budget(self, budget: object) -> Iterator[Metric]:
        """``write_budget`` from the gateway's status (capacity, tokens), when it has one."""
        if not isinstance(budget, dict):
            return
        numbers: dict[str, float] = {}
        for key, text in (
            ("capacity", "The write bucket's capacity (tokens)"),
            ("tokens", "Write tokens available now"),
            ("refill_per_second", "Write tokens refilled per second"),
        ):
            try:
                numbers[key] = float(Decimal(str(budget.get(key))))
            except (ArithmeticError, ValueError):
                continue
            yield GaugeMetricFamily(
                f"kalshi_supervisor_write_budget_{key}", text, value=numbers[key]
            )
        if numbers.get("capacity", 0) > 0 and "tokens" in numbers:
            yield GaugeMetricFamily(
                "kalshi_supervisor_write_budget_used_ratio",
                "Share of the write bucket in use now (0: full bucket, 1: empty)",
                value=1.0 - numbers["tokens"] / numbers["capacity"],
            )
        limited = budget.get("rate_limited")
        if isinstance(limited, int) and not isinstance(limited, bool):
            family = CounterMetricFamily(
                "kalshi_supervisor_write_rate_limited", "Writes the exchange answered with 429"
            )
            family.add_metric([], limited)
            yield family
