"""Fixtures shared across test packages. Keep each one small.

Where a fixture lives (one rule):

* used by modules of more than one package: here;
* used by several modules of one package: that package's ``conftest.py``
  (``tests/kalshi_api/conftest.py``: the stream recorder and factory;
  ``tests/browser/conftest.py``: Chromium and a page);
* used by one module: in that module. A module may override a shared fixture under the
  same name when it needs another shape (``exchange`` with fewer markets, say); the
  override says why in its docstring or is obvious from its arguments.

Helpers that are not fixtures are plain modules imported by tests: ``tests/harness.py``
(start an exchange, a config, a running supervisor), ``tests/core/rig.py`` (the pykka-free
core rig) and ``tests/core/pause_support.py``.

Markers: ``slow`` (registered in pyproject.toml) marks tests that take seconds each
(subprocesses, browsers, long soaks); ``pytest -m "not slow"`` is the developer's fast loop,
and a plain ``pytest`` still runs everything, as CI does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kalshi_sim.account import Account
from kalshi_sim.exchange import EmbeddedExchange, ExchangeConfig
from tests.harness import DEMO_KEY, start_exchange

ExchangeFactory = Callable[..., EmbeddedExchange]


@pytest.fixture
def make_exchange() -> Iterator[ExchangeFactory]:
    """Start embedded exchanges on loopback (still books, no rate limit unless asked); all
    are stopped at teardown. Keyword arguments override ``ExchangeConfig`` fields."""
    started: list[EmbeddedExchange] = []

    def factory(**overrides: Any) -> EmbeddedExchange:
        settings: dict[str, Any] = {
            "delta_rate": 0,
            "read_tokens_per_second": None,
            "demo_key": DEMO_KEY,
        }
        settings.update(overrides)
        exchange = EmbeddedExchange(ExchangeConfig(**settings)).start()
        started.append(exchange)
        return exchange

    yield factory
    for exchange in reversed(started):
        exchange.stop()


@pytest.fixture(scope="module")
def _shared_rest_exchange() -> Iterator[EmbeddedExchange]:
    config = ExchangeConfig(
        delta_rate=0, read_tokens_per_second=None, markets=8, page_size=3, demo_key=DEMO_KEY
    )
    with EmbeddedExchange(config) as exchange:
        yield exchange


@pytest.fixture
def rest_exchange(_shared_rest_exchange: EmbeddedExchange) -> EmbeddedExchange:
    """A still exchange with small pages (3 items), so listings always span pages.

    Shared per module and reset for each test:
    demo account, no pending faults, empty operation log.
    """
    exchange = _shared_rest_exchange
    exchange.faults.clear()
    exchange.status.resume()
    exchange.account = Account.demo(exchange.markets, seed=exchange.config.seed)
    exchange.oplog.clear()
    return exchange


@pytest.fixture
def exchange() -> Iterator[EmbeddedExchange]:
    """The supervisor tests' exchange (``tests.harness.start_exchange`` defaults: 6 markets,
    deltas flowing, small pages, no rate limit), stopped at teardown."""
    started = start_exchange()
    try:
        yield started
    finally:
        started.stop()
