"""What the order gateway's helpers may do to the gateway: the few calls they share.

Why explicit: the create flow (``actors.gateway_creates``) and the cancel desk
(``actors.gateway_cancels``) change orders and tell about them exactly as the actor does;
handing them these calls, rather than the actor, says what they can reach (the tracker,
I/O jobs, telling the owner) and keeps every decision on the actor's thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kalshi_api.orders import OrderApi
from trading.order_state import OrderRecord
from trading.tracker import OrderTracker

Submit = Callable[[str, Callable[[OrderApi], Any], Any], None]
"""``submit(job, work, context)``: run ``work(api)`` on an I/O thread; its ``IoDone``
(named ``job``, carrying ``context``) comes back to the actor."""


@dataclass(frozen=True, slots=True)
class Ports:
    tracker: OrderTracker
    submit: Submit
    emit: Callable[[OrderRecord, str | None], None]
    """Tell the owner and publish an order's change (with a reason, or None)."""
    changed: Callable[[], None]
    """Open orders changed: the halt thread's view is refreshed (batched)."""

    def emit_routed(self, client_order_id: str | None) -> None:
        """Tell about the order a fact was routed to, if it is one of ours."""
        if client_order_id is None:
            return
        record = self.tracker.get(client_order_id)
        if record is not None:
            self.emit(record, None)
