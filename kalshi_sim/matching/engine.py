"""The matching engine: every market's book and every member's account of one exchange.

:class:`MatchingEngine` joins the engine's parts, each in its own module of this package
(see the package docstring), and adds listing markets and opening accounts.
"""

from __future__ import annotations

from kalshi_sim.engine_types import MarketRules
from kalshi_sim.fees import fee_reserve_per_centi
from kalshi_sim.matching.entry import OrderEntry
from kalshi_sim.matching.fixtures import EngineFixtures
from kalshi_sim.matching.market_state import MarketStates
from kalshi_sim.matching.reads import EngineReads
from kalshi_sim.matching.records import Book


class MatchingEngine(OrderEntry, MarketStates, EngineReads, EngineFixtures):
    """All markets' books and all members' accounts of one exchange (not thread-safe:
    the caller serialises calls, e.g. under ``MarketSet.lock``)."""

    def add_market(self, rules: MarketRules) -> None:
        """List a market (its status is ``rules.status``); re-adding a ticker raises ValueError.

        Grid steps and starts must be whole multiples of $0.0001, so every cost
        (``count x price / 100``) is an exact integer of micro-dollars.
        """
        if rules.ticker in self._books:
            raise ValueError(f"market {rules.ticker} is already listed")
        for grid in rules.price_ranges:
            if grid.step_micros <= 0 or grid.step_micros % 100 or grid.start_micros % 100:
                raise ValueError(f"price range {grid} is not on a $0.0001 grid")
        book = self._books[rules.ticker] = Book(rules)
        if rules.fee_type != "flat":
            hold = self._fee_holds.get(rules.fee_multiplier)
            if hold is None:
                hold = fee_reserve_per_centi(rules.fee_multiplier, self.options.fee_quantum_micros)
                self._fee_holds[rules.fee_multiplier] = hold
            book.fee_hold = hold

    def has_market(self, ticker: str) -> bool:
        return ticker in self._books

    def rules(self, ticker: str) -> MarketRules:
        """The market's rules as they stand (status included); KeyError if unknown."""
        return self._books[ticker].rules

    def open_account(self, member: str, cash_by_shard_micros: dict[int, int]) -> None:
        """Create a member (or add cash to an existing one), cash per ``exchange_index``."""
        account = self._account(member)
        for shard, micros in cash_by_shard_micros.items():
            account.cash[shard] = account.cash.get(shard, 0) + int(micros)
            account.reserved.setdefault(shard, 0)

    def set_cash(self, member: str, cash_micros: int, exchange_index: int = 0) -> None:
        """Set one shard's cash outright (tests and the demo account's ``set_balance``)."""
        account = self._account(member)
        account.cash[exchange_index] = int(cash_micros)
        account.reserved.setdefault(exchange_index, 0)

    def has_member(self, member: str) -> bool:
        return member in self._accounts
