"""One order's state machine, fed by REST replies and private events in any order.

Kalshi does not document how a create's REST reply is ordered against the ``user_order``
and ``fill`` events it causes (§8.7), so this machine does not depend on the order: it
accumulates *knowledge* that only grows (the highest fill count anyone reported, the set
of fills by ``trade_id``, "closed" once anyone said so, "exists" once anything showed it)
and derives the status from that knowledge. Applying the same facts in any order gives the
same status, filled count and fills; a duplicate fill changes nothing; a stale event (an
earlier ``resting`` after ``executed``) changes nothing.

Derivation (docs/trading.md draws it):

- exists and (closed or filled ≥ count): ``executed`` if filled ≥ count else ``canceled``;
- exists: ``partially_filled`` if filled > 0 else ``resting``;
- not (yet) exists: ``rejected`` after a definite refusal, ``outcome_unknown`` after an
  ambiguous write (or 409 ``order_already_exists``), else ``pending``.

"Vanished" facts (a cancel answered 404, an order missing from the resting list) never
close an order by themselves: a fast fill can make an order vanish before its fill is
seen (NautilusTrader marked such orders REJECTED, §8.11). They set ``needs_lookup``; the
lookup's ``ExchangeOrder`` (with its status and fill count) and fills settle it.

Facts that contradict what is known (another order id, another market, more filled than
the order's size) are refused with a one-line reason and change nothing: a bad message
never crashes the gateway and never corrupts an order.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from messages.orders import (
    CancelAccepted,
    CancelNotFound,
    ExchangeOrder,
    Fill,
    OrderIntent,
    OrderStatus,
    OrderUpdate,
    PlaceAccepted,
    PlaceRejected,
    WriteUnknown,
    reason_beyond,
)

ZERO = Decimal(0)

REJECTION_CONTRADICTED = "the exchange shows an order it rejected exists"
"""A rejection's reason is kept, but facts win: the gateway reports this as an anomaly."""

Outcome = Literal["applied", "unchanged", "refused"]
ReplyState = Literal["none", "accepted", "rejected", "unknown"]


@dataclass(frozen=True, slots=True)
class Transition:
    """What applying one fact did: ``applied`` (taken in; a stale fact is taken in and
    changes nothing), ``unchanged`` (a duplicate fill) or ``refused`` (contradicts what is
    known; ``reason`` says why)."""

    outcome: Outcome
    before: OrderStatus
    after: OrderStatus
    reason: str = ""

    @property
    def changed(self) -> bool:
        return self.before != self.after


