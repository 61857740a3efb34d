"""Shared fixtures. Keep each one small: several test packages add to this file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kalshi_sim.account import Account
from kalshi_sim.exchange import EmbeddedExchange, ExchangeConfig

ExchangeFactory = Callable[..., EmbeddedExchange]


@pytest.fixture
def make_exchange() -> Iterator[ExchangeFactory]:
    """Start embedded exchanges on loopback (still books, no rate limit unless asked); all
    are stopped at teardown. Keyword arguments override ``ExchangeConfig`` fields."""
    started: list[EmbeddedExchange] = []

    def factory(**overrides: Any) -> EmbeddedExchange:
        settings: dict[str, Any] = {"delta_rate": 0, "read_tokens_per_second": None}
        settings.update(overrides)
        exchange = EmbeddedExchange(ExchangeConfig(**settings)).start()
        started.append(exchange)
        return exchange

    yield factory
    for exchange in reversed(started):
        exchange.stop()


@pytest.fixture(scope="module")
def _shared_rest_exchange() -> Iterator[EmbeddedExchange]:
    config = ExchangeConfig(delta_rate=0, read_tokens_per_second=None, markets=8, page_size=3)
    with EmbeddedExchange(config) as exchange:
        yield exchange


@pytest.fixture
def rest_exchange(_shared_rest_exchange: EmbeddedExchange) -> EmbeddedExchange:
    """A still exchange with small pages (3 items), so listings always span pages.

    Shared per module (starting one costs an RSA key generation) and reset for each test:
    demo account, no pending faults, empty operation log.
    """
    exchange = _shared_rest_exchange
    exchange.faults.clear()
    exchange.status.resume()
    exchange.account = Account.demo(exchange.markets, seed=exchange.config.seed)
    exchange.oplog.clear()
    return exchange
