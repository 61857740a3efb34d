"""The terminal view writes a transition and its metadata in one write, so a log line from
another thread (a service's WARNING, say) can never land between them: the piped-stderr
process test reads the metadata as the line after the transition."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from app.console import ConsoleView
from messages.events import StateTransition
from messages.metadata import StartupMetadata
from messages.states import State


class CountingFile(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.mark.parametrize("terminal", [False, True])
def test_transition_when_rendered_is_one_write_of_two_lines(terminal: bool) -> None:
    out = CountingFile()
    view = ConsoleView(Console(file=out, force_terminal=terminal, width=100, color_system=None))
    metadata = StartupMetadata(environment="local", host="h:1", log_level="INFO", mode="config")

    view(
        StateTransition(
            from_state=State.STARTUP,
            to_state=State.INITIALIZING,
            context="Starting up",
            metadata=metadata,
            duration_ms=1.0,
        )
    )

    lines = out.getvalue().splitlines()
    assert out.writes == 1
    assert len(lines) == 2
    assert "INITIALIZING  after 1.0 ms in STARTUP  Starting up" in lines[0]
    assert lines[1].rstrip() == "    environment=local  host=h:1  log_level=INFO  mode=config"
