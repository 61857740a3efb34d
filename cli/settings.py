"""``run``'s settings from three sources, one model: flags > environment > config file > defaults.

Why pydantic-settings: a service is configured by a file (TOML, reviewed and versioned), by
environment variables (containers, systemd units) and by flags (a person at a terminal), and
all three must mean the same thing and be checked the same way. ``RunSettings`` declares each
``run`` flag once, as a field; pydantic-settings reads ``KALSHI_SUPERVISOR_<FIELD>`` variables
and the TOML file into it, flags arrive as init arguments (highest priority), and the result
builds the one ``SupervisorConfig`` the supervisor validates again. A bad value from any
source becomes :class:`SettingsError`: one line naming the source and the field.

Secrets: a key *path* may come from any source; key *material* only from
``$KALSHI_PRIVATE_KEY`` (read by ``kalshi_api.auth``), never from here, so printing settings
or an error about them cannot leak a key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from kalshi_api.environments import Environment
from messages.exchange import PauseTiming
from messages.orders import Exact, RiskLimits
from messages.states import State
from messages.text import one_line
from supervision.config import GatewaySettings, LogLevel, RestartSettings, SupervisorConfig
from supervision.policy import RestartType, Strategy

ENV_PREFIX = "KALSHI_SUPERVISOR_"
CONFIG_ENV = f"{ENV_PREFIX}CONFIG"
"""The config file's path when ``--config`` is not given."""

MAX_CONFIG_BYTES = 1024 * 1024
"""A real config is a few hundred bytes; the cap keeps a wrong path from being slurped whole."""


NEGATED_FLAGS = (
    "halt_on_not_ready",
    "halt_on_pause",
    "halt_on_daily_loss",
    "halt_on_group_trigger",
    "cancel_orders_on_service_stop",
)
"""Settings on by default that a flag turns off: ``--no-halt-on-pause`` sets ``halt_on_pause``
to false (the environment and the file say ``true``/``false``)."""


class SettingsError(ValueError):
    """A bad setting: the message is one line naming where the value came from."""


def _all_markets(value: object) -> object:
    """``all`` (any case) means every open market: ``market_count=None``."""
    if isinstance(value, str) and value.strip().lower() == "all":
        return None
    return value


