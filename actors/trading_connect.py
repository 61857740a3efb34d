"""TRADING_CLIENT_CONNECT: the trading connection, set up once per stage incarnation.

What the stage does, in this order (docs/states.md and docs/trading.md say it for users):

1. proves the key (``/exchange/status``, then ``/portfolio/balance``: the cheapest signed
   request) and reads the account's limits and endpoint costs (the write bucket a client
   must pace itself to is only known from them);
2. opens the private channels (fills, user orders, positions, order-group updates) and
   keeps them open while the stage lives, handing every event to
   ``StageContext.private_events`` (the order gateway): subscribing *before* reading the
   resting orders means nothing falls between the read and the stream;
3. creates the session's order group (the exchange's fill-velocity kill switch: REST and
   WebSocket have no cancel-on-disconnect, protocol §8.10);
4. applies the startup policy to resting orders this installation did not place (ours are
   told by the id allocator's prefix and high-water mark, ``trading.ids.is_ours``):
   ``cancel`` (verified by reading again), ``adopt`` or ``leave``.

A private-channel reconnect is an event for the listener (``PrivateConnected``: reconcile
now), never a stage failure while REST works; if the channels' transport gives up, REST
is read once and the channels reopened, and only a REST failure fails the stage.
In production without ``--allow-production-trading`` (and under ``--dry-run``) the stage
writes nothing: no group, no cancels (it says what it would have cancelled).
"""

from __future__ import annotations

import logging
import threading
from decimal import Decimal
from typing import Any

from actors.base import StageActor
from kalshi_api.account_limits import (
    AccountLimits,
    EndpointCosts,
    get_account_limits,
    get_endpoint_costs,
)
from kalshi_api.errors import ExchangePausedError, NotFoundError
from kalshi_api.models import ExchangeStatus, Order
from kalshi_api.order_groups import OrderGroupApi
from kalshi_api.orders import OrderApi
from kalshi_api.private_channels import PrivateChannels
from kalshi_api.private_events import PrivateConnected
from kalshi_api.protocol import WS_PATH
from kalshi_api.rest import KalshiRestClient
from kalshi_api.stream_events import ReconnectPolicy, StreamFailed
from kalshi_api.write_pacer import WritePacer
from messages.base import Message
from messages.metadata import TradingClientConnectMetadata, WriteBudget
from messages.orders import ExchangeOrder
from messages.results import TradingConnected, WriteCost
from messages.states import State
from messages.text import one_line
from trading.ids import IdStateError, is_ours, load_high_water

logger = logging.getLogger("kalshi_supervisor.actors.trading_connect")

CANCEL_VERIFY_ROUNDS = 5
"""Cancel, read again, cancel what still rests: a cancel that met a lagging read or a
missed reply is caught by the next round; past this many rounds the stage fails."""


class ConnectionLostError(RuntimeError):
    """The stage's connection was dropped (the ``disconnect`` fault, or the link died)."""


class StartupOrdersError(RuntimeError):
    """Unknown resting orders could not all be cancelled; the message is one line."""


class PrivateChannelsFailed(Message):
    """Told to the stage by its own listener: the private transport gave up."""

    reason: str


class ReopenPrivate(Message):
    """Told to the stage by its own timer: reopen the private channels now."""


def exchange_status_or_pause(client: KalshiRestClient) -> ExchangeStatus:
    """The exchange status, raising :class:`ExchangePausedError` during an exchange pause.

    The REST client hands back the 503 status body as a typed status; the stage cannot do
    its work while the exchange refuses everything, so it stops with a typed, one-line
    error the supervisor can tell apart from a failure.
    """
    status = client.get_exchange_status()
    if status.unavailable:
        resume = status.exchange_estimated_resume_time
        when = f", estimated resume {resume.isoformat()}" if resume else ""
        raise ExchangePausedError(
            f"exchange paused (HTTP {status.http_status}{when})",
            status=status.http_status,
            resume_time=resume,
        )
    return status


