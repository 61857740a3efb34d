"""The embedded exchange's matching engine: books, orders, fills, positions, cash, groups.

A pure module: no I/O, no threads, no clock (every mutating call takes ``now_ms``), so the
same calls give the same results and tests and property checks can drive it directly.
The exchange wraps it with a lock and turns each :class:`Outcome` into REST replies and
WebSocket frames.

What it reproduces (KALSHI_PROTOCOL.md §8.5-8.9; every UNCONFIRMED choice is an
:class:`EngineOptions` field, documented in docs/embedded_exchange.md):

* one book per market, in YES terms: a bid at ``p`` rests on ``yes@p``, an ask at ``p`` on
  ``no@(1-p)``; price-time priority; an incoming bid takes asks at ``a <= p``, an ask takes
  bids at ``b >= p``; executions at the resting order's price;
* GTC (optionally with ``expiration_time``), IOC, FOK; post-only, reduce-only, both
  self-trade-prevention types; off-grid prices; spent ``client_order_id``s;
* taker fees ``0.07 m C P (1-P)`` and, for ``quadratic_with_maker_fees`` series, maker fees
  ``0.0175 m C P (1-P)``, each ceiled to the fee quantum (:mod:`kalshi_sim.fees`);
* signed netted positions per member and market, cost, realized P&L, fees; cash per shard
  (a bid costs ``p``, an ask ``1-p``; netting a YES against a NO returns $1);
* order groups with a rolling 15 s filled-contracts window;
* close, deactivation/reactivation, trading pauses, settlement.
"""

from __future__ import annotations

from kalshi_sim.engine_types import (
    BookChange,
    EngineOptions,
    EngineOrder,
    Fill,
    GroupEvent,
    Leg,
    MarketRules,
    MemberTruth,
    OrderGroup,
    OrderRequest,
    Outcome,
    Position,
    PriceRange,
    Reject,
    Settlement,
    Trade,
)

__all__ = [
    "BookChange",
    "EngineOptions",
    "EngineOrder",
    "Fill",
    "GroupEvent",
    "MarketRules",
    "MatchingEngine",
    "MemberTruth",
    "OrderGroup",
    "OrderRequest",
    "Outcome",
    "Position",
    "PriceRange",
    "Reject",
    "Settlement",
    "Trade",
]