class OrderRecord:
    """Everything known about one order we sent (or are about to send)."""

    def __init__(self, client_order_id: str, intent: OrderIntent) -> None:
        self.client_order_id = client_order_id
        self.intent = intent
        self.order_id: str | None = None
        self.attempts = 1
        """Sends of this intent under this one id (a resend after an absent lookup adds one)."""
        self.reply: ReplyState = "none"
        self.reject: PlaceRejected | None = None
        self.count: Decimal = intent.count
        self._count_key: tuple[int, Decimal] | None = None
        self.reported_filled: Decimal = ZERO
        self.fills: dict[str, Fill] = {}
        self.closed = False
        self.close_reason: str | None = None
        self._close_key: tuple[bool, int, str] | None = None
        self._remaining_key: tuple[int, Decimal] | None = None
        self._price_key: tuple[int, Decimal] | None = None
        """The latest price the exchange reported (an amend may change it), by report time."""
        """(ts, -remaining) of the latest report: newest wins, the lowest among untimed ones,
        so the same reports in any order give the same answer."""
        self._evidence = False
        self.vanished = False

    # -- derived -----------------------------------------------------------------------------
    @property
    def exists(self) -> bool:
        """The exchange has (or had) this order: an order id, an event or a fill showed it."""
        return self._evidence

    @property
    def fill_total(self) -> Decimal:
        return sum((f.count for f in self.fills.values()), ZERO)

    @property
    def filled(self) -> Decimal:
        """Contracts filled: the most any source reported (fills may still be on their way)."""
        return max(self.reported_filled, self.fill_total)

    @property
    def fees(self) -> Decimal:
        return sum((f.fee for f in self.fills.values()), ZERO)

    @property
    def status(self) -> OrderStatus:
        if self._evidence:
            filled = self.filled
            if filled >= self.count:
                return OrderStatus.EXECUTED
            if self.closed:
                return OrderStatus.CANCELED
            return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.RESTING
        if self.reply == "rejected":
            return OrderStatus.REJECTED
        if self.reply == "unknown":
            return OrderStatus.OUTCOME_UNKNOWN
        return OrderStatus.PENDING

    @property
    def remaining(self) -> Decimal:
        """Contracts that may still rest: none once final; else the latest report, capped."""
        status = self.status
        if status.is_final:
            return ZERO
        open_size = self.count - self.filled
        if self._remaining_key is None:
            return open_size
        return min(-self._remaining_key[1], open_size)

    @property
    def price(self) -> Decimal:
        """The YES price it rests at: the latest the exchange reported (after an amend),
        else the intent's."""
        asked = self.intent.price
        if self._price_key is None or self._price_key[1] == asked:
            return asked  # as the intent wrote it, not the exchange's 6 places
        reported = self._price_key[1]
        shown = reported.quantize(asked)
        return shown if shown == reported else reported.normalize()

    @property
    def needs_lookup(self) -> bool:
        """Ask the exchange about it: outcome unknown, or it vanished and is not yet final."""
        status = self.status
        return status is OrderStatus.OUTCOME_UNKNOWN or (self.vanished and not status.is_final)

    def view(self) -> OrderUpdate:
        return OrderUpdate(
            client_order_id=self.client_order_id,
            order_id=self.order_id,
            service=self.intent.service,
            ticker=self.intent.ticker,
            side=self.intent.side,
            price=self.price,
            count=self.count,
            filled=self.filled,
            remaining=self.remaining,
            status=self.status,
            fees=self.fees,
            reason=reason_beyond(
                self.status,
                self.close_reason
                or (f"{self.reject.status} {self.reject.code}" if self.reject else None),
            ),
        )

    # -- facts -------------------------------------------------------------------------------
    def on_place_reply(self, reply: PlaceAccepted | PlaceRejected | WriteUnknown) -> Transition:
        """The REST reply to the (latest) create under this id."""
        before = self.status
        if reply.client_order_id != self.client_order_id:
            return self._refuse(before, "reply names another client_order_id")
        if isinstance(reply, PlaceAccepted):
            if reply.fill_count > self.count:
                return self._refuse(before, f"reply fills {reply.fill_count} > {self.count}")
            if refused := self._learn_order_id(reply.order_id, before):
                return refused
            self.reply = "accepted"
            self._evidence = True
            self.reported_filled = max(self.reported_filled, reply.fill_count)
            if reply.remaining_count == 0:
                self._close("create reply: nothing left resting")
            else:
                self._report_remaining(reply.remaining_count, reply.ts_ms)
            return self._done(before)
        if isinstance(reply, PlaceRejected) and not reply.means_exists:
            if self._evidence:
                return self._refuse(before, f"rejection {reply.code} of an order that exists")
            self.reply = "rejected"
            self.reject = reply
            return self._done(before)
        # WriteUnknown, or 409 order_already_exists: it may exist; only a lookup can say.
        if not self._evidence:
            self.reply = "unknown"
        return self._done(before)

    def on_resend(self) -> Transition:
        """The same intent is sent again under the same id (an absent lookup after the grace)."""
        before = self.status
        if before is not OrderStatus.OUTCOME_UNKNOWN:
            return self._refuse(before, f"resend of an order that is {before}")
        self.attempts += 1
        self.reply = "none"
        return self._done(before)

    def on_exchange_order(self, order: ExchangeOrder) -> Transition:
        """A ``user_order`` event or a REST read of this order."""
        before = self.status
        if refused := self._check_identity(order.order_id, order.ticker, order.side, before):
            return refused
        if order.client_order_id not in (None, self.client_order_id):
            return self._refuse(before, "event names another client_order_id")
        count, count_key = self.count, self._count_key
        if order.initial_count is not None:
            key = (_ts_key(order.ts_ms), order.initial_count)
            if count_key is None or key > count_key:
                count, count_key = order.initial_count, key
        if count < self.fill_total or order.fill_count > count:
            return self._refuse(before, f"size {count} below fills {order.fill_count}")
        self.count, self._count_key = count, count_key
        self._evidence = True
        self._learn_order_id(order.order_id, before)
        self.reported_filled = max(self.reported_filled, order.fill_count)
        price_key = (_ts_key(order.ts_ms), order.price)
        if self._price_key is None or price_key[0] > self._price_key[0]:
            self._price_key = price_key
        if order.status in ("canceled", "executed"):
            self._close(order.last_update_reason or "", order.ts_ms)  # "": the status says it
        elif order.status == "resting":
            self._report_remaining(order.remaining_count, order.ts_ms)
        return self._done(before)

    def on_fill(self, fill: Fill) -> Transition:
        """One of this order's fills (deduplicated by ``trade_id``)."""
        before = self.status
        if refused := self._check_identity(fill.order_id, fill.ticker, fill.side, before):
            return refused
        if fill.client_order_id not in (None, self.client_order_id):
            return self._refuse(before, "fill names another client_order_id")
        known = self.fills.get(fill.trade_id)
        if known is not None:
            if _fill_key(known) != _fill_key(fill):
                return self._refuse(before, f"trade {fill.trade_id} seen with other values")
            return Transition("unchanged", before, before)
        if self.fill_total + fill.count > self.count:
            return self._refuse(before, f"fill {fill.trade_id} would overfill {self.count}")
        self._learn_order_id(fill.order_id, before)
        self._evidence = True
        self.fills[fill.trade_id] = fill
        return self._done(before)

    def on_cancel_reply(self, reply: CancelAccepted | CancelNotFound) -> Transition:
        """The reply to a cancel we sent for this order (its ``order_id`` checked by the caller)."""
        before = self.status
        if self.order_id is None or reply.order_id != self.order_id:
            return self._refuse(before, "cancel reply names another order")
        if isinstance(reply, CancelAccepted):
            self._close("cancel accepted", reply.ts_ms)
        else:
            self.vanished = True  # gone: cancelled *or executed*; the lookup says which
        return self._done(before)

    def on_lookup(self, order: ExchangeOrder) -> Transition:
        """The order as a lookup just read it (``GET`` by id, or found by client id): applied
        like an event, and, being a fresh read, it settles a "vanished" mark: the order is
        final now, or it provably still rests."""
        transition = self.on_exchange_order(order)
        if transition.outcome != "refused":
            self.vanished = False
        return transition

    def on_vanished(self) -> Transition:
        """Missing from the exchange's resting orders (reconciliation): look it up, do not
        conclude."""
        before = self.status
        if self._evidence and not before.is_final:
            self.vanished = True
        return self._done(before)

    # -- helpers -----------------------------------------------------------------------------
    def _check_identity(
        self, order_id: str, ticker: str, side: str, before: OrderStatus
    ) -> Transition | None:
        if self.order_id is not None and order_id != self.order_id:
            return self._refuse(before, f"order id {order_id} is not {self.order_id}")
        if ticker != self.intent.ticker or side != self.intent.side:
            return self._refuse(before, f"market/side {ticker}/{side} do not match the order")
        return None

    def _learn_order_id(self, order_id: str, before: OrderStatus) -> Transition | None:
        if self.order_id is None:
            self.order_id = order_id
        elif self.order_id != order_id:
            return self._refuse(before, f"order id {order_id} is not {self.order_id}")
        return None

    def _close(self, reason: str, ts_ms: int | None = None) -> None:
        """Closed for good. The reason shown is the newest (then the greatest) of those that
        say something (a report with none never hides one that does), so it too does not
        depend on arrival order."""
        key = (bool(reason), _ts_key(ts_ms), reason)
        if self._close_key is None or key > self._close_key:
            self._close_key = key
            self.close_reason = reason
        self.closed = True

    def _report_remaining(self, remaining: Decimal, ts_ms: int | None) -> None:
        key = (_ts_key(ts_ms), -remaining)
        if self._remaining_key is None or key > self._remaining_key:
            self._remaining_key = key

    def _done(self, before: OrderStatus) -> Transition:
        after = self.status
        if before is OrderStatus.REJECTED and after is not before:
            return Transition("applied", before, after, REJECTION_CONTRADICTED)
        return Transition("applied", before, after)

    @staticmethod
    def _refuse(before: OrderStatus, reason: str) -> Transition:
        return Transition("refused", before, before, reason)


def _ts_key(ts_ms: int | None) -> int:
    """Untimed reports sort before every timed one."""
    return -1 if ts_ms is None else ts_ms


def _fill_key(fill: Fill) -> tuple[object, ...]:
    """What two copies of one fill must agree on (REST copies lack the client id, and the
    two sources' timestamps differ in unit)."""
    return (fill.order_id, fill.ticker, fill.side, fill.count, fill.price)
