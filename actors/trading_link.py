"""The one meeting point of the order gateway, the services that trade, the trading stage
and the app: who the gateway is now, who each service is now, and where events go.

Why a link object: the gateway is a supervised service that restarts (a new actor each
time), services restart too, and the private channels' listener runs on a transport
thread that must never block. Each side registers its current actor here and everyone
else only ``tell``s through it, so nobody holds a stale reference and nothing blocks.

The id allocator lives here (it is thread-safe), so ``TradingHandle.place`` can hand the
service its ``client_order_id`` at once, before the gateway has even seen the order.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pykka

from actors.gateway_config import GatewayConfig
from messages.account import ACCOUNT_MOVED, LiveAccount
from messages.orders import TradingState
from trading.account_view import AccountBoard
from trading.ids import ClientOrderIdAllocator, IdStateError
from trading.pnl import PnlBook
from trading.tracker import OrderTracker

logger = logging.getLogger("kalshi_supervisor.actors.trading_link")

Publish = Callable[[Any], None]


class TradingLink:
    """Thread-safe registry of the gateway's and the services' current actors."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        publish: Publish | None = None,
        allocator: ClientOrderIdAllocator | None = None,
    ) -> None:
        self.config = config
        self._publish = publish
        self._lock = threading.Lock()
        self._gateway: pykka.ActorRef[Any] | None = None
        self._services: dict[str, pykka.ActorRef[Any]] = {}
        self.state = TradingState.ACTIVE
        self.state_reason: str | None = None
        """The trading state, kept here so a restarted gateway stays as strict as the last
        one (only a person's resume loosens it)."""
        self.tracker = OrderTracker()
        self.pnl = PnlBook()
        """The gateway's book of orders and P&L, kept here so they outlive a gateway crash:
        the next incarnation reconciles them with the exchange and tells each service how
        its orders ended (the crash's halt cancelled them)."""
        self.account = AccountBoard()
        """The gateway's latest account snapshot, and which services have a nudge queued
        (``on_account``; kept here so it outlives a gateway or a service restart)."""
        self.id_error: str | None = None
        """Why no ids can be handed out (a corrupt state file), or None."""
        if allocator is None:
            try:
                allocator = ClientOrderIdAllocator(
                    config.id_state_path, prefix=config.id_prefix
                )
            except (IdStateError, ValueError) as exc:
                self.id_error = str(exc)
                logger.error("trading: no new orders can be placed: %s", exc)
        self.allocator = allocator

    # -- events ------------------------------------------------------------------------------
    def set_publish(self, publish: Publish | None) -> None:
        self._publish = publish

    def publish(self, event: Any) -> None:
        publish = self._publish
        if publish is not None:
            publish(event)

    # -- ids ---------------------------------------------------------------------------------
    def next_id(self) -> str:
        """A new ``client_order_id``; ``IdStateError`` when the state file cannot be trusted."""
        if self.allocator is None:
            raise IdStateError(self.id_error or "no id allocator")
        return self.allocator.next_id()

    # -- the gateway -------------------------------------------------------------------------
    def attach_gateway(self, ref: pykka.ActorRef[Any]) -> None:
        with self._lock:
            self._gateway = ref

    def detach_gateway(self, ref: pykka.ActorRef[Any]) -> None:
        with self._lock:
            if self._gateway is ref:
                self._gateway = None

    @property
    def gateway(self) -> pykka.ActorRef[Any] | None:
        with self._lock:
            return self._gateway

    def tell_gateway(self, message: object) -> bool:
        """Tell the current gateway; False (nothing sent) when there is none."""
        ref = self.gateway
        if ref is None:
            return False
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            return False
        return True

    def ask_gateway(self, message: object, timeout: float) -> Any:
        """Ask the current gateway (``LookupError`` when there is none)."""
        ref = self.gateway
        if ref is None:
            raise LookupError("the order gateway is not running")
        try:
            return ref.ask(message, timeout=timeout)
        except pykka.ActorDeadError:
            raise LookupError("the order gateway is not running") from None

    def private_event(self, event: object) -> None:
        """The private channels' listener (transport thread): hand on, never block."""
        from actors.gateway_messages import PrivateEventArrived

        self.tell_gateway(PrivateEventArrived(event))

    # -- services ----------------------------------------------------------------------------
    def attach_service(self, name: str, ref: pykka.ActorRef[Any]) -> None:
        with self._lock:
            self._services[name] = ref
        self.account.forget(name)  # a nudge queued for an earlier incarnation died with it

    def detach_service(self, name: str, ref: pykka.ActorRef[Any]) -> None:
        with self._lock:
            if self._services.get(name) is ref:
                del self._services[name]

    def offer_account(self, live: LiveAccount) -> None:
        """The gateway's new snapshot: nudge each service that has no nudge queued."""
        with self._lock:
            names = list(self._services)
        for name in self.account.post(live, names):
            if not self.tell_service(name, ACCOUNT_MOVED):
                self.account.forget(name)

    def take_account(self, name: str) -> LiveAccount | None:
        """A service runs its nudge: the latest snapshot."""
        return self.account.take(name)

    def tell_service(self, name: str, message: object) -> bool:
        with self._lock:
            ref = self._services.get(name)
        if ref is None:
            return False
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            return False
        return True