def exchange_order(order: Order) -> ExchangeOrder:
    """The product's view of a REST order: the YES leg (``bid``/``ask``) at the YES price."""
    side = order.book_side
    if side not in ("bid", "ask"):
        buying_yes = (order.side == "yes") == (order.action != "sell")
        side = "bid" if buying_yes else "ask"
    price = order.yes_price_dollars
    if price is None:
        price = Decimal(1) - order.no_price_dollars if order.no_price_dollars is not None else None
    status = order.status if order.status in ("resting", "canceled", "executed") else "unknown"
    return ExchangeOrder(
        order_id=order.order_id,
        client_order_id=order.client_order_id,
        ticker=order.ticker,
        side=side,
        price=price if price is not None else Decimal(0),
        status=status,
        fill_count=order.fill_count_fp,
        remaining_count=order.remaining_count_fp,
        initial_count=order.initial_count_fp,
        last_update_reason=order.last_update_reason,
    )


def _views(orders: list[Order]) -> list[ExchangeOrder]:
    """The product's views of ``orders``; one the product cannot represent (a price or a
    count out of range) is skipped with one WARNING line, never a stage failure: the
    gateway's reconciliation reads it again."""
    views: list[ExchangeOrder] = []
    skipped: list[str] = []
    for order in orders:
        try:
            views.append(exchange_order(order))
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            skipped.append(f"{order.order_id}: {one_line(str(exc))[:120]}")
    if skipped:
        logger.warning(
            "startup: %d resting orders not readable as orders (first: %s)",
            len(skipped),
            skipped[0],
        )
    return views