class RunSettings(BaseSettings):
    """Every ``run`` flag as a field (``--sync-interval`` is ``sync_interval``); the two
    repeatable flags are tables: ``--deadline`` is ``deadlines``, ``--restart-type`` is
    ``restart_types``. Defaults here are the documented defaults."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
    )

    env: Environment = Environment.LOCAL
    rest_url: str | None = None
    ws_url: str | None = None
    key_id: str | None = None
    private_key: Path | None = None
    """A path to the PEM; the PEM itself belongs in ``$KALSHI_PRIVATE_KEY`` only."""
    markets: Annotated[tuple[str, ...] | None, NoDecode] = None
    market_count: Annotated[int | None, BeforeValidator(_all_markets)] = 20
    """None (``all`` in flags, environment or TOML) takes every open market."""
    series: str | None = None
    no_trading: bool = False
    use_yes_price: bool = False
    sync_interval: float = 30.0
    request_timeout: float = Field(
        default=SupervisorConfig.model_fields["request_timeout"].default, gt=0
    )
    subscribe_chunk: int = Field(default=SupervisorConfig.model_fields["subscribe_chunk"].default)
    stale_after: float = Field(default=SupervisorConfig.model_fields["stale_after"].default)
    reconnect_max_delay: float = Field(
        default=SupervisorConfig.model_fields["reconnect_max_delay"].default
    )
    discovery_refresh: float = Field(
        default=SupervisorConfig.model_fields["discovery_refresh"].default
    )
    exchange_check_interval: float = Field(
        default=SupervisorConfig.model_fields["exchange_check_interval"].default
    )
    """Seconds between READY's routine reads of ``/exchange/status`` (a pause that starts
    while READY is noticed within this long)."""
    pause_min_poll: float = Field(default=PauseTiming.model_fields["min_poll"].default)
    pause_max_poll: float = Field(default=PauseTiming.model_fields["max_poll"].default)
    """The re-check of ``/exchange/status`` during a pause backs off from ``pause_min_poll``
    to ``pause_max_poll`` seconds ..."""
    pause_far_poll: float = Field(default=PauseTiming.model_fields["far_poll"].default)
    """... and waits for a resume estimate further away than that, up to this long."""
    order_group_limit: int = Field(
        default=int(GatewaySettings.model_fields["order_group_limit"].default), ge=1, le=1_000_000
    )
    """Contracts per rolling 15 s for the session's order group (``gateway.order_group_limit``)."""
    startup_orders: Literal["cancel", "adopt", "leave"] = "cancel"
    allow_production_trading: bool = False
    dry_run: bool = False
    max_order_count: Exact | None = None
    max_position: Exact | None = None
    max_open_orders: int | None = None
    max_notional: Exact | None = None
    max_daily_loss: Exact | None = None
    """The order gateway's global risk limits (``RiskLimits``; None: no limit)."""
    halt_on_not_ready: bool = True
    halt_on_pause: bool = True
    halt_on_daily_loss: bool = True
    halt_on_group_trigger: bool = True
    """The automatic halts (``GatewaySettings``; ``--no-halt-on-pause`` ... turn one off)."""
    cancel_orders_on_service_stop: bool = True
    status_host: str = "127.0.0.1"
    status_port: int = 8005
    status_public_names: tuple[str, ...] = ()
    """Names other machines use for the console (``--status-public-name``; a TOML list):
    the Host headers answered besides loopback and the bound address."""
    log_level: LogLevel = "INFO"
    events: str | None = None
    state_file: Path | None = None
    strategy: Strategy = Strategy.REST_FOR_ONE
    min_backoff: float = 0.1
    max_backoff: float = 10.0
    random_factor: float = 0.2
    reset_after: float = 30.0
    max_restarts: int = 5
    restart_period: float = 30.0
    deadlines: dict[State, float] = Field(default_factory=dict)
    services: tuple[str, ...] = ()
    """``[NAME=]MODULE:CLASS`` references (``--service``; a TOML list), started in this order
    once READY. Declared before ``restart_types``, whose names may be these services'."""
    service_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Each service's options (``--service-option NAME.KEY=VALUE``; in TOML a
    ``[service_options.NAME]`` table), validated by the service's own options model."""
    service_limits: dict[str, RiskLimits] = Field(default_factory=dict)
    """Each service's own risk limits (``--service-limit NAME:KEY=VALUE,...``; in TOML a
    ``[service_limits.NAME]`` table), checked besides the global ones. Names must be
    configured services' (``cli.run.services_from_settings`` checks)."""
    restart_types: dict[str, RestartType] = Field(default_factory=dict)
    exchange_markets: int = Field(default=30, gt=0)
    exchange_rate: float = Field(default=50.0, ge=0)
    exchange_take_rate: float = Field(default=0.0, ge=0)
    """Of ``exchange_rate``, the participant's takes per second (they fill your orders)."""
    exchange_seed: int = 0

    @model_validator(mode="after")
    def _pause_timing_ordered(self) -> RunSettings:
        """Checked here too, in the settings' own names (``PauseTiming`` says ``min_poll``)."""
        if self.pause_min_poll > self.pause_max_poll:
            raise ValueError(
                f"pause_min_poll ({self.pause_min_poll:g}) must not exceed "
                f"pause_max_poll ({self.pause_max_poll:g})"
            )
        if self.pause_max_poll > self.pause_far_poll:
            raise ValueError(
                f"pause_max_poll ({self.pause_max_poll:g}) must not exceed "
                f"pause_far_poll ({self.pause_far_poll:g})"
            )
        return self

    @field_validator("markets", mode="before")
    @classmethod
    def _split_markets(cls, value: Any) -> Any:
        """``"A,B"`` (a flag or a variable) and ``["A", "B"]`` (TOML) mean the same."""
        if isinstance(value, str):
            return tuple(t.strip() for t in value.split(",") if t.strip())
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("restart_types")
    @classmethod
    def _known_stages(
        cls, value: dict[str, RestartType], info: ValidationInfo
    ) -> dict[str, RestartType]:
        """Names must be stages' or configured services'. When a service reference cannot be
        loaded its name is unknown, so no name is judged here: building the services then
        reports the reference itself (a bad path, say), which is the real mistake; an
        "unknown stage" here would send the reader to the wrong key."""
        if not value:
            return value
        from actors.registry import DEFAULT_STAGES  # the stage actors: only when needed

        known = {spec.name for spec in DEFAULT_STAGES}
        services = info.data.get("services") or ()
        if services:
            from app.service_loader import ServiceLoadError, reference_name

            for reference in services:
                try:
                    known.add(reference_name(reference))
                except ServiceLoadError:
                    return value
        for stage in value:
            if stage not in known:
                what = "stage or service" if services else "stage"
                raise ValueError(f"unknown {what} {stage!r} (known: {', '.join(sorted(known))})")
        return value

    def supervisor_config(self, *, rest_url: str, ws_url: str) -> SupervisorConfig:
        """The validated ``SupervisorConfig`` these settings describe (raises ValidationError)."""
        return SupervisorConfig(
            environment=self.env,
            rest_url=rest_url,
            ws_url=ws_url,
            markets=self.markets,
            market_count=self.market_count,
            series=self.series,
            trading_enabled=not self.no_trading,
            use_yes_price=self.use_yes_price,
            sync_interval=self.sync_interval,
            request_timeout=self.request_timeout,
            subscribe_chunk=self.subscribe_chunk,
            stale_after=self.stale_after,
            reconnect_max_delay=self.reconnect_max_delay,
            discovery_refresh=self.discovery_refresh,
            exchange_check_interval=self.exchange_check_interval,
            gateway=GatewaySettings(
                order_group_limit=Decimal(self.order_group_limit),
                risk_limits=RiskLimits(
                    max_order_count=self.max_order_count,
                    max_position=self.max_position,
                    max_open_orders=self.max_open_orders,
                    max_notional=self.max_notional,
                    max_daily_loss=self.max_daily_loss,
                ),
                service_risk_limits=dict(self.service_limits),
                halt_on_not_ready=self.halt_on_not_ready,
                halt_on_pause=self.halt_on_pause,
                halt_on_daily_loss=self.halt_on_daily_loss,
                halt_on_group_trigger=self.halt_on_group_trigger,
                cancel_orders_on_service_stop=self.cancel_orders_on_service_stop,
            ),
            startup_orders=self.startup_orders,
            allow_production_trading=self.allow_production_trading,
            dry_run=self.dry_run,
            pause_timing=PauseTiming(
                min_poll=self.pause_min_poll,
                max_poll=self.pause_max_poll,
                far_poll=self.pause_far_poll,
            ),
            status_host=self.status_host,
            status_port=self.status_port,
            status_public_names=self.status_public_names,
            log_level=self.log_level,
            deadlines=self.deadlines,
            restart=RestartSettings(
                strategy=self.strategy,
                min_backoff=self.min_backoff,
                max_backoff=self.max_backoff,
                random_factor=self.random_factor,
                reset_after=self.reset_after,
                max_restarts=self.max_restarts,
                period=self.restart_period,
                restart_types=self.restart_types,
            ),
        )


