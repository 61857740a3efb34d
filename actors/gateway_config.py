"""What the order gateway is started with: where to trade, as whom, and its policies.

A plain frozen dataclass rather than service options: it holds the signer (a secret never
to be serialised or shown) and is assembled by the app from ``SupervisorConfig``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from messages.orders import RiskLimits
from trading.halt import HaltPolicy
from trading.lookup import LookupPolicy

if TYPE_CHECKING:
    from kalshi_api.auth import KalshiSigner

GATEWAY_SERVICE = "order_gateway"
"""The gateway's service name (fault target, restart unit)."""
ADOPTED_SERVICE = "adopted"
"""The owner of adopted orders (``--startup-orders adopt``): resting orders this process did
not place, tracked by the gateway like its own. A reserved name (no service may take it),
so no service can cancel or amend them; a halt cancels them with everything else."""
ID_STATE_FILE = "client_order_ids.json"
"""The id allocator's high-water file, in the supervisor's state directory."""


@dataclass(frozen=True)
class GatewayConfig:
    rest_url: str
    ws_url: str
    signer: KalshiSigner
    request_timeout: float = 5.0
    id_prefix: str = "ks"
    id_state: Path | None = None
    """The id allocator's high-water file (None: none; ids stay unique by their random run
    id). The trading stage reads the same file to tell our orders from others'."""
    trading_allowed: bool = True
    """False (production without ``--allow-production-trading``): every order is refused."""
    dry_run: bool = False
    """Orders are checked and logged, never sent (refused with the reason ``dry run``)."""
    global_limits: RiskLimits = field(default_factory=RiskLimits)
    service_limits: Mapping[str, RiskLimits] = field(default_factory=dict)
    halt_policy: HaltPolicy = field(default_factory=HaltPolicy)
    halt_on_not_ready: bool = True
    halt_on_pause: bool = True
    halt_on_daily_loss: bool = True
    halt_on_group_trigger: bool = True
    cancel_on_service_stop: bool = True
    """A service's orders are cancelled when it is stopped or dropped."""
    lookup: LookupPolicy = field(default_factory=LookupPolicy)
    order_group_limit: Decimal | None = Decimal(1000)
    """Contracts per rolling 15 s for the session's order group the gateway creates when the
    trading stage did not; None: no order group at all (not even the stage's)."""
    own_private_channels: bool = False
    """Open the private channels itself (when no trading stage hands events on, e.g. a
    pipeline without it); the app leaves it off: the trading stage's channels feed us."""
    halt_timeout: float = 30.0
    """How long a halt keeps verifying before it reports what still rests."""
    workers: int = 4
    """Threads doing the gateway's REST I/O (the actor thread never blocks on a socket)."""

    def __repr__(self) -> str:  # never the signer
        return f"GatewayConfig(rest_url={self.rest_url!r}, id_prefix={self.id_prefix!r})"

    @property
    def id_state_path(self) -> Path | None:
        return self.id_state