class MatchingEngine:
    """All markets' books and all members' accounts of one exchange (not thread-safe:
    the caller serialises calls, e.g. under ``MarketSet.lock``)."""

    def __init__(self, options: EngineOptions | None = None) -> None:
        self.options = options or EngineOptions()

    # -- setup ---------------------------------------------------------------------------
    def add_market(self, rules: MarketRules) -> None:
        """List a market (its status is ``rules.status``); re-adding a ticker raises ValueError."""
        raise NotImplementedError

    def has_market(self, ticker: str) -> bool:
        raise NotImplementedError

    def rules(self, ticker: str) -> MarketRules:
        """The market's rules as they stand (status included); KeyError if unknown."""
        raise NotImplementedError

    def open_account(self, member: str, cash_by_shard_micros: dict[int, int]) -> None:
        """Create a member (or add cash to an existing one), cash per ``exchange_index``."""
        raise NotImplementedError

    def set_cash(self, member: str, cash_micros: int, exchange_index: int = 0) -> None:
        """Set one shard's cash outright (tests and the demo account's ``set_balance``)."""
        raise NotImplementedError

    # -- order entry -----------------------------------------------------------------------
    def place(self, req: OrderRequest, now_ms: int) -> Outcome:
        """Create an order; it matches, then rests (GTC) or ends (IOC/FOK). Raises Reject."""
        raise NotImplementedError

    def cancel(
        self, member: str, order_id: str, now_ms: int, subaccount: int | None = None
    ) -> Outcome:
        """Cancel a resting order (``reduced_by`` = ``outcome.order`` remaining before, i.e.
        the returned order's ``initial - fill`` at cancel); 404 ``not_found`` if dead/unknown."""
        raise NotImplementedError

    def amend(
        self,
        member: str,
        order_id: str,
        *,
        ticker: str,
        side: str,
        price_micros: int,
        count_centi: int,
        now_ms: int,
        updated_client_order_id: str | None = None,
        expiration_time_s: int | None = None,
    ) -> Outcome:
        """Change price and/or total count (filled + resting). A size decrease or an
        expiry-only change keeps queue position; anything else re-queues (and may cross).
        ``expiration_time_s``: None keeps it, 0 clears it ([CONF])."""
        raise NotImplementedError

    def decrease(
        self,
        member: str,
        order_id: str,
        now_ms: int,
        reduce_by_centi: int | None = None,
        reduce_to_centi: int | None = None,
    ) -> Outcome:
        """Shrink the resting count (exactly one of ``reduce_by``/``reduce_to``, the latter
        being the new remaining count); keeps queue position; 0 left cancels."""
        raise NotImplementedError

    def cancel_all(self, member: str, now_ms: int, subaccount: int | None = None) -> Outcome:
        """Cancel every resting order of the member (one subaccount or all)."""
        raise NotImplementedError

    def expire(self, now_ms: int) -> Outcome:
        """Cancel (``ExpiryCancel``) every GTC order whose ``expiration_time`` is due."""
        raise NotImplementedError

    # -- market lifecycle ---------------------------------------------------------------------
    def close_market(self, ticker: str, now_ms: int) -> Outcome:
        """The market passed ``close_time``: resting orders cancelled (``CloseCancel``),
        further place/amend/cancel rejected with the closed code."""
        raise NotImplementedError

    def deactivate(self, ticker: str, now_ms: int) -> Outcome:
        """Deactivated: orders refused with the paused code; resting orders stay (for now)."""
        raise NotImplementedError

    def reactivate(self, ticker: str, now_ms: int) -> Outcome:
        """Back to active; every order that was resting is cancelled (§8.6)."""
        raise NotImplementedError

    def trading_pause(
        self, now_ms: int, exchange_index: int | None = None, *, cancels_allowed: bool = True
    ) -> Outcome:
        """Pause trading (one shard or all): creates/amends refused, ``cancel_order_on_pause``
        orders cancelled (``PauseCancel``). ``cancels_allowed=False`` is the exchange pause."""
        raise NotImplementedError

    def trading_resume(self, now_ms: int, exchange_index: int | None = None) -> Outcome:
        raise NotImplementedError

    def settle(self, ticker: str, result: str, now_ms: int) -> Outcome:
        """Settle on ``yes``/``no`` ($1 per winning contract) or ``void`` (each side gets its
        cost back): resting orders cancelled, positions closed, settlements recorded."""
        raise NotImplementedError

    # -- order groups ------------------------------------------------------------------------
    def create_group(
        self,
        member: str,
        limit_centi: int,
        now_ms: int,
        subaccount: int = 0,
        exchange_index: int = 0,
    ) -> tuple[str, Outcome]:
        raise NotImplementedError

    def trigger_group(self, member: str, group_id: str, now_ms: int) -> Outcome:
        raise NotImplementedError

    def reset_group(self, member: str, group_id: str, now_ms: int) -> Outcome:
        raise NotImplementedError

    def delete_group(self, member: str, group_id: str, now_ms: int) -> Outcome:
        raise NotImplementedError

    def set_group_limit(self, member: str, group_id: str, limit_centi: int, now_ms: int) -> Outcome:
        raise NotImplementedError

    # -- reads ---------------------------------------------------------------------------------
    def orders(
        self,
        member: str,
        *,
        ticker: str | None = None,
        status: str | None = None,
        subaccount: int | None = None,
    ) -> list[EngineOrder]:
        """The member's orders in creation order."""
        raise NotImplementedError

    def order(self, member: str, order_id: str) -> EngineOrder:
        """One of the member's orders; 404 ``not_found`` if unknown (dead orders are found)."""
        raise NotImplementedError

    def fills(self, member: str, *, ticker: str | None = None) -> list[Fill]:
        raise NotImplementedError

    def positions(self, member: str) -> list[Position]:
        """The member's positions (rows stay after they net to zero), by ticker."""
        raise NotImplementedError

    def cash_micros(self, member: str, exchange_index: int | None = None) -> int:
        """Available cash on one shard or in total (resting reservations excluded)."""
        raise NotImplementedError

    def settlements(self, member: str) -> list[Settlement]:
        raise NotImplementedError

    def groups(self, member: str) -> list[OrderGroup]:
        raise NotImplementedError

    def group(self, member: str, group_id: str) -> OrderGroup:
        raise NotImplementedError

    def book(self, ticker: str) -> dict[Leg, dict[int, int]]:
        """The public book: per leg, leg price -> resting centi-contracts (live dicts owned by
        the engine: read under the caller's lock, never mutate)."""
        raise NotImplementedError

    def queue_position(self, member: str, order_id: str) -> int:
        """Centi-contracts resting ahead of the order at its price."""
        raise NotImplementedError

    def truth(self, member: str) -> MemberTruth:
        raise NotImplementedError

    def fees_collected_micros(self) -> int:
        """Every fee the exchange has taken (for conservation checks)."""
        raise NotImplementedError
