"""What the supervisor core needs from the world, as small typed protocols.

The core decides; these do. The pykka shell implements them with actors and threads;
the core's unit tests implement them with plain objects and a manual scheduler.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from messages.base import Message
from messages.exchange import ExchangeCondition

if TYPE_CHECKING:
    from kalshi_api.market_facts import MarketFacts

Mailbox = Callable[[object], None]
"""Tell the core a message later, on its own thread (timers and background work use it)."""

Background = Callable[[Callable[[], None]], None]
"""Run blocking work (market discovery over HTTP) off the core's thread."""


class MarketList(Protocol):
    """INITIALIZING's answer: the markets a run follows, and what the listing said of each
    (``actors.markets.ResolvedMarkets``; the caller supplies the resolver)."""

    @property
    def tickers(self) -> tuple[str, ...]: ...

    @property
    def facts(self) -> Mapping[str, MarketFacts]: ...


ExchangeProbe = Callable[[], ExchangeCondition]
"""Read ``GET /exchange/status`` once (blocking; run through ``Background``). Raises on error."""


class ExchangeFaultHook(Protocol):
    """The embedded exchange as the core sees it: something that can be broken on purpose."""

    def apply_fault(
        self,
        fault: str,
        *,
        seconds: float | None,
        count: int | None,
        shard: int | None,
        resume_in: float | None,
    ) -> None:
        """Apply ``fault``; a ValueError means the request does not fit this exchange (an
        unknown shard): the caller's mistake, not the exchange's failure."""
        ...


class ChildGoneError(Exception):
    """The child actor is no longer running (its failure report, if any, is on its way)."""


class ChildUnresponsiveError(Exception):
    """The child actor did not answer in time."""


class PingProbe(Protocol):
    """One liveness ping in flight."""

    def answered(self) -> bool:
        """Whether a reply (or an error) has arrived, without blocking."""
        ...

    def failure(self) -> tuple[str, str] | None:
        """None if it answered well, else ``(error_type, reason)``."""
        ...


class ChildHost(Protocol):
    """Every supervised actor, stage or service, as the core reaches it (by name).

    The core keeps the generations and controls (``core.child_table``); the host only
    starts, reaches and stops the actors. One port for every kind of child.
    """

    def start(self, spec: Any, context: object, generation: int, controls: Any) -> None:
        """Start an incarnation of ``spec.actor_class``; raises if its constructor does."""
        ...

    def is_alive(self, name: str) -> bool: ...

    def ask(self, name: str, message: Message, timeout: float) -> Any:
        """Ask and wait; raises ``ChildGoneError``, ``ChildUnresponsiveError`` or its error."""
        ...

    def tell(self, name: str, message: object) -> bool:
        """Tell without waiting; False when the child is not running."""
        ...

    def ping(self, name: str) -> PingProbe: ...

    def stop(self, names: Sequence[str]) -> None:
        """Stop these children in the given order, without blocking the caller on them
        (a stuck one is abandoned after a bound, off the caller's thread)."""
        ...

    def lingering(self, name: str) -> bool:
        """Whether an earlier incarnation of ``name`` still runs after its stop."""
        ...
