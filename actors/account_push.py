"""The order gateway's side of ``on_account``: one snapshot per burst of facts.

Why a message to itself: a burst of N fills (or a reconciliation applying N differences)
is N messages in the gateway's mailbox; building the snapshot on each walks every open
order N times. ``changed()`` only tells the gateway one ``RefreshAccount``, run after the
burst already queued, as ``_RefreshView`` does for the halt thread's view; ``refresh``
builds the snapshot once and offers it through the link, which nudges only services
without a nudge queued (``trading.account_view.AccountBoard``).
"""

from __future__ import annotations

from typing import Any

import pykka

from actors.trading_link import TradingLink
from trading.account_view import snapshot


class RefreshAccount:
    """Told to the gateway itself: build and offer the account snapshot once, after a burst."""

    __slots__ = ()


REFRESH_ACCOUNT = RefreshAccount()


class AccountPush:
    """Owned by one gateway incarnation; every method runs on the gateway's thread."""

    def __init__(self, link: TradingLink, ref: pykka.ActorRef[Any]) -> None:
        self._link = link
        self._ref = ref
        self._asked = False
        self.snapshots = 0
        """Snapshots built by this incarnation (at most one per burst)."""

    def changed(self) -> None:
        """Positions or open orders moved: one refresh, after what is already queued."""
        if not self._asked:
            self._asked = True
            self._ref.tell(REFRESH_ACCOUNT)

    def refresh(self, _: RefreshAccount | None = None) -> None:
        self._asked = False
        link = self._link  # built even with no service attached: one that starts later reads it
        self.snapshots += 1
        link.offer_account(snapshot(link.tracker, link.pnl, link.account.next_version))
