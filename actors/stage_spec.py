"""The stage spec type: everything the supervisor core knows about a stage, as data.

Adding a stage actor is one ``StageSpec``, not a supervisor edit. The supervisor walks the
enabled specs in order, entering each spec's state (once per state, when several specs share
one), asking the actor to ``Describe`` the entry, then to ``Connect``. Restart policy (type,
strategy order) follows the same order.

Why apart from the default list (``actors.registry``): the core and the actor kit need the
type, never the concrete stages; this module imports neither them nor pykka.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from messages.base import Message
from messages.events import Event
from messages.metadata import ReadyMetadata
from messages.states import State
from supervision.policy import RestartType
from supervision.state_machine import TRANSITIONS

if TYPE_CHECKING:
    from actors.base import StageActor


@dataclass(frozen=True)
class ReadyPart:
    """What a stage contributes to READY's metadata.

    Why a spec field: READY is assembled from several stages' facts, and the core must
    not know which stage knows what. ``ask`` (if set) is sent to the live actor when READY
    is entered (a fresh report); otherwise the stage's last result is used. ``fields`` maps
    that result to READY metadata keys. ``live`` says whether READY may be announced now
    (given the number of markets); if not, the core waits, under this stage's deadline, for
    the stage to report that it healed. ``absent`` is the result used when the stage is not
    running at all (e.g. dropped); None means it then contributes nothing.
    """

    fields: Callable[[Any], Mapping[str, Any]]
    metadata: type[ReadyMetadata] = ReadyMetadata
    """The READY metadata class these fields need; READY takes the most derived class
    among the contributing stages' (the sync stage's ``trading_client`` needs
    ``TradingReadyMetadata``)."""
    ask: Message | None = None
    live: Callable[[Any, int], bool] | None = None
    absent: Callable[[], Message] | None = None
    refines: bool = False
    """The fields only add keys to nested mappings other stages contribute (the trading
    stage's tier and order group inside the sync stage's ``trading_client``); applied after
    every other part, and never creating a key: with no such contribution (a dropped sync
    stage) this part contributes nothing."""


@dataclass(frozen=True)
class PeriodicWork:
    """Work a stage does again every ``interval(config)`` seconds while READY.

    ``command(generation)`` builds the message told to the stage; its reply is a normal
    ``StageSucceeded``. The stage's deadline bounds the work (pings would queue behind it).
    """

    name: str
    interval: Callable[[Any], float]
    command: Callable[[int], Message]


@dataclass(frozen=True)
class StageSpec:
    """One stage: everything the supervisor core needs to know about it, and nothing else.

    ``name`` is the fault target and restart unit; the actor class's ``stage_name`` and
    ``stage_state`` must agree with ``name`` and ``state`` (checked here, at construction,
    because an actor whose replies carry another name would be ignored forever).
    """

    kind: ClassVar[str] = "stage"
    failure_leaves_ready: ClassVar[bool] = True
    """What a failure does (supervision data, read by the core): a stage's takes the system
    out of READY, through ERROR and the stage recovery."""

    name: str
    state: State
    actor_class: type[StageActor]
    requires_trading: bool = False
    """Skipped under ``--no-trading``. A stage sharing a state with a trading stage is skipped
    with it (its state is never entered), whether or not it says so itself."""
    restart_type: RestartType = RestartType.PERMANENT
    result_type: type[Message] | None = None
    """The class its ``StageSucceeded.result`` must be; None accepts any message."""
    deadline: float | None = None
    """Seconds this stage may take to succeed; None uses ``config.deadlines[state]``."""
    ready: ReadyPart | None = None
    periodic: tuple[PeriodicWork, ...] = ()
    announce: Callable[[Any], Event | None] | None = field(default=None, compare=False)
    """The event (if any) to publish for each result of this stage."""
    share: Callable[[Any], Message | None] | None = field(default=None, compare=False)
    """What services hear of each result (told to every running service; the latest one is
    told again to a service that starts later), e.g. the sync stage's ``AccountChanged``."""
    entry_context: Callable[[Sequence[str]], str] | None = field(default=None, compare=False)
    """The transition's context line when this stage enters its state, given the markets;
    None says ``Starting <name> stage``."""
    hold_retry: Callable[[int], Message] | None = field(default=None, compare=False)
    """What to tell this stage, with backoff, while it is held for want of what it works on
    (an incident that ``holds``, e.g. the orderbook's ``no_live_markets``); None: never held."""

    def __post_init__(self) -> None:
        declared = getattr(self.actor_class, "stage_name", None)
        if declared is not None and declared != self.name:
            raise ValueError(
                f"stage spec {self.name!r}: actor {self.actor_class.__name__} declares "
                f"stage_name {declared!r}; they must agree"
            )
        state = getattr(self.actor_class, "stage_state", None)
        if state is not None and state is not self.state:
            raise ValueError(
                f"stage spec {self.name!r}: actor {self.actor_class.__name__} declares "
                f"stage_state {state.name}, the spec says {self.state.name}"
            )
        if self.deadline is not None and not (0 < self.deadline < float("inf")):
            raise ValueError(f"stage spec {self.name!r}: deadline must be a positive number")

    def entry_line(self, markets: Sequence[str]) -> str:
        """The context of entering this stage's state."""
        if self.entry_context is None:
            return f"Starting {self.name} stage"
        return self.entry_context(markets)

    def deadline_in(self, deadlines: Mapping[State, float]) -> float | None:
        """This stage's own deadline: the spec's, else its state's configured one."""
        return self.deadline if self.deadline is not None else deadlines.get(self.state)


def enabled_stages(specs: Sequence[StageSpec], *, trading_enabled: bool) -> list[StageSpec]:
    """The stages that run: all of them, or under ``--no-trading`` those outside trading states.

    Why by state too: a stage added inside a trading stage's state (the README's example,
    in KALSHI_DATA_SYNC) can only run when that state is entered, which ``--no-trading``
    never does; skipping it is the only legal path, not an error.
    """
    if trading_enabled:
        return list(specs)
    trading_states = {s.state for s in specs if s.requires_trading}
    return [s for s in specs if not s.requires_trading and s.state not in trading_states]


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
