"""The order gateway's side of ``on_account``: one snapshot per burst of facts.

Why a message to itself: a burst of N fills (or a reconciliation applying N differences)
is N messages in the gateway's mailbox; building the snapshot on each walks every open
order N times. ``changed()`` only tells the gateway one ``RefreshAccount``, run after the
burst already queued, as ``_RefreshView`` does for the halt thread's view; ``refresh``
builds the snapshot once and offers it through the link, which nudges only services
without a nudge queued (``trading.account_view.AccountBoard``).

Why also a minimum interval: facts that trickle in one by one (the cancels of a halt of
1,000 orders) are each a "burst" of one, and a snapshot of 1,000 open orders costs
milliseconds (``record.view()`` per order). So snapshots are at least ``MIN_INTERVAL``
apart; a change inside the interval is picked up by one refresh at its end, so the last
change always reaches the services (at most ``MIN_INTERVAL`` late). The hooks ``on_order``
/ ``on_fill`` / ``on_position`` are not delayed by this: only the account view is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pykka

from actors.trading_link import TradingLink
from trading.account_view import snapshot


class RefreshAccount:
    """Told to the gateway itself: build and offer the account snapshot once, after a burst."""

    __slots__ = ()


REFRESH_ACCOUNT = RefreshAccount()
MIN_INTERVAL = 0.1
"""Seconds between two snapshots (see the module docstring)."""


class AccountPush:
    """Owned by one gateway incarnation; every method runs on the gateway's thread."""

    def __init__(
        self,
        link: TradingLink,
        ref: pykka.ActorRef[Any],
        call_later: Callable[[float, Callable[[], Any]], Any],
        *,
        min_interval: float = MIN_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._link = link
        self._ref = ref
        self._call_later = call_later
        self._min_interval = min_interval
        self._clock = clock
        self._last = float("-inf")
        self._asked = False
        self.snapshots = 0
        """Snapshots built by this incarnation (at most one per burst and per interval)."""

    def changed(self) -> None:
        """Positions or open orders moved: one refresh, after what is already queued (and
        no sooner than ``MIN_INTERVAL`` after the last one)."""
        if self._asked:
            return
        self._asked = True
        wait = self._last + self._min_interval - self._clock()
        if wait <= 0:
            self._ref.tell(REFRESH_ACCOUNT)
        else:  # on this actor's thread, cancelled if it stops
            self._call_later(wait, self.refresh)

    def refresh(self, _: RefreshAccount | None = None) -> None:
        self._asked = False
        self._last = self._clock()
        link = self._link  # built even with no service attached: one that starts later reads it
        self.snapshots += 1
        link.offer_account(snapshot(link.tracker, link.pnl, link.account.next_version))
