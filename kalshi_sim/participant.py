"""The exchange's built-in market participant: the random activity of the public books.

Every book's generated liquidity is real resting orders of one house member
(``HOUSE``); this participant moves it the way the old delta generator moved levels:
it adds a house quote at a random non-crossing price, or takes house volume off a level
(cancel or decrease, newest first), one level per step. At a configurable probability a
step instead *takes*: a second member (``TAKER``) sends an IOC against the best price of
one side, for no more than that level holds, so the step still changes exactly one level
and trades with whoever rests there first (the house, or a user's order).

The house's quoting is the simulated world's background and ignores trading pauses (books keep
moving through a pause, as the stream always did); takes are real orders and respect them.
It only calls the engine; the caller (``MarketSet``) holds the lock and passes the time.
Deterministic in its seed: the same calls give the same steps, whichever books were read
(grown) first.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from kalshi_sim.engine_types import OrderRequest, Outcome, Reject
from kalshi_sim.matching.engine import MatchingEngine

if TYPE_CHECKING:
    from kalshi_sim.markets import SimMarket

HOUSE = "sim-house"
"""The member whose orders are the generated liquidity."""
TAKER = "sim-taker"
"""The member the participant takes liquidity as (never the house: that would self-trade)."""
ENDLESS_CASH_MICROS = 10**15
"""What the house and the taker start with on every shard ($1 billion)."""
REMOVE_SHARE = 0.45
"""Share of quoting steps that take house volume off a level (the rest add a quote)."""


class Participant:
    """Quotes for the house and, at ``take_probability`` per step, takes as ``TAKER``."""

    def __init__(
        self,
        engine: MatchingEngine,
        seed: int,
        *,
        take_probability: float = 0.0,
        random_price: Callable[[SimMarket, str, random.Random], int],
        random_size: Callable[[SimMarket, random.Random], int],
    ) -> None:
        if not 0.0 <= take_probability <= 1.0:
            raise ValueError(f"take_probability must be within 0..1, got {take_probability}")
        self._engine = engine
        self._rng = random.Random(seed ^ 0x5EED)
        self.take_probability = take_probability
        self._random_price = random_price
        self._random_size = random_size

    def step(self, streamable: Sequence[SimMarket], now_ms: int) -> Outcome | None:
        """One change to one level of one book (None when nothing could be done)."""
        if not streamable:
            return None
        rng = self._rng
        market = rng.choice(streamable)
        leg = "yes" if rng.random() < 0.5 else "no"
        if self.take_probability and rng.random() < self.take_probability:
            return self._take(market, leg, now_ms)
        engine = self._engine
        book = engine.book(market.ticker)[leg]  # lists (grows) the market on first use
        side = "bid" if leg == "yes" else "ask"
        if book and rng.random() < REMOVE_SHARE:
            levels = [
                p for p in book if engine.member_volume(market.ticker, side, _yes(leg, p), HOUSE)
            ]
            if levels:
                price = rng.choice(levels)
                size = engine.member_volume(market.ticker, side, _yes(leg, price), HOUSE)
                remove = size if rng.random() < 0.35 else 1 + int(rng.random() * size)
                return self._remove(market.ticker, side, _yes(leg, price), remove, now_ms)
        price = self._random_price(market, leg, rng)
        size = self._random_size(market, rng)
        request = OrderRequest(
            HOUSE,
            market.ticker,
            side,
            size,
            _yes(leg, price),
            post_only=True,  # type: ignore[arg-type]
        )
        try:
            return engine.place(request, now_ms, funded=False, ignore_pause=True)
        except Reject:
            return None  # a user's order sits where the quote would cross, or trading is off

    def _remove(self, ticker: str, side: str, price: int, remove: int, now_ms: int) -> Outcome:
        """Take ``remove`` centi-contracts of house volume off one level, newest order first."""
        engine = self._engine
        outcomes = []
        for order in reversed(engine.level_orders(ticker, side, price)):
            if remove <= 0:
                break
            if order.member != HOUSE:
                continue
            if order.remaining_centi <= remove:
                outcomes.append(engine.cancel(HOUSE, order.order_id, now_ms, ignore_pause=True))
                remove -= order.remaining_centi
            else:
                outcomes.append(
                    engine.decrease(
                        HOUSE, order.order_id, now_ms, reduce_by_centi=remove, ignore_pause=True
                    )
                )
                remove = 0
        return combine(outcomes, now_ms)

    def _take(self, market: SimMarket, leg: str, now_ms: int) -> Outcome | None:
        """An IOC against the best level of ``leg`` (selling YES into the best YES bid, or
        buying YES from the best NO bid), for at most what that level holds."""
        engine = self._engine
        book = engine.book(market.ticker)[leg]
        if not book:
            return None
        best = max(book)
        size = min(book[best], self._random_size(market, self._rng))
        side = "ask" if leg == "yes" else "bid"
        request = OrderRequest(
            TAKER,
            market.ticker,
            side,  # type: ignore[arg-type]
            size,
            _yes(leg, best),
            time_in_force="immediate_or_cancel",
        )
        try:
            return engine.place(request, now_ms)
        except Reject:
            return None


def _yes(leg: str, leg_price: int) -> int:
    """A price of ``leg`` on the YES scale (a NO bid at q is a YES ask at 1 - q)."""
    return leg_price if leg == "yes" else 1_000_000 - leg_price


def combine(outcomes: Sequence[Outcome], now_ms: int) -> Outcome:
    """Several outcomes as one, in order (the last acted-on order stands for them all)."""
    if len(outcomes) == 1:
        return outcomes[0]
    acted = [o.order for o in outcomes if o.order is not None]
    return Outcome(
        order=acted[-1] if acted else None,
        fills=tuple(f for o in outcomes for f in o.fills),
        orders_changed=tuple(c for o in outcomes for c in o.orders_changed),
        positions_changed=tuple(p for o in outcomes for p in o.positions_changed),
        trades=tuple(t for o in outcomes for t in o.trades),
        book_changes=tuple(b for o in outcomes for b in o.book_changes),
        group_events=tuple(g for o in outcomes for g in o.group_events),
        settlements=tuple(s for o in outcomes for s in o.settlements),
        ts_ms=now_ms,
    )
