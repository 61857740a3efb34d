"""What REST last said about a market: its status and its close time.

Why the stream needs this: a close *by time* sends no WebSocket event (protocol §7.3),
and an empty snapshot may mean "closed" or just "nobody quotes it". Knowing that a market
was listed ``active`` with a close time still ahead lets the stream accept an empty book
without asking REST, and tells it when to ask whether the market closed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["MarketFacts", "facts_by_ticker"]


class _Listed(Protocol):
    """The two fields of a REST market listing this needs (``kalshi_api.models.Market``)."""

    @property
    def ticker(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def close_time(self) -> object: ...


@dataclass(frozen=True, slots=True)
class MarketFacts:
    """A market's REST ``status`` (response vocabulary: ``active`` trades) and its
    ``close_time`` as Unix seconds (None when the listing gave none)."""

    status: str | None
    close_ts: float | None = None

    @classmethod
    def of(cls, market: _Listed) -> MarketFacts:
        close = market.close_time
        stamp = getattr(close, "timestamp", None)
        return cls(market.status, float(stamp()) if callable(stamp) else None)


def facts_by_ticker(markets: Iterable[_Listed]) -> dict[str, MarketFacts]:
    """Ticker -> :class:`MarketFacts` for a listing (the first listing of a ticker wins)."""
    facts: dict[str, MarketFacts] = {}
    for market in markets:
        facts.setdefault(market.ticker, MarketFacts.of(market))
    return facts
