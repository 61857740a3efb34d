"""The order gateway: the only writer of orders, and the kill switch.

A built-in service (``order_gateway``, permanent), added by the app when trading is on, so
the one child mechanism supervises it and it hears READY / not READY, pauses and the
stages' shared results like any service. Services reach it through their
``TradingHandle``; the private channels through ``TradingLink.private_event``; the app
through ``Halt`` / ``ResumeTrading`` / ``TradingStatusQuery``.

What it decides, on its own thread, with the pure logic of ``trading/``:

- **Admission.** An order goes out only while READY, not paused where its market trades
  (the whole exchange, or the market's shard: ``MarketShards``), and the trading state
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
  ``Reconciled`` event, and applied. Under ``--startup-orders adopt`` the orders the
  trading stage kept are adopted first, owned by ``adopted`` (``gateway_adoption``).
- **The kill switch.** ``Halt``: HALTED at once (every new order refused), trigger the
  session's order group, cancel-all, then read and cancel by id until none of ours rest
  (``actors.gateway_io.run_halt``), then a ``HaltReport`` and a ``halt_completed`` event.
  ``ResumeTrading``: ACTIVE again, the group reset. Automatic halts (each can be turned
  off): leaving READY and stopping, a whole-exchange pause (a shard's only when it covers
  every shard we have orders on), a daily-loss breach, the group's own trigger.

Every socket is used on the gateway's I/O threads (``actors.gateway_io``); the actor only
decides, so it always answers its liveness pings.

This module is the decision loop; what it decides with lives beside it, each a plain
class or function of explicit state: ``gateway_admission`` (whether a new order may go
out), ``gateway_creates`` (a create's reply, unknown outcome and lookups),
``gateway_cancels`` (cancels, amends, decreases), ``gateway_fills`` (fills into P&L, the
day's loss), ``gateway_reconciliation`` (applying a read of the truth),
``gateway_halting`` (the trading state and the halt in progress), ``gateway_adoption``
(orders adopted at startup), ``gateway_publish``
(what is told to services and the event stream), ``gateway_ports`` (the calls the
helpers share).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from actors.account_push import AccountPush, RefreshAccount
from actors.gateway_admission import MarketShards, admit, pause_refusal
from actors.gateway_adoption import adoptable
from actors.gateway_cancels import CancelDesk
from actors.gateway_config import GATEWAY_SERVICE, GatewayConfig
from actors.gateway_creates import CreateFlow
from actors.gateway_facts import from_user_order, from_ws_fill
from actors.gateway_fills import FillLedger
from actors.gateway_halting import KillSwitch, pause_trigger
from actors.gateway_io import (
    GatewayIo,
    create_group,
    create_request,
    open_private_channels,
    read_truth,
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
from actors.gateway_ports import Ports
from actors.gateway_publish import GatewayPublisher
from actors.gateway_reconciliation import Reconciler
from actors.service import ServiceActor
from actors.trading_link import TradingLink
from kalshi_api import private_events as ws
from kalshi_api.order_groups import OrderGroupApi
from kalshi_api.orders import OrderApi
from messages.events import Event, ExchangePaused
from messages.metadata import ReadyMetadata
from messages.orders import Fill, HaltReason, OrderStatus, TradingState
from messages.results import TradingConnected
from messages.states import State
from messages.text import one_line
from messages.trading_status import TradingStatus
from trading import halt as halt_policy
from trading.order_state import OrderRecord
from trading.pnl import PnlBook
from trading.reconcile import fills_since
from trading.tracker import OrderTracker

logger = logging.getLogger("kalshi_supervisor.actors.order_gateway")

DAILY_LOSS_CHECK_INTERVAL = 1.0
"""Seconds between looks at the day's P&L against ``max_daily_loss`` (besides each fill)."""
TEARDOWN_HALT_TIMEOUT = 5.0
"""At stop, how long the gateway waits for the halt begun at SHUTDOWN and then verifies
that none of our orders rest (the process is going away). A halt takes tens of ms; this is
for a slow exchange."""
STOP_TIMEOUT = TEARDOWN_HALT_TIMEOUT + 2.0
"""How long the supervisor waits for the gateway's stop (``ChildActor.stop_timeout``): the
halt's budget, plus the last request of its verification in flight when the budget ends."""


class _RefreshView:
    """Told to the gateway itself: recompute the halt thread's view once, after a burst."""

    __slots__ = ()


