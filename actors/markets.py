"""INITIALIZING's work: which markets this run follows."""

from __future__ import annotations

from kalshi_api.auth import KalshiSigner
from kalshi_api.rest import KalshiRestClient
from supervision.config import SupervisorConfig

MAX_NAMED_UNKNOWN = 10
"""Unknown tickers named in the error; the rest are counted (5,000 names is not one line)."""


def resolve_markets(config: SupervisorConfig, signer: KalshiSigner) -> tuple[str, ...]:
    """INITIALIZING's work: the configured tickers, checked to exist, or discovered open ones.

    Raises LookupError with one line naming what is missing; never touches actor state (it
    runs on its own thread). Explicit tickers are checked in URL-budgeted batches, and
    ``market_count=None`` discovers every open market, page by page.
    """
    with KalshiRestClient(config.rest_url, signer, timeout=config.request_timeout) as client:
        if config.markets is not None:
            known = {
                m.ticker
                for m in client.get_markets(status=None, tickers=config.markets, mve_filter=None)
            }
            unknown = [t for t in config.markets if t not in known]
            if unknown:
                named = ", ".join(unknown[:MAX_NAMED_UNKNOWN])
                more = len(unknown) - MAX_NAMED_UNKNOWN
                extra = f" (and {more} more)" if more > 0 else ""
                raise LookupError(f"unknown market ticker(s): {named}{extra}")
            return config.markets
        markets = client.get_markets(
            status="open", series_ticker=config.series, max_items=config.market_count
        )
    tickers = tuple(dict.fromkeys(m.ticker for m in markets[: config.market_count]))
    if not tickers:
        series = f" in series {config.series}" if config.series else ""
        raise LookupError(f"no open markets found{series}")
    return tickers
