"""``kalshi-supervisor run``: configure, check, start and watch one supervisor until a signal.

Configuration comes from flags, ``KALSHI_SUPERVISOR_*`` variables and a TOML file
(``--config``), merged by ``cli.settings``. Everything that no restart can fix (a bad value,
a missing key, an unreachable exchange, a busy port) is one stderr line and exit 2, before
the supervisor starts. Exit 1 means the supervisor gave up (restart intensity exceeded).
"""

from __future__ import annotations

import argparse
import faulthandler
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.arguments import (
    OneLineParser,
    error_line,
    market_count,
    non_negative_float,
    non_negative_int,
    positive_decimal,
    positive_float,
    positive_int,
)
from cli.settings import CONFIG_ENV, ENV_PREFIX, RunSettings, SettingsError, Sources
from cli.signals import SignalCounter
from kalshi_api.environments import Environment
from messages.states import State
from supervision.policy import RestartType, Strategy

if TYPE_CHECKING:
    from actors.service import ServiceSpec
    from app.bootstrap import EmbeddedExchange
    from kalshi_api.auth import KalshiSigner
    from supervision.config import SupervisorConfig

logger = logging.getLogger("kalshi_supervisor.cli.run")

EXIT_OK, EXIT_GAVE_UP, EXIT_BAD_CONFIG = 0, 1, 2

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
SIGNAL_POLL = 0.1
"""Seconds between the main loop's looks at the signal counts (a signal ends it within this)."""


class ConfigError(ValueError):
    """Bad configuration: reported as one line and exit code 2."""


def _default_value(name: str) -> str:
    """The model's default of a setting as text ('' when there is none to show)."""
    field = RunSettings.model_fields[name]
    value = field.get_default(call_default_factory=True)
    if value is None or value is False or value == {} or value == ():
        return ""
    value = getattr(value, "value", value)
    return f"{value:g}" if isinstance(value, float) else str(value)


class FlagRow:
    """One ``run`` flag as the README's table shows it: written from the parser's own
    declarations, so the table cannot drift from ``run --help``."""

    def __init__(self, flag: str, dest: str, metavar: str, default: str, meaning: str) -> None:
        self.flag, self.dest, self.metavar = flag, dest, metavar
        self.default, self.meaning = default, meaning

    def markdown(self) -> str:
        flag = f"`{self.flag} {self.metavar}`" if self.metavar else f"`{self.flag}`"
        default = f"`{self.default}`" if self.default else "none"
        return f"| {flag.replace('|', chr(92) + '|')} | {default} | {self.meaning} |"


