"""Per-market sync's REST step: is a market that sent no snapshot still trading?

Why over REST: what a subscribe or ``get_snapshot`` returns for a closed, settled or
unknown market is undocumented (nothing, an empty snapshot, or error 11; protocol §7.3),
so the stream cannot tell "closed" from "slow" by itself. ``GET /markets?tickers=`` can.
The stream calls the checker on a worker thread, so it may block on HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from kalshi_api.auth import KalshiSigner
from kalshi_api.rest import KalshiRestClient

__all__ = ["CHECK_BATCH", "rest_market_checker"]

CHECK_BATCH = 50
"""Tickers per ``GET /markets?tickers=`` (about 2 KB of query at Kalshi's ticker lengths:
far under any URL cap, and a check is rarely more than a handful of markets)."""


def rest_market_checker(
    rest_url: str, signer: KalshiSigner, *, timeout: float = 5.0
) -> Callable[[Sequence[str]], Mapping[str, str | None]]:
    """A checker for :class:`~kalshi_api.ws_session.OrderbookStream`: tickers -> the REST
    ``status`` of each (``active``, ``closed``, ``determined``, ``finalized``...), None for
    a market the exchange does not list. REST failures raise (the stream keeps the
    markets and asks again later)."""

    def check(tickers: Sequence[str]) -> Mapping[str, str | None]:
        statuses: dict[str, str | None] = dict.fromkeys(tickers)
        with KalshiRestClient(rest_url, signer, timeout=timeout) as client:
            for start in range(0, len(tickers), CHECK_BATCH):
                batch = list(tickers[start : start + CHECK_BATCH])
                for market in client.get_markets(status=None, tickers=batch, mve_filter=None):
                    if market.ticker in statuses:
                        statuses[market.ticker] = market.status
        return statuses

    return check
