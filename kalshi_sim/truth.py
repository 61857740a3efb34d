"""The exchange's truth about members, as JSON, and a comparison of a client's view with it.

Why: a trading client is right when what it believes (its orders, fills, positions and
cash) equals what the exchange did, after any fault. Tests read the truth in-process
(:meth:`kalshi_sim.exchange.EmbeddedExchange.truth`); people and out-of-process tests read
``GET /_sim/truth`` on a standalone exchange (loopback only). :func:`differences` says, one
line each, where a client's view departs from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kalshi_api.fixed_point import format_count, format_dollars, parse_count, parse_dollars
from kalshi_sim.engine_types import MemberTruth
from kalshi_sim.trading_wire import fill_json, order_json, position_json, settlement_json


def member_json(truth: MemberTruth) -> dict[str, Any]:
    """One member's truth in the REST shapes (orders, fills, positions as Kalshi renders them)."""
    return {
        "member": truth.member,
        "cash_by_shard": {
            str(s): format_dollars(c) for s, c in sorted(truth.cash_by_shard_micros.items())
        },
        "reserved_by_shard": {
            str(s): format_dollars(c) for s, c in sorted(truth.reserved_by_shard_micros.items())
        },
        "orders": [order_json(o) for o in truth.orders],
        "fills": [fill_json(f) for f in truth.fills],
        "positions": [position_json(p) for p in truth.positions],
        "settlements": [settlement_json(s) for s in truth.settlements],
        "order_groups": [
            {
                "order_group_id": g.order_group_id,
                "subaccount": g.subaccount,
                "exchange_index": g.exchange_index,
                "contracts_limit_fp": format_count(g.contracts_limit_centi),
                "triggered": g.triggered,
                "order_ids": list(g.order_ids),
            }
            for g in truth.groups
        ],
    }


def truth_json(truths: Mapping[str, MemberTruth]) -> dict[str, Any]:
    """``GET /_sim/truth``: ``{"members": {name: member_json}}``."""
    return {"members": {name: member_json(t) for name, t in sorted(truths.items())}}


@dataclass
class ClientView:
    """What a client believes: order states, signed positions, fill ids and cash.

    ``orders`` maps order id -> ``(status, fill_centi, remaining_centi)``; ``positions``
    ticker -> signed centi-contracts (rows at zero may be left out); ``cash_micros`` is the
    total over shards, or None when the client does not track it.
    """

    orders: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    positions: dict[str, int] = field(default_factory=dict)
    fill_ids: set[str] = field(default_factory=set)
    cash_micros: int | None = None

    @classmethod
    def from_rest(
        cls,
        orders: Iterable[Mapping[str, Any]] = (),
        positions: Iterable[Mapping[str, Any]] = (),
        fills: Iterable[Mapping[str, Any]] = (),
        balance: Mapping[str, Any] | None = None,
    ) -> ClientView:
        """A view built from REST bodies: ``orders`` / ``market_positions`` / ``fills``
        lists and a ``/portfolio/balance`` body."""
        view = cls()
        for order in orders:
            view.orders[str(order["order_id"])] = (
                str(order["status"]),
                parse_count(order["fill_count_fp"]),
                parse_count(order["remaining_count_fp"]),
            )
        for position in positions:
            view.positions[str(position["ticker"])] = parse_count(position["position_fp"])
        view.fill_ids = {str(f["fill_id"]) for f in fills}
        if balance is not None:
            view.cash_micros = parse_dollars(balance["balance_dollars"])
        return view


def differences(view: ClientView, truth: MemberTruth) -> list[str]:
    """Where ``view`` departs from ``truth``, one line each (empty when they agree).

    Every order and fill the exchange has must be in the view with the same state, and
    the view may hold nothing the exchange does not have (a phantom order or fill).
    """
    problems: list[str] = []
    true_orders = {o.order_id: (o.status, o.fill_centi, o.remaining_centi) for o in truth.orders}
    for order_id, state in sorted(true_orders.items()):
        seen = view.orders.get(order_id)
        if seen is None:
            problems.append(f"order {order_id} missing (exchange: {_order_text(state)})")
        elif seen != state:
            problems.append(
                f"order {order_id}: client {_order_text(seen)}, exchange {_order_text(state)}"
            )
    for order_id in sorted(set(view.orders) - set(true_orders)):
        problems.append(f"order {order_id} unknown to the exchange")
    true_positions = {p.ticker: p.position_centi for p in truth.positions}
    for ticker in sorted(set(true_positions) | set(view.positions)):
        want, got = true_positions.get(ticker, 0), view.positions.get(ticker, 0)
        if want != got:
            problems.append(
                f"position {ticker}: client {format_count(got)}, exchange {format_count(want)}"
            )
    true_fills = {f.fill_id for f in truth.fills}
    for fill_id in sorted(true_fills - view.fill_ids):
        problems.append(f"fill {fill_id} missing")
    for fill_id in sorted(view.fill_ids - true_fills):
        problems.append(f"fill {fill_id} unknown to the exchange")
    if view.cash_micros is not None:
        cash = sum(truth.cash_by_shard_micros.values())
        if cash != view.cash_micros:
            problems.append(
                f"cash: client {format_dollars(view.cash_micros)}, exchange {format_dollars(cash)}"
            )
    return problems


def _order_text(state: tuple[str, int, int]) -> str:
    status, filled, remaining = state
    return f"{status} filled {format_count(filled)} remaining {format_count(remaining)}"