def build_parser(rows: list[FlagRow] | None = None) -> argparse.ArgumentParser:
    """Every flag defaults to "not given" (SUPPRESS), so that an absent flag lets the
    environment or the config file decide; the help shows the model's defaults, once.
    ``rows``, when given, receives each flag as the README's table shows it."""
    run = OneLineParser(
        prog="kalshi-supervisor run",
        description="Run the supervisor (default: on the embedded exchange). Every flag can "
        f"also be set as {ENV_PREFIX}<FLAG> (e.g. {ENV_PREFIX}SYNC_INTERVAL=10) or in the "
        "--config TOML file; flags win over the environment, which wins over the file.",
        argument_default=argparse.SUPPRESS,
    )

    def add(group: Any, flag: str, help: str, *, default: str | None = None, **kwargs: Any) -> None:
        dest = kwargs.get("dest", flag.removeprefix("--").replace("-", "_"))
        shown = _default_value(dest) if default is None else default
        suffix = f" (default: {shown})" if shown else ""
        group.add_argument(flag, help=help + suffix, **kwargs)
        if rows is not None:
            if kwargs.get("action") in ("store_true", "store_false"):
                metavar, shown = "", "off"
            elif "choices" in kwargs:
                metavar = "|".join(kwargs["choices"])
            else:
                metavar = kwargs.get("metavar") or dest.upper()
            rows.append(FlagRow(flag, dest, metavar, shown, help))

    add(
        run,
        "--config",
        "TOML file with any of these settings",
        default=f"${CONFIG_ENV}, if set",
        type=Path,
        dest="config",
        metavar="PATH",
    )
    add(
        run,
        "--env",
        "local = the embedded exchange; paper = Kalshi demo; production = real money",
        choices=[e.value for e in Environment],
    )
    add(run, "--rest-url", "override the REST base URL (…/trade-api/v2)", metavar="URL")
    add(run, "--ws-url", "override the WebSocket URL (…/trade-api/ws/v2)", metavar="URL")
    add(run, "--key-id", "API key id", default="$KALSHI_API_KEY_ID", metavar="ID")
    add(
        run,
        "--private-key",
        "private key PEM path (the PEM itself may be given in $KALSHI_PRIVATE_KEY; "
        "PKCS#1 or PKCS#8, RSA or Ed25519)",
        default="$KALSHI_PRIVATE_KEY_PATH",
        metavar="PATH",
    )
    add(
        run,
        "--markets",
        "comma-separated tickers, checked against the exchange",
        default="discover open markets",
        metavar="T1,T2",
    )
    add(
        run,
        "--market-count",
        "markets to discover: a positive number, or 'all' for every open market",
        type=market_count,
        metavar="N",
    )
    add(run, "--series", "discover markets of this series only", metavar="SERIES")
    add(run, "--no-trading", "orderbook only: skip trading and sync", action="store_true")
    add(run, "--use-yes-price", "subscribe with use_yes_price=true", action="store_true")
    add(
        run,
        "--sync-interval",
        "seconds between update syncs while READY",
        type=positive_float,
        metavar="SECONDS",
    )
    add(
        run,
        "--request-timeout",
        "seconds a REST request may take (the start's exchange check included)",
        type=positive_float,
        metavar="SECONDS",
    )
    add(
        run,
        "--subscribe-chunk",
        "markets per WebSocket subscribe; an error 26 halves the refused chunk",
        type=positive_int,
        metavar="N",
    )
    add(
        run,
        "--stale-after",
        "seconds a subscription may go without a frame before it is probed with a "
        "one-market get_snapshot (an unanswered probe resubscribes, then reconnects)",
        type=positive_float,
        metavar="SECONDS",
    )
    add(
        run,
        "--discovery-refresh",
        "seconds between market re-discoveries while READY: the only way newly listed "
        "markets are picked up",
        type=positive_float,
        metavar="SECONDS",
    )
    add(
        run,
        "--reconnect-max-delay",
        "cap of the WebSocket reconnect backoff in seconds (it doubles from 0.05 s; a session "
        "that delivered its snapshots and then data and stayed up 5 s resets it)",
        type=positive_float,
        metavar="SECONDS",
    )
    trading = run.add_argument_group("trading")
    add(
        trading,
        "--order-group-limit",
        "contracts the session's order group lets fill per rolling 15 s before the exchange "
        "cancels its orders (the fill-velocity kill switch)",
        type=positive_int,
        metavar="N",
    )
    add(
        trading,
        "--startup-orders",
        "resting orders this installation did not place, found at connect: cancel them, "
        "adopt them as ours, or leave them alone",
        choices=["cancel", "adopt", "leave"],
    )
    add(
        trading,
        "--allow-production-trading",
        "let --env production send orders (real money); without it production trades nothing",
        action="store_true",
    )
    add(
        trading,
        "--dry-run",
        "validate and log orders, never send them (nothing is written at the exchange)",
        action="store_true",
    )
    for flag, what, metavar in (
        ("--max-order-count", "contracts one order may have", "N"),
        ("--max-position", "|position| per market, counting resting orders as filled", "N"),
        ("--max-open-orders", "orders open at once", "N"),
        ("--max-notional", "dollars at risk in open orders", "DOLLARS"),
        ("--max-daily-loss", "the day's loss (realized + unrealized at exit - fees) that "
         "halts trading", "DOLLARS"),
    ):
        add(
            trading,
            flag,
            f"risk limit over every service together: {what}; orders past it are refused "
            "before sending",
            type=positive_int if flag == "--max-open-orders" else positive_decimal,
            metavar=metavar,
        )
    add(
        trading,
        "--service-limit",
        "risk limits of one service, besides the global ones (repeatable; KEY is a --max-* "
        "name with underscores: max_order_count, max_position, max_open_orders, max_notional, "
        "max_daily_loss), e.g. mm:max_order_count=10,max_position=50",
        action="append",
        dest="service_limits",
        metavar="NAME:KEY=VALUE,...",
    )
    for setting, when in (
        ("halt_on_not_ready", "the system leaves READY (ERROR, shutdown, Ctrl-C)"),
        ("halt_on_pause", "the exchange pauses (a weekly trading pause only refuses orders)"),
        ("halt_on_daily_loss", "a daily-loss limit (global or a service's) is breached"),
        ("halt_on_group_trigger", "the session's order group triggers"),
    ):
        add(
            trading,
            "--no-" + setting.replace("_", "-"),
            f"do not halt trading (cancel all, refuse new orders) when {when}",
            default="",
            action="store_false",
            dest=setting,
        )
    add(
        trading,
        "--no-cancel-orders-on-service-stop",
        "leave a service's orders resting when it stops or is dropped",
        default="",
        action="store_false",
        dest="cancel_orders_on_service_stop",
    )
    pauses = run.add_argument_group("exchange pauses (waited out, never a failure)")
    add(
        pauses,
        "--exchange-check-interval",
        "seconds between READY's routine reads of /exchange/status",
        type=positive_float,
        metavar="SECONDS",
    )
    add(
        pauses,
        "--pause-min-poll",
        "first re-check of /exchange/status during a pause (s)",
        type=positive_float,
        metavar="SECONDS",
    )
    add(
        pauses,
        "--pause-max-poll",
        "largest re-check delay during a pause (s); re-checks double up to it",
        type=positive_float,
        metavar="SECONDS",
    )
    add(
        pauses,
        "--pause-far-poll",
        "longest wait for a far resume estimate before re-checking (s)",
        type=positive_float,
        metavar="SECONDS",
    )
    add(
        run,
        "--status-host",
        "console server host (loopback unless you say otherwise; then every request "
        "needs the token)",
        metavar="HOST",
    )
    add(run, "--status-port", "console server port (0 = any free)", type=int, metavar="PORT")
    add(
        run,
        "--status-public-name",
        "a name (host or host:port) other machines use for the console; with a wildcard "
        "--status-host only these and loopback pass the Host check (repeatable)",
        action="append",
        dest="status_public_names",
        metavar="NAME",
    )
    add(
        run,
        "--log-level",
        "log level of the stderr log",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
    )
    add(
        run,
        "--events",
        "write every transition and event as JSON lines (- = stdout; SIGHUP reopens)",
        metavar="PATH",
    )
    add(
        run,
        "--state-file",
        "where `inject` finds this supervisor",
        default="$XDG_STATE_HOME/kalshi-supervisor/control.json",
        type=Path,
        metavar="PATH",
    )
    restart = run.add_argument_group("restart policy")
    add(
        restart,
        "--strategy",
        "which stages restart with a failed one",
        choices=[s.value for s in Strategy],
    )
    add(
        restart,
        "--min-backoff",
        "first restart delay (s)",
        type=positive_float,
        metavar="SECONDS",
    )
    add(
        restart,
        "--max-backoff",
        "largest restart delay (s)",
        type=positive_float,
        metavar="SECONDS",
    )
    add(
        restart,
        "--random-factor",
        "jitter: delay x (1 + factor x random)",
        type=non_negative_float,
        metavar="F",
    )
    add(
        restart,
        "--reset-after",
        "seconds healthy that reset a stage's backoff",
        type=positive_float,
        metavar="SECONDS",
    )
    add(
        restart,
        "--max-restarts",
        "restarts allowed within --restart-period before giving up",
        type=non_negative_int,
        metavar="N",
    )
    add(
        restart,
        "--restart-period",
        "intensity window (s)",
        type=positive_float,
        metavar="SECONDS",
    )
    add(
        restart,
        "--deadline",
        "per-state deadline, e.g. orderbook_connect=5 (repeatable)",
        default="10 s; 15 s for kalshi_data_sync",
        action="append",
        dest="deadlines",
        metavar="STATE=SECONDS",
    )
    add(
        restart,
        "--restart-type",
        "per-stage or per-service restart type: permanent, transient or temporary (repeatable)",
        default="permanent",
        action="append",
        dest="restart_types",
        metavar="NAME=TYPE",
    )
    services = run.add_argument_group("services (actors that run while READY)")
    add(
        services,
        "--service",
        "start this service once READY (repeatable); MODULE is a dotted module (found from "
        "the current directory too) or a .py file, or give the name of an installed "
        "kalshi_supervisor.services entry point",
        action="append",
        dest="services",
        metavar="[NAME=]MODULE:CLASS",
    )
    add(
        services,
        "--service-option",
        "an option of a service (repeatable); VALUE is JSON if it parses, else text",
        action="append",
        dest="service_options",
        metavar="NAME.KEY=VALUE",
    )
    embedded = run.add_argument_group("embedded exchange (--env local)")
    add(
        embedded,
        "--exchange-markets",
        "markets on the embedded exchange",
        type=positive_int,
        metavar="N",
    )
    add(
        embedded,
        "--exchange-rate",
        "deltas per second on the embedded exchange",
        type=non_negative_float,
        metavar="R",
    )
    add(
        embedded,
        "--exchange-take-rate",
        "of those deltas per second, how many are the built-in participant taking liquidity "
        "(it trades with the best resting order, yours too: what fills "
        "examples/market_maker.py); capped at --exchange-rate",
        type=non_negative_float,
        metavar="R",
    )
    add(
        embedded,
        "--exchange-seed",
        "seed of the embedded exchange's markets",
        type=int,
        metavar="SEED",
    )
    return run


