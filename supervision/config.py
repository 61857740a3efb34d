"""The supervisor's configuration: one validated, immutable object built by the CLI or by code.

Secrets are not in here: the private key lives in a ``KalshiSigner`` handed over
separately, so printing or logging a config can never leak it.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kalshi_api.environments import Environment
from kalshi_api.stream_events import DEFAULT_MAX_RECONNECT_DELAY
from kalshi_api.subscription_core import DEFAULT_CHUNK_SIZE, DEFAULT_STALE_AFTER
from messages.exchange import PauseTiming
from messages.metadata import TradingMode
from messages.orders import RiskLimits
from messages.results import StartupPolicy
from messages.states import State
from supervision.policy import BackoffPolicy, IntensityPolicy, RestartType, Strategy

TICKER_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9.\-_]*$")
"""Kalshi's documented pattern plus the dots and underscores real tickers contain."""

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class GatewaySettings(BaseModel):
    """The order gateway's policies (docs/trading.md): risk limits, automatic halts, ids.

    Every automatic halt is on by default: a process that cannot see (not READY), may not
    trade (a pause), lost too much (the daily loss) or tripped its order group must leave
    nothing of ours resting.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    risk_limits: RiskLimits = Field(default_factory=RiskLimits)
    """Global pre-trade limits (all services together); None fields: no limit."""
    service_risk_limits: dict[str, RiskLimits] = Field(default_factory=dict)
    """Per service name."""
    halt_on_not_ready: bool = True
    halt_on_pause: bool = True
    halt_on_daily_loss: bool = True
    halt_on_group_trigger: bool = True
    cancel_orders_on_service_stop: bool = True
    id_prefix: str = Field(default="ks", pattern=r"^[A-Za-z0-9]{1,16}$")
    """The first part of every ``client_order_id`` (orders with it are "ours" at a halt)."""
    state_dir: Path | None = None
    """Where the id allocator's high-water file lives; default: beside the control state
    file (when there is one)."""
    order_group_limit: Decimal | None = Field(default=Decimal(1000), gt=0)
    """Contracts per rolling 15 s for the session's order group (None: no group)."""
    halt_timeout: float = Field(default=30.0, gt=0)
    lookup_in_flight_ms: int = Field(default=10_000, ge=0)
    """After giving up on a create, how long it may still land before a lookup that shows
    nothing counts as "absent" (then it is resent under the same id)."""


