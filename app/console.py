"""The terminal view: each state as it is entered, how long the last one took, its metadata."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from messages.events import (
    Escalation,
    ExchangePaused,
    ExchangeResumed,
    KalshiSyncComplete,
    StageFailureReported,
    StateTransition,
    SupervisorEvent,
)
from messages.states import State

_STATE_STYLE = {
    State.READY: "bold green",
    State.ERROR: "bold red",
    State.SHUTDOWN: "bold yellow",
}


class ConsoleView:
    """A listener that renders events for a person; never raises into the supervisor."""

    def __init__(self, console: Console | None = None) -> None:
        self._console = console or Console(stderr=True, highlight=False)

    def __call__(self, event: SupervisorEvent) -> None:
        if isinstance(event, StateTransition):
            self._transition(event)
        elif isinstance(event, KalshiSyncComplete):
            changes = event.changes.model_dump() if event.changes else "first sync"
            self._line("sync", "cyan", f"{_fields(event.state.model_dump())}  changes: {changes}")
        elif isinstance(event, StageFailureReported):
            self._line(
                "failure",
                "red",
                f"{event.stage} in {event.state.name}: {event.error_type}: {event.reason}",
            )
        elif isinstance(event, Escalation):
            self._line("gave up", "bold red", event.reason)
        elif isinstance(event, ExchangePaused):
            estimate = event.resume_estimate
            when = estimate.astimezone().strftime("%H:%M:%S") if estimate else "none given"
            self._line(
                "paused",
                "bold yellow",
                f"{_where(event.exchange_index, event.scope)}; estimated resume {when}",
            )
        elif isinstance(event, ExchangeResumed):
            self._line(
                "resumed",
                "green",
                f"{_where(event.exchange_index, event.scope)} ended after "
                f"{event.paused_ms / 1000:.1f} s",
            )
        else:
            self._line(
                event.type,
                "magenta",
                _fields(event.model_dump(mode="json", exclude={"type", "timestamp"})),
            )

    def _transition(self, event: StateTransition) -> None:
        header = Text()
        header.append(event.timestamp.strftime("%H:%M:%S.%f")[:-3] + "  ", style="dim")
        header.append(event.to_state.name, style=_STATE_STYLE.get(event.to_state, "bold blue"))
        header.append(f"  after {event.duration_ms:.1f} ms in {event.from_state.name}", style="dim")
        header.append(f"  {event.context}")
        self._console.print(header)
        self._console.print(
            Text("    " + _fields(event.metadata.model_dump(mode="json")), style="dim")
        )

    def _line(self, label: str, style: str, body: str) -> None:
        text = Text("              ")
        text.append(f"{label}: ", style=style)
        text.append(body)
        self._console.print(text)


def _where(exchange_index: int | None, scope: str) -> str:
    """``exchange pause on every shard``, ``trading pause on shard 2``."""
    shard = "every shard" if exchange_index is None else f"shard {exchange_index}"
    return f"{scope} pause on {shard}"


def _fields(values: dict[str, Any]) -> str:
    return "  ".join(f"{key}={value}" for key, value in values.items())