def flag_table() -> str:
    """The README's table of every ``run`` flag (``python -m cli.run --flag-table``)."""
    rows: list[FlagRow] = []
    build_parser(rows)
    lines = ["| flag | default | meaning |", "|---|---|---|"]
    lines += [row.markdown() for row in rows]
    return "\n".join(lines)


def flags_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The flags actually given, as settings values (``--deadline A=1`` -> ``{A: 1.0}``)."""
    flags = dict(vars(args))
    flags.pop("config", None)
    if "deadlines" in flags:
        deadlines: dict[State, float] = {}
        for item in flags["deadlines"]:
            name, _, seconds = item.partition("=")
            try:
                deadlines[State(name.strip().lower())] = float(seconds)
            except ValueError:
                raise ConfigError(
                    f"--deadline {item!r}: expected STATE=SECONDS, e.g. orderbook_connect=5"
                ) from None
        flags["deadlines"] = deadlines
    if "restart_types" in flags:
        restart_types: dict[str, RestartType] = {}
        for item in flags["restart_types"]:
            stage, _, kind = item.partition("=")
            try:
                restart_types[stage.strip()] = RestartType(kind.strip().lower())
            except ValueError:
                raise ConfigError(
                    f"--restart-type {item!r}: expected NAME=permanent|transient|temporary"
                ) from None
        flags["restart_types"] = restart_types
    if "service_limits" in flags:
        flags["service_limits"] = parse_service_limits(flags["service_limits"])
    if "services" in flags:
        flags["services"] = tuple(flags["services"])
    if "status_public_names" in flags:
        flags["status_public_names"] = tuple(flags["status_public_names"])
    if "service_options" in flags:
        from app.service_loader import ServiceLoadError, parse_option_items

        try:
            flags["service_options"] = parse_option_items(flags["service_options"])
        except ServiceLoadError as exc:
            raise ConfigError(str(exc)) from None
    return flags


def parse_service_limits(items: Sequence[str]) -> dict[str, dict[str, str]]:
    """``NAME:KEY=VALUE,...`` items -> ``{NAME: {KEY: VALUE}}``; a name given twice merges
    (the later value of a key wins). Values stay text: ``RiskLimits`` reads them as exact
    decimals (never a float) and names a bad key or value in one line."""
    limits: dict[str, dict[str, str]] = {}
    for item in items:
        name, colon, pairs = item.partition(":")
        name = name.strip()
        if not colon or not name or not pairs.strip():
            raise ConfigError(
                f"--service-limit {item!r}: expected NAME:KEY=VALUE[,KEY=VALUE...], "
                "e.g. mm:max_order_count=10,max_position=50"
            )
        table = limits.setdefault(name, {})
        for pair in pairs.split(","):
            key, equals, value = pair.partition("=")
            if not equals or not key.strip() or not value.strip():
                raise ConfigError(
                    f"--service-limit {item!r}: {pair.strip()!r} is not KEY=VALUE"
                )
            table[key.strip()] = value.strip()
    return limits


def services_from_settings(
    settings: RunSettings, sources: Sources | None = None
) -> tuple[ServiceSpec, ...]:
    """The configured services as validated specs (their code is imported here), or
    ConfigError with one line naming where the reference came from and what is wrong: a bad
    reference or option costs nothing to find out.

    A dotted ``MODULE`` is also looked up from the current directory, as ``python -m``
    would: a console script's ``sys.path`` starts at its own ``bin/``, so without this
    ``examples.spread_alert:SpreadAlert`` would not be found from a checkout. Appended, not
    prepended, so an installed module of the same name still wins."""
    if not settings.services and not settings.service_options and not settings.service_limits:
        return ()
    from actors.gateway_config import ADOPTED_SERVICE, GATEWAY_SERVICE
    from actors.registry import DEFAULT_STAGES
    from app.service_loader import ServiceLoadError, check_unique, specs_from_references

    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.append(here)
    try:
        specs = specs_from_references(settings.services, settings.service_options)
        # the gateway's name, and the owner of adopted orders (no service may act for it)
        reserved = [s.name for s in DEFAULT_STAGES] + [GATEWAY_SERVICE, ADOPTED_SERVICE]
        check_unique(specs, reserved=reserved)
    except ServiceLoadError as exc:
        source = sources.of("services") if sources is not None else ""
        if source.startswith("--"):
            source = ""  # the flag is in the message already (`service '...'`)
        raise ConfigError(f"{source}: services: {exc}" if source else str(exc)) from None
    _check_limited(settings, specs, sources)
    return specs


def _check_limited(
    settings: RunSettings, specs: Sequence[ServiceSpec], sources: Sources | None
) -> None:
    """A limit for a name no service has would limit nothing: a typo must not pass."""
    unknown = sorted(set(settings.service_limits) - {spec.name for spec in specs})
    if unknown:
        known = ", ".join(spec.name for spec in specs) or "none configured"
        source = (sources.of("service_limits") if sources is not None else "") or "service_limits"
        raise ConfigError(
            f"{source}: limits for unknown service(s): {', '.join(unknown)} (services: {known})"
        )


def config_from_settings(
    settings: RunSettings, sources: Sources, *, rest_url: str, ws_url: str
) -> SupervisorConfig:
    """The validated ``SupervisorConfig``, or ConfigError with one line naming the source."""
    from pydantic import ValidationError

    from cli.settings import describe

    try:
        return settings.supervisor_config(rest_url=rest_url, ws_url=ws_url)
    except ValidationError as exc:
        raise ConfigError(describe(exc, sources, config_level=True)) from None


def _configure_logging(level: str) -> None:
    """The CLI owns the handlers; library modules only log to ``kalshi_supervisor.*``."""
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # One line per HTTP request / WS connection drowns the state progression a person watches.
    for noisy in ("httpx", "httpcore", "websockets"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # A fact the terminal view prints as an event line is not logged there a second time.
    from app.console import ShownAsEventsFilter

    for handler in logging.getLogger().handlers:
        handler.addFilter(ShownAsEventsFilter())


def main(argv: Sequence[str]) -> int:
    """``kalshi-supervisor run ...``."""
    args = build_parser().parse_args(argv)
    # Until _serve installs its handlers, SIGTERM interrupts like Ctrl-C does; and so does
    # SIGINT even when it was inherited ignored (a shell's `kalshi-supervisor run &`): _serve
    # honours it from then on, so a Ctrl-C during startup must not be the one lost.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # `kill -USR1 <pid>` prints every thread's stack to stderr and the process goes on: what
    # shows where a process that does not stop is stuck. Written by the interpreter's C
    # handler, so it works even when every Python thread is blocked.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    exchange: EmbeddedExchange | None = None
    try:
        flags = flags_from_args(args)
        config_file = getattr(args, "config", None) or (
            Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None
        )
        from cli.settings import load_settings

        try:
            settings, sources = load_settings(flags, config_file)
        except SettingsError as exc:
            raise ConfigError(str(exc)) from None
        # Every value checked before anything starts (the real URLs are known only later).
        config_from_settings(settings, sources, rest_url="http://pending", ws_url="ws://pending")
        services = services_from_settings(settings, sources)
        _configure_logging(settings.log_level)
        try:
            exchange, signer, rest_url, ws_url = _exchange_and_signer(settings)
            config = config_from_settings(settings, sources, rest_url=rest_url, ws_url=ws_url)
            _preflight_interruptibly(config, signer)
            return _serve(settings, config, signer, exchange, services)
        except Exception as exc:
            if _is_bad_setup(exc):
                raise ConfigError(str(exc)) from None
            raise
    except ConfigError as exc:
        print(error_line(str(exc)), file=sys.stderr)
        return EXIT_BAD_CONFIG
    except KeyboardInterrupt:
        print("kalshi-supervisor: interrupted before the supervisor started", file=sys.stderr)
        return EXIT_OK
    finally:
        if exchange is not None:
            with SignalCounter(signal.SIGINT, signal.SIGTERM):  # a 2nd Ctrl-C waits for it
                exchange.stop()
        # Everything is stopped, control.json withdrawn, the events file closed. What was left
        # was the interpreter's final garbage collection over every object the run created:
        # 0.5-3 s on a loaded machine, longer than the whole shutdown, to free memory the OS
        # takes back anyway. Frozen objects are skipped by it (refcounts still free them).
        gc.freeze()


def _is_bad_setup(exc: Exception) -> bool:
    """A key that cannot be loaded, a console port, state file or events path that cannot be
    used: one line and exit 2. Imported here, not at the top, so an early error imports none
    of it."""
    from app.console_errors import ConsoleServerError
    from app.console_state import ConsoleStateError
    from app.event_log import EventSinkError
    from kalshi_api.auth import KeyLoadError

    return isinstance(exc, KeyLoadError | ConsoleServerError | ConsoleStateError | EventSinkError)


def _exchange_and_signer(
    settings: RunSettings,
) -> tuple[EmbeddedExchange | None, KalshiSigner, str, str]:
    """The embedded exchange (``--env local`` without URLs) or the remote endpoints, and
    the signer for them. Key paths may come from any source; the key never leaves here."""
    from kalshi_api.environments import resolve_endpoints

    environment = settings.env
    if environment is Environment.LOCAL and not (settings.rest_url or settings.ws_url):
        if settings.key_id or settings.private_key:
            raise ConfigError(
                "--key-id/--private-key need --env paper|production or --rest-url/--ws-url"
            )
        from app.bootstrap import start_embedded_exchange
        from kalshi_api.auth import load_signer

        exchange = start_embedded_exchange(
            markets=settings.exchange_markets,
            delta_rate=settings.exchange_rate,
            seed=settings.exchange_seed,
            take_rate=min(settings.exchange_take_rate, settings.exchange_rate),
        )
        try:
            signer = load_signer(exchange.key_id, exchange.private_key_path)
        except BaseException:
            exchange.stop()
            raise
        return exchange, signer, exchange.rest_url, exchange.ws_url
    try:
        endpoints = resolve_endpoints(environment, settings.rest_url, settings.ws_url)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    key_id = settings.key_id or os.environ.get("KALSHI_API_KEY_ID")
    key_path = settings.private_key or os.environ.get("KALSHI_PRIVATE_KEY_PATH")
    if not key_id:
        raise ConfigError(
            f"--env {environment.value} needs an API key id: --key-id or KALSHI_API_KEY_ID"
        )
    if not key_path and not os.environ.get("KALSHI_PRIVATE_KEY"):
        raise ConfigError(
            f"--env {environment.value} needs a private key: "
            "--private-key or KALSHI_PRIVATE_KEY_PATH"
        )
    from kalshi_api.auth import load_signer  # cryptography: only once a key is named

    return None, load_signer(key_id, key_path), endpoints.rest_url, endpoints.ws_url


def _preflight_interruptibly(config: SupervisorConfig, signer: KalshiSigner) -> None:
    """``_preflight`` on a worker thread while this (main) thread waits, counting SIGINT and
    SIGTERM, and turns one into ``KeyboardInterrupt`` here.

    Why: the check blocks in the HTTP client for up to ``--request-timeout``. A
    ``KeyboardInterrupt`` raised inside it lands between two bytecodes of the client's
    connection pool, which can leave one of its locks held; closing the client then waits on
    that lock for ever (seen beside a CPU hog: a Ctrl-C during the check, and the process
    never exited). Raised here it lands only in this loop. The worker is a daemon: an
    interrupted check is abandoned with the process."""
    failed: list[BaseException] = []
    done = threading.Event()

    def check() -> None:
        try:
            _preflight(config, signer)
        except BaseException as exc:  # handed to the main thread, never lost
            failed.append(exc)
        finally:
            done.set()

    with SignalCounter(*STOP_SIGNALS) as signals:
        threading.Thread(target=check, name="preflight", daemon=True).start()
        while not done.wait(SIGNAL_POLL):
            if signals.any():
                break
        if signals.any():
            raise KeyboardInterrupt
    if failed:
        raise failed[0]


def _preflight(config: SupervisorConfig, signer: KalshiSigner) -> None:
    """Fail fast, with one line and exit 2, on what no restart can fix: an exchange that
    cannot be reached, or markets that do not exist there."""
    from actors.markets import resolve_markets
    from kalshi_api.errors import KalshiError, TransportError
    from kalshi_api.rest import KalshiRestClient, RetryPolicy

    try:
        with KalshiRestClient(
            config.rest_url, timeout=config.request_timeout, retry=RetryPolicy(max_attempts=1)
        ) as client:
            client.get_exchange_status()
        if config.markets is not None:
            resolve_markets(config, signer)
    except TransportError as exc:
        raise ConfigError(f"cannot reach {config.rest_url}: {exc}") from None
    except LookupError as exc:
        raise ConfigError(str(exc)) from None
    except KalshiError as exc:
        logger.warning("exchange check failed (continuing; the supervisor will retry): %s", exc)


def wait_for_stop(
    signals: SignalCounter, stopped: threading.Event, reopen: Callable[[], None]
) -> bool:
    """The main thread's loop while the supervisor runs: until SIGINT or SIGTERM (True) or
    the supervisor stopping by itself (False). Each SIGHUP meanwhile calls ``reopen`` here
    (log rotation: the events file is reopened on this thread, never in a handler).

    The handlers only count (``cli.signals``) and never touch ``stopped``, so a signal
    landing while this thread holds ``stopped``'s lock cannot deadlock it (issue 17)."""
    reopened = 0
    while not signals.any(*STOP_SIGNALS):
        if stopped.wait(SIGNAL_POLL):
            return False
        hangups = signals.count(signal.SIGHUP)
        if hangups != reopened:
            reopened = hangups
            reopen()
    return True


