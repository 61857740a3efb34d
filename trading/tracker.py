"""The gateway's book of tracked orders: routing facts to orders, in bounded memory.

(Called a tracker, not an order book, so it is never confused with a market's book.)

- An order is **tracked before it is sent** (``track``): any fact that arrives before the
  create's reply finds it by ``client_order_id``.
- Facts are routed by ``client_order_id`` first, then ``order_id`` (§8.7). REST fills carry
  no ``client_order_id`` and may arrive before the create's reply tells us the ``order_id``:
  such a fact is kept as an **orphan** under its ``order_id`` and replayed the moment an
  order learns that id. Orphans nobody claims are what reconciliation calls "unknown
  locally".
- Fills are deduplicated by ``trade_id`` across all orders (a bounded window of recent
  ids, beyond the per-order sets), so a fill replayed by a reconnect's REST pull or a
  duplicate WS frame is counted once.
- Memory stays bounded whatever arrives: finished orders are kept up to ``max_finished``
  (oldest evicted first), orphans up to ``max_orphans``, trade ids up to ``max_trade_ids``.
  Open orders are bounded by the risk limit on open orders.
- A refused fact (``Transition.outcome == "refused"``) is logged as one line and counted;
  nothing here raises on bad input.
"""

from __future__ import annotations

import functools
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Concatenate, ParamSpec

from messages.orders import (
    CancelAccepted,
    CancelNotFound,
    ExchangeOrder,
    Fill,
    OrderIntent,
    OrderStatus,
    PlaceAccepted,
    PlaceRejected,
    WriteUnknown,
)
from messages.text import one_line
from trading.order_state import OrderRecord, Transition

log = logging.getLogger("kalshi_supervisor.trading.tracker")

DEFAULT_MAX_FINISHED = 10_000
DEFAULT_MAX_ORPHANS = 10_000
DEFAULT_MAX_TRADE_IDS = 100_000

Orphan = ExchangeOrder | Fill
P = ParamSpec("P")


def _never_raises(
    method: Callable[Concatenate[OrderTracker, P], Routed],
) -> Callable[Concatenate[OrderTracker, P], Routed]:
    """A fact that trips an unforeseen error is refused (one line, counted), never raised:
    the gateway must outlive any message the exchange sends."""

    @functools.wraps(method)
    def guarded(self: OrderTracker, *args: P.args, **kwargs: P.kwargs) -> Routed:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:  # the guard's whole point
            return self._refused(None, f"{method.__name__} failed: {type(exc).__name__}: {exc}")

    return guarded


@dataclass(frozen=True, slots=True)
class Routed:
    """Where a fact went: the order's id (None for an orphan) and what it did there."""

    client_order_id: str | None
    transition: Transition | None
    """None when the fact was kept as an orphan or dropped as an already-seen fill."""
    note: str = ""


