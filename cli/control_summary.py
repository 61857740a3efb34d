"""What ``halt`` and ``resume`` print for a person: a few short lines instead of the JSON.

Why separate from the call: the reply is the supervisor's JSON (``HaltReport`` for a halt,
``TradingStatus`` for a resume), which ``--json`` prints unchanged for scripts; a person
at a terminal during an incident wants the state, why, and whether anything of ours still
rests, readable at a glance. Numbers stay exact: decimals arrive as strings and are summed
as ``Decimal``; nothing here rounds through a float.

A reply that does not have the expected shape is printed as its JSON (one line): whatever
the supervisor said is shown, never lost behind a formatting error.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

SHOWN_MAX = 5
"""Markets named on the positions line; the rest are counted."""


def _plain(value: Decimal) -> str:
    """``Decimal('2.500')`` -> ``2.5``, ``Decimal('100')`` -> ``100`` (never ``1E+2``)."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"not a decimal: {value!r}")
    try:
        result = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"not a decimal: {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"not a decimal: {value!r}")
    return result


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def _int(reply: dict[str, Any], key: str) -> int:
    value = reply[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key}: not a count")
    return value


def halt_lines(reply: dict[str, Any]) -> list[str]:
    """A ``HaltReport``: state and reason, what it set out to cancel, what still rests, how
    long it took to reach zero resting."""
    state, reason = str(reply["state"]).upper(), str(reply["reason"])
    remaining = _int(reply, "remaining")
    duration = _int(reply, "duration_ms")
    calls, reads = _int(reply, "cancel_all_calls"), _int(reply, "verify_reads")
    lines = [f"halt: trading {state} (reason: {reason})"]
    if "open_at_start" in reply:
        opened = _int(reply, "open_at_start")
        began = f"{_count(opened, 'order')} of ours open when it began"
        lines.append(f"  {began}; {'none rest now' if remaining == 0 else f'{remaining} rest'}")
    work = f"{_count(calls, 'cancel-all call')}, {_count(reads, 'verify read')}"
    if remaining == 0:
        lines.append(f"  zero of ours resting after {duration} ms ({work})")
    else:
        lines.append(f"  {_count(remaining, 'order')} of ours STILL REST after {duration} ms "
                     f"({work}): check the exchange")
    return lines


def resume_lines(reply: dict[str, Any]) -> list[str]:
    """A ``TradingStatus``: state and reason, open orders per service, positions, P&L, the
    order group and the write budget."""
    state = str(reply["state"]).upper()
    reason = reply.get("reason")
    lines = [f"resume: trading {state}" + (f" ({reason})" if reason else "")]
    orders = reply["open_orders"]
    if not isinstance(orders, list):
        raise ValueError("open_orders: not a list")
    by_service = Counter(str(o["service"]) for o in orders)
    per = ", ".join(f"{name} {n}" for name, n in sorted(by_service.items()))
    lines.append(f"  open orders: {len(orders)}" + (f" ({per})" if per else ""))
    positions = [(str(p["ticker"]), _decimal(p["position"])) for p in reply.get("positions") or []]
    positions = [(t, p) for t, p in positions if p != 0]
    if positions:
        shown = ", ".join(f"{t} {_plain(p)}" for t, p in positions[:SHOWN_MAX])
        more = len(positions) - SHOWN_MAX
        lines.append(f"  positions: {shown}" + (f", and {more} more" if more > 0 else ""))
    else:
        lines.append("  positions: none")
    pnl = reply.get("pnl") or []
    if pnl:
        realized = sum((_decimal(m["realized"]) for m in pnl), Decimal(0))
        unrealized = sum((_decimal(m["unrealized_exit"]) for m in pnl), Decimal(0))
        fees = sum((_decimal(m["fees"]) for m in pnl), Decimal(0))
        net = realized + unrealized - fees
        lines.append(f"  P&L: net {_plain(net)} (realized {_plain(realized)}, unrealized at "
                     f"exit {_plain(unrealized)}, fees {_plain(fees)})")
    extras = []
    if reply.get("order_group_id"):
        extras.append(f"order group {reply['order_group_id']} reset")
    budget = reply.get("write_budget")
    if isinstance(budget, dict):
        tokens, capacity = _decimal(budget["tokens"]), _decimal(budget["capacity"])
        extras.append(f"write budget {_plain(tokens)} of {_plain(capacity)} tokens"
                      + (f", {_count(_int(budget, 'rate_limited'), 'write')} answered 429"
                         if budget.get("rate_limited") else ""))
    if extras:
        lines.append("  " + "; ".join(extras))
    return lines


SUMMARIES: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "halt": halt_lines,
    "resume": resume_lines,
}


def summary(what: str, reply: dict[str, Any]) -> str:
    """The lines for a person, or the reply's JSON when it is not the shape expected."""
    render = SUMMARIES.get(what)
    if render is not None:
        try:
            return "\n".join(render(reply))
        except (KeyError, TypeError, ValueError, AttributeError):
            pass
    return json.dumps(reply)
