"""How a service trades: ``self.trading`` on every ``ServiceActor`` (None when trading is off).

Why a handle and not a client: the order gateway is the only writer of orders, so a
service never talks to the exchange. ``place`` returns the order's ``client_order_id`` at
once (the id comes from the thread-safe allocator, before the gateway sees the order) and
never blocks; what happens next arrives as the service's hooks, ``on_order``,
``on_fill`` and ``on_position``, on the service's own thread. ``open_orders`` and
``positions`` are the service's own, kept live from those hooks (exact ``Decimal``).

A refusal (not READY, paused, halted, over a risk limit, a bad id file) is an
``on_order`` with status ``rejected`` and the reason; nothing is sent.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TYPE_CHECKING

from pydantic import ValidationError

from actors.gateway_messages import (
    AmendOrder,
    CancelAllMine,
    CancelOrder,
    DecreaseOrder,
    PlaceOrder,
)
from actors.service_spec import validation_line
from messages.orders import (
    Fill,
    OrderIntent,
    OrderStatus,
    OrderUpdate,
    Position,
    Side,
    TimeInForce,
)
from trading.ids import IdStateError

if TYPE_CHECKING:
    from actors.trading_link import TradingLink

ZERO = Decimal(0)
MAX_OPEN_KEPT = 100_000
"""Bound on the orders a handle remembers (final ones are forgotten at once)."""


class TradingUnavailableError(RuntimeError):
    """No new order can be placed at all (the id state file cannot be trusted)."""


class TradingHandle:
    """One service's door to the order gateway (see the module docstring)."""

    def __init__(self, service: str, link: TradingLink) -> None:
        self.service = service
        self._link = link
        self._orders: dict[str, OrderUpdate] = {}
        self._positions: dict[str, Decimal] = {}

    # -- orders ----------------------------------------------------------------------------
    def place(
        self,
        ticker: str,
        side: Side,
        count: Decimal | int | str,
        price: Decimal | str,
        *,
        time_in_force: TimeInForce = "good_till_canceled",
        post_only: bool = False,
        reduce_only: bool = False,
        expiration_s: int | None = None,
        cancel_order_on_pause: bool = True,
    ) -> str:
        """Ask for an order; returns its ``client_order_id`` now, the outcome comes as hooks.
        ``cancel_order_on_pause`` (default on): the exchange cancels it when trading pauses.
        Raises ``ValueError`` (one line) for a malformed order (a float, a price outside
        (0, 1)...), ``TradingUnavailableError`` when no id can be handed out."""
        try:
            intent = OrderIntent(
                service=self.service,
                ticker=ticker,
                side=side,
                count=_exact(count),
                price=_exact(price),
                time_in_force=time_in_force,
                post_only=post_only,
                reduce_only=reduce_only,
                expiration_time=(int(time.time()) + expiration_s) if expiration_s else None,
                cancel_order_on_pause=cancel_order_on_pause,
            )
        except ValidationError as exc:
            raise ValueError(f"order refused: {validation_line(exc)}") from None
        try:
            cid = self._link.next_id()
        except IdStateError as exc:
            raise TradingUnavailableError(str(exc)) from None
        pending = OrderUpdate(
            client_order_id=cid,
            order_id=None,
            service=self.service,
            ticker=intent.ticker,
            side=intent.side,
            price=intent.price,
            count=intent.count,
            filled=ZERO,
            remaining=intent.count,
            status=OrderStatus.PENDING,
        )
        if len(self._orders) < MAX_OPEN_KEPT:
            self._orders[cid] = pending
        if not self._link.tell_gateway(PlaceOrder(cid, intent)):
            refused = pending.model_copy(
                update={
                    "status": OrderStatus.REJECTED,
                    "remaining": ZERO,
                    "reason": "refused locally: the order gateway is not running",
                }
            )
            self._link.tell_service(self.service, refused)
        return cid

    def cancel(self, client_order_id: str) -> bool:
        """Cancel one of this service's orders (False: the gateway is not running)."""
        return self._link.tell_gateway(CancelOrder(self.service, client_order_id))

    def amend(
        self, client_order_id: str, *, price: Decimal | str, count: Decimal | int | str
    ) -> bool:
        """New price and total count (filled + resting) for a resting order."""
        return self._link.tell_gateway(
            AmendOrder(self.service, client_order_id, _exact(price), _exact(count))
        )

    def decrease(
        self,
        client_order_id: str,
        *,
        reduce_by: Decimal | int | str | None = None,
        reduce_to: Decimal | int | str | None = None,
    ) -> bool:
        if (reduce_by is None) == (reduce_to is None):
            raise ValueError("give exactly one of reduce_by and reduce_to")
        return self._link.tell_gateway(
            DecreaseOrder(
                self.service,
                client_order_id,
                reduce_by=None if reduce_by is None else _exact(reduce_by),
                reduce_to=None if reduce_to is None else _exact(reduce_to),
            )
        )

    def cancel_all_mine(self) -> bool:
        return self._link.tell_gateway(CancelAllMine(self.service))

    # -- views -----------------------------------------------------------------------------
    @property
    def open_orders(self) -> dict[str, OrderUpdate]:
        """This service's orders that may still rest or fill, by ``client_order_id``."""
        return {cid: o for cid, o in self._orders.items() if o.status.is_open}

    @property
    def positions(self) -> dict[str, Decimal]:
        """This service's signed YES position per market (zeros left out)."""
        return {t: p for t, p in self._positions.items() if p != 0}

    # -- fed by the service's hooks (its own thread) ---------------------------------------
    def apply(self, fact: OrderUpdate | Fill | Position) -> None:
        if isinstance(fact, OrderUpdate):
            if fact.status.is_final:
                self._orders.pop(fact.client_order_id, None)
            elif fact.client_order_id in self._orders or len(self._orders) < MAX_OPEN_KEPT:
                self._orders[fact.client_order_id] = fact
        elif isinstance(fact, Position):
            self._positions[fact.ticker] = fact.position


def _exact(value: Decimal | int | str) -> Decimal:
    if isinstance(value, float):
        raise ValueError("order refused: give an exact Decimal, int or string, not a float")
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        raise ValueError(f"not a number: {value!r}")
    try:
        return Decimal(value)
    except ArithmeticError:
        raise ValueError(f"not a number: {value!r}") from None
