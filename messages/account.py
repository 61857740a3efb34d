"""The account as a service sees it: ``on_account(account)`` receives an :class:`AccountView`.

Why one view and not the sync alone: the sync stage reads the account over REST every
``--sync-interval`` (balance, portfolio value, counts), so between two syncs a service saw
nothing of its fills. The order gateway knows positions and open orders live (fills,
order updates, reconciliation); the view joins the two: the latest sync's money facts and
the gateway's latest positions and open orders, all exact.

What is in it, and whose:

- ``sync``: the latest :class:`~messages.results.SyncCompleted` (None only before the first
  sync reached the service). ``state``, ``changes``, ``sync_type``, ``trading_client`` and
  ``shards`` read through to it, so a hook written as ``on_account(sync)`` against the old
  shape (``sync.state.balance``) keeps working.
- ``positions``: the **account's** signed YES position per market (the exchange nets every
  service's fills into one position), zeros left out, sorted by ticker.
- ``open_orders``: the **account's** open orders that this process tracks, every service's,
  each naming its ``service`` (``orders_of(name)`` filters); orders this process did not
  place are not in it (the sync's ``state.orders`` counts every resting order).
- ``live``: whether ``positions``/``open_orders`` are the gateway's (False: trading is off
  or the gateway has said nothing yet; then both are empty, not "flat").
- ``version``: the gateway's snapshot number, increasing; ``cause``: ``"sync"`` (a sync
  completed) or ``"trading"`` (the gateway's positions or orders changed).

Pushes are coalesced: the gateway publishes at most one snapshot per burst of facts in
its mailbox, and a service has at most one nudge queued, reading the latest snapshot when
it gets to it; so a burst of N fills is a bounded number of ``on_account`` calls and the
last one is the truth.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field

from messages.base import Message
from messages.metadata import SyncType, TradingClientSummary
from messages.orders import OrderUpdate, Position
from messages.results import ShardAccount, SyncChanges, SyncCompleted, SyncState

ZERO = Decimal(0)

AccountCause = Literal["sync", "trading"]


class LiveAccount(Message):
    """The gateway's snapshot of the account's positions and open orders (see the module)."""

    version: int = Field(ge=1)
    positions: tuple[Position, ...] = ()
    open_orders: tuple[OrderUpdate, ...] = ()


class AccountView(Message):
    """What ``on_account`` receives (see the module docstring)."""

    cause: AccountCause
    sync: SyncCompleted | None = None
    live: bool = False
    version: int = Field(default=0, ge=0)
    positions: tuple[Position, ...] = ()
    open_orders: tuple[OrderUpdate, ...] = ()

    def position(self, ticker: str) -> Decimal:
        """The account's position in ``ticker`` (0 when flat or not known)."""
        for position in self.positions:
            if position.ticker == ticker:
                return position.position
        return ZERO

    def orders_of(self, service: str) -> tuple[OrderUpdate, ...]:
        """The open orders ``service`` placed."""
        return tuple(o for o in self.open_orders if o.service == service)

    # -- the sync's facts, read through (the hook's old argument was the sync itself) ------
    @property
    def state(self) -> SyncState | None:
        return self.sync.state if self.sync is not None else None

    @property
    def changes(self) -> SyncChanges | None:
        return self.sync.changes if self.sync is not None else None

    @property
    def sync_type(self) -> SyncType | None:
        return self.sync.sync_type if self.sync is not None else None

    @property
    def trading_client(self) -> TradingClientSummary | None:
        return self.sync.trading_client if self.sync is not None else None

    @property
    def shards(self) -> tuple[ShardAccount, ...]:
        return self.sync.shards if self.sync is not None else ()


class AccountMoved(Message):
    """A nudge to a service: the gateway has a newer :class:`LiveAccount`. Carries nothing,
    so one shared instance is told (the service reads the latest snapshot when it runs)."""


ACCOUNT_MOVED = AccountMoved()
