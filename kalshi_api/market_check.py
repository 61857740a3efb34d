"""Per-market sync's REST step: is a market still trading, and until when?

Why over REST: what a subscribe or ``get_snapshot`` returns for a closed, settled or
unknown market is undocumented (nothing, an empty snapshot, or error 11; protocol §7.3),
and a close *by time* sends no WebSocket event at all, so the stream cannot tell
"closed" from "slow" or "quiet" by itself. ``GET /markets?tickers=`` can, and its
``close_time`` says when to ask again. The stream calls the checker on a worker thread,
so it may block on HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from kalshi_api.auth import KalshiSigner
from kalshi_api.market_facts import MarketFacts, facts_by_ticker
from kalshi_api.rest import KalshiRestClient

__all__ = ["CHECK_BATCH", "MarketFacts", "facts_by_ticker", "rest_market_checker"]

CHECK_BATCH = 50
"""Tickers per ``GET /markets?tickers=`` (about 2 KB of query at Kalshi's ticker lengths:
far under any URL cap; many markets closing in the same minute take a few GETs)."""


def rest_market_checker(
    rest_url: str, signer: KalshiSigner, *, timeout: float = 5.0
) -> Callable[[Sequence[str]], Mapping[str, MarketFacts | None]]:
    """A checker for :class:`~kalshi_api.ws_session.OrderbookStream`: tickers -> the REST
    facts of each (status ``active``, ``closed``, ``determined``, ``finalized``... and
    close time), None for a market the exchange does not list. REST failures raise (the
    stream keeps the markets and asks again later)."""

    def check(tickers: Sequence[str]) -> Mapping[str, MarketFacts | None]:
        found: dict[str, MarketFacts | None] = dict.fromkeys(tickers)
        with KalshiRestClient(rest_url, signer, timeout=timeout) as client:
            for start in range(0, len(tickers), CHECK_BATCH):
                batch = list(tickers[start : start + CHECK_BATCH])
                for market in client.get_markets(status=None, tickers=batch, mve_filter=None):
                    if market.ticker in found:
                        found[market.ticker] = MarketFacts.of(market)
        return found

    return check