class TradingConnectActor(StageActor):
    stage_name = "trading"
    stage_state = State.TRADING_CLIENT_CONNECT

    def open(self) -> None:
        self._client: KalshiRestClient | None = None
        self._writer: KalshiRestClient | None = None
        self._private: PrivateChannels | None = None
        self._private_up = threading.Event()
        self._private_channels: tuple[str, ...] = ()
        self._group_id: str | None = None
        self._reopen: threading.Timer | None = None
        self._reopen_delay = self.context.reconnect_min_delay

    def describe(self) -> TradingClientConnectMetadata:
        return TradingClientConnectMetadata(
            mode=self.context.mode,
            environment=self.context.environment,
            api_url=self.context.rest_url,
        )

    # -- the state's work -------------------------------------------------------------------
    def connect(self, generation: int) -> None:
        client = self._rest()
        status = exchange_status_or_pause(client)  # a 503 pause: StageActor waits
        condition = self.observe_exchange(status)
        if condition.exchange_paused:
            self.wait_for_exchange(condition, "exchange paused: the trading API refuses requests")
            return
        client.get_balance()
        # Connect again (after a pause) redoes the reads and the policy (orders may have
        # changed meanwhile); the channels and the group are opened and created only once.
        limits = get_account_limits(client)
        costs = get_endpoint_costs(client)
        self._open_private()
        writes = self.context.trading_allowed and not self.context.dry_run
        writer = self._write_client(limits, costs) if writes else None
        limit = self.context.order_group_limit
        if writer is not None and limit is not None and self._group_id is None:
            self._group_id = OrderGroupApi(writer).create(limit).order_group_id  # once
        group_id = self._group_id
        kept, counts = self._startup_orders(client, writer)
        result = TradingConnected(
            **self._status_fields(status),
            usage_tier=limits.usage_tier,
            write_budget=WriteBudget(
                refill_per_second=limits.write.refill_rate,
                capacity=limits.write.bucket_capacity,
            ),
            default_write_cost=costs.default_cost,
            write_costs=tuple(
                WriteCost(method=c.method, path=c.path, cost=c.cost) for c in costs.endpoint_costs
            ),
            order_group_id=group_id,
            order_group_limit=limit if group_id is not None else None,
            open_orders=kept,
            startup_policy=self.context.startup_orders,
            trading_allowed=self.context.trading_allowed,
            dry_run=self.context.dry_run,
            private_channels=self._private_channels,
            **counts,
        )
        logger.info(
            "trading connected: tier %s, write budget %s/s (capacity %s), order group %s, "
            "%d open orders; startup policy %s: %d cancelled, %d adopted, %d left",
            result.usage_tier or "?",
            limits.write.refill_rate,
            limits.write.bucket_capacity,
            group_id or "none",
            len(kept),
            result.startup_policy,
            result.cancelled,
            result.adopted,
            result.left,
        )
        self.succeed(result)

    def handle(self, message: Any) -> Any:
        if isinstance(message, PrivateChannelsFailed):
            self._on_private_failed(message.reason)
            return None
        if isinstance(message, ReopenPrivate):
            self._reopen_private()
            return None
        return super().handle(message)

    def disconnect(self) -> None:
        self.close()
        raise ConnectionLostError("trading API connection dropped")

    def close(self) -> None:
        timer, self._reopen = getattr(self, "_reopen", None), None
        if timer is not None:
            timer.cancel()
            timer.join(1.0)
        private, self._private = getattr(self, "_private", None), None
        if private is not None:
            private.stop()
        for name in ("_client", "_writer"):
            client = getattr(self, name, None)
            setattr(self, name, None)
            if client is not None:
                client.close()

    # -- REST -------------------------------------------------------------------------------
    def _rest(self) -> KalshiRestClient:
        if self._client is None:
            self._client = KalshiRestClient(
                self.context.rest_url, self.context.signer, timeout=self.context.request_timeout
            )
        return self._client

    def _write_client(self, limits: AccountLimits, costs: EndpointCosts) -> KalshiRestClient:
        """Writes paced to the account's write bucket (a burst of startup cancels must not
        429), on a client of their own so reads are never held behind the pacer."""
        if self._writer is None:
            self._writer = KalshiRestClient(
                self.context.rest_url,
                self.context.signer,
                timeout=self.context.request_timeout,
                write_pacer=WritePacer.from_account(limits, costs),
            )
        return self._writer

    def _status_fields(self, status: ExchangeStatus) -> dict[str, Any]:
        return {
            "api_url": self.context.rest_url,
            "exchange_active": status.exchange_active,
            "trading_active": status.trading_active,
        }

    def _high_water(self) -> int | None:
        path = self.context.order_id_state
        if path is None:
            return None
        try:
            return load_high_water(path)
        except IdStateError as exc:
            # Not knowing which ids are ours, cancelling could hit our own orders: leave all.
            logger.warning("%s; resting orders are left alone", one_line(str(exc)))
            return -1

    def _startup_orders(
        self, client: KalshiRestClient, writer: KalshiRestClient | None
    ) -> tuple[tuple[ExchangeOrder, ...], dict[str, int]]:
        """Sort resting orders into ours and unknown ones; apply the policy to the latter."""
        prefix, high_water = self.context.order_id_prefix, self._high_water()
        policy = self.context.startup_orders
        resting = OrderApi(client).list_orders(status="resting")
        if high_water == -1:
            return (), {"cancelled": 0, "adopted": 0, "left": len(resting)}
        ours, unknown = [], []
        for order in resting:
            mine = is_ours(order.client_order_id, prefix=prefix, high_water=high_water)
            (ours if mine else unknown).append(order)
        kept = _views(ours)
        counts = {"cancelled": 0, "adopted": 0, "left": 0}
        if not unknown:
            return tuple(kept), counts
        if policy == "adopt":
            counts["adopted"] = len(unknown)
            kept += _views(unknown)
        elif policy == "leave" or writer is None:
            counts["left"] = len(unknown)
            if policy == "cancel":
                why = "dry run" if self.context.dry_run else "trading is halted (production)"
                logger.warning(
                    "%d resting orders this process does not know would be cancelled; "
                    "%s: left alone",
                    len(unknown),
                    why,
                )
        else:
            counts["cancelled"], counts["left"] = self._cancel_unknown(client, writer, unknown)
        return tuple(kept), counts

    def _cancel_unknown(
        self, client: KalshiRestClient, writer: KalshiRestClient, unknown: list[Order]
    ) -> tuple[int, int]:
        """Cancel each, then read resting orders again until none of them rests.

        Returns (cancelled, left). An order whose cancel answers 404 yet still lists as
        resting is one the exchange will not let us cancel: it is not retried, and is
        counted as left, with one WARNING line (failing the stage would only repeat it).
        """
        targets = {o.order_id for o in unknown}
        refused: set[str] = set()
        remaining = list(unknown)
        api = OrderApi(writer)
        for _ in range(CANCEL_VERIFY_ROUNDS):
            for order in remaining:
                if order.order_id in refused:
                    continue
                subaccount = order.subaccount_number or None  # 0 is the primary account
                try:
                    api.cancel(order.order_id, subaccount=subaccount)
                except NotFoundError:
                    refused.add(order.order_id)  # gone already, or not ours to cancel
            still = OrderApi(client).list_orders(status="resting")
            remaining = [o for o in still if o.order_id in targets]
            if all(o.order_id in refused for o in remaining):
                break
        else:
            raise StartupOrdersError(
                f"{len(remaining)} unknown resting orders still rest after "
                f"{CANCEL_VERIFY_ROUNDS} rounds of cancels"
            )
        if remaining:
            logger.warning(
                "startup: %d resting orders this process does not know cannot be cancelled "
                "(the exchange answers 404); left alone",
                len(remaining),
            )
        cancelled = len(targets) - len(remaining)
        logger.info("startup: cancelled %d resting orders this process did not place", cancelled)
        return cancelled, len(remaining)

    # -- private channels -------------------------------------------------------------------
    def _open_private(self) -> None:
        """Open the channels and wait (bounded) for their first ``PrivateConnected``; going
        on without it is safe: the listener reconciles on the one that comes later."""
        if self._private is None:
            self._private_up.clear()
            self._private = self._new_private()
            self._private.start()
        if not self._private_up.wait(self.context.request_timeout):
            logger.warning(
                "private channels not subscribed within %.1f s; going on (reconcile follows "
                "their first PrivateConnected)",
                self.context.request_timeout,
            )

    def _new_private(self) -> PrivateChannels:
        signer = self.context.signer
        actor_ref = self.actor_ref
        deliver = self.context.private_events
        up = self._private_up

        def listener(event: object) -> None:
            # The private channels' thread: never block, never raise (the channels log it).
            if isinstance(event, PrivateConnected):
                self._private_channels = event.channels
                self._reopen_delay = self.context.reconnect_min_delay
                up.set()
            elif isinstance(event, StreamFailed) and actor_ref.is_alive():
                actor_ref.tell(PrivateChannelsFailed(reason=one_line(str(event.reason))))
            if deliver is not None:
                deliver(event)

        return PrivateChannels.connect(
            self.context.ws_url,
            auth_headers=lambda: signer.headers("GET", WS_PATH),
            listener=listener,
            reconnect=ReconnectPolicy(
                min_delay=self.context.reconnect_min_delay,
                max_delay=self.context.reconnect_max_delay,
                max_attempts=None,
            ),
            open_timeout=self.context.request_timeout,
        )

    def _on_private_failed(self, reason: str) -> None:
        """The channels' transport gave up: a stage failure only if REST fails too.

        Otherwise they are reopened after a delay that doubles per give-up (from
        ``reconnect_min_delay`` to ``reconnect_max_delay``), so a socket refused for good
        while REST works cannot become a reconnect storm.
        """
        logger.warning(
            "private channels stopped (%s); REST checked, reopening in %.2f s",
            reason,
            self._reopen_delay,
        )
        self._rest().get_balance()  # raises: the stage fails (or waits out a pause)
        private, self._private = self._private, None
        if private is not None:
            private.stop()
        if self._reopen is not None:
            return
        actor_ref = self.actor_ref
        timer = threading.Timer(
            self._reopen_delay,
            lambda: actor_ref.tell(ReopenPrivate()) if actor_ref.is_alive() else None,
        )
        timer.name = "kalshi-private-reopen"
        timer.daemon = True
        self._reopen = timer
        self._reopen_delay = min(self._reopen_delay * 2, self.context.reconnect_max_delay)
        timer.start()

    def _reopen_private(self) -> None:
        self._reopen = None
        if self._private is None:
            self._private = self._new_private()
            self._private.start()
