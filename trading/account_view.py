"""Building the account view services get in ``on_account`` (``messages.account``).

Three small pieces, kept apart from the gateway so it only says "something changed":

- :func:`snapshot` reads the gateway's book (``OrderTracker``, ``PnlBook``) into a frozen
  :class:`~messages.account.LiveAccount`: the account's positions and open orders, exact.
- :func:`compose` joins the latest sync with the latest snapshot into an ``AccountView``.
- :class:`AccountBoard` holds the latest snapshot and which services already have a nudge
  queued (thread-safe: the gateway posts, each service takes on its own thread). A service
  is nudged only when it has none pending, so however many snapshots a burst makes, a busy
  service has at most one ``on_account`` waiting, and it reads the newest.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from messages.account import AccountCause, AccountView, LiveAccount
from messages.orders import Position
from messages.results import SyncCompleted
from trading.pnl import PnlBook
from trading.tracker import OrderTracker


def snapshot(tracker: OrderTracker, pnl: PnlBook, version: int) -> LiveAccount:
    """The account's non-zero positions (by ticker) and every open order this process tracks
    (oldest first, as the tracker holds them)."""
    positions = tuple(
        Position(ticker=ticker, position=position)
        for ticker, position in sorted(pnl.positions(None).items())
        if position != 0
    )
    orders = tuple(record.view() for record in tracker.open_orders())
    return LiveAccount(version=version, positions=positions, open_orders=orders)


def compose(
    cause: AccountCause, sync: SyncCompleted | None, live: LiveAccount | None
) -> AccountView:
    """The view a service gets: the sync's money facts and, when the gateway has spoken,
    its positions and open orders."""
    if live is None:
        return AccountView(cause=cause, sync=sync)
    return AccountView(
        cause=cause,
        sync=sync,
        live=True,
        version=live.version,
        positions=live.positions,
        open_orders=live.open_orders,
    )


class AccountBoard:
    """The latest :class:`LiveAccount` and the services with a nudge queued (see the module)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: LiveAccount | None = None
        self._pending: set[str] = set()

    @property
    def latest(self) -> LiveAccount | None:
        return self._latest

    @property
    def next_version(self) -> int:
        latest = self._latest
        return 1 if latest is None else latest.version + 1

    def post(self, live: LiveAccount, services: Iterable[str]) -> list[str]:
        """Make ``live`` the latest (unless it says nothing new: then nobody is nudged);
        returns the services to nudge now, those without a nudge already queued."""
        with self._lock:
            latest = self._latest
            if latest is not None and (
                live.version <= latest.version
                or (live.positions, live.open_orders) == (latest.positions, latest.open_orders)
            ):
                return []
            self._latest = live
            due = [name for name in services if name not in self._pending]
            self._pending.update(due)
            return due

    def take(self, service: str) -> LiveAccount | None:
        """``service`` runs its nudge: none is queued any more; the latest snapshot."""
        with self._lock:
            self._pending.discard(service)
            return self._latest

    def forget(self, service: str) -> None:
        """A service's incarnation went away with its mailbox (and any nudge in it)."""
        with self._lock:
            self._pending.discard(service)
