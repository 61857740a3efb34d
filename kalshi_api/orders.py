"""The typed V2 order API over :class:`~kalshi_api.rest.KalshiRestClient` (protocol §8.1-8.2).

Why a module of its own: the REST client knows how to send a request once and classify what
came back; this module knows what the order endpoints mean. Every write goes through
``client.write`` (sent at most once, never retried: a refusal is a typed
``RequestRejectedError``, a possible-but-unconfirmed write is ``OutcomeUnknownError``
carrying the ``client_order_id`` and the request as sent). Requests are validated before
they leave, prices also against the market's ``price_ranges`` grid. Replies are checked as
well as parsed: a cancel reply that names another order, or a 2xx reply that cannot be read,
leaves the outcome unknown rather than being taken for success.

Resolving an unknown outcome is the caller's decision (§8.10); :meth:`OrderApi.resolve_create`
does the lookup (``client_order_id`` within a ticker, since the list has no such filter,
waiting out the read lag) and :meth:`OrderApi.resend_create` the same-id resend.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

from kalshi_api.account_limits import get_user_data_timestamp
from kalshi_api.errors import OutcomeUnknownError, SentRequest, UnexpectedResponseError
from kalshi_api.models import MarketPosition, Order, PriceRange
from kalshi_api.order_models import (
    AmendOrder,
    AmendOrderResult,
    BatchCancelItem,
    BatchCreateItem,
    CancelOrderResult,
    CancelTarget,
    CreateOrder,
    CreateOrderResult,
    DecreaseOrder,
    DecreaseOrderResult,
    Fill,
    Settlement,
    price_text,
)
from kalshi_api.price_grid import PriceGrid
from kalshi_api.rest import KalshiRestClient, Reply

__all__ = ["ORDER_STATUSES", "OrderApi"]

ORDERS = "/portfolio/events/orders"
ORDER = ORDERS + "/{order_id}"
BATCH = ORDERS + "/batched"
ORDER_STATUSES = frozenset({"resting", "canceled", "executed"})
MAX_EVENT_TICKERS = 10
"""``GET /portfolio/orders`` takes at most 10 comma-separated event tickers (§4.6)."""

ResultT = TypeVar("ResultT", bound=BaseModel)


def _id(order_id: str) -> str:
    if not isinstance(order_id, str) or not order_id:
        raise ValueError("order_id is required")
    return quote(order_id, safe="")


class OrderApi:
    """Orders of one account through one REST client (not shared between threads).

    ``grid_for(ticker)`` returns a market's ``price_ranges`` (None when unknown); by default
    the market is read once with ``GET /markets/{ticker}`` and its grid kept. Pass
    ``grid_for=lambda _: None`` to skip the grid check (prices are still kept in (0, 1)
    with at most 4 decimals).
    """

    def __init__(
        self,
        client: KalshiRestClient,
        *,
        grid_for: Callable[[str], Iterable[PriceRange] | None] | None = None,
    ) -> None:
        self.client = client
        self._grid_for = grid_for
        self._grids: dict[str, PriceGrid | None] = {}

    # -- price grid ------------------------------------------------------------------------------
    def set_grid(self, ticker: str, ranges: Iterable[PriceRange]) -> None:
        """Remember a market's grid (from a listing or a ``price_level_structure_updated``)."""
        ranges = tuple(ranges)
        self._grids[ticker] = PriceGrid.of(ranges) if ranges else None

    def check_price(self, ticker: str, price: Decimal) -> None:
        """Raise ``ValueError`` (one line) if ``price`` is off the market's grid."""
        if ticker not in self._grids:
            ranges = (
                self._grid_for(ticker)
                if self._grid_for is not None
                else self.client.get_market(ticker).price_ranges
            )
            self.set_grid(ticker, ranges or ())
        grid = self._grids[ticker]
        if grid is not None and not grid.contains(price):
            raise ValueError(f"price {price_text(price)} is off {ticker}'s price grid")

    # -- writes ----------------------------------------------------------------------------------
    def create(self, order: CreateOrder) -> CreateOrderResult:
        """Place one order → the 201 reply (read its counts: 201 is not "resting")."""
        self.check_price(order.ticker, order.price)
        reply = self.client.write(
            "POST",
            ORDERS,
            body=order.wire(),
            client_order_id=order.client_order_id,
            route=ORDERS,
        )
        return self._result(CreateOrderResult, reply.data, reply)

    def cancel(
        self,
        order_id: str,
        *,
        subaccount: int | None = None,
        exchange_index: int | None = None,
        market_ticker: str | None = None,
    ) -> CancelOrderResult:
        """Cancel one order. ``NotFoundError`` means it is already gone (cancelled,
        executed, or unknown); a reply naming another order is outcome-unknown."""
        reply = self.client.write(
            "DELETE",
            f"{ORDERS}/{_id(order_id)}",
            params={
                "subaccount": subaccount,
                "exchange_index": exchange_index,
                "market_ticker": market_ticker,
            },
            route=ORDER,
        )
        result = self._result(CancelOrderResult, reply.data, reply)
        self._same_order(order_id, result.order_id, reply)
        return result

    def amend(self, amend: AmendOrder) -> AmendOrderResult:
        """Amend price and/or total count (filled + resting)."""
        self.check_price(amend.ticker, amend.price)
        reply = self.client.write(
            "POST",
            f"{ORDERS}/{_id(amend.order_id)}/amend",
            body=amend.wire(),
            client_order_id=amend.updated_client_order_id or amend.client_order_id,
            route=ORDER + "/amend",
        )
        result = self._result(AmendOrderResult, reply.data, reply)
        self._same_order(amend.order_id, result.order_id, reply)
        return result

    def decrease(self, decrease: DecreaseOrder) -> DecreaseOrderResult:
        reply = self.client.write(
            "POST",
            f"{ORDERS}/{_id(decrease.order_id)}/decrease",
            body=decrease.wire(),
            route=ORDER + "/decrease",
        )
        result = self._result(DecreaseOrderResult, reply.data, reply)
        self._same_order(decrease.order_id, result.order_id, reply)
        return result

    def batch_create(self, orders: Sequence[CreateOrder]) -> tuple[BatchCreateItem, ...]:
        """Place several orders in one request → one item per order, in order; a failed
        item carries ``error`` (``item.error.as_error()`` types it), its siblings stand."""
        if not orders:
            return ()
        ids = [o.client_order_id for o in orders]
        if len(set(ids)) != len(ids):
            raise ValueError("a batch repeats a client_order_id")
        for order in orders:
            self.check_price(order.ticker, order.price)
        reply = self.client.write(
            "POST",
            BATCH,
            body={"orders": [o.wire() for o in orders]},
            client_order_ids=ids,
            route=BATCH,
            items=len(orders),
        )
        return self._items(BatchCreateItem, reply, len(orders))

    def batch_cancel(self, targets: Sequence[CancelTarget]) -> tuple[BatchCancelItem, ...]:
        if not targets:
            return ()
        reply = self.client.write(
            "DELETE",
            BATCH,
            body={"orders": [t.wire() for t in targets]},
            route=BATCH,
            items=len(targets),
        )
        return self._items(BatchCancelItem, reply, len(targets))

    def cancel_all(self, *, subaccount: int | None = None) -> None:
        """Cancel every resting order (all shards; one subaccount if given) → 204.

        Orders placed in the following minute may be cancelled too; verify by listing.
        """
        self.client.write("DELETE", ORDERS, params={"subaccount": subaccount}, route=ORDERS)

    # -- reads -----------------------------------------------------------------------------------
    def list_orders(
        self,
        *,
        ticker: str | None = None,
        event_tickers: Sequence[str] | None = None,
        status: str | None = None,
        min_ts: int | None = None,
        max_ts: int | None = None,
        subaccount: int | None = None,
        exchange_index: int | None = None,
    ) -> list[Order]:
        """Every order matching the filters, all pages; all subaccounts and shards unless
        ``subaccount`` / ``exchange_index`` narrow it."""
        if status is not None and status not in ORDER_STATUSES:
            raise ValueError(f"status must be one of {sorted(ORDER_STATUSES)}, got {status!r}")
        if isinstance(event_tickers, str):
            raise TypeError("event_tickers must be a sequence of tickers, not one string")
        params: dict[str, Any] = {
            "ticker": ticker,
            "status": status,
            "min_ts": min_ts,
            "max_ts": max_ts,
            "subaccount": subaccount,
            "exchange_index": exchange_index,
        }
        if not event_tickers:
            return self.client.read_all("/portfolio/orders", params, "orders", Order)
        found: list[Order] = []
        events = list(dict.fromkeys(event_tickers))
        for start in range(0, len(events), MAX_EVENT_TICKERS):
            chunk = ",".join(events[start : start + MAX_EVENT_TICKERS])
            found += self.client.read_all(
                "/portfolio/orders", {**params, "event_ticker": chunk}, "orders", Order
            )
        return found

    def get_order(self, order_id: str) -> Order:
        """One order (``NotFoundError`` if unknown)."""
        path = f"/portfolio/orders/{_id(order_id)}"
        data = self.client.read(path)
        if "order" not in data:
            raise UnexpectedResponseError("response has no 'order' field", method="GET", path=path)
        return self.client.parse(Order, data["order"], path)

    def find_order(self, client_order_id: str, *, ticker: str | None = None) -> Order | None:
        """The order that carries ``client_order_id``, if the exchange lists it: the lookup
        that resolves an outcome-unknown write (narrow by ``ticker``; mind the read lag)."""
        for order in self.list_orders(ticker=ticker):
            if order.client_order_id == client_order_id:
                return order
        return None

    def resolve_create(
        self,
        unknown: OutcomeUnknownError,
        *,
        ticker: str | None = None,
        max_wait: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Order | None:
        """Settle an unknown create by lookup (protocol §8.10, steps 1-2).

        Looks the order up by ``client_order_id`` (narrowed by ``ticker``) until it is found
        or the exchange's portfolio reads provably cover the moment the client gave up
        (``GET /exchange/user_data_timestamp`` at or past it), polling with backoff for the
        read lag. Returns the order, or None when it is provably absent: then
        :meth:`resend_create` (same request, same id) is the safe next step. Raises the
        ``unknown`` error again if ``max_wait`` passes with the reads still behind.
        """
        client_order_id = unknown.client_order_id
        if not client_order_id:
            raise ValueError("only a write with a client_order_id can be resolved by lookup")
        started = time.monotonic()
        delay = 0.02
        while True:
            as_of = get_user_data_timestamp(self.client)
            found = self.find_order(client_order_id, ticker=ticker)
            if found is not None:
                return found
            if as_of is not None and as_of.timestamp() >= unknown.given_up_at:
                return None
            if time.monotonic() - started + delay > max_wait:
                if as_of is None:
                    return None  # the exchange states no freshness: the grace period is all
                raise unknown
            sleep(delay)
            delay = min(delay * 2, 0.5)

    def resend_create(self, unknown: OutcomeUnknownError) -> CreateOrderResult:
        """Send an unknown create again, byte for byte (§8.10 step 3). A
        ``DuplicateOrderError`` means the first try did place it: look it up again."""
        reply = self.client.resend(unknown.request)
        return self._result(CreateOrderResult, reply.data, reply)

    def list_fills(
        self,
        *,
        ticker: str | None = None,
        order_id: str | None = None,
        min_ts: int | None = None,
        max_ts: int | None = None,
        subaccount: int | None = None,
        exchange_index: int | None = None,
    ) -> list[Fill]:
        params = {
            "ticker": ticker,
            "order_id": order_id,
            "min_ts": min_ts,
            "max_ts": max_ts,
            "subaccount": subaccount,
            "exchange_index": exchange_index,
        }
        return self.client.read_all("/portfolio/fills", params, "fills", Fill)

    def list_settlements(
        self,
        *,
        ticker: str | None = None,
        event_ticker: str | None = None,
        min_ts: int | None = None,
        max_ts: int | None = None,
        subaccount: int | None = None,
        exchange_index: int | None = None,
    ) -> list[Settlement]:
        params = {
            "ticker": ticker,
            "event_ticker": event_ticker,
            "min_ts": min_ts,
            "max_ts": max_ts,
            "subaccount": subaccount,
            "exchange_index": exchange_index,
        }
        return self.client.read_all("/portfolio/settlements", params, "settlements", Settlement)

    def list_positions(
        self,
        *,
        ticker: str | None = None,
        event_ticker: str | None = None,
        settlement_status: str | None = None,
        count_filter: str | None = None,
        subaccount: int | None = None,
        exchange_index: int | None = None,
    ) -> list[MarketPosition]:
        params = {
            "ticker": ticker,
            "event_ticker": event_ticker,
            "settlement_status": settlement_status,
            "count_filter": count_filter,
            "subaccount": subaccount,
            "exchange_index": exchange_index,
        }
        return self.client.read_all(
            "/portfolio/positions", params, "market_positions", MarketPosition
        )

    # -- reply checks ----------------------------------------------------------------------------
    @staticmethod
    def _result(model: type[ResultT], data: object, reply: Reply) -> ResultT:
        """The 2xx reply as ``model``; unreadable, the write may still have happened."""
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            what = f"HTTP {reply.status} reply unreadable: {where}: {first['msg']}"
            raise _unknown(what, reply) from None

    @staticmethod
    def _same_order(wanted: str, got: str, reply: Reply) -> None:
        if got != wanted:
            raise _unknown(f"the reply describes order {got!r}, not {wanted!r}", reply)

    def _items(self, model: type[ResultT], reply: Reply, expected: int) -> tuple[ResultT, ...]:
        items = reply.data.get("orders")
        if not isinstance(items, list) or len(items) != expected:
            got = len(items) if isinstance(items, list) else type(items).__name__
            raise _unknown(f"batch reply has {got} items for {expected} orders", reply)
        return tuple(self._result(model, item, reply) for item in items)


def _unknown(what: str, reply: Reply) -> OutcomeUnknownError:
    request = reply.request or SentRequest("?", "?")
    return OutcomeUnknownError(
        f"outcome unknown: {what}",
        request=request,
        status=reply.status,
        method=request.method,
        path=request.path,
    )
