"""What the services, the app, the private channels and the gateway's own I/O threads tell
the order gateway. Plain frozen dataclasses: they carry futures and protocol events, which
are not messages of the product's vocabulary."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from messages.orders import HaltReason, OrderIntent


@dataclass(frozen=True)
class PlaceOrder:
    client_order_id: str
    intent: OrderIntent


@dataclass(frozen=True)
class CancelOrder:
    service: str
    client_order_id: str


@dataclass(frozen=True)
class AmendOrder:
    service: str
    client_order_id: str
    price: Decimal
    count: Decimal


@dataclass(frozen=True)
class DecreaseOrder:
    service: str
    client_order_id: str
    reduce_by: Decimal | None = None
    reduce_to: Decimal | None = None


@dataclass(frozen=True)
class CancelAllMine:
    service: str


@dataclass(frozen=True)
class ServiceStopped:
    """A trading service stopped (or was dropped): its orders are cancelled (configurable)."""

    service: str


@dataclass(frozen=True)
class PrivateEventArrived:
    """One event of the private channels (``kalshi_api.private_events``) or its transport."""

    event: Any


@dataclass(frozen=True)
class Halt:
    """The kill switch. ``reply`` gets the ``HaltReport`` when no order of ours rests."""

    reason: HaltReason | str
    reply: Future[Any] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ResumeTrading:
    reply: Future[Any] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class TradingStatusQuery:
    """Answered at once with a ``messages.trading_status.TradingStatus``."""


@dataclass(frozen=True)
class IoDone:
    """A job of the gateway's I/O threads finished; ``apply`` runs on the actor thread."""

    job: str
    result: Any
    error: BaseException | None = None
    context: Any = None