_CONFIG_FIELD_TO_SETTING = {
    "environment": "env",
    "trading_enabled": "no_trading",
    "period": "restart_period",
}
"""Where a ``SupervisorConfig`` field's value came from, when the names differ."""


class Sources:
    """Where each setting's value came from, so an error can name its source."""

    def __init__(
        self,
        flags: Mapping[str, Any],
        environ: Mapping[str, str],
        file: Path | None,
        keys: set[str],
    ) -> None:
        self.flags = flags
        self.environ_keys = {key.upper() for key in environ}
        self.file = file
        self.file_keys = keys

    def of(self, setting: str) -> str:
        """``--flag``, ``KALSHI_SUPERVISOR_FIELD`` or ``config file PATH``; '' for defaults."""
        if setting in self.flags:
            return "--" + _flag_name(setting)
        if f"{ENV_PREFIX}{setting}".upper() in self.environ_keys:
            return f"{ENV_PREFIX}{setting.upper()}"
        if self.file is not None and setting in self.file_keys:
            return f"config file {self.file}"
        return ""


def _flag_name(setting: str) -> str:
    return {
        "deadlines": "deadline",
        "restart_types": "restart-type",
        "services": "service",
        "service_options": "service-option",
        "service_limits": "service-limit",
        **{name: "no-" + name.replace("_", "-") for name in NEGATED_FLAGS},
    }.get(setting, setting.replace("_", "-"))


def read_config_file(path: Path) -> dict[str, Any]:
    """The TOML file as a table; a missing, unreadable or malformed file is one line."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise SettingsError(f"config file {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise SettingsError(f"config file {path}: larger than {MAX_CONFIG_BYTES} bytes")
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"config file {path}: not valid TOML: {exc}") from None


def load_settings(
    flags: Mapping[str, Any], config_file: Path | None = None
) -> tuple[RunSettings, Sources]:
    """Merge flags > ``KALSHI_SUPERVISOR_*`` > ``config_file`` > defaults into one model.

    ``flags`` holds only the flags given on the command line (absent flags must not hide
    the environment or the file). Raises :class:`SettingsError` with one line.
    """
    file_values = read_config_file(config_file) if config_file is not None else {}
    sources = Sources(flags, os.environ, config_file, set(file_values))

    class _Merged(RunSettings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            chain: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
            if config_file is not None:
                chain.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
            return tuple(chain)

    try:
        merged = _Merged(**flags)
    except ValidationError as exc:
        raise SettingsError(describe(exc, sources)) from None
    except Exception as exc:  # pydantic-settings' own parse errors (a variable that is not JSON)
        raise SettingsError(one_line(f"environment: {exc}")) from None
    return merged, sources


def describe(exc: ValidationError, sources: Sources, *, config_level: bool = False) -> str:
    """The first error as one line: ``SOURCE: field: message``.

    ``config_level`` errors come from ``SupervisorConfig`` (cross-field checks, deadlines),
    whose field names are mapped back to the setting that carried the value.
    """
    error = exc.errors(include_url=False, include_input=False)[0]
    loc = [str(part) for part in error.get("loc", ()) if part != "[key]"]
    if config_level and loc and loc[0] == "restart":
        loc = loc[1:]
    if config_level and exc.title == PauseTiming.__name__:  # min_poll is pause_min_poll
        loc = [f"pause_{loc[0]}"] if loc else []
    setting = _CONFIG_FIELD_TO_SETTING.get(loc[0], loc[0]) if loc else ""
    where = ".".join(loc)
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden":
        message = "unknown setting"
    source = sources.of(setting) if setting else ""
    text = f"{where}: {message}" if where else message
    return one_line(f"{source}: {text}" if source else text)
