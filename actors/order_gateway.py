"""The order gateway: the only writer of orders, and the kill switch.

A built-in service (``order_gateway``, permanent), added by the app when trading is on, so
the one child mechanism supervises it and it hears READY / not READY, pauses and the
stages' shared results like any service. Services reach it through their
``TradingHandle``; the private channels through ``TradingLink.private_event``; the app
through ``Halt`` / ``ResumeTrading`` / ``TradingStatusQuery``.

What it decides, on its own thread, with the pure logic of ``trading/``:

- **Admission.** An order goes out only while READY, not paused, and the trading state
  allows it (``trading.risk.check_order``: ACTIVE everything the limits allow; REDUCING
  reduce-only; HALTED nothing), within the service's and the global ``RiskLimits``.
  Otherwise it is refused locally with a reason (an ``on_order`` with ``rejected``) and
  never sent. A daily-loss breach halts.
- **Ids.** Every order has its ``client_order_id`` before it is sent (``trading.ids``, a
  state file in the supervisor's state directory), tracked (``OrderTracker``) before the
  write; an outcome-unknown create is resolved by lookup and resent only under the same
  id (``actors.gateway_io.resolve_unknown``); a new id is never minted for a retry.
- **Facts.** Replies, private events (``user_order``, ``fill``) and REST reads go into the
  tracker in any order; every change is told to the owning service (``on_order``,
  ``on_fill``, ``on_position``) and published (``messages.trading_events``). P&L and
  positions: ``trading.pnl.PnlBook``.
- **Reconciliation** after every ``PrivateConnected`` and on each ``on_ready``: the REST
  truth against ours (``trading.reconcile``), each difference one line of a
  ``Reconciled`` event, and applied.
- **The kill switch.** ``Halt``: HALTED at once (every new order refused), trigger the
  session's order group, cancel-all, then read and cancel by id until none of ours rest
  (``actors.gateway_io.run_halt``), then a ``HaltReport`` and a ``halt_completed`` event.
  ``ResumeTrading``: ACTIVE again, the group reset. Automatic halts (each can be turned
  off): leaving READY and stopping, an exchange pause, a daily-loss breach, the group's
  own trigger.

Every socket is used on the gateway's I/O threads (``actors.gateway_io``); the actor only
decides, so it always answers its liveness pings.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from actors.account_push import AccountPush, RefreshAccount
from actors.gateway_config import GATEWAY_SERVICE, GatewayConfig
from actors.gateway_facts import from_user_order, from_ws_fill
from actors.gateway_io import (
    GatewayIo,
    HaltOutcome,
    Resolution,
    lookup_order,
    read_truth,
    resolve_unknown,
    run_halt,
)
from actors.gateway_messages import (
    AmendOrder,
    CancelAllMine,
    CancelOrder,
    DecreaseOrder,
    Halt,
    IoDone,
    PlaceOrder,
    PrivateEventArrived,
    ResumeTrading,
    ServiceStopped,
    TradingStatusQuery,
)
from actors.service import ServiceActor
from actors.trading_link import TradingLink
from kalshi_api import private_events as ws
from kalshi_api.errors import (
    DuplicateOrderError,
    NotFoundError,
    OutcomeUnknownError,
    RequestRejectedError,
)
from kalshi_api.order_groups import OrderGroupApi
from kalshi_api.order_models import AmendOrder as AmendRequest
from kalshi_api.order_models import CreateOrder, CreateOrderResult
from kalshi_api.order_models import DecreaseOrder as DecreaseRequest
from kalshi_api.orders import OrderApi
from messages.events import Event, ExchangePaused
from messages.metadata import ReadyMetadata
from messages.orders import (
    CancelAccepted,
    CancelNotFound,
    ExchangeOrder,
    Fill,
    HaltReason,
    OrderStatus,
    PlaceAccepted,
    PlaceRejected,
    Position,
    PositionMismatch,
    TradingState,
    WriteUnknown,
)
from messages.states import State
from messages.text import one_line
from messages.trading_events import (
    RECONCILED_SHOWN_MAX,
    FillEvent,
    HaltCompleted,
    OrderUpdateEvent,
    PositionChanged,
    Reconciled,
    TradingStateChanged,
)
from messages.trading_status import HaltReport, TradingStatus, WriteBudgetStatus
from trading import halt as halt_policy
from trading.lookup import Escalate, Found
from trading.order_state import OrderRecord
from trading.pnl import PnlBook, Quote
from trading.reconcile import ExchangeTruth, fills_since, reconcile_tracker
from trading.risk import Exposure, check_order, daily_loss_breached
from trading.tracker import OrderTracker

logger = logging.getLogger("kalshi_supervisor.actors.order_gateway")

ZERO = Decimal(0)
HALF = Decimal("0.5")
DAILY_LOSS_CHECK_INTERVAL = 1.0
"""Seconds between looks at the day's P&L against ``max_daily_loss`` (besides each fill)."""
MAX_CANCEL_TRIES = 5
"""Sends of one cancel whose outcome stays unknown before a lookup decides."""
MAX_RECONCILE_ATTEMPTS = 5
"""Reads in a row a reconciliation makes while fills keep arriving across them."""
TEARDOWN_HALT_TIMEOUT = 5.0
"""At stop, how long the last halt may verify (the process is going away)."""


