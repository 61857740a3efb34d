"""The invariants every trading fault test ends with, checked against the exchange's truth.

After any fault, once things settle:

- **nothing unknown**: every order of this member at the exchange has a ``client_order_id``
  the process handed out (its services saw it, or its gateway tracks it);
- **no duplicate intent**: each ``client_order_id`` appears once at the exchange (a retry
  that minted a new id, or resent a known one after it landed, shows up here);
- **the same open orders and positions**: the gateway's open orders are exactly the
  orders resting at the exchange, none pending or outcome-unknown, and its positions equal
  the exchange's, to the cent of a contract;
- after a halt, **none of ours rests**.

``settle`` waits for them on a condition (the recorder's, notified by every event and
hook) and then asserts them, naming every difference; it never sleeps and times nothing.
"""

from __future__ import annotations

import time
from decimal import Decimal

from app.handle import Supervisor
from kalshi_sim.exchange import EmbeddedExchange
from messages.orders import OrderStatus
from tests.actors.gateway_support import WAIT, Recorder

PREFIX = "ks-"


def differences(
    supervisor: Supervisor,
    exchange: EmbeddedExchange,
    rec: Recorder,
    member: str = "alice",
    *,
    halted: bool = False,
) -> list[str]:
    """Every departure from the invariants, one line each (empty: they hold)."""
    truth = exchange.truth(member)[member]
    try:
        status = supervisor.trading_status()
    except LookupError as exc:  # the gateway is between incarnations: not settled yet
        return [f"trading status: {exc}"]
    problems: list[str] = []
    cids = [o.client_order_id for o in truth.orders]
    seen = {c for c in cids if cids.count(c) > 1}
    if seen:
        problems.append(f"duplicate client_order_ids at the exchange: {sorted(map(str, seen))}")
    with rec.cond:
        known = {u.client_order_id for u in rec.orders}
    known |= {o.client_order_id for o in status.open_orders}
    unknown = [c for c in cids if c not in known]
    if unknown:
        problems.append(f"orders at the exchange the process does not know: {unknown}")
    undecided = [
        o.client_order_id
        for o in status.open_orders
        if o.status in (OrderStatus.PENDING, OrderStatus.OUTCOME_UNKNOWN)
    ]
    if undecided:
        problems.append(f"orders still pending or outcome-unknown: {undecided}")
    resting = {o.client_order_id for o in truth.orders if o.status == "resting"}
    tracked = {o.client_order_id for o in status.open_orders}
    if tracked != resting:
        problems.append(
            f"open orders: ours {sorted(tracked)}, exchange {sorted(map(str, resting))}"
        )
    for order in status.open_orders:
        true = next((o for o in truth.orders if o.client_order_id == order.client_order_id), None)
        if true is not None and order.filled != Decimal(true.fill_centi).scaleb(-2):
            problems.append(f"{order.client_order_id}: filled {order.filled}, "
                            f"exchange {Decimal(true.fill_centi).scaleb(-2)}")
    ours = {p.ticker: p.position for p in status.positions if p.position}
    true_positions = {
        p.ticker: Decimal(p.position_centi).scaleb(-2) for p in truth.positions if p.position_centi
    }
    if ours != true_positions:
        problems.append(f"positions: ours {ours}, exchange {true_positions}")
    if halted:
        if status.state.value != "halted":
            problems.append(f"trading is {status.state.value}, not halted")
        ours_resting = sorted(str(c) for c in resting if (c or "").startswith(PREFIX))
        if ours_resting:
            problems.append(f"ours still resting after the halt: {ours_resting}")
    return problems


def settle(
    supervisor: Supervisor,
    exchange: EmbeddedExchange,
    rec: Recorder,
    member: str = "alice",
    *,
    halted: bool = False,
    timeout: float = WAIT,
) -> None:
    """Wait until the invariants hold (see the module docstring), else fail naming each
    difference. Woken by every hook and event the recorder hears."""
    problems: list[str] = []

    def holds() -> bool:
        nonlocal problems
        problems = differences(supervisor, exchange, rec, member, halted=halted)
        return not problems

    # evaluated outside the recorder's lock: trading_status() asks the gateway, whose events
    # notify the recorder; re-checked on each notification (or every 0.5 s regardless)
    deadline = time.monotonic() + timeout
    while not holds():
        remaining = deadline - time.monotonic()
        assert remaining > 0, "invariants do not hold:\n" + "\n".join(problems)
        with rec.cond:
            rec.cond.wait(min(remaining, 0.5))
