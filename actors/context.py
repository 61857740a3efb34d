"""The read-only facts a stage actor is started with: where to connect and as whom.

It deliberately holds no metadata and no results of other stages: an actor can only
build its metadata from its own context and its own connection.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from messages.metadata import TradingMode

if TYPE_CHECKING:
    from kalshi_api.auth import KalshiSigner
    from kalshi_api.book_changes import BookChangeFeed
    from kalshi_api.market_facts import MarketFacts
    from supervision.config import SupervisorConfig


@dataclass(frozen=True)
class StageContext:
    environment: str
    mode: TradingMode
    rest_url: str
    ws_url: str
    signer: KalshiSigner
    markets: tuple[str, ...]
    use_yes_price: bool = False
    request_timeout: float = 5.0
    reconnect_min_delay: float = 0.05
    reconnect_max_delay: float = 30.0
    subscribe_chunk: int = 200
    stale_after: float = 15.0
    discovery: bool = False
    """Markets were discovered (not named): a refresh may add and drop markets."""
    series: str | None = None
    market_count: int | None = None
    book_changes: BookChangeFeed | None = None
    """The supervisor's book-change feed: the orderbook stream marks it, services read it."""
    market_facts: Mapping[str, MarketFacts] = field(default_factory=dict)
    """What INITIALIZING's listing said about each market (status, close time)."""
    market_facts_fresh: bool = False
    """Whether those facts were read just before this stage started (not a restart)."""
    private_events: Callable[[object], None] | None = field(default=None, compare=False)
    """Who hears the trading stage's private events (fills, user orders, positions, group
    updates, ``PrivateConnected``, ``OrderGroupGap``): the order gateway, wired by the app;
    None when nothing listens. Called on the private channels' thread: it must not block."""
    order_group_limit: Decimal | None = None
    """Contracts the session's order group lets fill per rolling 15 s; None: no group."""
    startup_orders: Literal["cancel", "adopt", "leave"] = "cancel"
    trading_allowed: bool = True
    """False in production without ``--allow-production-trading``: the stage writes nothing."""
    dry_run: bool = False
    order_id_prefix: str = "ks"
    order_id_state: Path | None = None

    @classmethod
    def from_config(
        cls,
        config: SupervisorConfig,
        signer: KalshiSigner,
        *,
        markets: tuple[str, ...],
        market_facts: Mapping[str, MarketFacts],
        market_facts_fresh: bool,
        book_changes: BookChangeFeed | None,
        private_events: Callable[[object], None] | None = None,
        id_state: Path | None = None,
    ) -> StageContext:
        """The context every stage of a run starts with: the configuration's facts, and the
        markets INITIALIZING resolved; ``private_events`` (the order gateway's link) and
        ``id_state`` (the id allocator's state file) are the app's."""
        return cls(
            environment=config.environment.value,
            mode=config.trading_mode,
            rest_url=config.rest_url,
            ws_url=config.ws_url,
            signer=signer,
            markets=markets,
            market_facts=market_facts,
            market_facts_fresh=market_facts_fresh,
            use_yes_price=config.use_yes_price,
            request_timeout=config.request_timeout,
            book_changes=book_changes,
            reconnect_max_delay=config.reconnect_max_delay,
            subscribe_chunk=config.subscribe_chunk,
            stale_after=config.stale_after,
            discovery=config.markets is None,
            series=config.series,
            market_count=config.market_count,
            private_events=private_events,
            order_group_limit=config.gateway.order_group_limit,
            startup_orders=config.startup_orders,
            trading_allowed=config.trading_allowed,
            dry_run=config.dry_run,
            order_id_prefix=config.gateway.id_prefix,
            order_id_state=id_state,
        )

    def __repr__(self) -> str:
        return (
            f"StageContext(environment={self.environment!r}, rest_url={self.rest_url!r}, "
            f"ws_url={self.ws_url!r}, markets={len(self.markets)})"
        )