class OrderTracker:
    """Tracked orders by ``client_order_id`` and ``order_id``; not thread-safe (one owner)."""

    def __init__(
        self,
        *,
        max_finished: int = DEFAULT_MAX_FINISHED,
        max_orphans: int = DEFAULT_MAX_ORPHANS,
        max_trade_ids: int = DEFAULT_MAX_TRADE_IDS,
    ) -> None:
        self._orders: dict[str, OrderRecord] = {}
        self._by_order_id: dict[str, str] = {}
        self._finished: deque[tuple[str, int]] = deque()
        self._finish_seq: dict[str, int] = {}
        self._seq = 0
        self._orphans: OrderedDict[str, list[Orphan]] = OrderedDict()
        self._orphan_count = 0
        self._trade_ids: OrderedDict[str, None] = OrderedDict()
        self._max_finished = max_finished
        self._max_orphans = max_orphans
        self._max_trade_ids = max_trade_ids
        self.refused = 0
        self.orphans_dropped = 0
        self.evicted = 0

    # -- lookups -----------------------------------------------------------------------------
    def get(self, client_order_id: str) -> OrderRecord | None:
        return self._orders.get(client_order_id)

    def by_order_id(self, order_id: str) -> OrderRecord | None:
        cid = self._by_order_id.get(order_id)
        return self._orders.get(cid) if cid is not None else None

    def __len__(self) -> int:
        return len(self._orders)

    def __iter__(self) -> Iterator[OrderRecord]:
        return iter(list(self._orders.values()))

    def open_orders(self, service: str | None = None) -> list[OrderRecord]:
        """Orders that may rest or fill (pending and outcome-unknown included: worst case)."""
        return [
            r
            for r in self._orders.values()
            if r.status.is_open and (service is None or r.intent.service == service)
        ]

    def needing_lookup(self) -> list[OrderRecord]:
        return [r for r in self._orders.values() if r.needs_lookup]

    def orphans(self) -> list[Orphan]:
        """Facts about orders nobody here tracks (oldest first)."""
        return [item for items in self._orphans.values() for item in items]

    def seen_trade(self, trade_id: str) -> bool:
        return trade_id in self._trade_ids

    # -- facts -------------------------------------------------------------------------------
    def track(self, client_order_id: str, intent: OrderIntent) -> OrderRecord:
        """Record an order before it is sent. An id is never tracked twice (ValueError)."""
        if client_order_id in self._orders:
            raise ValueError(f"client_order_id {client_order_id} is already tracked")
        record = OrderRecord(client_order_id, intent)
        self._orders[client_order_id] = record
        return record

    def adopt(self, client_order_id: str, intent: OrderIntent, order: ExchangeOrder) -> Routed:
        """Track an order already at the exchange that nobody here placed (adoption): as if
        it had been placed under ``client_order_id`` and just read. ValueError if the id is
        tracked already or the read does not fit ``intent``."""
        record = self.track(client_order_id, intent)
        transition = record.on_lookup(order)
        if transition.outcome == "refused":
            del self._orders[client_order_id]
            raise ValueError(f"order {order.order_id} not adopted: {transition.reason}")
        return self._after(record, transition)

    @_never_raises
    def on_place_reply(self, reply: PlaceAccepted | PlaceRejected | WriteUnknown) -> Routed:
        record = self._orders.get(reply.client_order_id)
        if record is None:
            return self._refused(None, f"reply for untracked {reply.client_order_id}")
        return self._after(record, record.on_place_reply(reply))

    @_never_raises
    def on_resend(self, client_order_id: str) -> Routed:
        record = self._orders.get(client_order_id)
        if record is None:
            return self._refused(None, f"resend of untracked {client_order_id}")
        return self._after(record, record.on_resend())

    @_never_raises
    def on_cancel_reply(self, sent_order_id: str, reply: CancelAccepted | CancelNotFound) -> Routed:
        """A cancel's reply; ``sent_order_id`` is the order we asked to cancel. A reply naming
        another order (§8.1) is refused: the cancel's outcome is then unknown."""
        record = self.by_order_id(sent_order_id)
        if record is None:
            return self._refused(None, f"cancel reply for untracked order {sent_order_id}")
        return self._after(record, record.on_cancel_reply(reply))

    @_never_raises
    def on_vanished(self, order_id: str) -> Routed:
        record = self.by_order_id(order_id)
        if record is None:
            return Routed(None, None, "not tracked")
        return self._after(record, record.on_vanished())

    @_never_raises
    def on_exchange_order(self, order: ExchangeOrder) -> Routed:
        record = self._route(order.client_order_id, order.order_id)
        if record is None:
            return self._orphan(order.order_id, order)
        return self._after(record, record.on_exchange_order(order))

    @_never_raises
    def on_lookup(self, order: ExchangeOrder, fills: tuple[Fill, ...] = ()) -> Routed:
        """A lookup's answer (``trading.lookup.Found``): its fills, then the order as read."""
        for fill in fills:
            self.on_fill(fill)
        record = self._route(order.client_order_id, order.order_id)
        if record is None:
            return self._orphan(order.order_id, order)
        return self._after(record, record.on_lookup(order))

    @_never_raises
    def on_fill(self, fill: Fill) -> Routed:
        record = self._route(fill.client_order_id, fill.order_id)
        if record is None:
            if self.seen_trade(fill.trade_id):
                return Routed(None, None, "duplicate fill")
            return self._orphan(fill.order_id, fill)
        transition = record.on_fill(fill)
        if transition.outcome == "applied":
            self._remember_trade(fill.trade_id)
        return self._after(record, transition)

    # -- internals ---------------------------------------------------------------------------
    def _route(self, client_order_id: str | None, order_id: str) -> OrderRecord | None:
        if client_order_id is not None and client_order_id in self._orders:
            return self._orders[client_order_id]
        return self.by_order_id(order_id)

    def _after(self, record: OrderRecord, transition: Transition) -> Routed:
        if transition.outcome == "refused":
            return self._refused(record.client_order_id, transition.reason, transition)
        if transition.reason:
            log.warning("order %s: %s", record.client_order_id, transition.reason)
        if record.order_id is not None and record.order_id not in self._by_order_id:
            self._by_order_id[record.order_id] = record.client_order_id
            self._replay(record)
        if transition.changed and record.status.is_final:
            self._finish(record.client_order_id)
        return Routed(record.client_order_id, transition)

    def _replay(self, record: OrderRecord) -> None:
        assert record.order_id is not None
        items = self._orphans.pop(record.order_id, [])
        self._orphan_count -= len(items)
        for item in items:
            if isinstance(item, Fill):
                self.on_fill(item)
            else:
                self.on_exchange_order(item)

    def _orphan(self, order_id: str, item: Orphan) -> Routed:
        self._orphans.setdefault(order_id, []).append(item)
        self._orphan_count += 1
        while self._orphan_count > self._max_orphans:
            _, dropped = self._orphans.popitem(last=False)
            self._orphan_count -= len(dropped)
            self.orphans_dropped += len(dropped)
        return Routed(None, None, "kept as orphan")

    def _remember_trade(self, trade_id: str) -> None:
        self._trade_ids[trade_id] = None
        while len(self._trade_ids) > self._max_trade_ids:
            self._trade_ids.popitem(last=False)

    def _finish(self, client_order_id: str) -> None:
        self._seq += 1
        self._finished.append((client_order_id, self._seq))
        self._finish_seq[client_order_id] = self._seq
        while len(self._finished) > self._max_finished:
            cid, seq = self._finished.popleft()
            record = self._orders.get(cid)
            if record is None or self._finish_seq.get(cid) != seq:
                continue  # finished again later: its later mark decides
            del self._finish_seq[cid]
            if not record.status.is_final:
                continue  # reopened (a rejection that events later contradicted)
            del self._orders[cid]
            if record.order_id is not None:
                self._by_order_id.pop(record.order_id, None)
            self.evicted += 1

    def _refused(
        self, client_order_id: str | None, reason: str, transition: Transition | None = None
    ) -> Routed:
        self.refused += 1
        reason = one_line(reason)
        log.warning("order fact refused (%s): %s", client_order_id, reason)
        return Routed(client_order_id, transition, reason)


def count_by_status(tracker: OrderTracker) -> dict[OrderStatus, int]:
    """How many tracked orders are in each state (for ``/status`` and metrics)."""
    counts: dict[OrderStatus, int] = dict.fromkeys(OrderStatus, 0)
    for record in tracker:
        counts[record.status] += 1
    return counts
