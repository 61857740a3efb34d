"""The embedded exchange: one object that owns the web server, the WebSocket feed and the truth.

It is what ``kalshi-supervisor run`` starts in-process when no credentials are given, what
``kalshi-supervisor exchange`` serves standalone, and what every test talks to over real
loopback sockets. Tests use it as the oracle: its books are the truth a client's books
must equal, its account is what a sync must report, its operation log says when
things happened, and its fault switches break things on command.

REST (``/trade-api/v2``) and WebSocket (``/trade-api/ws/v2``) share one port, as on
Kalshi's own hosts (:mod:`kalshi_sim.server`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Self

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from kalshi_sim.account import Account
from kalshi_sim.close_times import CloseSchedule
from kalshi_sim.engine_types import EngineOptions, MemberTruth
from kalshi_sim.faults import ExchangeFaults, SimFault
from kalshi_sim.keys import DEFAULT_MAX_CLOCK_SKEW, KeyRegistry
from kalshi_sim.markets import MarketSet
from kalshi_sim.oplog import OperationLog
from kalshi_sim.pause_faults import PauseFaults
from kalshi_sim.rest_server import RestApi
from kalshi_sim.status import ExchangeStatusBoard
from kalshi_sim.trading_desk import MemberKey, TradingDesk
from kalshi_sim.trading_faults import TradingFault, TradingFaults, TradingSettings, parse_spec
from kalshi_sim.wire import REST_PREFIX, WS_PATH
from kalshi_sim.write_limits import WriteLimits
from kalshi_sim.ws_server import WsFeed

if TYPE_CHECKING:
    from webstack.server_thread import ServerThread


@dataclass(frozen=True)
class ExchangeConfig:
    """How the embedded exchange behaves; every default is what a laptop demo wants."""

    host: str = "127.0.0.1"
    """Loopback by default: the demo exchange accepts the demo key, which is on disk."""
    port: int = 0
    """The one port for REST and WebSocket; 0 picks a free one."""
    markets: int = 20
    delta_rate: float = 50.0
    """Deltas per second across all markets; 0 stops the stream (books stay still)."""
    take_rate: float = 0.0
    """Of those, how many per second are the built-in participant taking liquidity (an IOC
    trading with the best resting order: the house's, or a user's); 0 = never, so books only
    move by quotes and tests stay deterministic. At most ``delta_rate``."""
    seed: int = 0
    page_size: int = 100
    """Largest page the REST listings return, whatever ``limit`` the client asks."""
    read_tokens_per_second: int | None = 200
    """Kalshi Basic tier read budget (cost 10 a request); None disables rate limiting."""
    ping_interval: float = 10.0
    """Seconds between WebSocket pings (payload ``heartbeat``, as Kalshi); 0 sends none."""
    max_connections: int = 256
    """Concurrent connections, REST and WebSocket together, before new ones get 503."""
    idle_timeout: float = 5.0
    """Seconds a connection may stay silent (before its first request, or between
    keep-alive requests) before it is closed, so silent clients cannot pin slots."""
    signature_max_age: float | None = DEFAULT_MAX_CLOCK_SKEW
    """Seconds a request's signed timestamp may be stale (or ahead of this clock) before it
    is refused with 401, as Kalshi refuses stale signatures; None accepts any age."""
    key_dir: Path | None = None
    """Where the demo private key is written (mode 0600); a fresh temp dir when None."""
    demo_key: RSAPrivateKey | None = field(default=None, repr=False, compare=False)
    """The key pair of the demo account and of each member :meth:`EmbeddedExchange.add_member`
    adds; None generates a fresh RSA-2048 pair for each, ~0.1 s of CPU apiece. A test suite
    that starts hundreds of exchanges passes one pair to all: every account still has its
    own key id, and a key id one exchange issued is unknown to another."""
    usage_tier: str = "basic"
    """The API usage tier ``GET /account/limits`` reports; it sizes each member's Write
    bucket (Basic: 100 tokens/s, holding 1 s; a create costs 10, a cancel 2)."""
    write_limit: bool = True
    """False disables the Write bucket (writes are never answered 429)."""
    max_batch_size: int = 20
    """Orders per batch create/cancel (by tier on Kalshi, UNCONFIRMED; v1's was 20)."""
    cancel_all_cost: int = 2
    """Write tokens a cancel-all costs: 2 per [OAS31], "a max-size batch cancel" per v3.29."""
    engine_options: EngineOptions | None = None
    """The matching engine's UNCONFIRMED choices (§8); None takes every default."""
    cancel_all_tail_s: float = 60.0
    """Orders placed up to this long after a cancel-all are cancelled too; 0 disables."""
    read_lag_ms: int = 0
    """REST portfolio reads show the state as of this long ago."""
    private_events: Literal["before", "after"] = "after"
    """A write's private WS events go out before its REST reply, or after it."""
    trading_faults: tuple[str, ...] = ()
    """Trading faults armed at start (``kalshi_sim.trading_faults.parse_spec`` specs)."""


class EmbeddedExchange:
    """A protocol-faithful Kalshi exchange on loopback, startable in-process or standalone."""

    def __init__(self, config: ExchangeConfig | None = None) -> None:
        self.config = config or ExchangeConfig()
        self.oplog = OperationLog()
        self.faults = ExchangeFaults()
        rate = self.config.delta_rate
        self.markets = MarketSet.generate(
            count=self.config.markets,
            seed=self.config.seed,
            take_probability=min(1.0, self.config.take_rate / rate) if rate > 0 else 0.0,
            engine_options=self.config.engine_options,
        )
        self.account = Account.demo(self.markets, seed=self.config.seed)
        self.close_times = CloseSchedule()
        """Each market's close time; a market past a scheduled close reads as closed."""
        self.status = ExchangeStatusBoard()
        """Pause switches (trading per shard, whole exchange) behind ``/exchange/status``."""
        self.pauses = PauseFaults(self.status)
        """The pause faults: the same switches, with a timed end (``resume_in``)."""
        self._key_dir_owner: tempfile.TemporaryDirectory[str] | None = None
        key_dir = self.config.key_dir
        if key_dir is None:
            self._key_dir_owner = tempfile.TemporaryDirectory(prefix="kalshi-sim-")
            key_dir = Path(self._key_dir_owner.name)
        self._key_dir = key_dir
        self.keys = KeyRegistry(self.config.signature_max_age)
        self.key_id, self.private_key_path = self.keys.create_demo_key(
            key_dir, self.config.demo_key
        )
        config = self.config
        self.trading = TradingDesk(self)
        """The engine's calls with the calendar sweep, members and lagged reads."""
        self.trading.settings.cancel_all_tail_s = config.cancel_all_tail_s
        self.trading.settings.read_lag_ms = config.read_lag_ms
        self.trading.settings.private_events = config.private_events
        self.trading.register_member(self.key_id, self.account.member, None)
        self.write_limits = WriteLimits(
            config.usage_tier, enabled=config.write_limit, cancel_all_cost=config.cancel_all_cost
        )
        """Each member's Write token bucket at the exchange's usage tier."""
        self.rest = RestApi(self)
        self.ws = WsFeed(self)
        self.trading.add_listener(self.ws.on_outcome)
        self.markets.add_listener(self.trading.publish)  # the demo account's fixture changes
        for spec in config.trading_faults:
            self.arm_trading_fault(spec)
        self.status.on_exchange_pause(self.ws.on_exchange_paused)
        """The WebSocket feed: exchange-side WS faults live here (drop, gap, malformed, stall)."""
        self._server: ServerThread | None = None
        self._port = 0

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> Self:
        """Bind and start serving; returns once connections are accepted (and deltas flow).

        Raises :class:`webstack.server_thread.ServerStartError` (one line) when the port
        cannot be bound.
        """
        if self._server is None:
            # Imported here: the web stack costs ~100 ms to import, and the CLI imports
            # this module for subcommands that never start an exchange.
            from kalshi_sim.server import exchange_server

            server = exchange_server(self)
            server.start()
            self._server, self._port = server, server.port
        return self

    def stop(self) -> None:
        """Close every connection and the socket within 2 s, whatever clients do; idempotent."""
        server, self._server = self._server, None
        if server is not None:
            self.faults.release_all()  # a held request must not outlive the server
            self.pauses.stop()
            self.ws.stop()
            server.stop()
        if self._key_dir_owner is not None:
            self._key_dir_owner.cleanup()
            self._key_dir_owner = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses -----------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The bound port, shared by REST and WebSocket (the last one once stopped)."""
        return self._port

    @property
    def rest_url(self) -> str:
        return f"http://{self._authority}{REST_PREFIX}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self._authority}{WS_PATH}"

    @property
    def _authority(self) -> str:
        host = self.config.host
        return f"[{host}]:{self._port}" if ":" in host else f"{host}:{self._port}"

    # -- the stream, for tests -------------------------------------------------------------
    def pause_stream(self) -> None:
        """Stop generating deltas; returns once no further delta will be sent."""
        self.ws.pause()

    def resume_stream(self) -> None:
        self.ws.resume()

    def apply_fault(
        self,
        fault: str,
        *,
        seconds: float | None = None,
        count: int | None = None,
        shard: int | None = None,
        resume_in: float | None = None,
    ) -> None:
        """Break the exchange as ``kalshi-supervisor inject exchange FAULT`` asks.

        ``fault`` is a :class:`SimFault` value (any ``str`` enum with the same values
        works, so callers above this layer need not import ours). Defaults: the next 3
        REST requests fail, 1 authentication is rejected, a stall lasts 2 s. The pauses
        (``pause_trading`` on ``shard`` or every shard, ``pause_exchange``) last until
        ``resume`` or, given ``resume_in``, until then (advertised as the estimated resume
        time). Every other fault acts once, on every live connection. An unknown name, or
        a shard this exchange does not have, raises ValueError.
        """
        kind = SimFault(str(fault))
        failing = count or 3
        actions: dict[SimFault, Callable[[], object]] = {
            SimFault.WS_DROP: self.ws.drop_connections,
            SimFault.SEQ_GAP: self.ws.skip_seq,
            SimFault.MALFORMED_FRAME: self.ws.send_malformed,
            SimFault.STALL: lambda: self.ws.stall(seconds or 2.0),
            SimFault.REST_5XX: lambda: self.faults.fail_next_requests(failing, 500),
            SimFault.REST_429: lambda: self.faults.fail_next_requests(failing, 429),
            SimFault.AUTH_REJECT: lambda: self.faults.reject_auth(count or 1),
            SimFault.PAUSE_TRADING: lambda: self.pauses.pause_trading(shard, resume_in),
            SimFault.PAUSE_EXCHANGE: lambda: self.pauses.pause_exchange(resume_in),
            SimFault.RESUME: self.pauses.resume,
        }
        actions[kind]()

    # -- trading -----------------------------------------------------------------------------
    @property
    def trading_faults(self) -> TradingFaults:
        """One-shot trading faults (:mod:`kalshi_sim.trading_faults`): arm, then write."""
        return self.trading.faults

    @property
    def trading_settings(self) -> TradingSettings:
        """Read lag, private-event order, cancel-all's tail: plain attributes, set any time."""
        return self.trading.settings

    def add_member(
        self, member: str, cash_by_shard_cents: dict[int, int] | None = None
    ) -> MemberKey:
        """A new trading member with its own API key (private half in a 0600 file; the pair is
        ``config.demo_key`` when set) and cash (default $1,000 on shard 0). Its orders, fills
        and private events are its own."""
        if member in self.trading.members():
            raise ValueError(f"member {member!r} exists")
        key_id, path = self.keys.create_demo_key(self._key_dir, self.config.demo_key)
        self.trading.register_member(key_id, member, cash_by_shard_cents or {0: 100_000})
        return MemberKey(member, key_id, path)

    def truth(self, member: str | None = None) -> dict[str, MemberTruth]:
        """The exchange's own view of every member (or one): orders, fills, positions,
        cash, settlements and groups, unlagged; what a client's view is compared against."""
        members = [member] if member is not None else self.trading.members()
        return {m: self.trading.truth(m) for m in members}

    def arm_trading_fault(self, spec: str) -> None:
        """Arm a trading fault from its spec (``kalshi_sim.trading_faults.parse_spec``), as
        ``--trading-fault`` and ``POST /_sim/trading_faults`` do; ValueError (one line) if bad."""
        fault, options = parse_spec(spec)
        if fault is TradingFault.LOSE_PRIVATE_EVENTS:
            member = options.pop("member", None)
            if options:
                raise ValueError(f"lose_private_events takes only member=, not {sorted(options)}")
            self.ws.lose_private_events(None if member is None else str(member))
            return
        if "member" in options:
            raise ValueError(f"{fault} takes no member=")
        self.trading.faults.arm(fault, **options)  # type: ignore[arg-type]