class OrderGatewayActor(ServiceActor):
    """See the module docstring."""

    service_name = GATEWAY_SERVICE
    stop_timeout = STOP_TIMEOUT

    @property
    def state(self) -> TradingState:
        return self.switch.state

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
        self.switch = KillSwitch(link)
        self.group_id: str | None = None
        self.shards = MarketShards()
        self._listed = False
        self.account_push = AccountPush(link, self.actor_ref, self.call_later)  # on_account
        self.out = GatewayPublisher(link, self.tracker, self.pnl, self.book,
                                    changed=self.account_push.changed)
        self.fills = FillLedger(self.cfg, self.tracker, self.pnl, self.out)
        self._stopping = threading.Event()
        self.ports = ports = Ports(self.tracker, self._submit, self._emit,
                                   self._in_flight_changed)
        self.cancels = CancelDesk(ports)
        self.creates = CreateFlow(
            ports, self.cancels, on_fill=self._on_fill,
            halted=lambda: self.state is TradingState.HALTED, policy=self.cfg.lookup,
            stopping=self._stopping,
        )
        self.reconciler = Reconciler(ports, self.cancels, self.fills, link,
                                     id_prefix=self.cfg.id_prefix, on_fill=self._on_fill,
                                     adoptable=lambda: adoptable(self.trading_connection))
        self._channels: Any = None
        self._placed = False
        """Whether this incarnation ever sent an order (a stop then halts)."""
        self._engaged = False
        self._engaging = False
        self._queued: list[PlaceOrder] = []
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
            deadline = time.monotonic() + TEARDOWN_HALT_TIMEOUT
            # the halt begun when SHUTDOWN was announced (``on_not_ready``) finishes first
            if not self.io.wait_dedicated(TEARDOWN_HALT_TIMEOUT):
                logger.warning(
                    "gateway: the halt did not finish within %.0f s of stopping; up to %d "
                    "orders of ours may still rest", TEARDOWN_HALT_TIMEOUT,
                    len(self.tracker.open_orders()),
                )
            elif self.tracker.open_orders() or (
                self._placed and self.state is not TradingState.HALTED
            ):
                # READY still: this gateway alone is stopping (a crash, a restart); or
                # verifying what the halt at SHUTDOWN left (its report never reaches us now)
                self._halt_now("gateway stopped" if self.ready else HaltReason.SHUTDOWN.value,
                               max(0.0, deadline - time.monotonic()))
        finally:
            self.io.close()

    # -- the system's news -----------------------------------------------------------------
    def on_ready(self, metadata: ReadyMetadata) -> None:
        if self._engaged:
            self._reconcile("ready")
        elif self.tracker.open_orders() or self.pnl.positions(None):
            self._engage()  # an earlier incarnation traded: reconcile what it left

    def on_trading_connected(self, result: TradingConnected) -> None:
        # told after on_ready (at READY, or to a new incarnation): orders to adopt engage it
        if self.ready and adoptable(self.trading_connection):
            if self._engaged:
                self._reconcile("adopt")
            else:
                self._engage()

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
                self._channels = open_private_channels(self.cfg, self.link.private_event)
            except Exception as exc:  # trading still works, reconciliation fills the gap
                logger.warning("gateway: private channels not opened: %s", one_line(str(exc)))
        if self.cfg.order_group_limit is not None:  # None: no order group at all
            self.group_id = self.group_id or self._stage_group()
        if self.group_id is None and self.cfg.order_group_limit is not None:
            limit = self.cfg.order_group_limit
            self._submit("group", lambda api: create_group(api, limit))  # engaged once there
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
                self.creates.find_in_flight(record)

    def _place_queued(self) -> None:
        self._engaging, self._engaged = False, True
        queued, self._queued = self._queued, []
        for message in queued:
            self._place(message)

    def on_not_ready(self, state: State, reason: str) -> None:
        if state is State.SHUTDOWN and not (self._engaged or self._engaging):
            return  # never traded: nothing to halt (teardown checks), no news as the run ends
        if self.cfg.halt_on_not_ready:
            trigger = HaltReason.SHUTDOWN if state is State.SHUTDOWN else HaltReason.LEFT_READY
            self._trigger(trigger, f"left READY for {state.value}: {reason}")

    def on_event(self, event: Event) -> None:
        if isinstance(event, ExchangePaused) and self.cfg.halt_on_pause:
            ours = {self.shards.of(r.intent.ticker) for r in self.tracker.open_orders()}
            trigger = pause_trigger(event.exchange_index, event.scope, self.pauses, ours)
            if trigger is not None:
                self._trigger(*trigger)

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
        verdict = admit(record, cfg=self.cfg, ready=self.ready, pauses=self.pauses,
                        shards=self.shards, state=self.state,
                        open_orders=self.tracker.open_orders(), pnl=self.pnl,
                        quotes=self.out.quotes())
        if verdict.halt and self.cfg.halt_on_daily_loss:
            self._trigger(HaltReason.DAILY_LOSS, verdict.reason or "daily loss")
        if verdict.reason is not None:
            refusal = verdict.reason
            self.creates.not_sent(record, "refused_locally", refusal, f"refused locally: {refusal}")
            return
        if self.cfg.dry_run:
            logger.info("gateway: dry run, not sent: %s %s %s %s @ %s (%s)", intent.service,
                        intent.ticker, intent.side, intent.count, intent.price, cid)
            dry = "dry run: validated, not sent"
            self.creates.not_sent(record, "dry_run", dry, dry)
            return
        self._placed = True
        self._in_flight_changed(created=True)
        self._emit(record)
        create = create_request(intent, cid, self.group_id)
        self._submit("create", lambda api: api.create(create), context=cid)

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
            self.cancels.send(record)

    def _amend(self, message: AmendOrder) -> None:
        record = self._owned(message.service, message.client_order_id)
        if record is None or record.order_id is None or record.status.is_final:
            return
        paused = pause_refusal(record.intent.ticker, self.shards, self.pauses)
        if not self.ready or self.state is not TradingState.ACTIVE or paused:
            self._emit(record, reason=f"amend refused locally: {paused or 'trading is not active'}")
            return
        self.cancels.amend(record, message.price, message.count)

    def _decrease(self, message: DecreaseOrder) -> None:
        record = self._owned(message.service, message.client_order_id)
        if record is None or record.order_id is None or record.status.is_final:
            return
        self.cancels.decrease(record, message.reduce_by, message.reduce_to)

    def _cancel_all_mine(self, message: CancelAllMine) -> None:
        for record in self.tracker.open_orders(message.service):
            self.cancels.send(record)

    def _service_stopped(self, message: ServiceStopped) -> None:
        if self.cfg.cancel_on_service_stop:
            self._cancel_all_mine(CancelAllMine(message.service))

    # -- facts from the exchange -------------------------------------------------------------
    def _private(self, message: PrivateEventArrived) -> None:
        event = message.event
        try:
            if isinstance(event, (ws.FillEvent, ws.UserOrder)):
                self.shards.learn(event.market_ticker, event.exchange_index)
            if isinstance(event, ws.FillEvent):
                self._on_fill(from_ws_fill(event))
            elif isinstance(event, ws.UserOrder):
                routed = self.tracker.on_exchange_order(from_user_order(event))
                self.ports.emit_routed(routed.client_order_id)
                self._in_flight_changed()
            elif isinstance(event, ws.OrderGroupUpdate):
                if (
                    event.event_type == "triggered"
                    and event.order_group_id == self.group_id
                    and self.cfg.halt_on_group_trigger
                    and not self.switch.halting
                    and self.state is not TradingState.HALTED
                ):
                    self._trigger(HaltReason.ORDER_GROUP_TRIGGERED, "the order group triggered")
            elif isinstance(event, ws.PrivateConnected) and self._engaged:
                self._reconcile("private_reconnect")
        except ValueError as exc:  # an unreadable fact: one line, nothing changes
            logger.warning("gateway: private event refused: %s", one_line(str(exc)))

    def _on_fill(self, fill: Fill) -> None:
        applied = self.fills.apply(fill)
        if applied is None:  # refused by the tracker: nothing changed
            return
        routed, new, service = applied
        if new:
            self._check_daily_loss(service)
        self.ports.emit_routed(routed.client_order_id)

    def _check_daily_loss_all(self) -> None:
        if self.pnl.positions(None) or self.state is not TradingState.HALTED:
            for service in {*self.cfg.service_limits, None}:
                self._check_daily_loss(service)

    def _check_daily_loss(self, service: str | None) -> None:
        """After a fill: a day's loss past a limit halts now, not at the next order."""
        if not self.cfg.halt_on_daily_loss or self.state is TradingState.HALTED:
            return
        breach = self.fills.daily_loss_breach(service)
        if breach is not None:
            self._trigger(HaltReason.DAILY_LOSS, breach)

    # -- reconciliation ----------------------------------------------------------------------
    def _reconcile(self, trigger: str, attempt: int = 1) -> None:
        since = fills_since(self.fills.last_fill_ms)
        # the shards of the markets we may trade, from their listing, once per incarnation
        markets = [] if self._listed else [t for t in self.markets if not self.shards.known(t)]
        self._listed = True
        self._submit(
            "reconciled", lambda api: read_truth(api, since, markets),
            context=(trigger, self.fills.fill_seq, attempt),
        )

    def _on_reconciled(self, done: IoDone) -> None:
        trigger, fill_seq, attempt = done.context
        if done.error is None:
            self.shards.update(done.result.shards)
        try:
            if self.reconciler.apply(done, trigger, fill_seq, attempt):
                self._reconcile(trigger, attempt + 1)
        finally:
            if self._engaging and trigger == "engaged":
                self._place_queued()

    # -- the kill switch ---------------------------------------------------------------------
    def _trigger(self, reason: HaltReason, why: str) -> None:
        target = halt_policy.on_trigger(self.state, reason, self.cfg.halt_policy)
        if target is self.state and target is not TradingState.HALTED:
            return
        if target is TradingState.HALTED and (self._engaged or self._engaging):
            self._start_halt(Halt(reason))
        elif target is TradingState.HALTED:  # never traded: nothing of ours to cancel here
            self.switch.set(target, reason.value)
        else:
            self.switch.set(target, f"{reason.value}: {why}")

    def _start_halt(self, message: Halt) -> None:
        reason = self.switch.begin(message)
        if reason is None:  # joined the halt in progress
            return
        for record in self.tracker.open_orders():
            if record.order_id is None:
                self.cancels.wanted.add(record.client_order_id)
        self._refresh_view()  # the halt thread starts from the true view
        prefix, view, group = self.cfg.id_prefix, self.switch.view, self.group_id
        timeout = self.cfg.halt_timeout
        self._submit(
            "halted",
            lambda api: run_halt(api, prefix=prefix, view=view, group_id=group, timeout=timeout),
            context=(reason, len(self.tracker.open_orders())),  # what it set out to cancel
            dedicated=True,
        )

    def _on_halted(self, done: IoDone) -> None:
        self.switch.finish(done, len(self.tracker.open_orders()))
        self._reconcile("halt")

    def _in_flight_changed(self, *, created: bool = False) -> None:
        """The halt thread's view is refreshed once per burst (``HaltView.changed``)."""
        self.switch.view.changed(lambda: self.actor_ref.tell(_RefreshView()), created=created)

    def _refresh_view(self, _: _RefreshView | None = None) -> None:
        self.switch.view.refresh(self.tracker.open_orders())

    def _halt_now(self, reason: str, budget: float) -> None:
        """At stop, on this thread, within ``budget`` seconds: halt (or verify the halt
        begun at SHUTDOWN) until none of ours rest, before the process may exit."""
        self.switch.set(TradingState.HALTED, reason)
        self._refresh_view()
        api = self.io.api()
        outcome = run_halt(api, prefix=self.cfg.id_prefix, view=self.switch.view,
                           group_id=self.group_id,
                           timeout=min(self.cfg.halt_timeout, budget))
        if outcome.remaining:
            logger.warning("gateway: the halt at stop did not finish within %.0f s; %d orders "
                           "of ours may still rest", TEARDOWN_HALT_TIMEOUT, outcome.remaining)
        else:
            logger.info("gateway: halted at stop in %d ms, none of ours resting",
                        outcome.duration_ms)

    def _resume(self, message: ResumeTrading) -> None:
        if self.switch.halting:
            if message.reply is not None:
                message.reply.set_exception(RuntimeError("a halt is still in progress"))
            return
        self.switch.set(halt_policy.resume(), "resumed")
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
    def _on_group(self, done: IoDone) -> None:
        if done.error is None and self.group_id is None:
            self.group_id = done.result
        elif done.error is not None:
            logger.warning("gateway: no order group: %s", one_line(str(done.error)))
        if self._engaging:
            self._engaged_now()

    # -- views ---------------------------------------------------------------------------------
    def _status(self) -> TradingStatus:
        return self.out.status(self.state, self.switch.reason, self.group_id,
                               self.io.current_pacer)

    def _emit(self, record: OrderRecord, reason: str | None = None) -> None:
        """Tell the owner and publish, when something it can see changed."""
        view = self.out.emit(record, reason)
        if view is not None and view.status.is_final:
            self.cancels.wanted.discard(record.client_order_id)

    # -- I/O -----------------------------------------------------------------------------------
    def _submit(
        self, job: str, work: Callable[[OrderApi], Any], context: Any = None, *,
        dedicated: bool = False,
    ) -> None:
        self.io.run_job(self.actor_ref.tell, job, work, context, dedicated=dedicated)

    def _on_io(self, done: IoDone) -> None:
        handler = _IO_HANDLERS.get(done.job)
        if handler is not None:
            handler(self, done)
        elif done.error is not None:
            logger.warning("gateway: %s failed: %s", done.job, one_line(str(done.error)))


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
    "create": lambda g, done: g.creates.on_created(done),
    "resolved": lambda g, done: g.creates.on_resolved(done),
    "looked_up": lambda g, done: g.creates.on_looked_up(done),
    "in_flight": lambda g, done: g.creates.on_found_in_flight(done),
    "cancelled": lambda g, done: g.cancels.on_cancelled(done),
    "amended": lambda g, done: g.cancels.on_amended(done),
    "reconciled": OrderGatewayActor._on_reconciled,
    "halted": OrderGatewayActor._on_halted,
    "group": OrderGatewayActor._on_group,
}
