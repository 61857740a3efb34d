"""Splitting a long list of query values into batches whose URL stays under a budget.

Kalshi takes ``GET /markets?tickers=A,B,C``; it publishes no cap on the list, but URLs
have one everywhere (httpx refuses queries past 65,536 characters, proxies often stop
at 8 KiB). Batching by *encoded* length, not by count, keeps odd long tickers safe too.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from urllib.parse import quote


def encoded_length(value: str) -> int:
    """Characters ``value`` takes in a query string once percent-encoded."""
    return len(quote(value, safe=""))


def chunk_by_url_budget(values: Sequence[str], budget: int) -> Iterator[list[str]]:
    """Consecutive batches of ``values`` whose comma-joined, encoded form fits ``budget``.

    A single value longer than the budget still goes alone in its own batch (the server
    decides what to make of it); every value appears exactly once, in order.
    """
    if budget < 1:
        raise ValueError(f"budget must be positive, got {budget}")
    batch: list[str] = []
    used = 0
    comma = encoded_length(",")
    for value in values:
        size = encoded_length(value) + (comma if batch else 0)
        if batch and used + size > budget:
            yield batch
            batch, used = [], 0
            size = encoded_length(value)
        batch.append(value)
        used += size
    if batch:
        yield batch
