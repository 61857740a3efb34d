"""Starting the embedded exchange: the one module of the application that imports ``kalshi_sim``.

Why one place: the exchange simulator is a test and demo tool. Production code paths (the
handle, the core, the stages, ``inject``) must not load it, and a ``kalshi-supervisor``
command that never needs it must not pay for importing it. An import-linter contract in
``pyproject.toml`` forbids every other module of ours to import ``kalshi_sim``.
"""

from __future__ import annotations

import logging
from typing import Any

from kalshi_sim.exchange import EmbeddedExchange, ExchangeConfig

logger = logging.getLogger("kalshi_supervisor.app.bootstrap")

__all__ = ["EmbeddedExchange", "start_embedded_exchange"]


def start_embedded_exchange(
    *,
    markets: int,
    delta_rate: float,
    seed: int,
    host: str = "127.0.0.1",
    port: int = 0,
    **options: Any,
) -> EmbeddedExchange:
    """Start an embedded exchange on ``host``; ``port`` 0 picks free ports.

    ``options`` are further ``ExchangeConfig`` fields (the trading knobs of
    ``kalshi-supervisor exchange``). Raises ``ServerStartError`` (one line) when the port
    cannot be bound. REST and WebSocket share the one port, as on Kalshi's hosts.
    """
    exchange = EmbeddedExchange(
        ExchangeConfig(
            host=host,
            port=port,
            markets=markets,
            delta_rate=delta_rate,
            seed=seed,
            **options,
        )
    ).start()
    logger.debug("embedded exchange at %s and %s", exchange.rest_url, exchange.ws_url)
    return exchange
