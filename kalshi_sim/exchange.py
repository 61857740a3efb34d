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
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

from kalshi_sim.account import Account
from kalshi_sim.close_times import CloseSchedule
from kalshi_sim.faults import ExchangeFaults, SimFault
from kalshi_sim.keys import DEFAULT_MAX_CLOCK_SKEW, KeyRegistry
from kalshi_sim.markets import MarketSet
from kalshi_sim.oplog import OperationLog
from kalshi_sim.pause_faults import PauseFaults
from kalshi_sim.rest_server import RestApi
from kalshi_sim.status import ExchangeStatusBoard
from kalshi_sim.wire import REST_PREFIX, WS_PATH
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


class EmbeddedExchange:
    """A protocol-faithful Kalshi exchange on loopback, startable in-process or standalone."""

    def __init__(self, config: ExchangeConfig | None = None) -> None:
        self.config = config or ExchangeConfig()
        self.oplog = OperationLog()
        self.faults = ExchangeFaults()
        self.markets = MarketSet.generate(count=self.config.markets, seed=self.config.seed)
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
        self.keys = KeyRegistry(self.config.signature_max_age)
        self.key_id, self.private_key_path = self.keys.create_demo_key(key_dir)
        self.rest = RestApi(self)
        self.ws = WsFeed(self)
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