def _serve(
    settings: RunSettings,
    config: SupervisorConfig,
    signer: KalshiSigner,
    exchange: EmbeddedExchange | None,
    services: Sequence[ServiceSpec] = (),
) -> int:
    from app.console import ConsoleView
    from app.console_state import default_state_path
    from app.event_log import JsonLinesSink
    from app.handle import Supervisor
    from core.supervisor_actor import EventListener

    listeners: list[EventListener] = [ConsoleView()]
    sink = JsonLinesSink(settings.events) if settings.events else None
    if sink is not None:
        listeners.append(sink)
    state_file = settings.state_file or default_state_path()
    supervisor = Supervisor(
        config,
        signer,
        listeners=listeners,
        exchange=exchange,
        state_file=state_file,
        services=services,
    )
    ended = False
    with SignalCounter(*STOP_SIGNALS, signal.SIGHUP) as signals:
        try:
            supervisor.start()
            if supervisor.console is not None:
                # One write, so the line cannot interleave with the console view's output.
                sys.stderr.write(f"kalshi-supervisor: console at {supervisor.console.url}/\n")
                sys.stderr.flush()
            wait_for_stop(signals, supervisor.stopped, sink.reopen if sink else lambda: None)
            ended = True
        finally:
            # Every way out (an error in start or in the loop too) stops what started and
            # withdraws control.json; a second signal meanwhile is only counted.
            if signals.any(*STOP_SIGNALS):
                reason = "interrupted by signal"
            else:
                reason = "supervisor stopped" if ended else "stopped after an error"
            supervisor.shutdown(reason)
            if sink is not None:
                sink.close()
    gave_up = supervisor.recorder.events_by_type["escalation"] > 0
    return EXIT_GAVE_UP if gave_up else EXIT_OK