class RestartSettings(BaseModel):
    """OTP/Akka restart policy; the defaults suit a trading process (fast first retry, bounded)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    strategy: Strategy = Strategy.REST_FOR_ONE
    min_backoff: float = Field(default=0.1, gt=0)
    max_backoff: float = Field(default=10.0, gt=0)
    random_factor: float = Field(default=0.2, ge=0, le=1)
    reset_after: float = Field(default=30.0, gt=0)
    max_restarts: int = Field(default=5, ge=0)
    period: float = Field(default=30.0, gt=0)
    restart_types: dict[str, RestartType] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _backoff_ordered(self) -> RestartSettings:
        if self.min_backoff > self.max_backoff:
            raise ValueError("min_backoff must not exceed max_backoff")
        return self

    def backoff(self) -> BackoffPolicy:
        return BackoffPolicy(
            min_backoff=self.min_backoff,
            max_backoff=self.max_backoff,
            random_factor=self.random_factor,
            reset_after=self.reset_after,
        )

    def intensity(self) -> IntensityPolicy:
        return IntensityPolicy(max_restarts=self.max_restarts, period=self.period)


DEFAULT_DEADLINES: dict[State, float] = {
    State.INITIALIZING: 10.0,
    State.ORDERBOOK_CONNECT: 10.0,
    State.TRADING_CLIENT_CONNECT: 10.0,
    State.KALSHI_DATA_SYNC: 15.0,
}


class SupervisorConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    environment: Environment = Environment.LOCAL
    rest_url: str
    ws_url: str
    markets: tuple[str, ...] | None = None
    """Explicit tickers (``mode: config``); None discovers open markets (``mode: discovery``)."""
    market_count: int | None = Field(default=20, ge=1)
    """How many open markets discovery takes; None takes every open market (paginated)."""
    series: str | None = None
    trading_enabled: bool = True
    use_yes_price: bool = False
    sync_interval: float = Field(default=30.0, gt=0)
    status_host: str = "127.0.0.1"
    status_port: int = Field(default=8005, ge=0, le=65535)
    status_public_names: tuple[str, ...] = ()
    """Host names (``host`` or ``host:port``) the console answers besides loopback and its
    bound address; a wildcard ``status_host`` answers only these and loopback."""
    log_level: LogLevel = "INFO"
    request_timeout: float = Field(default=5.0, gt=0)
    deadlines: dict[State, float] = Field(default_factory=lambda: dict(DEFAULT_DEADLINES))
    liveness_interval: float = Field(default=1.0, gt=0)
    liveness_timeout: float = Field(default=1.0, gt=0)
    heal_timeout: float = Field(default=5.0, gt=0)
    """How long READY waits for the stream to heal itself before READY -> ORDERBOOK_CONNECT."""
    subscribe_chunk: int = Field(default=DEFAULT_CHUNK_SIZE, ge=1, le=10_000)
    """Markets per WebSocket subscribe (halved for good when the exchange answers error 26)."""
    stale_after: float = Field(default=DEFAULT_STALE_AFTER, gt=0)
    """Seconds without a frame on a subscription before it is probed, then resynced."""
    discovery_refresh: float = Field(default=300.0, gt=0)
    """Seconds between re-discoveries while READY (discovery mode only): newly listed open
    markets are added up to ``market_count``, markets no longer trading are dropped."""
    market_wait_min: float = Field(default=1.0, gt=0)
    market_wait_max: float = Field(default=60.0, gt=0)
    """With no live market (every one dropped), the orderbook stage is held (no deadline,
    no restart) and asked to look for markets at ``market_wait_min`` seconds, doubling up
    to ``market_wait_max``: re-discovery in discovery mode, the dropped tickers' REST
    status in config mode."""
    reconnect_max_delay: float = Field(default=DEFAULT_MAX_RECONNECT_DELAY, gt=0)
    """Cap of the WebSocket reconnect backoff (grows across flapping sessions and 429s)."""
    restart: RestartSettings = Field(default_factory=RestartSettings)
    pause_timing: PauseTiming = Field(default_factory=PauseTiming)
    """How often ``/exchange/status`` is re-checked while the exchange is paused."""
    exchange_check_interval: float = Field(default=10.0, gt=0)
    """How often READY re-reads ``/exchange/status`` to notice a pause that starts."""
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    """The order gateway's policies (with trading on)."""
    startup_orders: StartupPolicy = "cancel"
    """Resting orders this installation's id allocator did not hand out, found when the
    trading stage connects: ``cancel`` them, ``adopt`` them (tracked as ours), or ``leave``
    them alone (never touched, never counted)."""
    allow_production_trading: bool = False
    """Production trades real money only with this; without it production runs with
    trading HALTED (reads only)."""
    dry_run: bool = False
    """Orders are validated and logged, never sent; the trading stage writes nothing."""

    @field_validator("markets")
    @classmethod
    def _valid_tickers(cls, markets: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if markets is None:
            return None
        if not markets:
            raise ValueError("--markets needs at least one ticker")
        for ticker in markets:
            if not TICKER_PATTERN.match(ticker):
                raise ValueError(
                    f"malformed market ticker {ticker!r} (expected e.g. KXFED-26DEC-T3.75)"
                )
        if len(set(markets)) != len(markets):
            raise ValueError("--markets lists a ticker twice")
        return markets

    @field_validator("deadlines")
    @classmethod
    def _positive_deadlines(cls, deadlines: dict[State, float]) -> dict[State, float]:
        merged = {**DEFAULT_DEADLINES, **deadlines}
        for state, seconds in merged.items():
            if seconds <= 0:
                raise ValueError(f"deadline for {state.name} must be positive")
        return merged

    @property
    def trading_mode(self) -> TradingMode:
        """``live`` only for real money; the embedded exchange and Kalshi demo are ``paper``."""
        return "live" if self.environment is Environment.PRODUCTION else "paper"

    @property
    def trading_allowed(self) -> bool:
        """Whether orders may be sent at all: everywhere but production, where only
        ``allow_production_trading`` allows it."""
        return self.environment is not Environment.PRODUCTION or self.allow_production_trading

    @property
    def discovery_mode(self) -> Literal["config", "discovery"]:
        return "discovery" if self.markets is None else "config"
