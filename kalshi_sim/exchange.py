"""The embedded exchange: one object that owns the REST server, the WebSocket server and the truth.

It is what ``kalshi-supervisor run`` starts in-process when no credentials are given, what
``kalshi-supervisor exchange`` serves standalone, and what every test talks to over real
loopback sockets. Tests use it as the oracle: its books are the truth a client's books
must equal, its account is what a sync must report, its operation log says when
things happened, and its fault switches break things on command.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from kalshi_api.protocol import REST_PREFIX, WS_PATH
from kalshi_sim.account import Account
from kalshi_sim.faults import ExchangeFaults
from kalshi_sim.keys import KeyRegistry
from kalshi_sim.markets import MarketSet
from kalshi_sim.oplog import OperationLog
from kalshi_sim.rest_server import RestServer
from kalshi_sim.ws_server import WsServer
from messages.faults import ExchangeFault


@dataclass(frozen=True)
class ExchangeConfig:
    """How the embedded exchange behaves; every default is what a laptop demo wants."""

    host: str = "127.0.0.1"
    rest_port: int = 0
    ws_port: int = 0
    markets: int = 20
    delta_rate: float = 50.0
    """Deltas per second across all markets; 0 stops the stream (books stay still)."""
    seed: int = 0
    page_size: int = 100
    """Largest page the REST listings return, whatever ``limit`` the client asks."""
    read_tokens_per_second: int | None = 200
    """Kalshi Basic tier read budget (cost 10 a request); None disables rate limiting."""
    ping_interval: float = 10.0
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
        self._key_dir_owner: tempfile.TemporaryDirectory[str] | None = None
        key_dir = self.config.key_dir
        if key_dir is None:
            self._key_dir_owner = tempfile.TemporaryDirectory(prefix="kalshi-sim-")
            key_dir = Path(self._key_dir_owner.name)
        self.keys = KeyRegistry()
        self.key_id, self.private_key_path = self.keys.create_demo_key(key_dir)
        self._rest = RestServer(self)
        self._ws = WsServer(self)
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> Self:
        """Bind both servers and start streaming; returns once both accept connections."""
        if not self._started:
            self._rest.start(self.config.host, self.config.rest_port)
            try:
                self._ws.start(self.config.host, self.config.ws_port)
            except BaseException:
                self._rest.stop()
                raise
            self._started = True
        return self

    def stop(self) -> None:
        """Close every connection and socket; idempotent."""
        if self._started:
            self._ws.stop()
            self._rest.stop()
            self._started = False
        if self._key_dir_owner is not None:
            self._key_dir_owner.cleanup()
            self._key_dir_owner = None

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
    def rest_url(self) -> str:
        return f"http://{self.config.host}:{self._rest.port}{REST_PREFIX}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.config.host}:{self._ws.port}{WS_PATH}"

    # -- the stream, for tests -------------------------------------------------------------
    def pause_stream(self) -> None:
        """Stop generating deltas; returns once no further delta will be sent."""
        self._ws.pause()

    def resume_stream(self) -> None:
        self._ws.resume()

    def apply_fault(
        self, fault: ExchangeFault, *, seconds: float | None = None, count: int | None = None
    ) -> None:
        """Break the exchange as ``kalshi-supervisor inject exchange FAULT`` asks.

        Defaults: the next 3 REST requests fail, 1 authentication is rejected, a stall lasts
        2 s. Every other fault acts once, on every live connection.
        """
        failing = count or 3
        actions: dict[ExchangeFault, Callable[[], object]] = {
            ExchangeFault.WS_DROP: self._ws.drop_connections,
            ExchangeFault.SEQ_GAP: self._ws.skip_seq,
            ExchangeFault.MALFORMED_FRAME: self._ws.send_malformed,
            ExchangeFault.STALL: lambda: self._ws.stall(seconds or 2.0),
            ExchangeFault.REST_5XX: lambda: self.faults.fail_next_requests(failing, 500),
            ExchangeFault.REST_429: lambda: self.faults.fail_next_requests(failing, 429),
            ExchangeFault.AUTH_REJECT: lambda: self.faults.reject_auth(count or 1),
        }
        actions[fault]()

    @property
    def ws(self) -> WsServer:
        """The WebSocket server: exchange-side WS faults live here (drop, gap, malformed, stall)."""
        return self._ws

    @property
    def rest(self) -> RestServer:
        return self._rest
