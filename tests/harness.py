"""Shared set-up for supervisor tests: a real embedded exchange and supervisor on loopback."""

from __future__ import annotations

import functools
import random
import ssl
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pykka
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from actors.registry import DEFAULT_STAGES
from actors.stage_spec import StageSpec
from app.handle import Supervisor
from kalshi_api.auth import KalshiSigner
from kalshi_api.fixed_point import MICROS_PER_DOLLAR, format_count, format_dollars
from kalshi_sim.exchange import EmbeddedExchange, ExchangeConfig
from messages.events import StateTransition
from messages.states import State
from supervision.config import RestartSettings, SupervisorConfig

WAIT = 10.0

# The seed's contract, written out literally (not derived from the models) so a model that
# drifts from it fails the tests.
SEED_KEYS: dict[State, set[str]] = {
    State.INITIALIZING: {"environment", "host", "log_level", "mode"},
    State.ORDERBOOK_CONNECT: {"ws_url", "markets", "market_count", "environment"},
    State.TRADING_CLIENT_CONNECT: {"mode", "environment", "api_url"},
    State.KALSHI_DATA_SYNC: {"mode", "sync_type"},
}
READY_KEYS = {
    "markets_connected",
    "snapshots_received",
    "deltas_received",
    "connection_established",
    "first_snapshot_received",
    "environment",
}
SEED_TRADING_CLIENT_KEYS = {
    "connected",
    "mode",
    "balance",
    "portfolio_value",
    "positions",
    "orders",
}
TRADING_CLIENT_KEYS = SEED_TRADING_CLIENT_KEYS | {
    "tier",
    "write_budget",
    "open_orders",
    "order_group",
}
"""READY's nested ``trading_client``: the seed's six keys plus what the trading connection
adds (issue 16); READY's own top-level keys stay exactly the seed's."""
ERROR_KEYS = {
    "failed_state",
    "actor",
    "error_type",
    "reason",
    "restart_attempt",
    "next_restart_in_ms",
}
RECOVERY_KEYS = {"restart_attempt", "restarting"}


PLAIN_HTTP = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
"""``verify=`` for an httpx client that only speaks plain HTTP on loopback: a verifying TLS
context with no CA loaded. httpx's default loads the CA bundle for each client, ~20 ms of
CPU every time."""

DEMO_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
"""One demo key pair for every exchange the tests start (``ExchangeConfig.demo_key``).
Generating an RSA-2048 pair costs ~0.1 s of CPU and loading one from its file as much
again; the suite starts hundreds of exchanges. Each exchange still has its own key id."""


@functools.lru_cache(maxsize=16)
def _private_key(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)  # checks the key: ~0.1 s
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def signer_from_file(key_id: str, path: Path) -> KalshiSigner:
    """``load_signer(key_id, path)``, checking each distinct key once: a member added to an
    exchange that shares :data:`DEMO_KEY` writes the same PEM under a new key id."""
    return KalshiSigner(key_id, _private_key(Path(path).read_bytes()))


def signer_for(exchange: EmbeddedExchange) -> KalshiSigner:
    """The exchange's demo-key signer (a module may start many supervisors on one exchange)."""
    return signer_from_file(exchange.key_id, exchange.private_key_path)


def start_exchange(**overrides: Any) -> EmbeddedExchange:
    settings: dict[str, Any] = {
        "markets": 6,
        "delta_rate": 200.0,
        "page_size": 2,
        "seed": 7,
        "read_tokens_per_second": None,
        "demo_key": DEMO_KEY,
    }
    settings.update(overrides)
    return EmbeddedExchange(ExchangeConfig(**settings)).start()


def make_config(exchange: EmbeddedExchange, **overrides: Any) -> SupervisorConfig:
    settings: dict[str, Any] = {
        "rest_url": exchange.rest_url,
        "ws_url": exchange.ws_url,
        "status_port": 0,
        "sync_interval": 3600.0,
        "market_count": 20,
        "restart": RestartSettings(min_backoff=0.01, max_backoff=0.05, random_factor=0.0),
    }
    settings.update(overrides)
    return SupervisorConfig(**settings)


@contextmanager
def running_supervisor(
    exchange: EmbeddedExchange,
    config: SupervisorConfig | None = None,
    *,
    stages: Sequence[StageSpec] = DEFAULT_STAGES,
    **kwargs: Any,
) -> Iterator[Supervisor]:
    signer = signer_for(exchange)
    supervisor = Supervisor(
        config or make_config(exchange),
        signer,
        stages=stages,
        exchange=exchange,
        **{"rng": random.Random(1), **kwargs},
    )
    supervisor.start()
    try:
        yield supervisor
    finally:
        supervisor.shutdown(timeout=3.0)


def transitions(supervisor: Supervisor) -> list[StateTransition]:
    return supervisor.recorder.transitions()


def metadata_of(supervisor: Supervisor, state: State, occurrence: int = 0) -> dict[str, Any]:
    """JSON form of the metadata of the ``occurrence``-th transition into ``state``."""
    matches = [t for t in transitions(supervisor) if t.to_state is state]
    return matches[occurrence].metadata.model_dump(mode="json")


def live_actor_count() -> int:
    return len(pykka.ActorRegistry.get_all())


def thread_names() -> set[str]:
    return {t.name for t in threading.enumerate() if t.is_alive()}


def truth_top(exchange: EmbeddedExchange, ticker: str) -> dict[str, Any]:
    """The exchange's true top of book, in the console's terms."""
    levels = exchange.markets.levels(ticker)
    bid = max(levels.yes) if levels.yes else None
    no_bid = max(levels.no) if levels.no else None
    return {
        "ticker": ticker,
        "stale": False,
        "best_yes_bid": None if bid is None else format_dollars(bid[0]),
        "best_yes_bid_size": None if bid is None else format_count(bid[1]),
        "best_yes_ask": None if no_bid is None else format_dollars(MICROS_PER_DOLLAR - no_bid[0]),
        "best_yes_ask_size": None if no_bid is None else format_count(no_bid[1]),
        "yes_levels": len(levels.yes),
        "no_levels": len(levels.no),
    }


def truth_depth(exchange: EmbeddedExchange, ticker: str) -> dict[str, Any]:
    """The exchange's true ladders in the console's terms (YES bids and asks, best first)."""
    levels = exchange.markets.levels(ticker)
    return {
        "ticker": ticker,
        "stale": False,
        "yes_bids": [
            {"price": format_dollars(p), "size": format_count(s)} for p, s in reversed(levels.yes)
        ],
        "yes_asks": [
            {"price": format_dollars(MICROS_PER_DOLLAR - p), "size": format_count(s)}
            for p, s in reversed(levels.no)
        ],
    }