class _RefreshView:
    """Told to the gateway itself: recompute the halt thread's view once, after a burst."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class _RiskView:
    """What the risk check reads of an open order (``trading.risk.Exposure.of``), without
    building a full ``OrderUpdate`` model per open order on every new order."""

    status: OrderStatus
    service: str
    side: str
    ticker: str
    remaining: Decimal
    price: Decimal

    @classmethod
    def of(cls, record: OrderRecord) -> _RiskView:
        intent = record.intent
        return cls(
            record.status, intent.service, intent.side, intent.ticker, record.remaining,
            record.price,
        )


class OrderGatewayActor(ServiceActor):
    """See the module docstring."""

    service_name = GATEWAY_SERVICE

    # -- lifecycle -------------------------------------------------------------------------
    def setup(self) -> None:
        link = self.context.trading
        if not isinstance(link, TradingLink):
            raise RuntimeError("the order gateway needs the trading link (trading is off?)")
        self.link = link
        self.cfg: GatewayConfig = link.config
        self.tracker: OrderTracker = link.tracker  # outlive this incarnation (see the link)
        self.pnl: PnlBook = link.pnl
        self.io = GatewayIo(self.cfg)
        self.state = link.state
        self.state_reason: str | None = link.state_reason
        self.group_id: str | None = None
        self.balance: int | None = None
        self.last_fill_ms: int | None = None
        self._view_lock = threading.Lock()
        self._known_oids: set[str] = set()
        self._in_flight = 0
        self._view_refresh_asked = False
        self._emitted: dict[str, tuple[Any, ...]] = {}
        self._cancel_wanted: set[str] = set()
        self._cancel_tries: dict[str, int] = {}
        """Cancels sent again after an unknown outcome, by order id (cleared on an answer)."""
        self._halting: list[Future[Any]] | None = None
        self._halt_reason = ""
        self._stopping = threading.Event()
        self._channels: Any = None
        self._fill_seq = 0
        """Fills applied so far (a reconciliation read across one may be stale)."""
        self._placed = False
        """Whether this incarnation ever sent an order (a stop then halts)."""
        self._engaged = False
        self._engaging = False
        self._queued: list[PlaceOrder] = []
        self.account_push = AccountPush(link, self.actor_ref, self.call_later)  # on_account
        link.attach_gateway(self.actor_ref)

    def teardown(self) -> None:
        link = getattr(self, "link", None)
        if link is None:  # setup never got this far
            return
        self._stopping.set()
        link.detach_gateway(self.actor_ref)
        if self._channels is not None:
            self._channels.stop()
        try:
            if self.tracker.open_orders() or (
                self._placed and self.state is not TradingState.HALTED
            ):
                # READY still: this gateway alone is stopping (a crash, a restart)
                self._halt_now("gateway stopped" if self.ready else HaltReason.SHUTDOWN.value)
        finally:
            self.io.close()

    def _open_channels(self) -> None:
        from kalshi_api.private_channels import PrivateChannels

        signer = self.cfg.signer
        path = "/trade-api/ws/v2"
        self._channels = PrivateChannels.connect(
            self.cfg.ws_url,
            auth_headers=lambda: signer.headers("GET", path),
            listener=self.link.private_event,
        )
        self._channels.start()

    # -- the system's news -----------------------------------------------------------------
    def on_ready(self, metadata: ReadyMetadata) -> None:
        if self._engaged:
            self._reconcile("ready")
        elif self.tracker.open_orders() or self.pnl.positions(None):
            self._engage()  # an earlier incarnation traded: reconcile what it left

    def _engage(self) -> None:
        """The first order (or halt) engages the gateway: its private channels (until the
        trading stage hands events on), the session's order group, a first reconciliation.

        Why not at start: a supervisor that never trades must not spend the account's
        budget, threads or sockets on it (and its READY must not depend on them)."""
        if self._engaged or self._engaging:
            return
        self._engaging = True
        if self.cfg.own_private_channels and self._channels is None:
            try:
                self._open_channels()
            except Exception as exc:  # trading still works, reconciliation fills the gap
                logger.warning("gateway: private channels not opened: %s", one_line(str(exc)))
        if self.cfg.order_group_limit is not None:  # None: no order group at all
            self.group_id = self.group_id or self._stage_group()
        if self.group_id is None and self.cfg.order_group_limit is not None:
            self._submit("group", self._create_group)  # engaged when it is there (or not)
            return
        self._engaged_now()

    def _engaged_now(self) -> None:
        """Reconcile first, then place what waited: the first read then knows the account
        as it was before any order of this session (no stale "gone" for a new order)."""
        self._reconcile("engaged")
        watched = [self.cfg.global_limits, *self.cfg.service_limits.values()]
        if self.cfg.halt_on_daily_loss and any(x.max_daily_loss is not None for x in watched):
            # marks move without fills: the day's loss is watched, not only at each fill
            self.call_every(DAILY_LOSS_CHECK_INTERVAL, self._check_daily_loss_all)
        for record in self.tracker.open_orders():
            if record.status in (OrderStatus.PENDING, OrderStatus.OUTCOME_UNKNOWN):
                self._adopt_in_flight(record)

    def _adopt_in_flight(self, record: OrderRecord) -> None:
        """A create an earlier incarnation sent and never heard back about: look it up by
        its id (twice, the in-flight window apart); absent both times, it never landed."""
        cid, ticker = record.client_order_id, record.intent.ticker
        wait = self.cfg.lookup.in_flight_ms / 1000
        stop = self._stopping

        def find(api: OrderApi) -> tuple[ExchangeOrder, tuple[Fill, ...]] | None:
            for attempt in range(2):
                order = api.find_order(cid, ticker=ticker)
                if order is not None:
                    return lookup_order(api, order.order_id)
                if attempt == 0 and stop.wait(wait):
                    break
            return None

        self._submit("adopted", find, context=cid)

    def _on_adopted(self, done: IoDone) -> None:
        cid: str = done.context
        record = self.tracker.get(cid)
        if record is None or done.error is not None:
            return
        if done.result is not None:
            order, fills = done.result
            self._apply_lookup(order, fills)
        elif record.status in (OrderStatus.PENDING, OrderStatus.OUTCOME_UNKNOWN):
            if record.status is OrderStatus.PENDING:
                self.tracker.on_place_reply(WriteUnknown(client_order_id=cid,
                                                         reason="the gateway restarted"))
            self.tracker.on_place_reply(
                PlaceRejected(client_order_id=cid, status=0, code="not_placed",
                              message="absent at the exchange after the gateway restarted")
            )
            self._emit(record, reason="not placed: absent after the gateway restarted")
        self._in_flight_changed()

    def _place_queued(self) -> None:
        self._engaging, self._engaged = False, True
        queued, self._queued = self._queued, []
        for message in queued:
            self._place(message)

    def on_not_ready(self, state: State, reason: str) -> None:
        if self.cfg.halt_on_not_ready:
            trigger = HaltReason.SHUTDOWN if state is State.SHUTDOWN else HaltReason.LEFT_READY
            self._trigger(trigger, f"left READY for {state.value}: {reason}")

    def on_event(self, event: Event) -> None:
        if isinstance(event, ExchangePaused) and self.cfg.halt_on_pause:
            trigger = (
                HaltReason.EXCHANGE_PAUSE if event.scope == "exchange" else HaltReason.TRADING_PAUSE
            )
            self._trigger(trigger, f"{event.scope} pause")

    # -- messages ----------------------------------------------------------------------------
    def handle(self, message: Any) -> Any:
        handler = _HANDLERS.get(type(message))
        if handler is not None:
            return handler(self, message)
        return super().handle(message)

    def _stage_group(self) -> str | None:
        """The session's order group the trading stage created, if it did."""
        connection = self.trading_connection
        return connection.order_group_id if connection is not None else None

    # -- placing -----------------------------------------------------------------------------
    def _place(self, message: PlaceOrder) -> None:
        if not self._engaged:
            self._engage()
            if self._engaging:  # the order group first: every order of ours goes in it
                self._queued.append(message)
                return
        cid, intent = message.client_order_id, message.intent
        try:
            record = self.tracker.track(cid, intent)
        except ValueError as exc:
            logger.warning("gateway: %s", exc)
            return
        refusal = self._refusal(record)
        if refusal is not None:
            self.tracker.on_place_reply(
                PlaceRejected(client_order_id=cid, status=0, code="refused_locally",
                              message=one_line(refusal)[:500])
            )
            self._emit(record, reason=f"refused locally: {refusal}")
            return
        if self.cfg.dry_run:
            logger.info("gateway: dry run, not sent: %s %s %s %s @ %s (%s)", intent.service,
                        intent.ticker, intent.side, intent.count, intent.price, cid)
            self.tracker.on_place_reply(
                PlaceRejected(client_order_id=cid, status=0, code="dry_run",
                              message="dry run: validated, not sent")
            )
            self._emit(record, reason="dry run: validated, not sent")
            return
        self._placed = True
        self._in_flight_changed(created=True)
        self._emit(record)
        create = CreateOrder(
            ticker=intent.ticker,
            side=intent.side,
            count=intent.count,
            price=intent.price,
            client_order_id=cid,
            time_in_force=intent.time_in_force,
            expiration_time=intent.expiration_time,
            post_only=intent.post_only,
            reduce_only=intent.reduce_only,
            cancel_order_on_pause=intent.cancel_order_on_pause,
            order_group_id=self.group_id,
        )
        self._submit("create", lambda api: api.create(create), context=cid)

    def _refusal(self, record: OrderRecord) -> str | None:
        if not self.cfg.trading_allowed:
            return "production without --allow-production-trading: trading is halted"
        if not self.ready:
            return "the system is not READY"
        if self.pauses:
            return "the exchange has paused trading"
        intent = record.intent
        views = [_RiskView.of(r) for r in self.tracker.open_orders() if r is not record]
        quotes = self._quotes()
        scopes = []
        limits = self.cfg.service_limits.get(intent.service)
        if limits is not None:
            scopes.append(
                (
                    intent.service,
                    limits,
                    Exposure.of(views, self.pnl.positions(intent.service),
                                self.pnl.daily(quotes, intent.service), intent.service),
                )
            )
        scopes.append(
            ("global", self.cfg.global_limits,
             Exposure.of(views, self.pnl.positions(None), self.pnl.daily(quotes)))
        )
        verdict = check_order(intent, self.state, scopes)
        if verdict.admitted:
            return None
        if verdict.halt and self.cfg.halt_on_daily_loss:
            self._trigger(HaltReason.DAILY_LOSS, verdict.reason)
        return verdict.reason

    def _on_created(self, done: IoDone) -> None:
        cid: str = done.context
        record = self.tracker.get(cid)
        if record is None:
            return
        error = done.error
        if error is None:
            self._apply_reply(cid, done.result)
        elif isinstance(error, (DuplicateOrderError, OutcomeUnknownError)):
            if isinstance(error, DuplicateOrderError):
                reply: Any = PlaceRejected(client_order_id=cid, status=409,
                                           code="order_already_exists")
            else:
                reply = WriteUnknown(client_order_id=cid, reason=one_line(str(error))[:300])
            self.tracker.on_place_reply(reply)
            self._emit(record)
            if isinstance(error, OutcomeUnknownError):
                self._resolve(record, error)
            else:
                self._lookup_by_cid(record)
        elif isinstance(error, RequestRejectedError):
            self.tracker.on_place_reply(
                PlaceRejected(client_order_id=cid, status=error.status or 0,
                              code=(error.code or type(error).__name__)[:200],
                              message=one_line(str(error))[:500])
            )
            self._emit(record, reason=one_line(str(error)))
        else:
            self.tracker.on_place_reply(
                PlaceRejected(client_order_id=cid, status=0, code="refused_locally",
                              message=one_line(f"{type(error).__name__}: {error}")[:500])
            )
            self._emit(record, reason=one_line(str(error)))
        self._in_flight_changed()

    def _apply_reply(self, cid: str, result: CreateOrderResult) -> None:
        record = self.tracker.get(cid)
        if record is None:
            return
        self.tracker.on_place_reply(
            PlaceAccepted(client_order_id=cid, order_id=result.order_id,
                          fill_count=result.fill_count, remaining_count=result.remaining_count,
                          ts_ms=result.ts_ms)
        )
        self._emit(record)
        self._in_flight_changed()
        if cid in self._cancel_wanted or self.state is TradingState.HALTED:
            self._send_cancel(record)

    # -- outcome unknown ---------------------------------------------------------------------
    def _resolve(self, record: OrderRecord, unknown: OutcomeUnknownError) -> None:
        ticker, policy, stop = record.intent.ticker, self.cfg.lookup, self._stopping
        self._submit(
            "resolved",
            lambda api: resolve_unknown(api, unknown, ticker, policy, stop=stop),
            context=record.client_order_id,
        )

    def _lookup_by_cid(self, record: OrderRecord) -> None:
        """A 409 ``order_already_exists``: the order is there; read it (no resend)."""
        ticker, cid = record.intent.ticker, record.client_order_id

        def find(api: OrderApi) -> tuple[ExchangeOrder, tuple[Fill, ...]] | None:
            order = api.find_order(cid, ticker=ticker)
            return None if order is None else lookup_order(api, order.order_id)

        self._submit("looked_up", find, context=cid)

    def _on_resolved(self, done: IoDone) -> None:
        cid: str = done.context
        record = self.tracker.get(cid)
        if record is None:
            return
        if done.error is not None:
            logger.warning("gateway: resolving %s failed: %s; it stays outcome_unknown", cid,
                           one_line(str(done.error)))
            self._emit(record, reason=f"lookup failed: {one_line(str(done.error))}")
            return
        resolution: Resolution = done.result
        for _ in range(resolution.sends - 1):
            if record.status is OrderStatus.OUTCOME_UNKNOWN:
                self.tracker.on_resend(cid)
        if resolution.accepted is not None:
            self._apply_reply(cid, resolution.accepted)
            return
        decision = resolution.decision
        if isinstance(decision, Found):
            self._apply_lookup(decision.order, decision.fills)
        elif isinstance(decision, Escalate):
            logger.error("gateway: %s stays outcome_unknown: %s", cid, decision.reason)
            self._emit(record, reason=f"outcome unknown: {decision.reason}")
        self._in_flight_changed()
        if cid in self._cancel_wanted or self.state is TradingState.HALTED:
            self._send_cancel(record)

    def _on_looked_up(self, done: IoDone) -> None:
        if done.error is not None:
            logger.warning("gateway: lookup of %s failed: %s", done.context, done.error)
            return
        if done.result is not None:
            order, fills = done.result
            self._apply_lookup(order, fills)
        self._in_flight_changed()

    def _apply_lookup(self, order: ExchangeOrder, fills: tuple[Fill, ...]) -> None:
        for fill in fills:
            self._on_fill(fill)
        routed = self.tracker.on_lookup(order)
        self._emit_routed(routed.client_order_id)

    # -- cancels, amends, decreases ----------------------------------------------------------
    def _owned(self, service: str, cid: str) -> OrderRecord | None:
        record = self.tracker.get(cid)
        if record is None or record.intent.service != service:
            logger.warning("gateway: %s asked about %s, not one of its orders", service, cid)
            return None
        return record

    def _cancel(self, message: CancelOrder) -> None:
        record = self._owned(message.service, message.client_order_id)
        if record is not None:
            self._send_cancel(record)

    def _send_cancel(self, record: OrderRecord) -> None:
        if record.status.is_final:
            self._cancel_wanted.discard(record.client_order_id)
            return
        if record.order_id is None:  # not yet acknowledged: cancelled once it is
            self._cancel_wanted.add(record.client_order_id)
            return
        self._cancel_wanted.discard(record.client_order_id)
        order_id = record.order_id
        self._submit("cancelled", lambda api: api.cancel(order_id), context=order_id)

    def _on_cancelled(self, done: IoDone) -> None:
        order_id: str = done.context
        record = self.tracker.by_order_id(order_id)
        if done.error is None:
            reply: Any = CancelAccepted(order_id=order_id, reduced_by=done.result.reduced_by,
                                        ts_ms=done.result.ts_ms)
        elif isinstance(done.error, NotFoundError):
            reply = CancelNotFound(order_id=order_id)
        else:  # outcome unknown: a cancel is safe to send again (a 404 then means gone)
            tries = self._cancel_tries.get(order_id, 0) + 1
            logger.info("gateway: cancel of %s (try %d): %s", order_id, tries,
                        one_line(str(done.error)))
            if record is not None and not record.status.is_final:
                if tries < MAX_CANCEL_TRIES:
                    self._cancel_tries[order_id] = tries
                    self._submit("cancelled", lambda api: api.cancel(order_id), context=order_id)
                else:
                    self._cancel_tries.pop(order_id, None)
                    self._lookup_vanished(order_id)
            return
        self._cancel_tries.pop(order_id, None)
        routed = self.tracker.on_cancel_reply(order_id, reply)
        self._emit_routed(routed.client_order_id)
        if isinstance(reply, CancelNotFound):
            self._lookup_vanished(order_id)

    def _amend(self, message: AmendOrder) -> None:
        record = self._owned(message.service, message.client_order_id)
        if record is None or record.order_id is None or record.status.is_final:
            return
        if not self.ready or self.state is not TradingState.ACTIVE or self.pauses:
            self._emit(record, reason="amend refused locally: trading is not active")
            return
        request = AmendRequest(
            order_id=record.order_id, ticker=record.intent.ticker, side=record.intent.side,
            price=message.price, count=message.count, client_order_id=record.client_order_id,
        )
        self._submit("amended", lambda api: api.amend(request), context=record.client_order_id)

    def _decrease(self, message: DecreaseOrder) -> None:
        record = self._owned(message.service, message.client_order_id)
        if record is None or record.order_id is None or record.status.is_final:
            return
        request = DecreaseRequest(order_id=record.order_id, reduce_by=message.reduce_by,
                                  reduce_to=message.reduce_to)
        self._submit("amended", lambda api: api.decrease(request), context=record.client_order_id)

    def _on_amended(self, done: IoDone) -> None:
        """The exchange's ``user_order`` carries the new size; a read settles an unknown."""
        record = self.tracker.get(done.context)
        if record is None or record.order_id is None:
            return
        if done.error is not None:
            self._emit(record, reason=f"amend/decrease: {one_line(str(done.error))}")
        self._lookup_vanished(record.order_id)

    def _cancel_all_mine(self, message: CancelAllMine) -> None:
        for record in self.tracker.open_orders(message.service):
            self._send_cancel(record)

    def _service_stopped(self, message: ServiceStopped) -> None:
        if self.cfg.cancel_on_service_stop:
            self._cancel_all_mine(CancelAllMine(message.service))

    def _lookup_vanished(self, order_id: str) -> None:
        self._submit("looked_up", lambda api: lookup_order(api, order_id), context=order_id)

    # -- facts from the exchange -------------------------------------------------------------
    def _private(self, message: PrivateEventArrived) -> None:
        event = message.event
        try:
            if isinstance(event, ws.FillEvent):
                self._on_fill(from_ws_fill(event))
            elif isinstance(event, ws.UserOrder):
                routed = self.tracker.on_exchange_order(from_user_order(event))
                self._emit_routed(routed.client_order_id)
                self._in_flight_changed()
            elif isinstance(event, ws.OrderGroupUpdate):
                if (
                    event.event_type == "triggered"
                    and event.order_group_id == self.group_id
                    and self.cfg.halt_on_group_trigger
                    and self._halting is None
                    and self.state is not TradingState.HALTED
                ):
                    self._trigger(HaltReason.ORDER_GROUP_TRIGGERED, "the order group triggered")
            elif isinstance(event, ws.PrivateConnected) and self._engaged:
                self._reconcile("private_reconnect")
        except ValueError as exc:  # an unreadable fact: one line, nothing changes
            logger.warning("gateway: private event refused: %s", one_line(str(exc)))

    def _on_fill(self, fill: Fill) -> None:
        routed = self.tracker.on_fill(fill)
        record = self.tracker.get(routed.client_order_id) if routed.client_order_id else None
        service = record.intent.service if record is not None else None
        if routed.transition is not None and routed.transition.outcome == "refused":
            return
        if fill.ts_ms is not None:
            self.last_fill_ms = max(self.last_fill_ms or 0, fill.ts_ms)
        if self.pnl.apply(fill, service):
            self._fill_seq += 1
            if record is not None:
                fill = fill.model_copy(update={"client_order_id": record.client_order_id})
            self.link.publish(
                FillEvent(service=service, trade_id=fill.trade_id, order_id=fill.order_id,
                          client_order_id=fill.client_order_id, ticker=fill.ticker,
                          side=fill.side, count=fill.count, price=fill.price, fee=fill.fee,
                          is_taker=fill.is_taker)
            )
            if service is not None:
                self.link.tell_service(service, fill)
                position = self.pnl.positions(service).get(fill.ticker, ZERO)
                self.link.tell_service(
                    service, Position(ticker=fill.ticker, position=position, service=service)
                )
            self._publish_position(fill.ticker)
            self._check_daily_loss(service)
        self._emit_routed(routed.client_order_id)

    def _check_daily_loss_all(self) -> None:
        if self.pnl.positions(None) or self.state is not TradingState.HALTED:
            for service in {*self.cfg.service_limits, None}:
                self._check_daily_loss(service)

    def _check_daily_loss(self, service: str | None) -> None:
        """After a fill: a day's loss past a limit halts now, not at the next order."""
        if not self.cfg.halt_on_daily_loss or self.state is TradingState.HALTED:
            return
        quotes = self._quotes()
        scopes = [("global", self.cfg.global_limits, None)]
        if service is not None and service in self.cfg.service_limits:
            scopes.append((service, self.cfg.service_limits[service], service))
        for scope, limits, name in scopes:
            if daily_loss_breached(limits, self.pnl.daily(quotes, name)):
                self._trigger(HaltReason.DAILY_LOSS, f"{scope}: daily loss past the limit")
                return

    def _publish_position(self, ticker: str) -> None:
        self.account_push.changed()
        ledger = self.pnl.market(ticker)
        if ledger is None:
            return
        snap = ledger.snapshot(self._quotes().get(ticker))
        self.link.publish(
            PositionChanged(ticker=ticker, position=snap.position, realized_pnl=snap.realized,
                            unrealized_pnl=snap.unrealized_exit, fees=snap.fees)
        )

    # -- reconciliation ----------------------------------------------------------------------
    def _reconcile(self, trigger: str, attempt: int = 1) -> None:
        since = fills_since(self.last_fill_ms)
        self._submit(
            "reconciled", lambda api: read_truth(api, since),
            context=(trigger, self._fill_seq, attempt),
        )

    def _on_reconciled(self, done: IoDone) -> None:
        trigger, fill_seq, attempt = done.context
        try:
            self._apply_truth(done, trigger, fill_seq, attempt)
        finally:
            if self._engaging and trigger == "engaged":
                self._place_queued()

    def _apply_truth(self, done: IoDone, trigger: str, fill_seq: int, attempt: int) -> None:
        # fills applied while the exchange was read: its positions may predate them
        stale = fill_seq != self._fill_seq
        if done.error is not None:
            logger.warning("gateway: reconciliation (%s) could not read the exchange: %s",
                           trigger, one_line(str(done.error)))
            self.link.publish(Reconciled(
                trigger=trigger, differences=(one_line(f"read failed: {done.error}")[:300],)))
            return
        truth: ExchangeTruth = done.result
        result = reconcile_tracker(self.tracker, self.pnl.positions(None), self.balance, truth)
        lines: list[str] = []
        for difference in result.differences:
            if stale and isinstance(difference, PositionMismatch):
                continue
            lines.append(one_line(_describe(difference)))
        for fill in result.apply_fills:
            self._on_fill(fill)
        for order in result.apply_orders:
            routed = self.tracker.on_exchange_order(order)
            self._emit_routed(routed.client_order_id)
        for order_id in result.vanished:
            self.tracker.on_vanished(order_id)
            self._lookup_vanished(order_id)
        for order_id in result.cancel_again:
            self._submit("cancelled", lambda api, oid=order_id: api.cancel(oid), context=order_id)
        prefix = f"{self.cfg.id_prefix}-"
        for order in truth.resting:
            known = self.tracker.get(order.client_order_id or "") or self.tracker.by_order_id(
                order.order_id)
            if known is None and (order.client_order_id or "").startswith(prefix):
                # ours from an earlier incarnation or process: nobody here will manage it
                self._submit("cancelled", lambda api, oid=order.order_id: api.cancel(oid),
                             context=order.order_id)
        quotes = self._quotes()
        mismatched = any(isinstance(d, PositionMismatch) for d in result.differences)
        if stale and mismatched:  # read again rather than "correct" to an older truth
            if attempt < MAX_RECONCILE_ATTEMPTS:
                self._reconcile(trigger, attempt + 1)
        elif mismatched:
            for ticker, exchange in truth.positions.items():
                local = self.pnl.positions(None).get(ticker, ZERO)
                if local != exchange:
                    self._seed(ticker, exchange - local, quotes)
            for ticker, local in self.pnl.positions(None).items():
                if ticker not in truth.positions:
                    self._seed(ticker, -local, quotes)
        self.balance = result.balance
        self._in_flight_changed()
        self.link.publish(
            Reconciled(
                trigger=trigger,
                differences=tuple(line[:300] for line in lines[:RECONCILED_SHOWN_MAX]),
                difference_count=len(lines),
            )
        )

    def _seed(self, ticker: str, delta: Decimal, quotes: dict[str, Quote]) -> None:
        quote = quotes.get(ticker) or Quote()
        price = quote.mid() or HALF
        self.pnl.seed(ticker, delta, price)
        self._publish_position(ticker)

    # -- the kill switch ---------------------------------------------------------------------
    def _trigger(self, reason: HaltReason, why: str) -> None:
        target = halt_policy.on_trigger(self.state, reason, self.cfg.halt_policy)
        if target is self.state and target is not TradingState.HALTED:
            return
        if target is TradingState.HALTED and (self._engaged or self._engaging):
            self._start_halt(Halt(reason))
        elif target is TradingState.HALTED:  # never traded: nothing of ours to cancel here
            self._set_state(target, reason.value)
        else:
            self._set_state(target, f"{reason.value}: {why}")

    def _set_state(self, state: TradingState, reason: str) -> None:
        changed = state is not self.state or reason != self.state_reason
        self.state, self.state_reason = state, reason
        self.link.state, self.link.state_reason = state, reason
        if changed:
            self.link.publish(TradingStateChanged(state=state, reason=reason))

    def _start_halt(self, message: Halt) -> None:
        reason = message.reason.value if isinstance(message.reason, HaltReason) else str(
            message.reason)
        if self._halting is not None:  # one halt at a time; the next caller waits for it
            if message.reply is not None:
                self._halting.append(message.reply)
            return
        self._set_state(TradingState.HALTED, reason)
        self._halting = [message.reply] if message.reply is not None else []
        self._halt_reason = reason
        for record in self.tracker.open_orders():
            if record.order_id is None:
                self._cancel_wanted.add(record.client_order_id)
        self._refresh_view()  # the halt thread starts from the true view
        prefix, view, group = self.cfg.id_prefix, self._halt_view, self.group_id
        timeout = self.cfg.halt_timeout
        self._submit(
            "halted",
            lambda api: run_halt(api, prefix=prefix, view=view, group_id=group, timeout=timeout),
            context=(reason, len(self.tracker.open_orders())),  # what it set out to cancel
            dedicated=True,
        )

    def _on_halted(self, done: IoDone) -> None:
        waiting, self._halting = self._halting or [], None
        if done.error is not None:
            outcome = HaltOutcome(0, 0, 0, len(self.tracker.open_orders()))
            logger.error("gateway: halt failed: %s", one_line(str(done.error)))
        else:
            outcome = done.result
        report = HaltReport(
            reason=done.context[0], open_at_start=done.context[1], state=self.state,
            duration_ms=outcome.duration_ms,
            cancel_all_calls=outcome.cancel_all_calls, verify_reads=outcome.verify_reads,
            remaining=outcome.remaining,
        )
        self.link.publish(HaltCompleted(
            reason=report.reason, duration_ms=report.duration_ms,
            cancel_all_calls=report.cancel_all_calls, verify_reads=report.verify_reads,
            remaining=report.remaining,
        ))
        for future in waiting:
            if not future.done():
                future.set_result(report)
        self._reconcile("halt")

    def _halt_view(self) -> tuple[set[str], int]:
        """What the halt thread reads: our order ids and creates in flight (thread-safe)."""
        with self._view_lock:
            return set(self._known_oids), self._in_flight

    def _in_flight_changed(self, *, created: bool = False) -> None:
        """The halt thread's view (our order ids, creates in flight) is recomputed by walking
        every open order; doing that on each fact made a halt of N orders cost N walks of N
        (the actor went unresponsive at 1,000). So facts only ask for one refresh, told to
        this actor and run after the burst already queued; a new create counts at once, so
        the view never shows fewer creates in flight than there are (only, briefly, more)."""
        if created:
            with self._view_lock:
                self._in_flight += 1
        if not self._view_refresh_asked:
            self._view_refresh_asked = True
            self.actor_ref.tell(_RefreshView())

    def _refresh_view(self, _: _RefreshView | None = None) -> None:
        self._view_refresh_asked = False
        in_flight = 0
        known: set[str] = set()
        for record in self.tracker.open_orders():
            if record.status in (OrderStatus.PENDING, OrderStatus.OUTCOME_UNKNOWN):
                in_flight += 1
            if record.order_id is not None:
                known.add(record.order_id)
        with self._view_lock:
            self._in_flight, self._known_oids = in_flight, known

    def _halt_now(self, reason: str) -> None:
        """At stop, on this thread: the I/O threads may be gone with the process."""
        self._set_state(TradingState.HALTED, reason)
        self._refresh_view()
        api = self.io.api()
        outcome = run_halt(api, prefix=self.cfg.id_prefix, view=self._halt_view,
                           group_id=self.group_id,
                           timeout=min(self.cfg.halt_timeout, TEARDOWN_HALT_TIMEOUT))
        logger.info("gateway: halted at stop in %d ms (%d still resting)",
                    outcome.duration_ms, outcome.remaining)

    def _resume(self, message: ResumeTrading) -> None:
        if self._halting is not None:
            if message.reply is not None:
                message.reply.set_exception(RuntimeError("a halt is still in progress"))
            return
        self._set_state(halt_policy.resume(), "resumed")
        group = self.group_id
        if group is None and self.cfg.order_group_limit is not None:
            # not engaged yet (a new incarnation, after a crash's halt triggered it): the
            # stage's group is the one our next order will join, so reset that one
            group = self._stage_group()
        if group is not None:
            self._submit("group_reset", lambda api: OrderGroupApi(api.client).reset(group))
        if message.reply is not None:
            message.reply.set_result(self._status())

    # -- order groups --------------------------------------------------------------------------
    def _create_group(self, api: OrderApi) -> str:
        limit = self.cfg.order_group_limit
        assert limit is not None
        return OrderGroupApi(api.client).create(limit).order_group_id

    def _on_group(self, done: IoDone) -> None:
        if done.error is None and self.group_id is None:
            self.group_id = done.result
        elif done.error is not None:
            logger.warning("gateway: no order group: %s", one_line(str(done.error)))
        if self._engaging:
            self._engaged_now()

    # -- views ---------------------------------------------------------------------------------
    def _status(self) -> TradingStatus:
        quotes = self._quotes()
        return TradingStatus(
            state=self.state,
            reason=self.state_reason,
            open_orders=[r.view() for r in self.tracker.open_orders()],
            positions=[
                Position(ticker=t, position=p) for t, p in sorted(self.pnl.positions(None).items())
            ],
            pnl=self.pnl.markets(quotes),
            order_group_id=self.group_id,
            write_budget=self._budget(),
        )

    def _budget(self) -> WriteBudgetStatus | None:
        pacer = self.io.current_pacer
        if pacer is None:
            return None
        return WriteBudgetStatus(
            capacity=Decimal(f"{pacer.capacity:.3f}"),
            tokens=Decimal(f"{pacer.tokens:.3f}"),
            refill_per_second=Decimal(f"{pacer.refill_rate:.3f}"),
            rate_limited=pacer.rate_limited_count,
        )

    def _quotes(self) -> dict[str, Quote]:
        quotes: dict[str, Quote] = {}
        for ticker in self.pnl.positions(None):
            view = self.book(ticker)
            if view is None:
                continue
            bid, ask = view.best_yes_bid(), view.best_yes_ask()
            quotes[ticker] = Quote(
                bid=Decimal(bid[0]).scaleb(-6) if bid else None,
                ask=Decimal(ask[0]).scaleb(-6) if ask else None,
            )
        return quotes

    def _emit_routed(self, cid: str | None) -> None:
        if cid is None:
            return
        record = self.tracker.get(cid)
        if record is not None:
            self._emit(record)

    def _emit(self, record: OrderRecord, reason: str | None = None) -> None:
        """Tell the owner and publish, when something it can see changed."""
        view = record.view()
        if reason is not None:
            view = view.model_copy(update={"reason": one_line(reason)[:300]})
        key = (view.status, view.filled, view.remaining, view.count, view.order_id, view.reason)
        cid = record.client_order_id
        if self._emitted.get(cid) == key:
            return
        if view.status.is_final:
            self._cancel_wanted.discard(cid)
        self._emitted[cid] = key
        self.account_push.changed()
        if len(self._emitted) > 2 * len(self.tracker) + 1000:  # bounded: forget evicted orders
            self._emitted = {c: k for c, k in self._emitted.items() if self.tracker.get(c)}
        self.link.tell_service(view.service, view)
        self.link.publish(
            OrderUpdateEvent(service=view.service, client_order_id=cid, order_id=view.order_id,
                             ticker=view.ticker, side=view.side, status=view.status,
                             count=view.count, filled=view.filled, price=view.price,
                             reason=view.reason)
        )

    # -- I/O -----------------------------------------------------------------------------------
    def _submit(
        self,
        job: str,
        work: Callable[[OrderApi], Any],
        context: Any = None,
        *,
        dedicated: bool = False,
    ) -> None:
        ref = self.actor_ref

        def done(result: Any, error: BaseException | None) -> None:
            try:
                ref.tell(IoDone(job, result, error, context))
            except Exception:  # the gateway stopped meanwhile: nothing to tell
                logger.debug("gateway: %s finished after the gateway stopped", job)

        if dedicated:  # the halt must never queue behind held writes
            io = self.io

            def run() -> None:
                try:
                    result = work(io.api())
                except BaseException as exc:
                    done(None, exc)
                    return
                done(result, None)

            threading.Thread(target=run, name=f"gateway-{job}", daemon=True).start()
            return
        if not self.io.submit(work, done):
            logger.warning("gateway: %s not run: the I/O threads are closed", job)

    def _on_io(self, done: IoDone) -> None:
        handler = _IO_HANDLERS.get(done.job)
        if handler is not None:
            handler(self, done)
        elif done.error is not None:
            logger.warning("gateway: %s failed: %s", done.job, one_line(str(done.error)))


