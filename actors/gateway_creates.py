"""A create's life after it is sent: its reply, an unknown outcome resolved, lookups.

Every reply goes into the tracker and is told to the owner. A 409
``order_already_exists`` means the order is there: it is read, never resent. An unknown
outcome is resolved by ``actors.gateway_io.resolve_unknown`` (lookup by
``client_order_id``; resent only under the same id). A create an earlier incarnation
sent and never heard back about is looked up twice, the in-flight window apart, and
concluded not placed only when absent both times. An order acknowledged after a cancel
was asked for it, or after a halt began, is cancelled at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from actors.gateway_cancels import CancelDesk
from actors.gateway_io import Resolution, find_by_cid, find_in_flight, resolve_unknown
from actors.gateway_messages import IoDone
from actors.gateway_ports import Ports
from kalshi_api.errors import DuplicateOrderError, OutcomeUnknownError, RequestRejectedError
from kalshi_api.order_models import CreateOrderResult
from messages.orders import (
    ExchangeOrder,
    Fill,
    OrderStatus,
    PlaceAccepted,
    PlaceRejected,
    WriteUnknown,
)
from messages.text import one_line
from trading.lookup import Escalate, Found, LookupPolicy
from trading.order_state import OrderRecord

logger = logging.getLogger("kalshi_supervisor.actors.gateway_creates")


class CreateFlow:
    """Reads the answers to our creates into the tracker (see the module docstring)."""

    def __init__(
        self,
        ports: Ports,
        cancels: CancelDesk,
        *,
        on_fill: Callable[[Fill], None],
        halted: Callable[[], bool],
        policy: LookupPolicy,
        stopping: threading.Event,
    ) -> None:
        self.ports = ports
        self.cancels = cancels
        self.on_fill = on_fill
        self.halted = halted
        self.policy = policy
        self.stopping = stopping

    def not_sent(self, record: OrderRecord, code: str, why: str, shown: str) -> None:
        """A create never sent (refused locally, a dry run): rejected, with ``shown``."""
        self.ports.tracker.on_place_reply(
            PlaceRejected(client_order_id=record.client_order_id, status=0, code=code,
                          message=one_line(why)[:500])
        )
        self.ports.emit(record, shown)

    def on_created(self, done: IoDone) -> None:
        cid: str = done.context
        ports = self.ports
        record = ports.tracker.get(cid)
        if record is None:
            return
        error = done.error
        if error is None:
            self.apply_reply(cid, done.result)
        elif isinstance(error, (DuplicateOrderError, OutcomeUnknownError)):
            if isinstance(error, DuplicateOrderError):
                reply: Any = PlaceRejected(client_order_id=cid, status=409,
                                           code="order_already_exists")
            else:
                reply = WriteUnknown(client_order_id=cid, reason=one_line(str(error))[:300])
            ports.tracker.on_place_reply(reply)
            ports.emit(record, None)
            if isinstance(error, OutcomeUnknownError):
                self._resolve(record, error)
            else:  # the order is there: read it (no resend)
                ticker = record.intent.ticker
                ports.submit("looked_up", lambda api: find_by_cid(api, cid, ticker), cid)
        elif isinstance(error, RequestRejectedError):
            ports.tracker.on_place_reply(
                PlaceRejected(client_order_id=cid, status=error.status or 0,
                              code=(error.code or type(error).__name__)[:200],
                              message=one_line(str(error))[:500])
            )
            ports.emit(record, one_line(str(error)))
        else:
            ports.tracker.on_place_reply(
                PlaceRejected(client_order_id=cid, status=0, code="refused_locally",
                              message=one_line(f"{type(error).__name__}: {error}")[:500])
            )
            ports.emit(record, one_line(str(error)))
        ports.changed()

    def apply_reply(self, cid: str, result: CreateOrderResult) -> None:
        record = self.ports.tracker.get(cid)
        if record is None:
            return
        self.ports.tracker.on_place_reply(
            PlaceAccepted(client_order_id=cid, order_id=result.order_id,
                          fill_count=result.fill_count, remaining_count=result.remaining_count,
                          ts_ms=result.ts_ms)
        )
        self.ports.emit(record, None)
        self.ports.changed()
        self._cancel_if_wanted(record)

    def _cancel_if_wanted(self, record: OrderRecord) -> None:
        if record.client_order_id in self.cancels.wanted or self.halted():
            self.cancels.send(record)

    # -- outcome unknown -------------------------------------------------------------------
    def _resolve(self, record: OrderRecord, unknown: OutcomeUnknownError) -> None:
        ticker, policy, stop = record.intent.ticker, self.policy, self.stopping
        self.ports.submit(
            "resolved",
            lambda api: resolve_unknown(api, unknown, ticker, policy, stop=stop),
            record.client_order_id,
        )

    def on_resolved(self, done: IoDone) -> None:
        cid: str = done.context
        ports = self.ports
        record = ports.tracker.get(cid)
        if record is None:
            return
        if done.error is not None:
            logger.warning("gateway: resolving %s failed: %s; it stays outcome_unknown", cid,
                           one_line(str(done.error)))
            ports.emit(record, f"lookup failed: {one_line(str(done.error))}")
            return
        resolution: Resolution = done.result
        for _ in range(resolution.sends - 1):
            if record.status is OrderStatus.OUTCOME_UNKNOWN:
                ports.tracker.on_resend(cid)
        if resolution.accepted is not None:
            self.apply_reply(cid, resolution.accepted)
            return
        decision = resolution.decision
        if isinstance(decision, Found):
            self.apply_lookup(decision.order, decision.fills)
        elif isinstance(decision, Escalate):
            logger.error("gateway: %s stays outcome_unknown: %s", cid, decision.reason)
            ports.emit(record, f"outcome unknown: {decision.reason}")
        ports.changed()
        self._cancel_if_wanted(record)

    def on_looked_up(self, done: IoDone) -> None:
        if done.error is not None:
            logger.warning("gateway: lookup of %s failed: %s", done.context, done.error)
            return
        if done.result is not None:
            order, fills = done.result
            self.apply_lookup(order, fills)
        self.ports.changed()

    def apply_lookup(self, order: ExchangeOrder, fills: tuple[Fill, ...]) -> None:
        for fill in fills:
            self.on_fill(fill)
        routed = self.ports.tracker.on_lookup(order)
        self.ports.emit_routed(routed.client_order_id)

    # -- creates an earlier incarnation left in flight ---------------------------------------
    def find_in_flight(self, record: OrderRecord) -> None:
        """Look it up by its id (twice, the in-flight window apart); absent both times, it
        never landed."""
        cid, ticker = record.client_order_id, record.intent.ticker
        wait, stop = self.policy.in_flight_ms / 1000, self.stopping
        self.ports.submit("in_flight", lambda api: find_in_flight(api, cid, ticker, wait, stop),
                          cid)

    def on_found_in_flight(self, done: IoDone) -> None:
        cid: str = done.context
        tracker = self.ports.tracker
        record = tracker.get(cid)
        if record is None or done.error is not None:
            return
        if done.result is not None:
            order, fills = done.result
            self.apply_lookup(order, fills)
        elif record.status in (OrderStatus.PENDING, OrderStatus.OUTCOME_UNKNOWN):
            if record.status is OrderStatus.PENDING:
                tracker.on_place_reply(WriteUnknown(client_order_id=cid,
                                                    reason="the gateway restarted"))
            tracker.on_place_reply(
                PlaceRejected(client_order_id=cid, status=0, code="not_placed",
                              message="absent at the exchange after the gateway restarted")
            )
            self.ports.emit(record, "not placed: absent after the gateway restarted")
        self.ports.changed()
