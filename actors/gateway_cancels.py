"""Cancels, amends and decreases of orders already at the exchange.

A cancel whose outcome is unknown is safe to send again (a 404 then means gone), up to
``MAX_CANCEL_TRIES`` sends; after that, or on a 404, the order is looked up rather than
concluded cancelled (a fill may be behind it). A cancel asked before the create is
acknowledged is remembered (``wanted``) and sent once the order id is known. Amends and
decreases are settled by the exchange's ``user_order`` and, if the reply is unknown or
refused, by a read.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from actors.gateway_io import lookup_order
from actors.gateway_messages import IoDone
from actors.gateway_ports import Ports
from kalshi_api.errors import NotFoundError
from kalshi_api.order_models import AmendOrder as AmendRequest
from kalshi_api.order_models import DecreaseOrder as DecreaseRequest
from messages.orders import CancelAccepted, CancelNotFound
from messages.text import one_line
from trading.order_state import OrderRecord

logger = logging.getLogger("kalshi_supervisor.actors.gateway_cancels")

MAX_CANCEL_TRIES = 5
"""Sends of one cancel whose outcome stays unknown before a lookup decides."""


class CancelDesk:
    """Sends cancels, amends and decreases, and reads their answers into the tracker."""

    def __init__(self, ports: Ports) -> None:
        self.ports = ports
        self.wanted: set[str] = set()
        """Client order ids to cancel as soon as their create is acknowledged."""
        self._tries: dict[str, int] = {}
        """Cancels sent again after an unknown outcome, by order id (cleared on an answer)."""

    def send(self, record: OrderRecord) -> None:
        if record.status.is_final:
            self.wanted.discard(record.client_order_id)
            return
        if record.order_id is None:  # not yet acknowledged: cancelled once it is
            self.wanted.add(record.client_order_id)
            return
        self.wanted.discard(record.client_order_id)
        self.by_id(record.order_id)

    def by_id(self, order_id: str) -> None:
        """Cancel an order by its exchange id (the answer comes back as ``cancelled``)."""
        self.ports.submit("cancelled", lambda api: api.cancel(order_id), order_id)

    def look_up(self, order_id: str) -> None:
        """Read an order and its fills (``looked_up``): what the exchange says settles it."""
        self.ports.submit("looked_up", lambda api: lookup_order(api, order_id), order_id)

    def on_cancelled(self, done: IoDone) -> None:
        order_id: str = done.context
        tracker = self.ports.tracker
        record = tracker.by_order_id(order_id)
        if done.error is None:
            reply: Any = CancelAccepted(order_id=order_id, reduced_by=done.result.reduced_by,
                                        ts_ms=done.result.ts_ms)
        elif isinstance(done.error, NotFoundError):
            reply = CancelNotFound(order_id=order_id)
        else:  # outcome unknown: a cancel is safe to send again (a 404 then means gone)
            tries = self._tries.get(order_id, 0) + 1
            logger.info("gateway: cancel of %s (try %d): %s", order_id, tries,
                        one_line(str(done.error)))
            if record is not None and not record.status.is_final:
                if tries < MAX_CANCEL_TRIES:
                    self._tries[order_id] = tries
                    self.by_id(order_id)
                else:
                    self._tries.pop(order_id, None)
                    self.look_up(order_id)
            return
        self._tries.pop(order_id, None)
        routed = tracker.on_cancel_reply(order_id, reply)
        self.ports.emit_routed(routed.client_order_id)
        if isinstance(reply, CancelNotFound):
            self.look_up(order_id)

    def amend(self, record: OrderRecord, price: Decimal, count: Decimal) -> None:
        assert record.order_id is not None
        request = AmendRequest(
            order_id=record.order_id, ticker=record.intent.ticker, side=record.intent.side,
            price=price, count=count, client_order_id=record.client_order_id,
        )
        self.ports.submit("amended", lambda api: api.amend(request), record.client_order_id)

    def decrease(
        self, record: OrderRecord, reduce_by: Decimal | None, reduce_to: Decimal | None
    ) -> None:
        assert record.order_id is not None
        request = DecreaseRequest(order_id=record.order_id, reduce_by=reduce_by,
                                  reduce_to=reduce_to)
        self.ports.submit("amended", lambda api: api.decrease(request), record.client_order_id)

    def on_amended(self, done: IoDone) -> None:
        """The exchange's ``user_order`` carries the new size; a read settles an unknown."""
        record = self.ports.tracker.get(done.context)
        if record is None or record.order_id is None:
            return
        if done.error is not None:
            self.ports.emit(record, f"amend/decrease: {one_line(str(done.error))}")
        self.look_up(record.order_id)
