"""The stage pipeline as data: adding a stage actor is one ``StageSpec``, not a supervisor edit.

The supervisor walks the enabled specs in order, entering each spec's state (once per
state, when several specs share one), asking the actor to ``Describe`` the entry, then to
``Connect``. Restart policy (type, strategy order) follows the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from actors.base import StageActor
from actors.kalshi_sync import KalshiSyncActor
from actors.orderbook_connect import OrderbookConnectActor
from actors.trading_connect import TradingConnectActor
from messages.states import State
from supervision.policy import RestartType
from supervision.state_machine import TRANSITIONS


@dataclass(frozen=True)
class StageSpec:
    """One stage: its name (fault target and restart unit), its state and its actor class."""

    name: str
    state: State
    actor_class: type[StageActor]
    requires_trading: bool = False
    """Skipped entirely under ``--no-trading``."""
    restart_type: RestartType = RestartType.PERMANENT


ORDERBOOK = StageSpec("orderbook", State.ORDERBOOK_CONNECT, OrderbookConnectActor)
TRADING = StageSpec(
    "trading", State.TRADING_CLIENT_CONNECT, TradingConnectActor, requires_trading=True
)
SYNC = StageSpec("sync", State.KALSHI_DATA_SYNC, KalshiSyncActor, requires_trading=True)

DEFAULT_STAGES: tuple[StageSpec, ...] = (ORDERBOOK, TRADING, SYNC)


def pipeline_is_valid(specs: Sequence[StageSpec]) -> bool:
    try:
        validate_pipeline(specs)
    except ValueError:
        return False
    return True


def validate_pipeline(specs: Sequence[StageSpec]) -> None:
    """Check the stages' states form a legal path INITIALIZING -> ... -> READY in the table."""
    if not specs:
        raise ValueError("the supervisor needs at least one stage")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"stage names must be unique, got {names}")
    previous = State.INITIALIZING
    for spec in specs:
        if spec.state is previous:
            continue
        if spec.state not in TRANSITIONS[previous]:
            raise ValueError(
                f"stage {spec.name!r}: {previous.name} -> {spec.state.name} is not allowed"
            )
        previous = spec.state
    if State.READY not in TRANSITIONS[previous]:
        raise ValueError(f"the last stage's state {previous.name} cannot move to READY")
