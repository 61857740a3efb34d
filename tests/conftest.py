"""Fixtures shared across test packages. Keep each one small.

Where a fixture lives (one rule):

* used by modules of more than one package: here;
* used by several modules of one package: that package's ``conftest.py``
  (``tests/kalshi_api/conftest.py``: the stream recorder and factory;
  ``tests/kalshi_sim/conftest.py``: a quiet trading exchange and two members;
  ``tests/browser/conftest.py``: Chromium and a page);
* used by one module: in that module. A module may override a shared fixture under the
  same name when it needs another shape (``exchange`` with fewer markets, say); the
  override says why in its docstring or is obvious from its arguments.

Helpers that are not fixtures are plain modules imported by tests: ``tests/harness.py``
(start an exchange, a config, a running supervisor), ``tests/core/rig.py`` (the pykka-free
core rig) and ``tests/core/pause_support.py``.

Markers: ``slow`` (registered in pyproject.toml) marks tests that take seconds each
(subprocesses, browsers, long soaks, seconds of hypothesis CPU); ``pytest -m "not slow"`` is
the developer's fast loop (under a minute on two cores), and a plain ``pytest`` still runs
everything, as CI does. Mark a test where it is defined (``@pytest.mark.slow`` or a module's
``pytestmark``), with a comment saying what takes the time. One rule is enforced here: a test
that starts ``kalshi-supervisor run`` or ``exchange`` as a process (a server that lives until
stopped, seconds per test) and is not marked slow fails at that start, saying so.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
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


# -- the fast loop stays fast: server processes only in slow tests ---------------------------
SERVER_COMMANDS = ("run", "exchange")
"""``kalshi-supervisor`` sub-commands that serve until stopped."""

_running: list[pytest.Item] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    _running.append(item)
    try:
        return (yield)
    finally:
        _running.remove(item)


def starts_a_server(argv: str | bytes | Sequence[Any] | None) -> str | None:
    """The server sub-command ``argv`` starts (``kalshi-supervisor run ...``, ``python -m
    cli.main exchange ...``, ``python -c '...cli.main...' run ...``), or None."""
    if not isinstance(argv, list | tuple):
        return None
    words = [os.fsdecode(a) if isinstance(a, bytes | os.PathLike) else str(a) for a in argv]
    if "--help" in words or "-h" in words:
        return None
    for at, word in enumerate(words[:-1]):
        if os.path.basename(word) == "kalshi-supervisor" or "cli.main" in word:
            command = words[at + 1]
            return command if command in SERVER_COMMANDS else None
    return None


def _refuse_unmarked_servers(event: str, args: tuple[Any, ...]) -> None:
    """An audit hook (``subprocess.Popen`` is an audited event): raising aborts the start."""
    if event != "subprocess.Popen" or not _running:
        return
    item = _running[-1]
    command = starts_a_server(args[1])
    if command is not None and item.get_closest_marker("slow") is None:
        raise RuntimeError(
            f"{item.nodeid} starts kalshi-supervisor {command} (a process that serves for "
            "seconds): mark the test slow (tests/conftest.py)"
        )


sys.addaudithook(_refuse_unmarked_servers)