def _describe(difference: Any) -> str:
    return str(difference.describe())


def _question(gateway: OrderGatewayActor, _: TradingStatusQuery) -> TradingStatus:
    return gateway._status()


_HANDLERS: dict[type, Callable[[OrderGatewayActor, Any], Any]] = {
    _RefreshView: OrderGatewayActor._refresh_view,
    RefreshAccount: lambda gateway, message: gateway.account_push.refresh(message),
    PlaceOrder: OrderGatewayActor._place,
    CancelOrder: OrderGatewayActor._cancel,
    AmendOrder: OrderGatewayActor._amend,
    DecreaseOrder: OrderGatewayActor._decrease,
    CancelAllMine: OrderGatewayActor._cancel_all_mine,
    ServiceStopped: OrderGatewayActor._service_stopped,
    PrivateEventArrived: OrderGatewayActor._private,
    Halt: OrderGatewayActor._start_halt,
    ResumeTrading: OrderGatewayActor._resume,
    TradingStatusQuery: _question,
    IoDone: OrderGatewayActor._on_io,
}

_IO_HANDLERS: dict[str, Callable[[OrderGatewayActor, IoDone], None]] = {
    "create": OrderGatewayActor._on_created,
    "resolved": OrderGatewayActor._on_resolved,
    "looked_up": OrderGatewayActor._on_looked_up,
    "cancelled": OrderGatewayActor._on_cancelled,
    "amended": OrderGatewayActor._on_amended,
    "reconciled": OrderGatewayActor._on_reconciled,
    "halted": OrderGatewayActor._on_halted,
    "group": OrderGatewayActor._on_group,
    "adopted": OrderGatewayActor._on_adopted,
}
