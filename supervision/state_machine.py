"""The seed's state machine as data, and the one object allowed to move through it.

The table is a plain mapping so it can be tested exhaustively (every (state, target)
pair) and rendered into the README. Importing this module loads no pydantic (the message
models are imported by ``transition``), so ``kalshi-supervisor diagram`` stays fast. The
machine also checks that each transition carries exactly the metadata class of the state
being entered: that check, with frozen ``extra="forbid"`` models, is what makes the seed's
metadata-leak bug unrepresentable.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from messages.states import State

if TYPE_CHECKING:  # pydantic models: loaded on the first transition, not to render the table
    from messages.events import StateTransition
    from messages.metadata import StateMetadata

logger = logging.getLogger("kalshi_supervisor.supervision.state_machine")

TERMINAL_STATES: frozenset[State] = frozenset({State.SHUTDOWN})

_FORWARD: Mapping[State, frozenset[State]] = {
    State.STARTUP: frozenset({State.INITIALIZING}),
    State.INITIALIZING: frozenset({State.ORDERBOOK_CONNECT}),
    State.ORDERBOOK_CONNECT: frozenset({State.TRADING_CLIENT_CONNECT, State.READY}),
    State.TRADING_CLIENT_CONNECT: frozenset({State.KALSHI_DATA_SYNC}),
    State.KALSHI_DATA_SYNC: frozenset({State.READY}),
    State.READY: frozenset({State.ORDERBOOK_CONNECT}),
    State.ERROR: frozenset({State.STARTUP}),
    State.SHUTDOWN: frozenset(),
}


def _build_table() -> Mapping[State, frozenset[State]]:
    table: dict[State, frozenset[State]] = {}
    for state, forward in _FORWARD.items():
        targets = set(forward)
        if state not in TERMINAL_STATES:
            targets.add(State.SHUTDOWN)
            if state is not State.ERROR:
                targets.add(State.ERROR)
        table[state] = frozenset(targets)
    return table


TRANSITIONS: Mapping[State, frozenset[State]] = _build_table()
"""Allowed moves: the seed's forward path, READY -> ORDERBOOK_CONNECT (reconnection),
any non-terminal -> ERROR -> STARTUP (recovery), and any non-terminal -> SHUTDOWN."""


class IllegalTransitionError(RuntimeError):
    """A move the table does not allow, or metadata of the wrong class for the target."""


def render_mermaid(table: Mapping[State, frozenset[State]] = TRANSITIONS) -> str:
    """The table as a Mermaid state diagram (the README embeds this output)."""
    lines = ["stateDiagram-v2", f"    [*] --> {State.STARTUP.name}"]
    for state in State:
        for target in sorted(table[state], key=list(State).index):
            lines.append(f"    {state.name} --> {target.name}")
    lines.append(f"    {State.SHUTDOWN.name} --> [*]")
    return "\n".join(lines)


class StateMachine:
    """Current state plus an append-only history of immutable transition records."""

    def __init__(
        self,
        *,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._wall_clock = wall_clock
        self._monotonic = monotonic
        self._state = State.STARTUP
        self._entered_at = monotonic()
        self._history: list[StateTransition] = []

    @property
    def state(self) -> State:
        return self._state

    @property
    def history(self) -> tuple[StateTransition, ...]:
        return tuple(self._history)

    def seconds_in_state(self) -> float:
        return self._monotonic() - self._entered_at

    def can_move_to(self, target: State) -> bool:
        return target in TRANSITIONS[self._state]

    def transition(
        self, target: State, *, context: str, metadata: StateMetadata
    ) -> StateTransition:
        """Move to ``target`` carrying ``metadata``; raise (and log) if the move is illegal."""
        from messages.events import StateTransition
        from messages.metadata import METADATA_FOR_STATE

        if target not in TRANSITIONS[self._state]:
            message = f"illegal transition {self._state.name} -> {target.name}"
            logger.error(message)
            raise IllegalTransitionError(message)
        allowed = METADATA_FOR_STATE[target]
        if type(metadata) not in allowed:
            names = " or ".join(cls.__name__ for cls in allowed)
            message = (
                f"transition to {target.name} needs {names} metadata, got {type(metadata).__name__}"
            )
            logger.error(message)
            raise IllegalTransitionError(message)
        now = self._monotonic()
        record = StateTransition(
            from_state=self._state,
            to_state=target,
            context=context,
            metadata=metadata,
            duration_ms=round((now - self._entered_at) * 1000.0, 3),
            timestamp=datetime.fromtimestamp(self._wall_clock(), UTC),
        )
        self._state, self._entered_at = target, now
        self._history.append(record)
        return record
