"""Services: actors that live while the system is READY, fed by the books and the account.

A *stage* does the work of a connecting state and the system is not READY without it. A
*service* (a recorder, an alert, a strategy) starts once the system is READY, reacts to
what happens, and may fail without taking anything else down. To write one, subclass
:class:`ServiceActor`, override the hooks you need, and register a :class:`ServiceSpec`
(or load it with ``kalshi-supervisor run --service MODULE:CLASS``)::

    class Options(ServiceOptions):
        threshold: Decimal = Decimal("0.05")

    class SpreadWatch(ServiceActor):
        options_model = Options

        def on_book_changed(self, ticker: str, book: BookView) -> None:
            ...

Hooks (all run on the service's own thread, one message at a time):

``setup()`` / ``teardown()``
    Open and release the service's own resources (files, sockets). ``setup`` raising
    is a failed start; ``teardown`` must not raise (it is logged if it does).
``on_ready(metadata)``
    The system became READY (first time, and after every recovery), with the READY
    transition's metadata.
``on_not_ready(state, reason)``
    The system left READY (for ERROR, STARTUP, ...). The service is *not* stopped:
    pause if you act on the books (they may be stale), resume in ``on_ready``.
``on_book_changed(ticker, book)``
    A subscribed book changed. ``book`` is a consistent, immutable copy of its latest
    state. Changes that arrive while you are busy are coalesced per ticker, so you
    always see the latest book, never a growing backlog.
``on_account(account)``
    The account moved: a sync completed (initial and every update sync), or, with trading
    on, the order gateway's positions or open orders changed (fills, order updates,
    reconciliation). ``account`` is an immutable ``messages.account.AccountView``: the
    latest sync's money facts (``account.sync``; ``account.state``/``.changes``/
    ``.sync_type`` read through to it, as the hook's old ``sync`` argument had them) and the
    account's live positions and open orders, exact. Gateway pushes are coalesced: while
    the service is busy at most one waits, and it carries the newest snapshot.
``on_event(event)``
    Every supervisor event (transitions, failures, restarts, stream incidents, ...).
``on_order(update)`` / ``on_fill(fill)`` / ``on_position(position)``
    One of this service's orders changed, traded, or its position in a market moved
    (``messages.orders`` types, exact decimals). Orders go out through ``self.trading``.

Trading: ``self.trading`` (an ``actors.trading_handle.TradingHandle``; None when trading is
off) places, amends, decreases and cancels through the order gateway, the only writer
of orders; ``place`` returns the ``client_order_id`` at once and the outcome arrives as the
hooks above. A service's orders are cancelled when it stops (configurable).

Exchange pauses: ``self.trading_paused(exchange_index)`` says whether orders are refused on
that shard now (the weekly trading pause, one shard's pause, or a whole-exchange pause);
``self.pauses`` maps each pause in force (shard, or None for every shard) to its scope. Both
are kept from the ``exchange_paused`` / ``exchange_resumed`` events before ``on_event`` sees
them, and a service started (or restarted) during a pause is told the pauses in force.

Facilities: ``self.options`` (the validated, frozen options model), ``self.book(ticker)``
(a consistent copy of any streamed book), ``self.ready``, ``self.call_later`` /
``self.call_every`` (timers that run a callback on this actor's thread and are cancelled
when it stops), ``self.markets`` (the tickers the system streams).

Safety rules are every child's (see :mod:`actors.child`): every failure is reported to
the supervisor explicitly, as an immutable :class:`~messages.results.ChildFailed`,
before pykka's silent paths can lose it; nothing here ever blocks on another actor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import pykka

from actors.child import ChildActor
from actors.controls import StageControls
from actors.gateway_config import GATEWAY_SERVICE
from actors.gateway_messages import ServiceStopped
from actors.service_spec import (
    ServiceContext,
    ServiceOptions,
    ServiceSpec,
    default_service_name,
    validation_line,
)
from actors.trading_handle import TradingHandle
from kalshi_api.book_changes import BookSubscription, BookView
from messages.account import AccountMoved, AccountView
from messages.commands import Report
from messages.events import Event, ExchangePaused, ExchangeResumed
from messages.exchange import PauseScope
from messages.metadata import ReadyMetadata
from messages.orders import Fill, OrderUpdate, Position
from messages.results import SyncCompleted, TradingConnected
from messages.services import (
    AccountChanged,
    BooksChanged,
    EventNotice,
    ServiceHealth,
    SystemNotReady,
    SystemReady,
)
from messages.states import State
from supervision.scheduler import TimerHandle
from trading.account_view import compose

__all__ = [
    "ServiceActor",
    "ServiceContext",
    "ServiceOptions",
    "ServiceSpec",
    "default_service_name",
    "validation_line",
]

logger = logging.getLogger("kalshi_supervisor.actors.service")


@dataclass(frozen=True)
class _TimerFired:
    """A timer's callback, carried into the service's own mailbox."""

    timer: _Timer


@dataclass(eq=False)
class _Timer:
    """One ``call_later``/``call_every``; ``queued`` keeps at most one firing in the mailbox,
    so a busy or hung service never accumulates a backlog of timer messages."""

    callback: Callable[[], Any]
    periodic: bool
    handle: TimerHandle | None = None
    queued: bool = False
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True
        if self.handle is not None:
            self.handle.cancel()


class ServiceActor(ChildActor):
    """Base of every service; one incarnation per ``generation``. See the module docstring."""

    options_model: ClassVar[type[ServiceOptions]] = ServiceOptions
    """The options this service accepts (a :class:`ServiceOptions` subclass)."""
    service_name: ClassVar[str | None] = None
    """Default name (fault target, restart unit) when a spec or the CLI gives none."""
    child_kind = "service"

    def __init__(
        self,
        parent: pykka.ActorRef[Any],
        context: ServiceContext,
        generation: int,
        controls: StageControls,
    ) -> None:
        super().__init__(parent, generation, controls)
        self.context = context
        self.name = context.name
        self.options: Any = context.options
        self.ready = False
        """True between ``on_ready`` and ``on_not_ready``."""
        self.notifications = 0
        """Book changes delivered to ``on_book_changed``."""
        self.pauses: dict[int | None, PauseScope] = {}
        """Exchange pauses in force: shard (None = every shard) -> ``trading``/``exchange``."""
        self._subscription: BookSubscription | None = None
        self._timers: list[_Timer] = []
        link = context.trading
        self.trading: TradingHandle | None = (
            TradingHandle(self.name, link)
            if link is not None and self.name != GATEWAY_SERVICE
            else None
        )
        """Orders through the gateway (None when trading is off; see the module docstring)."""
        self._account_sync: SyncCompleted | None = None
        self._account_version = 0
        self.trading_connection: TradingConnected | None = None
        """The trading stage's latest result (limits, the session's order group, the open
        orders it found), or None before it or with trading off."""

    @property
    def child_name(self) -> str:
        return self.name

    # -- hooks for subclasses ------------------------------------------------------------
    def setup(self) -> None:
        """Open this service's resources; runs when the actor starts."""

    def teardown(self) -> None:
        """Release this service's resources; runs when the actor stops. Must not raise."""

    def on_ready(self, metadata: ReadyMetadata) -> None:
        """The system is READY (first time or again)."""

    def on_not_ready(self, state: State, reason: str) -> None:
        """The system left READY for ``state``; the service keeps running."""

    def on_book_changed(self, ticker: str, book: BookView) -> None:
        """A subscribed book changed; ``book`` is a consistent copy of its latest state."""

    def on_account(self, account: AccountView) -> None:
        """The account moved: a sync, or the gateway's live positions and open orders."""

    def on_event(self, event: Event) -> None:
        """Any supervisor event."""

    def on_trading_connected(self, result: TradingConnected) -> None:
        """The trading stage connected (its limits, order group, open orders after the
        startup policy): what the order gateway starts from; other services may ignore it."""

    def on_order(self, update: OrderUpdate) -> None:
        """One of this service's orders changed (``self.trading.open_orders`` already shows it)."""

    def on_fill(self, fill: Fill) -> None:
        """One of this service's orders traded."""

    def on_position(self, position: Position) -> None:
        """This service's position in a market moved (``self.trading.positions`` shows it)."""

    def on_disconnect(self) -> None:
        """Drop any connection of the service's own (the ``disconnect`` fault)."""

    def subscribed_tickers(self) -> Iterable[str] | None:
        """Books to be notified about: None = all, empty = none. Default: the spec's."""
        return self.context.tickers

    def handle(self, message: Any) -> Any:
        """Messages of the service's own; unknown ones are an error."""
        raise TypeError(f"{self.name} service cannot handle {type(message).__name__}")

    # -- facilities ----------------------------------------------------------------------------
    @property
    def markets(self) -> tuple[str, ...]:
        """Tickers of every streamed book."""
        return self.context.feed.tickers or self.context.markets

    def book(self, ticker: str) -> BookView | None:
        """A consistent copy of ``ticker``'s book now, or None if it is not streamed."""
        return self.context.feed.read(ticker)

    def trading_paused(self, exchange_index: int = 0) -> bool:
        """Whether the exchange refuses new orders on shard ``exchange_index`` now.

        Why a helper: Kalshi pauses trading weekly, per shard and, rarely, everywhere; a
        strategy must not read READY as "orders accepted". Markets, positions and orders
        carry their shard's ``exchange_index``; 0 is the default shard.
        """
        return None in self.pauses or exchange_index in self.pauses

    def call_later(self, delay: float, callback: Callable[[], Any]) -> _Timer:
        """Run ``callback`` on this actor's thread after ``delay`` seconds (``.cancel()``s)."""
        return self._add_timer(delay, callback, periodic=False)

    def call_every(self, interval: float, callback: Callable[[], Any]) -> _Timer:
        """Run ``callback`` on this actor's thread every ``interval`` seconds. A firing
        that finds the previous one still queued is skipped, never stacked up."""
        return self._add_timer(interval, callback, periodic=True)

    # -- the child hooks ---------------------------------------------------------------------------
    def _open(self) -> None:
        link = self.context.trading
        if self.trading is not None and link is not None:
            link.attach_service(self.name, self.actor_ref)
        self.setup()
        tickers = self.subscribed_tickers()
        if tickers is None or tuple(tickers):
            self._subscription = self.context.feed.subscribe(
                self.name, None if tickers is None else tuple(tickers), _waker(self.actor_ref)
            )

    def _close(self) -> None:
        self._release()
        try:
            self.teardown()
        except Exception:
            logger.exception("%s service: error in teardown", self.name)
        link = self.context.trading
        if self.trading is not None and link is not None:
            link.detach_service(self.name, self.actor_ref)
            link.tell_gateway(ServiceStopped(self.name))

    def _close_after_failed_start(self) -> None:
        self._close()

    def _disconnect_fault(self) -> None:
        self.on_disconnect()

    def _corrupt_fault(self) -> None:
        self.parent.tell(
            ServiceHealth.model_construct(
                service=self.name, generation=self.generation, notifications=-1, coalesced=-1
            )
        )

    def _dispatch(self, message: Any) -> Any:
        handler = self._MESSAGES.get(type(message))
        if handler is None:
            return self.handle(message)
        return handler(self, message)

    def _on_event_notice(self, notice: EventNotice) -> None:
        self._track_pause(notice.event)
        self.on_event(notice.event)

    def _on_system_ready(self, message: SystemReady) -> None:
        self.ready = True
        self.on_ready(message.metadata)

    def _on_system_not_ready(self, message: SystemNotReady) -> None:
        self.ready = False
        self.on_not_ready(message.state, message.reason)

    _MESSAGES: ClassVar[dict[type, Callable[[ServiceActor, Any], Any]]] = {
        BooksChanged: lambda self, _: self._deliver_books(),
        _TimerFired: lambda self, message: self._fire(message.timer),
        EventNotice: _on_event_notice,
        SystemReady: _on_system_ready,
        SystemNotReady: _on_system_not_ready,
        AccountChanged: lambda self, message: self._account_synced(message.sync),
        AccountMoved: lambda self, _: self._account_moved(),
        TradingConnected: lambda self, message: self._trading_connected(message),
        OrderUpdate: lambda self, message: self._trading_fact(message, self.on_order),
        Fill: lambda self, message: self._trading_fact(message, self.on_fill),
        Position: lambda self, message: self._trading_fact(message, self.on_position),
        Report: lambda self, _: self.health(),
    }

    def _account_synced(self, sync: SyncCompleted) -> None:
        self._account_sync = sync
        link = self.context.trading if self.trading is not None else None
        live = link.account.latest if link is not None else None
        if live is not None:
            self._account_version = max(self._account_version, live.version)
        self.on_account(compose("sync", sync, live))

    def _account_moved(self) -> None:
        link = self.context.trading
        live = link.take_account(self.name) if link is not None else None
        if live is None or live.version <= self._account_version:
            return  # already seen (a sync delivered it)
        self._account_version = live.version
        self.on_account(compose("trading", self._account_sync, live))

    def _trading_connected(self, result: TradingConnected) -> None:
        self.trading_connection = result
        self.on_trading_connected(result)

    def _trading_fact(self, fact: Any, hook: Callable[[Any], None]) -> None:
        if self.trading is not None:
            self.trading.apply(fact)
        hook(fact)

    def _track_pause(self, event: Event) -> None:
        if isinstance(event, ExchangePaused):
            self.pauses[event.exchange_index] = event.scope
        elif isinstance(event, ExchangeResumed):
            self.pauses.pop(event.exchange_index, None)

    def health(self) -> ServiceHealth:
        sub = self._subscription
        return ServiceHealth(
            service=self.name,
            generation=self.generation,
            notifications=self.notifications,
            coalesced=sub.coalesced if sub is not None else 0,
        )

    def _deliver_books(self) -> None:
        sub = self._subscription
        if sub is None:
            return
        read = self.context.feed.read
        for ticker in sub.drain():
            view = read(ticker)
            if view is not None:
                self.notifications += 1
                self.on_book_changed(ticker, view)

    def _add_timer(self, delay: float, callback: Callable[[], Any], *, periodic: bool) -> _Timer:
        if not callable(callback):
            raise TypeError("a timer callback must be callable")
        timer = _Timer(callback, periodic)
        ref = self.actor_ref

        def due() -> None:  # scheduler thread: tell only, and at most one in flight
            if timer.cancelled or timer.queued:
                return
            timer.queued = True
            try:
                ref.tell(_TimerFired(timer))
            except pykka.ActorDeadError:
                timer.cancel()

        scheduler = self.context.scheduler
        timer.handle = (
            scheduler.call_every(delay, due, name=f"{self.name}-timer")
            if periodic
            else scheduler.call_later(delay, due, name=f"{self.name}-timer")
        )
        self._timers = [t for t in self._timers if not t.cancelled]
        self._timers.append(timer)
        return timer

    def _fire(self, timer: _Timer) -> None:
        timer.queued = False
        if timer.cancelled:
            return
        if not timer.periodic:
            timer.cancelled = True
        timer.callback()

    def _release(self) -> None:
        """Unsubscribe and cancel every timer (idempotent): a stopped service gets nothing."""
        sub, self._subscription = self._subscription, None
        if sub is not None:
            self.context.feed.unsubscribe(sub)
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()


def _waker(ref: pykka.ActorRef[Any]) -> Callable[[], None]:
    """The feed's wake-up for one service: one ``tell`` of a shared, empty message."""
    from messages.services import BOOKS_CHANGED

    tell = ref.tell

    def wake() -> None:
        tell(BOOKS_CHANGED)

    return wake


