"""Running the supervisor: the in-process handle (``Supervisor``) and the CLI (``main``).

The handle starts the console server (page, event feed, status, inject), the supervisor
actor and, for the ``local`` environment, the embedded exchange, and gives code and tests
one object to wait on, inject faults through and shut down.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import random
import signal
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import pykka

from actors.markets import resolve_markets
from actors.registry import DEFAULT_STAGES, StageSpec
from app.console import ConsoleView
from app.console_errors import ConsoleServerError
from app.control_state import (
    ControlEndpoint,
    ControlStateError,
    default_state_path,
    new_token,
    publish_endpoint,
    withdraw_endpoint,
)
from app.event_log import EventRecorder, EventSinkError, JsonLinesSink
from core.event_bus import EventBus, EventListener
from core.supervisor_actor import SupervisorActor
from kalshi_api.auth import KalshiSigner, KeyLoadError, load_signer
from kalshi_api.environments import Environment, resolve_endpoints
from kalshi_sim.exchange import EmbeddedExchange, ExchangeConfig
from messages.commands import Shutdown
from messages.faults import InjectFault
from messages.states import State
from supervision.config import RestartSettings, SupervisorConfig
from supervision.policy import RestartType, Strategy
from supervision.scheduler import Scheduler
from supervision.state_machine import render_mermaid

if TYPE_CHECKING:
    from app.console_server import ConsoleServer

logger = logging.getLogger("kalshi_supervisor")

EXIT_OK, EXIT_GAVE_UP, EXIT_BAD_CONFIG = 0, 1, 2


class ConfigError(ValueError):
    """Bad configuration: reported as one line and exit code 2."""


class Supervisor:
    """A running supervisor: start it, wait on its states, inject faults, shut it down."""

    def __init__(
        self,
        config: SupervisorConfig,
        signer: KalshiSigner,
        *,
        stages: Sequence[StageSpec] = DEFAULT_STAGES,
        listeners: Iterable[EventListener] = (),
        inline_listeners: Iterable[EventListener] = (),
        scheduler: Scheduler | None = None,
        rng: random.Random | None = None,
        exchange: EmbeddedExchange | None = None,
        state_file: Path | None = None,
    ) -> None:
        self.config = config
        self.exchange = exchange
        self.recorder = EventRecorder()
        self.stopped = threading.Event()
        self._signer = signer
        self._stages = tuple(stages)
        self._listeners = [self.recorder, *listeners]
        self._inline_listeners = list(inline_listeners)
        self.events: EventBus | None = None
        """Listeners run on the bus's thread, never the supervisor's; closed by ``shutdown``."""
        self._scheduler = scheduler
        self._rng = rng
        self._state_file = state_file
        self._token = new_token()
        self._control: ConsoleServer | None = None
        self.ref: pykka.ActorRef[SupervisorActor] | None = None

    def start(self) -> Self:
        from app.console_server import ConsoleServer  # uvicorn and Starlette: only when serving

        self.events = EventBus(self._listeners)
        self._control = ConsoleServer(
            self.recorder,
            self.config.status_host,
            self.config.status_port,
            token=self._token,
            inject=self.inject,
            trading_enabled=self.config.trading_enabled,
        )
        self._control.start()
        try:
            if self._state_file is not None:
                publish_endpoint(
                    self._state_file,
                    ControlEndpoint(url=self._control.url, token=self._token, pid=os.getpid()),
                )
            self.ref = SupervisorActor.start(
                self.config,
                self._signer,
                status_address=self._control.address,
                stages=self._stages,
                events=self.events,
                inline_listeners=self._inline_listeners,
                scheduler=self._scheduler,
                rng=self._rng,
                exchange=self.exchange,
                stopped=self.stopped,
            )
        except BaseException:
            self._control.stop()
            self.events.close()
            self.events = None
            raise
        return self

    @property
    def state(self) -> State:
        return self.recorder.state

    @property
    def control_token(self) -> str:
        return self._token

    @property
    def control_url(self) -> str:
        return self._control.url if self._control else ""

    @property
    def console(self) -> ConsoleServer | None:
        """The console server (page, event feed, /metrics), while running."""
        return self._control

    def wait_for_state(self, state: State, timeout: float = 10.0, *, after: int = 0) -> bool:
        """Whether ``state`` is entered by an event with id > ``after`` (``recorder.last_id``)."""
        return self.recorder.wait_for_state(state, timeout, after=after) is not None

    def inject(self, fault: InjectFault) -> dict[str, Any]:
        """Deliver a fault through the supervisor (which publishes it and routes it)."""
        if self.ref is None or not self.ref.is_alive():
            return {"accepted": False, "error": "supervisor is not running"}
        try:
            reply = self.ref.ask(fault, timeout=5.0)
            if self.events is not None:
                self.events.flush(5.0)  # the FaultInjected event is recorded when this returns
            return reply
        except pykka.Timeout:
            return {"accepted": False, "error": "supervisor did not answer within 5s"}
        except pykka.ActorDeadError:
            return {"accepted": False, "error": "supervisor is not running"}

    def book_digests(self, timeout: float = 5.0) -> dict[str, str]:
        """Every live book's digest, comparable with ``exchange.markets.digest(ticker)``."""
        from actors.orderbook_connect import OrderbookConnectActor
        from messages.commands import BookDigests

        refs = pykka.ActorRegistry.get_by_class(OrderbookConnectActor)
        if not refs:
            raise LookupError("no orderbook stage is running")
        return refs[0].ask(BookDigests(timeout=timeout), timeout=timeout + 1.0)

    def shutdown(self, reason: str = "requested", timeout: float = 2.0) -> bool:
        """SHUTDOWN from any state: stop stages in reverse order, close every socket."""
        if self.ref is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                self.ref.tell(Shutdown(reason=reason))
            self.stopped.wait(timeout)
            with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                self.ref.stop(block=True, timeout=timeout)
        if self.events is not None:
            self.events.close()
        if self._control is not None:
            self._control.stop()
        if self._state_file is not None:
            withdraw_endpoint(self._state_file, os.getpid())
        return self.stopped.is_set()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()


