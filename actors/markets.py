"""INITIALIZING's work: which markets this run follows, and what REST says about each."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from kalshi_api.auth import KalshiSigner
from kalshi_api.market_facts import MarketFacts, facts_by_ticker
from kalshi_api.rest import KalshiRestClient
from kalshi_api.subscription_core import DROP_STATUSES
from supervision.config import SupervisorConfig

MAX_NAMED_UNKNOWN = 10
"""Unknown tickers named in the error; the rest are counted (5,000 names is not one line)."""


@dataclass(frozen=True)
class ResolvedMarkets:
    """The markets a run follows and their REST facts (status, close time) as listed.

    Why the facts travel with the tickers: the listing INITIALIZING reads anyway says which
    markets are open and until when, so the stream can accept an empty book and watch
    close times without a REST call of its own during ORDERBOOK_CONNECT.
    """

    tickers: tuple[str, ...]
    facts: Mapping[str, MarketFacts] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.tickers)


def resolve_markets(config: SupervisorConfig, signer: KalshiSigner) -> ResolvedMarkets:
    """INITIALIZING's work: the configured tickers, checked to exist, or discovered open ones.

    Raises LookupError with one line naming what is missing, or saying that every named
    market is already closed or settled (nothing could ever go live); never touches actor
    state (it runs on its own thread). Explicit tickers are checked in URL-budgeted
    batches, and ``market_count=None`` discovers every open market, page by page.
    """
    with KalshiRestClient(config.rest_url, signer, timeout=config.request_timeout) as client:
        if config.markets is not None:
            facts = facts_by_ticker(
                client.get_markets(status=None, tickers=config.markets, mve_filter=None)
            )
            unknown = [t for t in config.markets if t not in facts]
            if unknown:
                raise LookupError(f"unknown market ticker(s): {_named(unknown)}")
            over = [t for t in config.markets if facts[t].status in DROP_STATUSES]
            if len(over) == len(config.markets):
                listed = [f"{t} ({facts[t].status})" for t in over]
                raise LookupError(f"every named market is closed or settled: {_named(listed)}")
            return ResolvedMarkets(config.markets, facts)
        markets = client.get_markets(
            status="open", series_ticker=config.series, max_items=config.market_count
        )
    markets = markets[: config.market_count]
    tickers = tuple(dict.fromkeys(m.ticker for m in markets))
    if not tickers:
        series = f" in series {config.series}" if config.series else ""
        raise LookupError(f"no open markets found{series}")
    return ResolvedMarkets(tickers, facts_by_ticker(markets))


def _named(items: list[str]) -> str:
    """At most :data:`MAX_NAMED_UNKNOWN` items by name, the rest counted."""
    named = ", ".join(items[:MAX_NAMED_UNKNOWN])
    more = len(items) - MAX_NAMED_UNKNOWN
    return named + (f" (and {more} more)" if more > 0 else "")
