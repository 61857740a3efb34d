"""Fixtures shared by the embedded exchange's trading tests (routes, truth, WebSocket):
a quiet exchange where members trade only with each other, and two members on it.

A module that needs another shape (the calendar's, the faults') overrides ``exchange``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kalshi_sim.exchange import EmbeddedExchange
from tests.conftest import ExchangeFactory
from tests.kalshi_sim.trading_support import Trader, quiet, trader


@pytest.fixture
def exchange(make_exchange: ExchangeFactory) -> EmbeddedExchange:
    """Members trade only with each other (the house's liquidity is taken off); no write
    limit and no cancel-all tail, so a test's writes are judged on their own."""
    return quiet(make_exchange(markets=6, write_limit=False, cancel_all_tail_s=0))


@pytest.fixture
def alice(exchange: EmbeddedExchange) -> Iterator[Trader]:
    t = trader(exchange, "alice")
    yield t
    t.close()


@pytest.fixture
def bob(exchange: EmbeddedExchange) -> Iterator[Trader]:
    t = trader(exchange, "bob")
    yield t
    t.close()