# -- CLI ---------------------------------------------------------------------------------
class _DefaultsShown(argparse.ArgumentDefaultsHelpFormatter):
    """Show a flag's default only when it has a real one (no "(default: None)" noise)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or action.default == []:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kalshi-supervisor",
        description="Bring a Kalshi trading system from cold start to READY and keep it there.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="run the supervisor (default: on the embedded exchange)",
        formatter_class=_DefaultsShown,
    )
    _add_run_arguments(run)
    exchange = commands.add_parser("exchange", help="serve the embedded Kalshi exchange standalone")
    exchange.add_argument("--host", default="127.0.0.1")
    exchange.add_argument(
        "--port", type=int, default=0, help="REST port (WS uses port+1); 0 = any free"
    )
    exchange.add_argument("--markets", type=_positive_int, default=20)
    exchange.add_argument(
        "--rate", type=_non_negative_float, default=50.0, help="deltas per second"
    )
    exchange.add_argument("--seed", type=int, default=0)
    from cli.inject import add_inject_arguments

    add_inject_arguments(
        commands.add_parser("inject", help="inject a fault into a running supervisor")
    )
    commands.add_parser("diagram", help="print the state machine as a Mermaid diagram")
    return parser


def _add_run_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument(
        "--env",
        choices=[e.value for e in Environment],
        default=Environment.LOCAL.value,
        help="local = embedded exchange; paper = Kalshi demo; production = real money",
    )
    run.add_argument("--rest-url", help="override the REST base URL (…/trade-api/v2)")
    run.add_argument("--ws-url", help="override the WebSocket URL (…/trade-api/ws/v2)")
    run.add_argument("--key-id", help="API key id (default: $KALSHI_API_KEY_ID)")
    run.add_argument(
        "--private-key", help="private key PEM path (default: $KALSHI_PRIVATE_KEY_PATH)"
    )
    run.add_argument("--markets", help="comma-separated tickers; default: discover open markets")
    run.add_argument("--market-count", type=_positive_int, default=20, help="markets to discover")
    run.add_argument("--series", help="discover markets of this series only")
    run.add_argument(
        "--no-trading", action="store_true", help="orderbook only: skip trading and sync"
    )
    run.add_argument(
        "--use-yes-price", action="store_true", help="subscribe with use_yes_price=true"
    )
    run.add_argument(
        "--sync-interval", type=_positive_float, default=30.0, help="seconds between update syncs"
    )
    run.add_argument(
        "--status-host",
        default="127.0.0.1",
        help="console server host (page, feed, status, inject); non-loopback needs the token",
    )
    run.add_argument(
        "--status-port", type=int, default=8005, help="console server port (0 = any free)"
    )
    run.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        default="INFO",
        help="log level",
    )
    run.add_argument("--events", help="write every transition and event as JSON lines (- = stdout)")
    run.add_argument("--state-file", type=Path, help="where `inject` finds this supervisor")
    restart = run.add_argument_group("restart policy")
    restart.add_argument(
        "--strategy",
        choices=[s.value for s in Strategy],
        default=Strategy.REST_FOR_ONE.value,
        help="which stages restart with a failed one",
    )
    restart.add_argument(
        "--min-backoff", type=_positive_float, default=0.1, help="first restart delay (s)"
    )
    restart.add_argument(
        "--max-backoff", type=_positive_float, default=10.0, help="largest restart delay (s)"
    )
    restart.add_argument(
        "--random-factor",
        type=_non_negative_float,
        default=0.2,
        help="jitter: delay x (1 + factor x random)",
    )
    restart.add_argument(
        "--reset-after",
        type=_positive_float,
        default=30.0,
        help="seconds healthy that reset a stage's backoff",
    )
    restart.add_argument(
        "--max-restarts",
        type=_non_negative_int,
        default=5,
        help="restarts allowed within --restart-period before giving up",
    )
    restart.add_argument(
        "--restart-period", type=_positive_float, default=30.0, help="intensity window (s)"
    )
    restart.add_argument(
        "--deadline",
        action="append",
        default=[],
        metavar="STATE=SECONDS",
        help="per-state deadline, e.g. orderbook_connect=5 (repeatable)",
    )
    restart.add_argument(
        "--restart-type",
        action="append",
        default=[],
        metavar="STAGE=TYPE",
        help="per-stage restart type: permanent, transient or temporary (repeatable)",
    )
    embedded = run.add_argument_group("embedded exchange (--env local)")
    embedded.add_argument(
        "--exchange-markets",
        type=_positive_int,
        default=30,
        help="markets on the embedded exchange",
    )
    embedded.add_argument(
        "--exchange-rate",
        type=_non_negative_float,
        default=50.0,
        help="deltas per second on the embedded exchange",
    )
    embedded.add_argument(
        "--exchange-seed", type=int, default=0, help="seed of the embedded exchange's markets"
    )


def _number(kind: type, check: Any, description: str) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {description}") from None
        if not math.isfinite(value) or not check(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a {description}")
        return value

    return parse


_positive_int = _number(int, lambda v: v > 0, "positive integer")
_non_negative_int = _number(int, lambda v: v >= 0, "non-negative integer")
_positive_float = _number(float, lambda v: v > 0, "positive number")
_non_negative_float = _number(float, lambda v: v >= 0, "non-negative number")


def config_from_args(args: argparse.Namespace, *, rest_url: str, ws_url: str) -> SupervisorConfig:
    """Turn parsed arguments into a validated config, or raise ConfigError with one line."""
    from pydantic import ValidationError

    deadlines: dict[State, float] = {}
    for item in args.deadline:
        name, _, seconds = item.partition("=")
        try:
            deadlines[State(name.strip().lower())] = float(seconds)
        except ValueError:
            raise ConfigError(
                f"--deadline {item!r}: expected STATE=SECONDS, e.g. orderbook_connect=5"
            ) from None
    restart_types: dict[str, RestartType] = {}
    for item in args.restart_type:
        stage, _, kind = item.partition("=")
        if stage.strip() not in {s.name for s in DEFAULT_STAGES}:
            raise ConfigError(f"--restart-type {item!r}: unknown stage {stage.strip()!r}")
        try:
            restart_types[stage.strip()] = RestartType(kind.strip().lower())
        except ValueError:
            raise ConfigError(
                f"--restart-type {item!r}: expected STAGE=permanent|transient|temporary"
            ) from None
    markets = None
    if args.markets is not None:
        markets = tuple(t.strip() for t in args.markets.split(",") if t.strip())
    try:
        return SupervisorConfig(
            environment=Environment(args.env),
            rest_url=rest_url,
            ws_url=ws_url,
            markets=markets,
            market_count=args.market_count,
            series=args.series,
            trading_enabled=not args.no_trading,
            use_yes_price=args.use_yes_price,
            sync_interval=args.sync_interval,
            status_host=args.status_host,
            status_port=args.status_port,
            log_level=args.log_level,
            deadlines=deadlines,
            restart=RestartSettings(
                strategy=Strategy(args.strategy),
                min_backoff=args.min_backoff,
                max_backoff=args.max_backoff,
                random_factor=args.random_factor,
                reset_after=args.reset_after,
                max_restarts=args.max_restarts,
                period=args.restart_period,
                restart_types=restart_types,
            ),
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{where}: {message}" if where else message) from None


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # One line per HTTP request / WS connection drowns the state progression a person watches.
    for noisy in ("httpx", "httpcore", "websockets"):
        logging.getLogger(noisy).setLevel(
            max(logging.WARNING, logging.getLevelName(args.log_level))
        )
    exchange: EmbeddedExchange | None = None
    environment = Environment(args.env)
    # Until _serve installs its handlers, SIGTERM interrupts like Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        if environment is Environment.LOCAL and not (args.rest_url or args.ws_url):
            if args.key_id or args.private_key:
                raise ConfigError(
                    "--key-id/--private-key need --env paper|production or --rest-url/--ws-url"
                )
            exchange = EmbeddedExchange(
                ExchangeConfig(
                    markets=args.exchange_markets,
                    delta_rate=args.exchange_rate,
                    seed=args.exchange_seed,
                )
            ).start()
            rest_url, ws_url = exchange.rest_url, exchange.ws_url
            signer = load_signer(exchange.key_id, exchange.private_key_path)
        else:
            try:
                endpoints = resolve_endpoints(environment, args.rest_url, args.ws_url)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
            rest_url, ws_url = endpoints.rest_url, endpoints.ws_url
            key_id = args.key_id or os.environ.get("KALSHI_API_KEY_ID")
            key_path = args.private_key or os.environ.get("KALSHI_PRIVATE_KEY_PATH")
            if not key_id:
                raise ConfigError(
                    f"--env {environment.value} needs an API key id: --key-id or KALSHI_API_KEY_ID"
                )
            if not key_path and not os.environ.get("KALSHI_PRIVATE_KEY"):
                raise ConfigError(
                    f"--env {environment.value} needs a private key: "
                    "--private-key or KALSHI_PRIVATE_KEY_PATH"
                )
            signer = load_signer(key_id, key_path)
        config = config_from_args(args, rest_url=rest_url, ws_url=ws_url)
        _preflight(config, signer)
        return _serve(args, config, signer, exchange)
    except (
        ConfigError,
        KeyLoadError,
        ConsoleServerError,
        ControlStateError,
        EventSinkError,
    ) as exc:
        print(f"kalshi-supervisor: error: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    except KeyboardInterrupt:
        print("kalshi-supervisor: interrupted before the supervisor started", file=sys.stderr)
        return EXIT_OK
    finally:
        if exchange is not None:
            exchange.stop()


def _preflight(config: SupervisorConfig, signer: KalshiSigner) -> None:
    """Fail fast, with one line and exit 2, on what no restart can fix: an exchange that
    cannot be reached, or markets that do not exist there."""
    from kalshi_api.errors import KalshiError, TransportError
    from kalshi_api.rest import KalshiRestClient, RetryPolicy

    try:
        with KalshiRestClient(
            config.rest_url, timeout=5.0, retry=RetryPolicy(max_attempts=1)
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


def _serve(
    args: argparse.Namespace,
    config: SupervisorConfig,
    signer: KalshiSigner,
    exchange: EmbeddedExchange | None,
) -> int:
    listeners: list[EventListener] = [ConsoleView()]
    sink = JsonLinesSink(args.events) if args.events else None
    if sink is not None:
        listeners.append(sink)
    state_file = args.state_file or default_state_path()
    supervisor = Supervisor(
        config, signer, listeners=listeners, exchange=exchange, state_file=state_file
    )
    interrupted = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        interrupted.set()

    def on_hangup(signum: int, frame: Any) -> None:
        # Log rotation: reopen the events file on a thread, never inside the handler.
        if sink is not None:
            threading.Thread(target=sink.reopen, name="events-reopen", daemon=True).start()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, on_hangup)
    try:
        supervisor.start()
        if supervisor.console is not None:
            # One write, so the line cannot interleave with the console view's output.
            sys.stderr.write(f"kalshi-supervisor: console at {supervisor.console.url}/\n")
            sys.stderr.flush()
        while not interrupted.is_set() and not supervisor.stopped.is_set():
            interrupted.wait(0.1)
        reason = "interrupted by signal" if interrupted.is_set() else "supervisor stopped"
        supervisor.shutdown(reason)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if sink is not None:
            sink.close()
    gave_up = any(e.type == "escalation" for e in supervisor.recorder.events())
    return EXIT_GAVE_UP if gave_up else EXIT_OK


def _serve_exchange(args: argparse.Namespace) -> int:
    import json

    ws_port = args.port + 1 if args.port else 0
    try:
        exchange = EmbeddedExchange(
            ExchangeConfig(
                host=args.host,
                rest_port=args.port,
                ws_port=ws_port,
                markets=args.markets,
                delta_rate=args.rate,
                seed=args.seed,
            )
        ).start()
    except OSError as exc:
        print(
            f"kalshi-supervisor: error: cannot serve on {args.host}:{args.port}: "
            f"{exc.strerror or exc}",
            file=sys.stderr,
        )
        return EXIT_BAD_CONFIG
    done = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: done.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        print(
            json.dumps(
                {
                    "rest_url": exchange.rest_url,
                    "ws_url": exchange.ws_url,
                    "key_id": exchange.key_id,
                    "private_key": str(exchange.private_key_path),
                }
            ),
            flush=True,
        )
        while not done.is_set():
            done.wait(0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        exchange.stop()
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_BAD_CONFIG
    if args.command == "run":
        return _run(args)
    if args.command == "exchange":
        return _serve_exchange(args)
    if args.command == "inject":
        from cli.inject import run_inject

        return run_inject(args)
    print(render_mermaid())
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
